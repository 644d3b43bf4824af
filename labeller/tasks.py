from celery import shared_task
from django.utils import timezone

from . import active_learning, jobs
from .enqueue import enqueue
from .exporting import export_claim, export_fail, export_write, exports_expire
from .importing import imports_discard_abandoned
from .models import Project


@shared_task(acks_late=True)
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


@shared_task
def expire_exports() -> int:
    """Delete exports past their retention (beat, hourly); idempotent."""
    return exports_expire()


@shared_task(acks_late=True)
def encode_items(project_id: int) -> int:
    """Encode the project's new items (own queue: it is the slow part of active learning)."""
    return active_learning.encode_pending(project_id=project_id)


@shared_task(acks_late=True)
def refresh_priorities(project_id: int) -> None:
    """Refit the head and re-rank the queue; at most one per project runs at a time."""
    if not active_learning.refresh_claim(project_id=project_id):
        return
    report = None
    try:
        report = active_learning.refresh_run(project=Project.objects.get(id=project_id))
    except Exception as exc:
        active_learning.refresh_release(project_id=project_id, report=None, error=f"{type(exc).__name__}: {exc}")
        raise
    active_learning.refresh_release(project_id=project_id, report=report)
    enqueue(explain_suggestions, project_id)
    from models_registry.training import retrain_if_due

    retrain_if_due(project=Project.objects.get(id=project_id))  # the "retrain after N labels" trigger


@shared_task
def explain_suggestions(project_id: int) -> int:
    """Word attributions for the suggestions at the head of the queue (needs the encoder)."""
    return active_learning.explain_top(project_id=project_id)


@shared_task
def discard_abandoned_imports() -> int:
    """What an import whose process died left behind (SQLite imports commit batch by batch)."""
    return imports_discard_abandoned(now=timezone.now())


@shared_task
def reap_stuck_jobs() -> dict:
    """Beat, every minute: jobs whose heartbeat stopped are sent again or failed (labeller.jobs)."""
    return {kind: vars(reaped) for kind, reaped in jobs.jobs_reap().items()}
