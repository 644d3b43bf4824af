"""Beat's periodic labelling tasks: ids in (or none), one service call. Tasks a service enqueues
itself live beside that service (exporting.export_run); the active-learning ones in active_learning."""
from celery import shared_task
from django.utils import timezone

from core import jobs

from .exporting import exports_expire
from .importing import imports_discard_abandoned


@shared_task
def expire_exports() -> int:
    """Delete exports past their retention (beat, hourly); idempotent."""
    return exports_expire()


@shared_task
def discard_abandoned_imports() -> int:
    """What an import whose process died left behind (SQLite imports commit batch by batch)."""
    return imports_discard_abandoned(now=timezone.now())


@shared_task
def reap_stuck_jobs() -> dict:
    """Beat, every minute: jobs whose heartbeat stopped are sent again or failed (core.jobs)."""
    return {kind: vars(reaped) for kind, reaped in jobs.jobs_reap().items()}
