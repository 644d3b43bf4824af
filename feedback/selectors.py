"""Reads of the feedback app for the API: the monitoring overview and the review queue."""
from __future__ import annotations

from django.db.models import Count, Q

from core.errors import NotFound
from labeller.models import Item, Project

from . import monitoring, predicting, review
from .models import Alert, FeedbackEvent, FeedbackKind, FeedbackStatus, MonitoringPoint, SchemaViolation

MONITORING_POINTS = 500
MONITORING_ALERTS = 100
MONITORING_VIOLATIONS = 200
REVIEW_ITEMS = 50


def monitoring_overview(*, project: Project, period: str) -> dict:
    """The newest points of `period` (oldest first), alerts, schema violations, source reliability
    and the alert thresholds in force; model rows, for the API's serializers to shape."""
    points = (MonitoringPoint.objects.filter(project=project, period=period).select_related("version")
              .order_by("-start")[:MONITORING_POINTS])
    violations = (SchemaViolation.objects.filter(project=project).select_related("token")
                  .order_by("-day", "-count")[:MONITORING_VIOLATIONS])
    return {
        "points": list(reversed(list(points))),
        "alerts": Alert.objects.filter(project=project).select_related("version")[:MONITORING_ALERTS],
        "schema_violations": [{"day": v.day, "source": v.token.name if v.token else v.source, "endpoint": v.endpoint,
                               "field": v.field, "problem": v.problem, "count": v.count} for v in violations],
        "source_reliability": review.source_reliability(project=project),
        "thresholds": monitoring.thresholds_for(predicting.serving_policy_for(project)),
    }


def review_queue(*, project: Project) -> dict:
    """The open items that feedback sent for review (the first REVIEW_ITEMS), with their count."""
    waiting = Item.objects.filter(project=project, needs_review=True, is_done=False)
    return {
        "count": waiting.count(),
        "items": [{"id": item.id, "external_id": item.external_id, "text": item.text(),
                   "review": review.review_summary(item=item)} for item in waiting.order_by("id")[:REVIEW_ITEMS]],
    }


def review_item_get(*, project: Project, item_id: int) -> dict:
    item = Item.objects.filter(project=project, id=item_id).first()
    if item is None:
        raise NotFound("No such item in this project.")
    return {"item": item.id, "needs_review": item.needs_review, "review": review.review_summary(item=item)}


def feedback_source_quality(*, project: Project) -> list[dict]:
    """Per feedback source (review.source_reliability's rows: each token, each member who posted
    feedback): the annotator-quality figures that apply to a source. Its events are its answers;
    agreement with experts is its reliability; labels are the events that became training data
    (trusted sources). A confirmation is the source accepting the model's prediction; it is
    overturned when an expert reviewed the item and disagreed (docs/annotator-quality.md)."""
    confirmation = Q(kind=FeedbackKind.CONFIRMATION)
    counts = (FeedbackEvent.objects.filter(project=project).values("token__prefix", "user__username")
              .annotate(labels=Count("id", filter=Q(status=FeedbackStatus.TRAINING)),
                        confirmations=Count("id", filter=confirmation),
                        confirmations_reviewed=Count("id", filter=confirmation & Q(expert_agrees__isnull=False)),
                        overturned=Count("id", filter=confirmation & Q(expert_agrees=False)))
              .order_by())
    by_source = {}
    for c in counts:
        key = c["token__prefix"] or (f"{c['user__username']} (member)" if c["user__username"] else None)
        by_source[key] = c
    rows = []
    for source in review.source_reliability(project=project):
        c = by_source.get(source["token"] or source["name"], {})
        confirmations, reviewed = c.get("confirmations", 0), c.get("confirmations_reviewed", 0)
        rows.append({**source, "labels": c.get("labels", 0), "confirmations": confirmations,
                     "acceptance_rate": round(confirmations / source["events"], 3) if source["events"] else None,
                     "confirmations_reviewed": reviewed, "overturned": c.get("overturned", 0),
                     "overturned_rate": round(c.get("overturned", 0) / reviewed, 3) if reviewed else None})
    return rows
