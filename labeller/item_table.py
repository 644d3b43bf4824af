"""The data manager's table: a project's items filtered on any column, sorted, searched, paged
by keyset and counted, at a million items.

Every filter and sort reads a column of Item (the denormalised ones are kept by the services that
change what they summarise) and walks one of the `item_table_*` indexes; nothing joins and
aggregates annotations or the prediction log per row. Pages are keyset pages: the cursor is the
last row's (sort value, id), so page 500 costs what page 1 costs and rows inserted meanwhile
neither repeat nor vanish. A nullable sort column lists its values first, then the rows without
one (by id), in both directions, each half an index range.
"""
from __future__ import annotations

import base64
import binascii
import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import BooleanField, Exists, OuterRef, Prefetch, Q, QuerySet, prefetch_related_objects
from django.db.models.expressions import RawSQL
from django.db.models.functions import Substr
from django.utils.dateparse import parse_datetime

from core.errors import DomainError

from .models import DISAGREES, Annotation, Item, Project, TaskType
from .selectors import items_with_status
from .task_types import task_type_for

# Sortable columns: name -> nullable? ("id" is the default and the tie-breaker of every sort.)
SORTS = {"id": False, "created_at": False, "labelled_at": True, "confidence": True, "agreement": True}
SORT_CHOICES = [prefix + name for name in SORTS for prefix in ("", "-")]
DATETIME_SORTS = {"created_at", "labelled_at"}

# Counting stops here: up to it the count is exact, past it (on PostgreSQL) the planner's estimate.
EXACT_COUNT_UP_TO = 10_000
TEXT_PREVIEW = 300
WORD = re.compile(r"\w+", re.UNICODE)


def _has_label(column: str, key: str, *, multi_label: bool) -> Q:
    """The column (label_keys_cell: sorted keys joined by '|') holds `key`."""
    exact = Q(**{column: key})
    if not multi_label:
        return exact  # one key per cell: an equality the (project, column, id) index serves
    return (exact | Q(**{f"{column}__startswith": f"{key}|"}) | Q(**{f"{column}__endswith": f"|{key}"})
            | Q(**{f"{column}__contains": f"|{key}|"}))


def search_condition(q: str):
    """A filter keeping the items whose text holds every word of `q` (the full-text index of
    labeller.search_index), or None when `q` has no word."""
    words = WORD.findall(q)
    if not words:
        return None
    if connection.vendor == "postgresql":
        # The same expression as item_search_idx, so the GIN index answers it.
        return RawSQL("to_tsvector('simple', \"labeller_item\".\"search_text\") @@ plainto_tsquery('simple', %s)",
                      [" ".join(words)], output_field=BooleanField())
    # FTS5 query syntax from user input: each word quoted (a phrase of one), all of them required.
    match = " ".join('"' + word.replace('"', '""') + '"' for word in words)
    return Q(id__in=RawSQL("SELECT rowid FROM labeller_item_fts WHERE labeller_item_fts MATCH %s", [match]))


def items_table_filter(*, project: Project, filters: dict) -> QuerySet[Item]:
    """The project's items that every given filter keeps (validated values; absent or None
    means no filter). Names: status, label, predicted, annotator, agreement_min, agreement_max,
    confidence_min, confidence_max, disagrees, is_eval, needs_review, likely_mislabelled, source, created_after,
    created_before, labelled_after, labelled_before, q, ids."""
    items = items_with_status(Item.objects.filter(project=project), status=filters.get("status") or "all")
    # Cells that may hold several keys: multi-label answers, and the labels of a span majority.
    multi = project.task_type in (TaskType.MULTI_LABEL, TaskType.SPANS)
    get = filters.get
    if get("label"):
        items = items.filter(_has_label("majority", get("label"), multi_label=multi))
    if get("predicted"):
        items = items.filter(_has_label("predicted", get("predicted"), multi_label=multi))
    if get("annotator") is not None:
        items = items.filter(Exists(Annotation.objects.filter(item=OuterRef("pk"), annotator_id=get("annotator"),
                                                              skipped=False)))
    ranges = {"agreement_min": "agreement__gte", "agreement_max": "agreement__lte",
              "confidence_min": "confidence__gte", "confidence_max": "confidence__lte",
              "created_after": "created_at__gte", "created_before": "created_at__lt",
              "labelled_after": "labelled_at__gte", "labelled_before": "labelled_at__lt"}
    for name, lookup in ranges.items():
        if get(name) is not None:
            items = items.filter(**{lookup: get(name)})
    if get("disagrees") is not None:
        items = items.filter(DISAGREES if get("disagrees") else ~DISAGREES)
    for flag in ("is_eval", "needs_review", "likely_mislabelled"):
        if get(flag) is not None:
            items = items.filter(**{flag: get(flag)})
    if get("source"):
        items = items.filter(source=get("source"))
    if get("q"):
        condition = search_condition(get("q"))
        if condition is not None:
            items = items.filter(condition)
    if get("ids") is not None:
        items = items.filter(id__in=get("ids"))
    return items


DATETIME_FILTERS = ("created_after", "created_before", "labelled_after", "labelled_before")


def filters_to_json(filters: dict) -> dict:
    """Validated filters as JSON (an export job keeps them): date-times as ISO 8601."""
    return {name: value.isoformat() if isinstance(value, datetime) else value
            for name, value in filters.items() if value is not None}


def filters_from_json(stored: dict) -> dict:
    return {name: parse_datetime(value) if name in DATETIME_FILTERS else value for name, value in stored.items()}


@dataclass
class TablePage:
    rows: list[Item]
    next_cursor: str | None
    sort: str  # the order the rows are in (effective_sort)


def _encode(sort: str, phase: str, value, item_id: int) -> str:
    if isinstance(value, datetime):
        value = value.isoformat()
    raw = json.dumps({"s": sort, "p": phase, "v": value, "i": item_id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def cursor_decode(cursor: str, *, sort: str) -> tuple[str, object, int]:
    """(phase, value, id) of an opaque cursor made for `sort`; DomainError naming `cursor` else."""
    bad = DomainError("is not a cursor this table gave for this sort; start again from the first page", field="cursor")
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise bad from None
    if not isinstance(decoded, dict) or decoded.get("s") != sort or decoded.get("p") not in ("v", "n"):
        raise bad
    item_id, value, phase = decoded.get("i"), decoded.get("v"), decoded["p"]
    if not isinstance(item_id, int) or isinstance(item_id, bool) or not 0 <= item_id < 2**63:
        raise bad
    column = sort.lstrip("-")
    if phase == "n":
        if value is not None or not SORTS[column]:
            raise bad
    elif column in DATETIME_SORTS:
        value = parse_datetime(value) if isinstance(value, str) else None
        if value is None or value.tzinfo is None:
            raise bad
    elif column in ("confidence", "agreement"):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise bad
    elif column == "id" and value != item_id:
        raise bad
    return phase, value, item_id


def _after(items: QuerySet[Item], column: str, descending: bool, value, item_id: int) -> QuerySet[Item]:
    """Rows after (value, id) in (column, id) order: a row comparison, which both databases
    answer as a range of the (project, column, id) index."""
    op = "<" if descending else ">"
    if column == "id":
        return items.filter(**{"id__lt" if descending else "id__gt": item_id})
    if column in DATETIME_SORTS:
        value = connection.ops.adapt_datetimefield_value(value)  # as the column stores it (SQLite: text)
    return items.extra(where=[f'("labeller_item"."{column}", "labeller_item"."id") {op} (%s, %s)'], params=[value, item_id])


# A date-range filter with import order reads in the filtered date's order instead. Import order
# and creation time go together, so the planner's uniform guess sends it down the primary key,
# past every row older than the range (a million-row scan for "created in the last week"); the
# (project, date, id) index finds the range at once.
DATE_FILTER_COLUMNS = {"created_after": "created_at", "created_before": "created_at",
                       "labelled_after": "labelled_at", "labelled_before": "labelled_at"}


def effective_sort(sort: str, filters: dict) -> str:
    if sort.lstrip("-") != "id":
        return sort
    for name, column in DATE_FILTER_COLUMNS.items():
        if filters.get(name) is not None:
            return f"-{column}" if sort.startswith("-") else column
    return sort


def items_table_page(*, project: Project, filters: dict, sort: str = "id", cursor: str | None = None,
                     limit: int = 50) -> TablePage:
    """One page of the filtered items in `sort` order (a SORT_CHOICES value; see effective_sort
    for import order under a date filter), after `cursor`."""
    if sort not in SORT_CHOICES:
        raise DomainError(f"must be one of {', '.join(SORT_CHOICES)}", field="sort")
    sort = effective_sort(sort, filters)
    column, descending = sort.lstrip("-"), sort.startswith("-")
    phase, value, after_id = cursor_decode(cursor, sort=sort) if cursor else ("v", None, None)
    items = items_table_filter(project=project, filters=filters)
    id_order = "-id" if descending else "id"
    rows: list[Item] = []
    if phase == "v":
        valued = items.filter(**{f"{column}__isnull": False}) if SORTS[column] else items
        if after_id is not None:
            valued = _after(valued, column, descending, value, after_id)
        order = [f"-{column}" if descending else column, id_order] if column != "id" else [id_order]
        rows = list(_columns(valued.order_by(*order))[:limit + 1])
    if SORTS[column] and len(rows) <= limit:
        # The rows without a value, after the valued ones, by id.
        empty = items.filter(**{f"{column}__isnull": True})
        if phase == "n":
            empty = _after(empty, "id", descending, None, after_id)
        rows += list(_columns(empty.order_by(id_order))[:limit + 1 - len(rows)])
    more = len(rows) > limit
    rows = rows[:limit]
    _prefetch_annotations(rows)
    next_cursor = None
    if more:
        last = rows[-1]
        last_value = getattr(last, column)
        next_cursor = _encode(sort, "v" if last_value is not None else "n", last_value, last.id)
    return TablePage(rows=rows, next_cursor=next_cursor, sort=sort)


def _columns(items: QuerySet[Item]) -> QuerySet[Item]:
    # Never `data`: it may be large. The text column is the start of the searchable text.
    return items.only("id", "project_id", "external_id", "annotation_count", "is_done", "is_eval", "needs_review",
                      "source", "majority", "agreement", "predicted", "confidence", "created_at", "labelled_at",
                      "likely_mislabelled", "label_error").annotate(text_preview=Substr("search_text", 1, TEXT_PREVIEW))


def _prefetch_annotations(rows: list[Item]) -> None:
    """Each row's submitted annotations with their annotators: one query for the page."""
    annotations = (Annotation.objects.filter(skipped=False).select_related("annotator").order_by("id")
                   .only("id", "item_id", "labels", "source", "annotator__username"))
    prefetch_related_objects(rows, Prefetch("annotations", queryset=annotations, to_attr="submitted"))


@dataclass
class TableCount:
    value: int
    exact: bool

    @property
    def text(self) -> str:
        if self.exact:
            return f"{self.value:,}"
        if self.value <= EXACT_COUNT_UP_TO + 1:  # the planner guessed below what was counted
            return f"more than {EXACT_COUNT_UP_TO:,}"
        return f"about {self.value:,}"

    def as_dict(self) -> dict:
        return {"value": self.value, "exact": self.exact, "text": self.text}


def items_table_count(*, project: Project, filters: dict) -> TableCount:
    """How many items the filters keep: exact up to EXACT_COUNT_UP_TO (a count that stops
    there), past it PostgreSQL's planner estimate, marked as such. SQLite has no estimate to give,
    so there it counts them all (milliseconds at the sizes SQLite is meant for)."""
    items = items_table_filter(project=project, filters=filters).order_by()
    if connection.vendor != "postgresql":
        return TableCount(items.count(), exact=True)
    bounded = items.values("id")[:EXACT_COUNT_UP_TO + 1].count()
    if bounded <= EXACT_COUNT_UP_TO:
        return TableCount(bounded, exact=True)
    return TableCount(max(_planner_estimate(items), EXACT_COUNT_UP_TO + 1), exact=False)


def _planner_estimate(items: QuerySet[Item]) -> int:
    sql, params = items.values("id").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


def explain(items: QuerySet) -> str:
    """The plan of a queryset (benchmarks print it)."""
    return items.explain(analyze=True) if connection.vendor == "postgresql" else items.explain()


def majority_span_counts(project: Project, annotations: list[Annotation]) -> dict[str, int] | None:
    """For a span project, how many spans of each label the item's majority has (the `majority`
    column holds only which labels): from the page's prefetched annotations, 50 rows at most, so
    nothing is stored for it. None for other task types."""
    if project.task_type != TaskType.SPANS:
        return None
    label_sets = [a.labels for a in annotations]
    majority = task_type_for(project).majority(label_sets)[0] if label_sets else []
    return dict(sorted(Counter(span["label"] for span in majority).items()))


def _likely_mislabelled(item: Item) -> dict | None:
    """A flagged item's verdict as the column shows it, with its evidence: the given label, the
    suggested one, how sure the model was of the given one, the most similar labelled items with
    their labels, and what flagged it: confident learning, or the second opinion of a head fitted
    on the settled items with its probability (active_learning.label_errors)."""
    if not item.likely_mislabelled or not item.label_error:
        return None
    verdict = item.label_error
    return {"given": verdict.get("given", []), "suggested": verdict.get("suggested", []),
            "self_confidence": verdict.get("self_confidence"), "similar": verdict.get("similar", []),
            "by": verdict.get("by", "confident_learning"), "second_opinion": verdict.get("second_opinion")}


def item_row(item: Item, *, project: Project | None = None) -> dict:
    """A row of the table as the API answers it (`project`: the items' project, for span counts)."""
    annotations = getattr(item, "submitted", [])
    return {
        "id": item.id,
        "external_id": item.external_id,
        "text": item.text_preview,
        "status": "done" if item.is_done else ("in progress" if item.annotation_count else "unlabelled"),
        "annotations": [{"annotator": a.annotator.username if a.annotator else None, "source": a.source,
                         "labels": a.labels} for a in annotations],
        "majority": item.majority.split("|") if item.majority else [],
        "agreement": item.agreement,
        "predicted": item.predicted.split("|") if item.predicted else [],
        "confidence": item.confidence,
        "disagrees": bool(item.majority and item.predicted and item.majority != item.predicted),
        "is_eval": item.is_eval,
        "needs_review": item.needs_review,
        "likely_mislabelled": _likely_mislabelled(item),
        "source": item.source,
        "created_at": item.created_at,
        "labelled_at": item.labelled_at,
        "url": f"/projects/{item.project_id}/items/{item.id}",
        "spans": majority_span_counts(project, annotations) if project is not None else None,
    }
