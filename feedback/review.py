"""Routing stored feedback, and the expert review that settles it.

Untrusted feedback never becomes training data by itself: an event that says the model is wrong
puts the item in the expert review queue (ahead of the active-learning queue), and the expert's
label is what trains. Feedback from a trusted source becomes a training label directly. Each
expert review also scores the sources that sent feedback on the item, which gives every source a
measured reliability.
"""
from __future__ import annotations

from collections import Counter, defaultdict

from django.db import connection, transaction
from django.db.models import Count, F, Q

from labeller.agreement import item_majority
from labeller.models import Annotation, AnnotationSource, Item, Project
from ml.drift import wilson_interval

from .models import ApiToken, FeedbackEvent, FeedbackKind, FeedbackStatus
from .predicting import item_for

ROUTE_BATCH = 500


def route_pending(*, project_id: int) -> int:
    """Route the project's pending events in arrival order; returns how many were routed.
    Concurrent runs skip each other's rows on PostgreSQL (SQLite runs one writer at a time)."""
    routed = 0
    while True:
        with transaction.atomic():
            pending = FeedbackEvent.objects.filter(project_id=project_id, status=FeedbackStatus.PENDING).order_by("id")
            if connection.vendor == "postgresql":
                pending = pending.select_for_update(skip_locked=True, of=("self",))
            batch = list(pending.select_related("token", "prediction", "project")[:ROUTE_BATCH])
            if not batch:
                return routed
            for event in batch:
                _route(event)
            FeedbackEvent.objects.bulk_update(batch, ["status", "item", "expert_agrees"])
            routed += len(batch)


def _route(event: FeedbackEvent) -> None:
    trusted = event.token is not None and event.token.trusted
    if not event.disagrees and not trusted:
        event.status = FeedbackStatus.AGREES
        return
    item = _item_of(event)
    if item is None:
        event.status = FeedbackStatus.NO_ITEM
        return
    event.item = item
    expert_labels = _expert_labels(item)
    if expert_labels is not None:  # an expert already labelled it: judge the event now
        event.status, event.expert_agrees = FeedbackStatus.REVIEWED, _agrees(event, expert_labels)
        return
    if trusted and event.kind != FeedbackKind.REJECTION:
        labels = [event.label] if event.kind == FeedbackKind.CORRECTION else list(event.predicted_labels)
        Annotation.objects.create(item=item, project=event.project, annotator=None, labels=labels,
                                  source=AnnotationSource.FEEDBACK)
        Item.objects.filter(id=item.id).update(is_done=True, annotation_count=F("annotation_count") + 1)
        event.status = FeedbackStatus.TRAINING
        return
    Item.objects.filter(id=item.id).update(needs_review=True, is_done=False)
    event.status = FeedbackStatus.REVIEW


def _item_of(event: FeedbackEvent) -> Item | None:
    prediction = event.prediction
    if prediction is not None and prediction.item_id:
        return Item.objects.get(id=prediction.item_id)
    data = event.data if event.data is not None else (prediction.data if prediction else None)
    if data is None:
        return None
    item = item_for(event.project, data, event.external_id)
    if prediction is not None:
        type(prediction).objects.filter(id=prediction.id).update(item=item)
    return item


def _expert_labels(item: Item) -> list[str] | None:
    label_sets = list(Annotation.objects.filter(item=item, skipped=False).exclude(source=AnnotationSource.FEEDBACK)
                      .values_list("labels", flat=True))
    if not label_sets:
        return None
    majority, _ = item_majority(label_sets, multi_label=item.project.is_multi_label)
    return majority or None


def _agrees(event: FeedbackEvent, expert_labels: list[str]) -> bool:
    if event.kind == FeedbackKind.CORRECTION:
        return [event.label] == list(expert_labels)
    said_right = list(event.predicted_labels) == list(expert_labels)
    return said_right if event.kind == FeedbackKind.CONFIRMATION else not said_right


def review_settle(*, item: Item, labels: list[str]) -> int:
    """An expert labelled an item: close its review and score every event on it against the label.
    An edited label scores the item's reviewed events again: the expert's latest word is the one."""
    events = list(FeedbackEvent.objects.filter(item=item, status__in=[FeedbackStatus.REVIEW, FeedbackStatus.REVIEWED]))
    for event in events:
        event.status, event.expert_agrees = FeedbackStatus.REVIEWED, _agrees(event, labels)
    FeedbackEvent.objects.bulk_update(events, ["status", "expert_agrees"])
    if item.needs_review:
        Item.objects.filter(id=item.id).update(needs_review=False)
    return len(events)


def review_summary(*, item: Item) -> dict | None:
    """What the expert sees beside an item under review: the model's answer and the users' side by side."""
    events = list(FeedbackEvent.objects.filter(item=item).select_related("prediction__version", "token").order_by("id"))
    if not events:
        return None
    model = next((e.prediction for e in reversed(events) if e.prediction is not None), None)
    users: dict[str, set] = defaultdict(set)
    for e in events:
        said = e.label if e.kind == FeedbackKind.CORRECTION else ("(the prediction is right)" if e.kind == FeedbackKind.CONFIRMATION
                                                                    else "(the prediction is wrong)")
        users[said].add(e.end_user)
    reliability = source_reliability(project=item.project)
    return {
        "model": {"labels": model.labels, "confidence": model.confidence, "version": model.version.number} if model else None,
        "users": sorted(({"says": said, "users": len(ids)} for said, ids in users.items()), key=lambda u: -u["users"]),
        "sources": sorted({e.token.name for e in events if e.token}),
        "source_reliability": {r["name"]: r["reliability"] for r in reliability if r["name"] in {e.token.name for e in events if e.token}},
        "events": len(events),
    }


def source_reliability(*, project: Project) -> list[dict]:
    """Per feedback source: how often experts agreed with it when they reviewed, with a 95% interval."""
    rows = (ApiToken.objects.filter(project=project)
            .annotate(reviewed=Count("events", filter=Q(events__expert_agrees__isnull=False)),
                      agreed=Count("events", filter=Q(events__expert_agrees=True)),
                      total=Count("events"))
            .order_by("id"))
    out = []
    for token in rows:
        interval = wilson_interval(token.agreed, token.reviewed)
        out.append({"token": token.prefix, "name": token.name, "trusted": token.trusted, "events": token.total,
                    "reviewed": token.reviewed, "agreed": token.agreed,
                    "reliability": round(token.agreed / token.reviewed, 3) if token.reviewed else None,
                    "interval": [round(x, 3) for x in interval] if interval else None})
    return out


def review_counts(*, project: Project) -> Counter:
    return Counter(dict(FeedbackEvent.objects.filter(project=project).values_list("status").annotate(n=Count("id"))))
