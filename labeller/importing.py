"""Import items (and any annotations they carry) into a project, streamed and all-or-nothing.

One pass over the file: rows are checked against the project's schema and labels and written in
batches. In `atomic` mode a file with any bad row is imported not at all and every bad row is
reported; in `partial` mode the good rows stay and the rejected ones are returned. A row is never
dropped silently: duplicates of an `external_id` are reported as skipped (listed
up to LABELLOOP_IMPORT_MAX_REPORTED_ERRORS, like errors, and all counted).

On PostgreSQL the pass runs in one transaction, which locks only the rows it writes. SQLite has one
write lock for the whole database, and a 500 MB file takes a minute: held that long, every other
project's submits would fail with "database is locked". There each batch commits on its own,
tagged with the import's id; the tagged items are not served, a failed import deletes them, and a
complete one clears the tag in one statement, so its items appear together.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import BinaryIO

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from .evaluation_set import is_eval_draw
from ml.spans import from_js_offsets

from .import_formats import SPAN_FORMATS, ParsedRow, RowError, UnsupportedFile, format_for, read_rows
from .models import Annotation, AnnotationSource, Item, ItemSource, Project, search_text_of
from .services import label_summary
from .signals import items_added
from .task_types import InvalidValue, task_type_for


DISCARD_BATCH = 2000
ABANDONED_AFTER = timedelta(hours=1)


class ImportMode:
    ATOMIC = "atomic"
    PARTIAL = "partial"
    CHOICES = (ATOMIC, PARTIAL)


@dataclass
class ImportResult:
    mode: str
    rows: int = 0
    created: int = 0
    annotations_created: int = 0
    duplicates: list[dict] = field(default_factory=list)
    duplicate_count: int = 0
    errors: list[dict] = field(default_factory=list)
    error_count: int = 0

    @property
    def committed(self) -> bool:
        return self.mode == ImportMode.PARTIAL or self.error_count == 0

    def as_dict(self) -> dict:
        return {
            "mode": self.mode,
            "committed": self.committed,
            "rows": self.rows,
            "created": self.created if self.committed else 0,
            "annotations_created": self.annotations_created if self.committed else 0,
            "duplicates": self.duplicates,
            "duplicate_count": self.duplicate_count,
            "duplicates_truncated": self.duplicate_count > len(self.duplicates),
            "errors": self.errors,
            "error_count": self.error_count,
            "errors_truncated": self.error_count > len(self.errors),
        }


class _RowChecker:
    """Checks a parsed row against the project's item schema and label set."""

    def __init__(self, project: Project):
        self.project = project
        self.task_type = task_type_for(project)
        self.fields = project.schema_fields()
        labels = list(project.labels.values_list("key", "name"))
        self.label_by_value = {name: key for key, name in labels}
        self.label_by_value.update({key: key for key, _ in labels})

    def check(self, parsed: ParsedRow) -> RowError | list[list[str]]:
        """The row's annotations as label keys, or the first problem found."""
        for name in self.fields:
            value = parsed.data.get(name)
            if value is None or value == "":
                return RowError(parsed.row, parsed.line, name, f"required field '{name}' is missing or empty")
        if not isinstance(parsed.data[self.project.text_field], str):
            return RowError(parsed.row, parsed.line, self.project.text_field, "the text field must be a string")
        if parsed.external_id is not None and len(parsed.external_id) > 255:
            return RowError(parsed.row, parsed.line, "external_id", "longer than 255 characters")
        if self.task_type.key == "spans":
            return self._spans(parsed)
        given = next((name for name, _, spans in parsed.spans if spans), None)
        if given and not parsed.annotations:
            return RowError(parsed.row, parsed.line, given, f"holds spans, and this is a {self.project.get_task_type_display().lower()}"
                            " project: import spans into a span labelling project")
        label_sets = []
        for chosen in parsed.annotations:
            try:
                label_sets.append(self.task_type.read_import(chosen, label_by_value=self.label_by_value))
            except InvalidValue as exc:
                return RowError(parsed.row, parsed.line, "annotations", str(exc))
        return label_sets

    def _spans(self, parsed: ParsedRow) -> RowError | list[list[dict]]:
        """A span project's row: every annotation's spans, in code points, checked against the
        row's text (Label Studio's offsets converted first, ml.spans.from_js_offsets)."""
        if parsed.annotations and not parsed.spans:
            return RowError(parsed.row, parsed.line, "annotations", "holds `choices` (classification), and this is a span "
                            "labelling project: give `labels` results with start and end, or `spans`")
        text = parsed.data[self.project.text_field]
        label_sets = []
        for name, offsets, spans in parsed.spans:
            if offsets == "js":
                spans = [from_js_offsets(text, span) if isinstance(span, dict) else span for span in spans]
            try:
                label_sets.append(self.task_type.read_import(spans, label_by_value=self.label_by_value, text=text,
                                                             overlap=self.project.spans_overlap))
            except InvalidValue as exc:
                return RowError(parsed.row, parsed.line, name, str(exc))
        return label_sets


def items_import(*, project: Project, stream: BinaryIO, filename: str, mode: str = ImportMode.ATOMIC) -> ImportResult:
    """Import every row of `stream` into `project`; see the module docstring for the rules."""
    fmt = format_for(filename)
    if fmt in SPAN_FORMATS and task_type_for(project).key != "spans":
        raise UnsupportedFile(f"a CoNLL file holds spans, and this is a {project.get_task_type_display().lower()} project: "
                              "import it into a span labelling project", field="file")
    if connection.vendor == "sqlite" and not connection.in_atomic_block:
        return _import_in_committed_batches(project, stream, fmt, mode)
    with transaction.atomic():
        result = _import_rows(project, stream, fmt, mode, write=lambda batch, result: _write_batch(project, batch, result))
        if not result.committed:
            transaction.set_rollback(True)
        elif result.created:
            items_added.send(sender=Item, project_id=project.id)  # the encode request commits with the items
    return result


def _import_in_committed_batches(project: Project, stream: BinaryIO, fmt: str, mode: str) -> ImportResult:
    import_id = uuid.uuid4()

    def write(batch, result: ImportResult) -> None:
        with transaction.atomic():
            _write_batch(project, batch, result, import_id=import_id)

    try:
        result = _import_rows(project, stream, fmt, mode, write=write)
    except BaseException:
        import_discard(import_id=import_id)
        raise
    if not result.committed:
        import_discard(import_id=import_id)
        return result
    with transaction.atomic():
        Item.objects.filter(import_id=import_id).update(import_id=None)
        if result.created:
            items_added.send(sender=Item, project_id=project.id)
    return result


def _import_rows(project: Project, stream: BinaryIO, fmt: str, mode: str, *, write) -> ImportResult:
    """Read, check and hand each batch of good rows to `write`; count and report the bad ones."""
    checker = _RowChecker(project)
    result = ImportResult(mode=mode)
    batch: list[tuple[ParsedRow, list[list[str]]]] = []
    max_errors = settings.LABELLOOP_IMPORT_MAX_REPORTED_ERRORS

    def reject(error: RowError) -> None:
        result.error_count += 1
        if len(result.errors) < max_errors:
            result.errors.append(error.as_dict())

    for parsed in read_rows(stream, fmt, text_field=project.text_field):
        if isinstance(parsed, RowError):
            result.rows += parsed.row is not None
            reject(parsed)
            continue
        result.rows += 1
        checked = checker.check(parsed)
        if isinstance(checked, RowError):
            reject(checked)
            continue
        batch.append((parsed, checked))
        if len(batch) >= settings.LABELLOOP_IMPORT_BATCH_SIZE:
            write(batch, result)
            batch = []
    if batch:
        write(batch, result)
    return result


def import_discard(*, import_id: uuid.UUID) -> int:
    """Delete what an unfinished import wrote (its annotations go with its items), a batch per
    transaction so other writers are never held up for long. Returns the number of items."""
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(Item.objects.filter(import_id=import_id).values_list("id", flat=True)[:DISCARD_BATCH])
            if not ids:
                return deleted
            Item.objects.filter(id__in=ids).delete()
        deleted += len(ids)


def imports_discard_abandoned(*, now: datetime) -> int:
    """Beat's safety net: an import whose process died (a deploy, out of memory) left tagged items
    that nobody will complete. A running import commits a batch every few seconds, so one that
    wrote nothing for ABANDONED_AFTER is dead; its items are deleted. Returns the number of items."""
    abandoned = (Item.objects.filter(import_id__isnull=False).values("import_id")
                 .annotate(last=Max("created_at")).filter(last__lt=now - ABANDONED_AFTER))
    return sum(import_discard(import_id=row["import_id"]) for row in abandoned)


def _write_batch(project: Project, batch: list[tuple[ParsedRow, list[list[str]]]], result: ImportResult,
                 import_id: uuid.UUID | None = None) -> None:
    """Insert one batch; rows whose external_id is already taken are reported, not inserted."""
    wanted = {parsed.external_id for parsed, _ in batch if parsed.external_id is not None}
    # Earlier batches of this import are visible here: same transaction, or committed.
    taken = dict.fromkeys(
        Item.objects.filter(project=project, external_id__in=wanted).values_list("external_id", flat=True)
    )
    items, label_sets = [], []
    now = timezone.now()
    for parsed, row_values in batch:
        if parsed.external_id is not None:
            if parsed.external_id in taken:
                first = taken[parsed.external_id]
                where = f"row {first}" if first else "an item already in the project"
                # Listed up to the same cap as errors: a file of one id repeated a million times
                # must not answer a million lines. All are counted.
                result.duplicate_count += 1
                if len(result.duplicates) < settings.LABELLOOP_IMPORT_MAX_REPORTED_ERRORS:
                    result.duplicates.append(
                        {"row": parsed.row, "line": parsed.line, "external_id": parsed.external_id, "duplicate_of": where}
                    )
                continue
            taken[parsed.external_id] = parsed.row
        done = len(row_values) >= project.labels_per_item
        items.append(
            Item(
                project=project,
                external_id=parsed.external_id,
                data=parsed.data,
                annotation_count=len(row_values),
                is_done=done,
                is_eval=is_eval_draw(project.id, parsed.external_id or f"row-{parsed.row}", project.eval_share),
                import_id=import_id,
                source=ItemSource.IMPORT,
                search_text=search_text_of(parsed.data, project.text_field),
                labelled_at=now if row_values else None,
                **label_summary(project=project, label_sets=row_values),
            )
        )
        label_sets.append(row_values)
    Item.objects.bulk_create(items)
    result.created += len(items)
    imported = [
        Annotation(item=item, project=project, labels=labels, source=AnnotationSource.IMPORT)
        for item, values in zip(items, label_sets)
        for labels in values
    ]
    if imported:
        Annotation.objects.bulk_create(imported)
        result.annotations_created += len(imported)
