"""Thin Celery tasks: ids in, one service call. Tasks a service enqueues itself live beside it
(review.route_feedback, webhooks.send_alert_webhook); these are beat's and the pages' to send."""
import logging

from celery import shared_task

from labeller.models import Project

from . import idempotency, monitoring, review
from .models import FeedbackEvent, FeedbackStatus

log = logging.getLogger(__name__)


@shared_task
def route_all_pending() -> int:
    """Beat's safety net: events whose routing message was lost are routed within a minute."""
    project_ids = sorted(set(FeedbackEvent.objects.filter(status=FeedbackStatus.PENDING)
                             .values_list("project_id", flat=True).distinct()))
    for project_id in project_ids:
        try:
            review.route_pending(project_id=project_id)
        except Exception:  # one project's failure must not stop the others' routing
            log.exception("routing project %s's pending feedback failed", project_id)
    return len(project_ids)


@shared_task
def monitor() -> int:
    return monitoring.monitor_all()


@shared_task
def monitor_one(project_id: int) -> int:
    return len(monitoring.monitor_project(project=Project.objects.get(id=project_id)))


@shared_task
def expire_idempotency_keys() -> int:
    return idempotency.expire_old()
