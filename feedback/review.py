"""Routing stored feedback, and the expert review that settles it.

Untrusted feedback never becomes training data by itself: an event that says the model is wrong
puts the item in the expert review queue (ahead of the active-learning queue), and the expert's
label is what trains. Feedback from a trusted source becomes a training label directly. Each
expert review also scores the sources that sent feedback on the item, which gives every source a
measured reliability.
"""
from __future__ import annotations

import logging
from collections import Counter, defaultdict

from celery import shared_task
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Max, Q

from labeller.consensus import Resolver, answer_key
from labeller.models import Annotation, AnnotationSource, Item, ItemSource, LabelReliability, Project
from labeller.services import items_label_summary_refresh
from labeller.task_types import Decision, task_type_for
from ml.drift import wilson_interval

from .models import SAYS_WRONG, ApiToken, FeedbackEvent, FeedbackKind, FeedbackStatus, Prediction
from .predicting import items_for, items_note_predictions

ROUTE_BATCH = 500
log = logging.getLogger(__name__)


def route_pending(*, project_id: int) -> int:
    """Route the project's pending events in arrival order, ROUTE_BATCH at a time, in a few
    queries per batch; returns how many were routed. Concurrent runs skip each other's rows on
    PostgreSQL (SQLite runs one writer at a time).

    A batch that fails is rolled back and its events are routed one at a time instead: an event
    that fails on its own is set aside (status failed, with the reason) and the others route, so
    one bad event never blocks its project's routing for good."""
    project = Project.objects.get(id=project_id)
    routed = 0
    while True:
        try:
            with transaction.atomic():
                batch = _lock_pending(project_id, ROUTE_BATCH)
                if not batch:
                    return routed
                _route_and_save(project, batch)
                routed += len(batch)
        except Exception:
            log.exception("routing a batch of project %s's feedback failed; routing it event by event", project_id)
            routed += _route_each(project, ROUTE_BATCH)


def _lock_pending(project_id: int, limit: int, **only) -> list[FeedbackEvent]:
    pending = FeedbackEvent.objects.filter(project_id=project_id, status=FeedbackStatus.PENDING, **only).order_by("id")
    if connection.vendor == "postgresql":
        pending = pending.select_for_update(skip_locked=True, of=("self",))
    return list(pending.select_related("token", "prediction")[:limit])


def _route_and_save(project: Project, batch: list[FeedbackEvent]) -> None:
    _route_batch(project, batch)
    FeedbackEvent.objects.bulk_update(batch, ["status", "item", "expert_agrees"])


def _route_each(project: Project, limit: int) -> int:
    """Route the next `limit` pending events one transaction each; set aside those that fail."""
    routed = 0
    ids = FeedbackEvent.objects.filter(project=project, status=FeedbackStatus.PENDING).order_by("id")
    for event_id in list(ids.values_list("id", flat=True)[:limit]):
        try:
            with transaction.atomic():
                event = _lock_pending(project.id, 1, id=event_id)
                if event:
                    _route_and_save(project, event)
                    routed += 1
        except Exception as exc:
            log.exception("feedback event %s could not be routed; set aside", event_id)
            FeedbackEvent.objects.filter(id=event_id, status=FeedbackStatus.PENDING).update(
                status=FeedbackStatus.FAILED, route_error=f"{type(exc).__name__}: {exc}"[:2000])
    return routed


def _route_batch(project: Project, events: list[FeedbackEvent]) -> None:
    """Agreeing untrusted feedback is only a monitoring signal; the rest is judged against the
    experts' label where there is one, becomes training data from a trusted source, and otherwise
    puts the item under review. A span_wrong or span_missing event names one span, not the whole
    answer: even from a trusted source it goes to review."""
    task_type = task_type_for(project)
    demoted = sources_demoted(project=project) if any(_trusted(e) for e in events) else set()

    def trusted(event):
        return _trusted(event) and _source_key(event) not in demoted

    to_route = []
    for event in events:
        if event.disagrees(task_type) or trusted(event):
            to_route.append(event)
        else:
            event.status = FeedbackStatus.AGREES
    items = _items_of(project, to_route)
    expert_labels = _expert_labels(project, {item.id for item in items.values()})
    feedback_labels, review = [], set()
    for event in to_route:
        item = items.get(event.id)
        if item is None:
            event.status = FeedbackStatus.NO_ITEM
            continue
        event.item = item
        if item.id in expert_labels:  # an expert already labelled it: judge the event now
            event.status, event.expert_agrees = FeedbackStatus.REVIEWED, _agrees(event, expert_labels[item.id], task_type)
        elif trusted(event) and event.kind not in SAYS_WRONG:
            labels = (event.corrected() if event.kind == FeedbackKind.CORRECTION
                      else task_type.from_prediction(event.predicted_labels))
            feedback_labels.append(Annotation(item=item, project=project, annotator=None, labels=labels,
                                              source=AnnotationSource.FEEDBACK))
            event.status = FeedbackStatus.TRAINING
        else:
            review.add(item.id)
            event.status = FeedbackStatus.REVIEW
    if feedback_labels:
        Annotation.objects.bulk_create(feedback_labels)
        for item_id, n in Counter(a.item_id for a in feedback_labels).items():
            Item.objects.filter(id=item_id).update(is_done=True, annotation_count=F("annotation_count") + n)
        items_label_summary_refresh(project=project, item_ids=list({a.item_id for a in feedback_labels}))
    if review:
        Item.objects.filter(id__in=review).update(needs_review=True, is_done=False)


def _trusted(event: FeedbackEvent) -> bool:
    return event.token is not None and event.token.trusted


def _source_key(event: FeedbackEvent) -> str:
    """A source as source_reliability keys it: its token's prefix, or "<username> (member)"."""
    if event.token_id:
        return event.token.prefix
    return f"{event.user.username} (member)" if event.user_id else "unknown"


def _claim_probability(event: FeedbackEvent, consensus: list, confidence: float | None, n_classes: int,
                       task_type) -> float:
    """How likely what the event said is true under the item's consensus posterior: the consensus
    label's posterior `confidence`, the rest spread evenly over the other labels (one-coin
    Dawid–Skene's view of an item). Without a posterior (the majority rule; multi-label and span
    projects), whether the consensus agrees with the event, 1 or 0."""
    agrees = _agrees(event, consensus, task_type)
    if confidence is None or n_classes < 2:
        return float(agrees)
    other = (1.0 - confidence) / (n_classes - 1)
    if event.kind in SAYS_WRONG:  # "the prediction is wrong": true unless the prediction is the right label
        return 1.0 - (other if agrees else confidence)
    return confidence if agrees else other


def source_estimates(*, project: Project) -> dict[str, dict]:
    """{source key: {"accuracy", "basis"}}: each feedback source's accuracy on the same footing as
    an annotator's (labeller.consensus). For every event an expert judged, the probability that
    what it said is true under the item's consensus of the experts' labels (their Dawid–Skene
    posterior once the project has a fitted estimate); a source's accuracy is the mean over its
    judged events (the M step of one-coin Dawid–Skene, the source itself not voting: product
    feedback never moves the experts' consensus). `basis`: its judged events. Cached until the
    estimate is refitted or another event is judged."""
    from django.core.cache import cache

    judged = FeedbackEvent.objects.filter(project=project, expert_agrees__isnull=False, item__isnull=False)
    fitted = LabelReliability.objects.filter(project=project).values_list("computed_at", flat=True).first()
    seen = judged.aggregate(n=Count("id"), last=Max("id"))
    # Keyed with the project's creation time too: SQLite may give a deleted project's id to a new one.
    key = (f"source-estimates:{project.id}:{project.created_at.timestamp()}:{fitted.timestamp() if fitted else 0}:"
           f"{seen['n']}:{seen['last']}")
    cached = cache.get(key)
    if cached is not None:
        return cached
    events = list(judged.select_related("token", "user").order_by("item_id", "id"))
    answers = defaultdict(list)
    for item_id, who, source, labels in (Annotation.objects.filter(item_id__in={e.item_id for e in events}, skipped=False)
                                         .exclude(source=AnnotationSource.FEEDBACK).order_by("item_id", "id")
                                         .values_list("item_id", "annotator_id", "source", "labels")):
        answers[item_id].append((answer_key(who, source), labels))
    resolver = Resolver(project, preload=True)
    task_type = task_type_for(project)
    n_classes = len(resolver.estimate.classes) if resolver.estimate is not None else 0
    consensus = {item_id: resolver.resolve(rows, item_id=item_id) for item_id, rows in answers.items()}
    totals: dict[str, list[float]] = defaultdict(list)
    for event in events:
        resolved = consensus.get(event.item_id)
        if resolved is None or not resolved.labels and not task_type.spans_in_text:
            continue
        totals[_source_key(event)].append(
            _claim_probability(event, resolved.labels, resolved.confidence, n_classes, task_type))
    out = {source: {"accuracy": round(sum(p) / len(p), 3), "basis": len(p)} for source, p in totals.items()}
    cache.set(key, out, timeout=300)
    return out


def sources_demoted(*, project: Project) -> set[str]:
    """Trusted sources whose feedback goes to review like an untrusted one's: the estimator puts
    their accuracy below LABELLOOP_TRUSTED_SOURCE_MIN_ACCURACY on at least
    LABELLOOP_TRUSTED_SOURCE_MIN_BASIS judged events."""
    return {source for source, e in source_estimates(project=project).items()
            if e["basis"] >= settings.LABELLOOP_TRUSTED_SOURCE_MIN_BASIS
            and e["accuracy"] < settings.LABELLOOP_TRUSTED_SOURCE_MIN_ACCURACY}


def _items_of(project: Project, events: list[FeedbackEvent]) -> dict[int, Item]:
    """{event id: item}: the item its prediction already has, else one item per prediction (several
    events on one prediction share it) or per event carrying data; None without any data."""
    known_ids = {e.prediction.item_id for e in events if e.prediction is not None and e.prediction.item_id}
    prediction_ids = {e.prediction_id for e in events if e.prediction is not None and not e.prediction.item_id}
    if prediction_ids:
        # Lock them so that a concurrent router waits, then sees the item this one gives them.
        rows = Prediction.objects.select_for_update().filter(id__in=prediction_ids).values_list("id", "item_id")
        claimed = {pid: item_id for pid, item_id in rows}
        known_ids |= {item_id for item_id in claimed.values() if item_id}
    else:
        claimed = {}
    known = Item.objects.in_bulk(known_ids)
    wanted: dict[object, tuple[dict, str]] = {}  # one new item per prediction, or per event without one
    for e in events:
        if e.prediction is not None and (e.prediction.item_id or claimed.get(e.prediction_id)):
            continue
        data = e.data if e.data is not None else (e.prediction.data if e.prediction else None)
        if data is not None:
            wanted.setdefault(e.prediction_id or ("event", e.id), (data, e.external_id))
    created = dict(zip(wanted, items_for(project, list(wanted.values()), source=ItemSource.FEEDBACK)))
    linked = []
    for pid, item in created.items():
        if not isinstance(pid, tuple):
            Prediction.objects.filter(id=pid).update(item=item)
            prediction = next(e.prediction for e in events if e.prediction_id == pid)
            linked.append(Prediction(item_id=item.id, labels=prediction.labels, confidence=prediction.confidence))
    items_note_predictions(linked, task_type_for(project))
    out = {}
    for e in events:
        item_id = (e.prediction.item_id or claimed.get(e.prediction_id)) if e.prediction is not None else None
        item = known.get(item_id) if item_id else created.get(e.prediction_id or ("event", e.id))
        if item is not None:
            out[e.id] = item
    return out


def _expert_labels(project: Project, item_ids: set[int]) -> dict[int, list[str]]:
    """{item id: the experts' consensus label(s)} for the items experts labelled (labeller.consensus,
    over the experts' and imported labels: feedback never judges feedback)."""
    answers = defaultdict(list)
    for item_id, who, source, labels in (Annotation.objects.filter(item_id__in=item_ids, skipped=False)
                                         .exclude(source=AnnotationSource.FEEDBACK).order_by("item_id", "id")
                                         .values_list("item_id", "annotator_id", "source", "labels")):
        answers[item_id].append((answer_key(who, source), labels))
    resolver = Resolver(project)
    out = {}
    for item_id, rows in answers.items():
        majority = resolver.resolve(rows, item_id=item_id).labels
        if majority:
            out[item_id] = majority
    return out


def _agrees(event: FeedbackEvent, expert_labels: list, task_type) -> bool:
    """Did the expert's value agree with what the event said? A span event names one span: the
    expert agrees with span_wrong when they left it out, with span_missing when they kept it."""
    expert = task_type.canonical(expert_labels)
    if event.kind == FeedbackKind.CORRECTION:
        return task_type.canonical(event.corrected()) == expert
    if event.kind in (FeedbackKind.SPAN_WRONG, FeedbackKind.SPAN_MISSING):
        named = task_type.canonical(event.spans)[0] in expert
        return named if event.kind == FeedbackKind.SPAN_MISSING else not named
    said_right = task_type.canonical(event.predicted_labels) == expert
    return said_right if event.kind == FeedbackKind.CONFIRMATION else not said_right


def review_settle(*, item: Item, labels: list[str]) -> int:
    """An expert labelled an item: close its review and score every event on it against the label.
    An edited label scores the item's reviewed events again: the expert's latest word is the one."""
    events = list(FeedbackEvent.objects.filter(item=item, status__in=[FeedbackStatus.REVIEW, FeedbackStatus.REVIEWED]))
    task_type = task_type_for(item.project)
    for event in events:
        event.status, event.expert_agrees = FeedbackStatus.REVIEWED, _agrees(event, labels, task_type)
    FeedbackEvent.objects.bulk_update(events, ["status", "expert_agrees"])
    if item.needs_review:
        Item.objects.filter(id=item.id).update(needs_review=False)
    return len(events)


def review_summary(*, item: Item) -> dict | None:
    """What the expert sees beside an item under review: the model's answer and the users' side by
    side, with each group of users' past agreement with experts and each source's reliability."""
    events = list(FeedbackEvent.objects.filter(item=item).select_related("prediction__version", "token", "user")
                  .order_by("id"))
    if not events:
        return None
    model = next((e.prediction for e in reversed(events) if e.prediction is not None), None)
    task_type = task_type_for(item.project)
    text = item.text() if task_type.spans_in_text else ""
    users: dict[str, set] = defaultdict(set)
    shown: dict[str, dict] = {}  # span projects: each group's kind and spans, to highlight in the text
    for e in events:
        if e.spans is not None and task_type.spans_in_text:
            said, shown_spans = _span_says(e, task_type, text)
            shown[said] = {"kind": e.kind, "spans": shown_spans}
        else:
            said = e.label if e.kind == FeedbackKind.CORRECTION else (
                "(the prediction is right)" if e.kind == FeedbackKind.CONFIRMATION else "(the prediction is wrong)")
        users[said].add(e.end_user)
    records = end_user_records(project=item.project, end_users={e.end_user for e in events})
    sources = sorted({e.source_name for e in events})
    # Each source's accuracy under the consensus estimator where it has judged events, as the
    # trusted/untrusted decision reads it; else its raw agreement with experts.
    reliability = {r["name"]: r["estimated_accuracy"] if r["estimated_accuracy"] is not None else r["reliability"]
                   for r in source_reliability(project=item.project) if r["name"] in sources}
    groups = []
    for said, ids in users.items():
        reviewed = sum(records.get(u, (0, 0))[0] for u in ids)
        agreed = sum(records.get(u, (0, 0))[1] for u in ids)
        groups.append({"says": said, **shown.get(said, {}), "users": len(ids), "track_record": {
            "reviewed": reviewed, "agreed": agreed, "reliability": round(agreed / reviewed, 3) if reviewed else None}})
    return {
        "model": {"labels": model.labels, "confidence": model.confidence, "version": model.version.number,
                  **task_type.served(Decision(model.labels, model.confidence, model.top))} if model else None,
        "users": sorted(groups, key=lambda u: -u["users"]),
        "sources": sources,
        "source_reliability": reliability,
        "events": len(events),
    }


def _span_says(event: FeedbackEvent, task_type, text: str) -> tuple[str, list[dict]]:
    """A span event as the review shows it: one line ("Obama (PER), London (LOC)"; "wrong: …",
    "missing: …") that groups the users who said the same, and its spans with their text."""
    spans = task_type.exported(event.spans, text=text)
    line = ", ".join(f"{s['text']} ({s['label']})" for s in spans) or "(no entities)"
    prefix = {FeedbackKind.SPAN_WRONG: "wrong: ", FeedbackKind.SPAN_MISSING: "missing: "}.get(event.kind, "")
    return prefix + line, spans


def end_user_records(*, project: Project, end_users: set[str]) -> dict[str, tuple[int, int]]:
    """{end user: (events experts reviewed, of which they agreed with)} over the project's history."""
    rows = (FeedbackEvent.objects.filter(project=project, end_user__in=end_users, expert_agrees__isnull=False)
            .values("end_user").annotate(reviewed=Count("id"), agreed=Count("id", filter=Q(expert_agrees=True))))
    return {r["end_user"]: (r["reviewed"], r["agreed"]) for r in rows}


def source_reliability(*, project: Project) -> list[dict]:
    """Per feedback source (each project token, and each member who posted feedback themselves):
    how often experts agreed with it when they reviewed, with a 95% interval; its accuracy under
    the consensus estimator (source_estimates) and whether that demotes a trusted source."""
    counts = dict(reviewed=Count("events", filter=Q(events__expert_agrees__isnull=False)),
                  agreed=Count("events", filter=Q(events__expert_agrees=True)), total=Count("events"))
    rows = [{"token": t.prefix, "name": t.name, "trusted": t.trusted, "events": t.total, "reviewed": t.reviewed,
             "agreed": t.agreed} for t in ApiToken.objects.filter(project=project).annotate(**counts).order_by("id")]
    members = (FeedbackEvent.objects.filter(project=project, user__isnull=False).values("user__username")
               .annotate(total=Count("id"), reviewed=Count("id", filter=Q(expert_agrees__isnull=False)),
                         agreed=Count("id", filter=Q(expert_agrees=True))).order_by("user__username"))
    rows += [{"token": None, "name": f"{m['user__username']} (member)", "trusted": False, "events": m["total"],
              "reviewed": m["reviewed"], "agreed": m["agreed"]} for m in members]
    estimates = source_estimates(project=project)
    demoted = sources_demoted(project=project)
    for row in rows:
        estimate = estimates.get(row["token"] or row["name"], {})
        row["estimated_accuracy"], row["estimate_basis"] = estimate.get("accuracy"), estimate.get("basis", 0)
        row["demoted"] = bool(row["trusted"] and (row["token"] or row["name"]) in demoted)
        interval = wilson_interval(row["agreed"], row["reviewed"])
        row["reliability"] = round(row["agreed"] / row["reviewed"], 3) if row["reviewed"] else None
        row["interval"] = [round(x, 3) for x in interval] if interval else None
    return rows


def review_counts(*, project: Project) -> Counter:
    return Counter(dict(FeedbackEvent.objects.filter(project=project).values_list("status").annotate(n=Count("id"))))


# Beside the service it runs, so ingest enqueues it without a tasks module importing it back; the
# name predates this module (routes, messages already queued).
@shared_task(name="feedback.tasks.route_feedback", acks_late=True)
def route_feedback(project_id: int) -> int:
    return route_pending(project_id=project_id)
