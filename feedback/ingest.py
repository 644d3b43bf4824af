"""Feedback events from product backends: checked, then stored before the API answers.

A bulk post is all or nothing: one bad event refuses the whole batch with every problem listed by
its index, so a client never has to work out which half of a batch landed. Routing (review queue,
training data) happens after the commit, in a worker: the answer waits only for the insert.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core.enqueue import enqueue
from labeller.models import Project
from labeller.task_types import task_type_for
from ml import spans as span_ops

from . import review
from .models import ApiToken, FeedbackEvent, FeedbackKind, Prediction
from .process_cache import ProcessCache
from .schema import ItemSchema, Violation, check_item_data

EVENT_FIELDS = {"prediction_id", "kind", "label", "spans", "span", "end_user", "occurred_at", "data", "external_id"}
# Span projects: a correction carries the whole corrected list; span_wrong and span_missing name one.
SPAN_KINDS = {FeedbackKind.SPAN_WRONG, FeedbackKind.SPAN_MISSING}
FUTURE_SLACK = timedelta(minutes=5)
LABEL_KEYS_TTL = 2.0  # seconds another process may check corrections against a project's old labels

_label_keys: ProcessCache[frozenset[str]] = ProcessCache(LABEL_KEYS_TTL)


def label_keys_of(project: Project) -> frozenset[str]:
    """The labels a correction may give: an archived label is not offered for new labels."""
    # Keyed with the creation time too: SQLite may give a deleted project's id to a new one.
    return _label_keys.get((project.id, project.created_at),
                           lambda: frozenset(project.labels.filter(archived=False).values_list("key", flat=True)))


def forget_label_keys(project_id: int | None = None) -> None:
    _label_keys.forget(None if project_id is None else lambda key, _: key[0] == project_id)


@dataclass
class Checked:
    events: list[FeedbackEvent] = field(default_factory=list)
    errors: dict[str, list[str]] = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)

    def error(self, path: str, message: str) -> None:
        self.errors.setdefault(path, []).append(message)


def events_check(*, project: Project, events: list, token: ApiToken | None, user=None) -> Checked:
    """Turn raw event dicts into unsaved FeedbackEvents, or collect every problem by path.
    `token` or `user` (a member posting with their own credentials) is the events' source."""
    out = Checked()
    schema = ItemSchema.for_project(project)
    label_keys = label_keys_of(project)
    task_type = task_type_for(project)
    ids = {}
    for i, raw in enumerate(events):
        if isinstance(raw, dict) and isinstance(raw.get("prediction_id"), str):
            try:
                ids[i] = uuid.UUID(raw["prediction_id"])
            except ValueError:
                pass
    # One query for the whole batch; a prediction of another project is simply not found.
    fields = ("id", "version_id", "labels", "external_id") + (("data",) if task_type.spans_in_text else ())
    predictions = {p.id: p for p in Prediction.objects.filter(project=project, id__in=set(ids.values())).only(*fields)}
    now = timezone.now()
    for i, raw in enumerate(events):
        path = f"events[{i}]"
        if not isinstance(raw, dict):
            out.error(path, "must be an object")
            continue
        for name in sorted(set(raw) - EVENT_FIELDS):
            out.error(f"{path}.{name}", f"unknown field; allowed: {', '.join(sorted(EVENT_FIELDS))}")
        kind = raw.get("kind")
        if kind not in FeedbackKind.values:
            out.error(f"{path}.kind", f"must be one of {', '.join(FeedbackKind.values)}")
            kind = None  # named above; the checks below compare and hash it (a JSON object does not hash)
        label = raw.get("label")
        if task_type.spans_in_text:
            if label not in (None, ""):
                out.error(f"{path}.label", "a span project's feedback carries spans, not a label")
        elif kind in SPAN_KINDS:
            out.error(f"{path}.kind", f"'{kind}' is feedback on a span project's spans; this project labels whole items")
        elif kind == FeedbackKind.CORRECTION:
            if not isinstance(label, str) or label not in label_keys:
                out.error(f"{path}.label", "a correction needs the right label, one of the project's label keys (not an archived one)")
        elif label not in (None, ""):
            out.error(f"{path}.label", "only a correction carries a label")
        end_user = raw.get("end_user")
        if not isinstance(end_user, str) or not end_user.strip() or len(end_user) > 200:
            out.error(f"{path}.end_user", "required: the pseudonymous id of the product's user (1-200 characters)")
        occurred_at = aware_datetime(raw.get("occurred_at"))
        if occurred_at is None:
            out.error(f"{path}.occurred_at", "required: an ISO 8601 date-time with a time zone")
        elif occurred_at > now + FUTURE_SLACK:
            out.error(f"{path}.occurred_at", "is in the future")
        prediction = None
        if "prediction_id" in raw:
            prediction = predictions.get(ids.get(i))
            if prediction is None:
                out.error(f"{path}.prediction_id", "no prediction with this id in this project")
        data = raw.get("data")
        if data is not None:
            found = check_item_data(schema, data, f"{path}.data")
            out.violations.extend(found)
            for v in found:
                out.error(v.field, v.message)
        elif prediction is None and "prediction_id" not in raw:
            out.error(path, "needs a prediction_id, or the item's data")
        external_id = raw.get("external_id") or ""
        if not isinstance(external_id, str) or len(external_id) > 255:
            out.error(f"{path}.external_id", "must be a string of at most 255 characters")
            external_id = ""
        spans = None
        if task_type.spans_in_text:
            spans = _spans_check(out, path, raw, kind, prediction, data, project=project, schema=schema, labels=label_keys)
        else:
            for name in ("spans", "span"):
                if name in raw:
                    out.error(f"{path}.{name}", "only a span project's feedback carries spans")
        if out.errors:
            continue  # stop building events once the batch is refused; keep collecting errors
        out.events.append(FeedbackEvent(
            project=project, token=token, user=user, prediction=prediction, version_id=prediction.version_id if prediction else None,
            kind=kind, label=label or "", spans=spans, predicted_labels=prediction.labels if prediction else [],
            data=data, external_id=external_id or (prediction.external_id if prediction else ""),
            end_user=end_user.strip(), occurred_at=occurred_at,
        ))
    return out


def _spans_check(out: Checked, path: str, raw: dict, kind, prediction, data, *, project: Project, schema: ItemSchema,
                 labels) -> list[dict] | None:
    """A span project's event: a correction's whole list of spans ("spans"), or the one span a
    span_wrong or span_missing event names ("span"), checked against the item's text as imports
    are (inside the text, start before end, a known label, `text` the slice when given). The
    spans as stored (sorted, without text), or None after recording the problems."""
    wanted = "spans" if kind == FeedbackKind.CORRECTION else "span" if kind in SPAN_KINDS else None
    for name in sorted({"spans", "span"} - {wanted}):
        if name in raw:
            out.error(f"{path}.{name}", "a correction carries 'spans' (the whole corrected list), span_wrong and "
                                        "span_missing carry 'span' (one span), other kinds neither")
    if wanted is None:
        return None
    if wanted not in raw:
        out.error(f"{path}.{wanted}", "required: the corrected list of spans" if wanted == "spans"
                  else f"required: the span the user says is {'wrong' if kind == FeedbackKind.SPAN_WRONG else 'missing'}")
        return None
    text = data.get(schema.text_field) if isinstance(data, dict) else prediction.data.get(schema.text_field) if prediction else None
    if not isinstance(text, str):
        return None  # the item's data is refused already, or there is no item: said above
    value = raw[wanted] if wanted == "spans" else [raw[wanted]]
    if wanted == "span" and not isinstance(raw[wanted], dict):
        out.error(f"{path}.span", "must be an object with start, end and label")
        return None
    try:
        # A user's correction obeys the project's overlap rule; one span named alone cannot break it.
        spans = span_ops.check_spans(value, text, labels=labels, overlap=project.spans_overlap or wanted == "span",
                                     field=wanted)
    except span_ops.SpanError as exc:
        field = exc.field.replace("span[0]", "span", 1) if wanted == "span" else exc.field
        out.error(f"{path}.{field}", exc.message)
        return None
    if wanted == "span" and prediction is not None:
        predicted = {span_ops.span_key(s) for s in prediction.labels}
        named = span_ops.span_key(spans[0])
        if kind == FeedbackKind.SPAN_WRONG and named not in predicted:
            out.error(f"{path}.span", "is not one of the prediction's spans (same start, end and label)")
        elif kind == FeedbackKind.SPAN_MISSING and named in predicted:
            out.error(f"{path}.span", "the prediction already has this span")
    return spans


def aware_datetime(value) -> datetime | None:
    """An ISO 8601 date-time with a time zone, or None. parse_datetime raises ValueError for a
    well-formed date that cannot exist (February 30th, an offset of +25:00): that was a 500. So
    was one that exists only in its own zone (0001-01-01T00:00+01:00 is before year 1 in UTC,
    where the database stores it)."""
    if not isinstance(value, str):
        return None
    try:
        parsed = parse_datetime(value)
        return parsed.astimezone(dt_timezone.utc) if parsed is not None and parsed.tzinfo is not None else None
    except (ValueError, OverflowError):
        return None


def events_store(*, project: Project, events: list[FeedbackEvent]) -> list[FeedbackEvent]:
    """Insert the batch; the caller's transaction commits it before the API answers. Routing
    is asked for after the commit, at most once a second per project (it takes all pending)."""
    stored = FeedbackEvent.objects.bulk_create(events, batch_size=1000)
    # Robust: the events are committed, so the answer says so even if the cache or the broker is
    # down; beat's route_all_pending routes what this message did not.
    transaction.on_commit(lambda: route_soon(project.id), robust=True)
    return stored


def route_soon(project_id: int) -> None:
    if cache.add(f"feedback-route:{project_id}", 1, timeout=1):
        enqueue(review.route_feedback, project_id, countdown=settings.LABELLOOP_FEEDBACK_ROUTE_DELAY)
