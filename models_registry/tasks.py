from celery import shared_task

from labeller.models import Project

from . import training
from .models import Trigger


@shared_task(bind=True, acks_late=True, max_retries=None)
def train_version(self, version_id: int) -> None:
    """Train one version. If another version of the project is training, wait and try again."""
    try:
        version = training.version_claim(version_id=version_id)
    except training.TrainingBusy:
        raise self.retry(countdown=15)
    if version is not None:
        training.version_train(version=version)


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
    from .snapshots import snapshots_expire

    return snapshots_expire()


@shared_task
def reap_dead_training() -> int:
    # Superseded by labeller.tasks.reap_stuck_jobs; kept so that a beat entry a database scheduler
    # still holds from an earlier release runs rather than failing as an unregistered task.
    return training.training_reap()

