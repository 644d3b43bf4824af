"""Export a project's items and labels to JSONL, CSV, Label Studio JSON or (span projects) CoNLL,
streamed to a file."""
from __future__ import annotations

import csv
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Callable, Iterator

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from celery import shared_task

from core import jobs
from core.enqueue import enqueue_on_commit
from core.errors import DomainError
from ml.spans import spans_to_bio, write_conll

from . import item_table
from .consensus import Resolver, answer_key
from .models import ExportFormat, ExportJob, ExportStatus, Item, ItemStatus, Project
from .selectors import items_only_skipped, items_with_annotations, items_with_status
from .task_types import task_type_for


# The item statuses an export can be filtered by, in the order the export form lists them.
EXPORT_STATUSES = tuple(status.value for status in (ItemStatus.ALL, ItemStatus.DONE, ItemStatus.LABELLED, ItemStatus.NOT_DONE))


CHUNK = 2000


def export_formats_for(project: Project) -> list[tuple[str, str]]:
    """The export formats a project offers, as (value, name): CoNLL only for span projects."""
    spans = task_type_for(project).key == "spans"
    return [(value, name) for value, name in ExportFormat.choices if spans or value != ExportFormat.CONLL]


def export_create(*, project: Project, user, format: str, status: str = ItemStatus.ALL,
                  min_agreement: float | None = None, table_filters: dict | None = None) -> ExportJob:
    """Record an export job and queue it for a worker once the row is committed. `table_filters`:
    the data manager's filters (item_table.items_table_filter), for an export of its selection."""
    if format == ExportFormat.CONLL and task_type_for(project).key != "spans":
        raise DomainError(f"CoNLL holds spans, and this is a {project.get_task_type_display().lower()} project: "
                          "export it as JSON Lines, CSV or Label Studio JSON", field="format")
    filters = {"status": status, "min_agreement": min_agreement}
    if table_filters is not None:
        filters["table"] = item_table.filters_to_json(table_filters)
    job = ExportJob.objects.create(project=project, created_by=user, format=format, filters=filters)
    enqueue_on_commit(export_run, str(job.id))
    return job


def _filtered_items(project: Project, filters: dict) -> QuerySet[Item]:
    items = items_with_status(items_with_annotations(project=project), status=filters.get("status", ItemStatus.ALL))
    if "table" in filters:
        chosen = item_table.items_table_filter(project=project, filters=item_table.filters_from_json(filters["table"]))
        items = items.filter(id__in=chosen.values("id"))
    return items


@dataclass
class ExportSummary:
    """What a file holds and what it left out, stored on the job (ExportJob.summary).

    Skipped annotations are written, marked (`skipped` in JSONL and CSV, Label Studio's
    `was_cancelled`), and never count towards an item's majority or agreement. An item only ever
    skipped has no labels: it is written under the "all" and "not done" filters, and falls out
    of "done" and "labelled" (and of any minimum agreement, having none)."""

    items_written: int = 0
    not_matching_status: int = 0
    below_min_agreement: int = 0
    skipped_annotations: int = 0
    skipped_only_items_written: int = 0
    skipped_only_items_left_out: int = 0
    # CoNLL only (None elsewhere, and then not stored): spans BIO tags cannot hold (not on
    # whitespace-token boundaries, or overlapping another), left out rather than moved, and the
    # first items holding one; and texts with no token at all, left out.
    spans_left_out: int | None = None
    spans_left_out_items: list[int] = field(default_factory=list)
    texts_without_tokens: int | None = None

    def as_dict(self) -> dict:
        return {key: value for key, value in asdict(self).items()
                if value is not None and not (key == "spans_left_out_items" and self.spans_left_out is None)}


LEFT_OUT_ITEMS_LISTED = 20


def _text(item: Item, project: Project) -> str:
    value = item.data.get(project.text_field, "") if isinstance(item.data, dict) else ""
    return value if isinstance(value, str) else str(value)


def _records(job: ExportJob, summary: ExportSummary,
             on_progress: Callable[[int], None]) -> Iterator[tuple[Item, list[str], float | None]]:
    """(item, majority, agreement) of each item the job keeps; `item.submitted`: its labels,
    `item.annotations_all`: those and its skips."""
    project = job.project
    # The consensus (labeller.consensus): Dawid–Skene where the project has a fitted estimate,
    # the task type's majority rule otherwise; `item.consensus` keeps its confidence and method.
    resolver = Resolver(project, preload=True)
    min_agreement = job.filters.get("min_agreement")
    for n, item in enumerate(_filtered_items(project, job.filters).iterator(chunk_size=CHUNK), start=1):
        item.submitted = [a for a in item.annotations_all if not a.skipped]
        resolved = resolver.resolve([(answer_key(a.annotator_id, a.source), a.labels) for a in item.submitted],
                                    item_id=item.id)
        majority, item_agreement = resolved.labels, resolved.agreement
        item.consensus_confidence = resolved.confidence
        if n % CHUNK == 0:
            on_progress(n)
        if min_agreement is not None and (item_agreement is None or item_agreement < min_agreement):
            summary.below_min_agreement += 1
            continue
        skips = len(item.annotations_all) - len(item.submitted)
        summary.items_written += 1
        summary.skipped_annotations += skips
        summary.skipped_only_items_written += bool(skips and not item.submitted)
        yield item, majority, item_agreement


def _annotation_dict(annotation) -> dict:
    return {
        "id": annotation.id,
        "annotator": annotation.annotator.username if annotation.annotator else None,
        "source": annotation.source,
        "labels": annotation.labels,
        "skipped": annotation.skipped,
        "lead_time": annotation.lead_time,
        "created_at": annotation.created_at.isoformat(),
        "updated_at": annotation.updated_at.isoformat(),
    }


def _write_jsonl(out, records, project: Project) -> int:
    """One item per line; span values carry their `text` (offsets in code points)."""
    exported = task_type_for(project).exported
    written = 0
    for item, majority, item_agreement in records:
        text = _text(item, project)
        row = {
            "id": item.id,
            "external_id": item.external_id,
            "data": item.data,
            "majority": exported(majority, text=text),
            "agreement": item_agreement,
            # The consensus label's posterior under the project's estimate; null under the majority rule.
            "consensus_confidence": item.consensus_confidence,
            "done": item.is_done,
            "annotations": [{**_annotation_dict(a), "labels": exported(a.labels, text=text)} for a in item.annotations_all],
        }
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
        written += 1
    return written


CSV_COLUMNS = ["item_id", "external_id", "text", "majority", "agreement", "done",
               "annotation_id", "annotator", "labels", "skipped", "lead_time", "created_at", "updated_at", "data"]


# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV injection"),
# and end users' text reaches items (abstaining predictions queue their input for experts).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _neutralised(cell):
    """A text cell a spreadsheet would read as a formula, prefixed with a quote so it reads as text."""
    return "'" + cell if isinstance(cell, str) and cell.startswith(FORMULA_STARTS) else cell


class _SafeCsvWriter:
    def __init__(self, out):
        self._writer = csv.writer(out)

    def writerow(self, row: list) -> None:
        self._writer.writerow([_neutralised(cell) for cell in row])


def _write_csv(out, records, project: Project) -> int:
    """One row per annotation (items with none get one row with empty annotation columns).
    Text cells are neutralised against formula injection; JSON and Label Studio exports are not
    (they are data, not spreadsheets), so they keep every byte."""
    writer = _SafeCsvWriter(out)
    writer.writerow(CSV_COLUMNS)
    cell = task_type_for(project).csv_cell
    written = 0
    for item, majority, item_agreement in records:
        common = [item.id, item.external_id or "", item.data.get(project.text_field, ""), cell(majority),
                  "" if item_agreement is None else f"{item_agreement:.3f}", item.is_done]
        data = json.dumps(item.data, ensure_ascii=False)
        for a in item.annotations_all or [None]:
            if a is None:
                writer.writerow(common + ["", "", "", "", "", "", "", data])
            else:
                d = _annotation_dict(a)
                writer.writerow(common + [d["id"], d["annotator"] or "", cell(d["labels"]), d["skipped"], d["lead_time"] or "",
                                          d["created_at"], d["updated_at"], data])
        written += 1
    return written


def _label_studio_annotation(a, result, to_name: str, text: str) -> dict:
    """One annotation as Label Studio writes it: `completed_by` is the user's numeric id (left
    out when no user made it, an imported or feedback label: Label Studio's import then credits
    the importing user); the username rides beside it in a key Label Studio's import ignores."""
    out = {"id": a.id}
    if a.annotator_id is not None:
        out["completed_by"] = a.annotator_id
    out.update({
        "completed_by_username": a.annotator.username if a.annotator else None,
        "result": [] if a.skipped else result(a.labels, to_name=to_name, text=text),
        "was_cancelled": a.skipped,
        "lead_time": a.lead_time,
        "created_at": a.created_at.isoformat(),
        "updated_at": a.updated_at.isoformat(),
    })
    return out


def _write_label_studio(out, records, project: Project) -> int:
    """Label Studio's task list: `data`, and each annotation as its task type's result (`choices`
    for classification), named after the project: the control is the task type's
    (`label_studio_from_name`), the object the project's text field. Spans are `labels`
    results with offsets in UTF-16 code units, as Label Studio counts them, and their `text`
    (the majority in `meta` too: every offset in the file counts the same way)."""
    task_type = task_type_for(project)
    result = task_type.label_studio_result
    out.write("[\n")
    written = 0
    for item, majority, item_agreement in records:
        text = _text(item, project)
        task = {
            "id": item.id,
            "external_id": item.external_id,
            "data": item.data,
            "annotations": [_label_studio_annotation(a, result, project.text_field, text) for a in item.annotations_all],
            "meta": {"majority": task_type.exported(majority, text=text, utf16=True), "agreement": item_agreement},
        }
        out.write((",\n" if written else "") + json.dumps(task, ensure_ascii=False))
        written += 1
    out.write("\n]\n")
    return written


def _write_conll(out, records, project: Project, summary: ExportSummary) -> int:
    """Each item's majority spans as BIO tags over its whitespace tokens, a blank line after each
    text. CoNLL keeps tokens, not the spaces between them: a re-import joins the tokens with
    single spaces. A span BIO cannot hold is counted in the summary, never moved to the nearest
    token boundary (that would export text nobody labelled)."""
    summary.spans_left_out, summary.texts_without_tokens = 0, 0
    written = 0
    for item, majority, _ in records:
        tokens, tags, left_out = spans_to_bio(_text(item, project), majority)
        if left_out:
            summary.spans_left_out += len(left_out)
            if len(summary.spans_left_out_items) < LEFT_OUT_ITEMS_LISTED:
                summary.spans_left_out_items.append(item.id)
        if not tokens:
            summary.texts_without_tokens += 1
            continue
        out.write(write_conll([(tokens, tags)]))
        written += 1
    return written


def export_write(*, job: ExportJob) -> None:
    """Write the export file for `job`, recording progress; the file appears whole or not at all."""
    project = job.project
    total = _filtered_items(project, job.filters).count()
    ExportJob.objects.filter(id=job.id).update(total=total, heartbeat_at=timezone.now())

    def on_progress(n: int) -> None:
        ExportJob.objects.filter(id=job.id).update(written=n, heartbeat_at=timezone.now())

    settings.LABELLOOP_EXPORT_DIR.mkdir(parents=True, exist_ok=True)
    final = job.file_path
    partial = final.with_suffix(final.suffix + ".part")
    # Counted apart from `total`: items imported or deleted in between can make it off by those.
    summary = ExportSummary(not_matching_status=max(0, Item.objects.filter(project=project).count() - total))
    records = _records(job, summary, on_progress)
    with open(partial, "w", encoding="utf-8", newline="") as out:
        if job.format == ExportFormat.JSONL:
            _write_jsonl(out, records, project)
        elif job.format == ExportFormat.CSV:
            _write_csv(out, records, project)
        elif job.format == ExportFormat.CONLL:
            _write_conll(out, records, project, summary)
        else:
            _write_label_studio(out, records, project)
    os.replace(partial, final)
    summary.skipped_only_items_left_out = max(0, items_only_skipped(project=project).count()
                                              - summary.skipped_only_items_written)
    ExportJob.objects.filter(id=job.id).update(
        status=ExportStatus.DONE, written=total, summary=summary.as_dict(), finished_at=timezone.now()
    )


def export_claim(*, job_id) -> ExportJob | None:
    """Move a queued job to running; None if another worker (or an earlier delivery) has it."""
    claimed = ExportJob.objects.filter(id=job_id, status=ExportStatus.QUEUED).update(
        status=ExportStatus.RUNNING, heartbeat_at=timezone.now()
    )
    return ExportJob.objects.select_related("project").get(id=job_id) if claimed == 1 else None


def export_fail(*, job_id, error: str) -> None:
    ExportJob.objects.filter(id=job_id).update(status=ExportStatus.FAILED, error=error[:2000], finished_at=timezone.now())


def exports_expire(*, now=None) -> int:
    """Delete export jobs asked for more than LABELLOOP_EXPORT_RETENTION_DAYS ago, file first,
    then row, so a run that dies half-way is finished by the next; then sweep files no job knows
    (a crashed write's `.part`) older than that. Returns the jobs deleted. 0 days keeps them all."""
    days = settings.LABELLOOP_EXPORT_RETENTION_DAYS
    if days <= 0:
        return 0
    cutoff = (now or timezone.now()) - timedelta(days=days)
    deleted = 0
    for job in ExportJob.objects.filter(created_at__lt=cutoff).only("id", "format").iterator():
        job.file_path.unlink(missing_ok=True)
        job.file_path.with_suffix(job.file_path.suffix + ".part").unlink(missing_ok=True)
        deleted += ExportJob.objects.filter(id=job.id).delete()[0]
    folder = settings.LABELLOOP_EXPORT_DIR
    if folder.is_dir():
        known = {str(i) for i in ExportJob.objects.values_list("id", flat=True)}
        for path in folder.iterdir():
            if path.is_file() and path.name.split(".")[0] not in known and path.stat().st_mtime < cutoff.timestamp():
                path.unlink(missing_ok=True)
    return deleted


def export_reap(*, timeout_s: int | None = None) -> jobs.Reaped:
    """Exports with no heartbeat for `timeout_s` (a lost message, a killed worker): queued again
    (the file is rewritten whole from a `.part`), or failed with the reason after the last attempt."""
    timeout_s = jobs.job_timeout(timeout_s)
    now = timezone.now()
    stuck = ExportJob.objects.filter(
        Q(heartbeat_at__lt=now - timedelta(seconds=timeout_s)) | Q(heartbeat_at__isnull=True),
        status__in=[ExportStatus.QUEUED, ExportStatus.RUNNING],
    ).values_list("id", "status", "heartbeat_at", "attempts")
    out = jobs.Reaped()
    for job_id, status, heartbeat, attempts in stuck:
        # Conditional on what was read: a worker that beat or finished meanwhile keeps its job.
        row = ExportJob.objects.filter(id=job_id, status=status, heartbeat_at=heartbeat)
        if jobs.may_retry(attempts):
            if row.update(status=ExportStatus.QUEUED, written=0, heartbeat_at=now, attempts=attempts + 1):
                jobs.send_after_commit(lambda j=str(job_id): export_run.delay(j))
                out.requeued += 1
        elif row.update(status=ExportStatus.FAILED, finished_at=now,
                        error=jobs.stuck_reason(timeout_s=timeout_s, attempts=attempts, queue="exports")):
            out.failed += 1
    return out


# Beside the service it runs, so export_create enqueues it without importing a tasks module that
# imports this one back; the name predates this module (routes, messages already queued).
@shared_task(name="labeller.tasks.export_run", acks_late=True)
def export_run(export_id: str) -> None:
    """Write one export file. Claiming the job first makes a redelivered message a no-op."""
    job = export_claim(job_id=export_id)
    if job is None:
        return
    try:
        export_write(job=job)
    except Exception as exc:
        export_fail(job_id=export_id, error=f"{type(exc).__name__}: {exc}")
        raise
