"""Beat's periodic registry tasks. train_version lives beside its service in training.py."""
from celery import shared_task

from labeller.models import Project

from . import training
from .models import Trigger
from .snapshots import snapshots_expire


@shared_task
def scheduled_retrain(project_id: int) -> None:
    project = Project.objects.filter(id=project_id).first()
    if project is not None:
        try:
            training.retrain_request(project=project, trigger=Trigger.SCHEDULE)
        except (training.NothingToTrain, training.RetrainBusy):
            pass  # the next run of the schedule tries again


@shared_task
def expire_snapshots() -> int:
    """Delete dataset snapshots no version uses, past their retention (beat, daily); idempotent."""
    return snapshots_expire()


@shared_task
def reap_dead_training() -> int:
    # Superseded by labeller.tasks.reap_stuck_jobs; kept so that a beat entry a database scheduler
    # still holds from an earlier release runs rather than failing as an unregistered task.
    return training.training_reap()

