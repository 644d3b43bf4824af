from celery import shared_task

from .exporting import export_claim, export_fail, export_write


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
