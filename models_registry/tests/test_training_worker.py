"""Training through real Celery worker processes: a small fine-tune, and a worker killed mid-run."""
import signal

import pytest

from tests.workers import start_celery_worker, stop_celery_worker
from models_registry import training
from models_registry.models import ModelVersion, TrainingPolicy, VersionStatus
from models_registry.snapshots import snapshot_create
from tests.helpers import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_worker_fine_tunes_a_version_and_registers_it(celery_worker_process, labelled_project, client_for, owner):
    TrainingPolicy.objects.update_or_create(project=labelled_project, defaults={"finetune": {"epochs": 1, "small_data_epochs": 1, "batch_size": 8, "max_length": 32}})
    response = client_for(owner).post(f"/api/projects/{labelled_project.id}/models/", {"kinds": ["finetuned"]}, format="json")
    number = response.json()[0]["number"]
    version = wait_for(
        lambda: ModelVersion.objects.filter(project=labelled_project, number=number, status__in=["ready", "failed"]).first(),
        timeout=240, what="the worker to fine-tune the version",
    )
    assert version.status == "ready", version.error + "".join(celery_worker_process.log[-30:])
    assert version.kind == "finetuned" and version.metrics["n"] == 12 and version.checksum
    assert version.progress["epoch"] == 1 and version.progress["steps"] > 0
    from models_registry.artefacts import load_head

    assert load_head(version).classes == ["card_arrival", "exchange_rate", "lost_or_stolen_card"]


def test_a_worker_killed_mid_training_leaves_the_version_failed_with_the_reason(labelled_project):
    TrainingPolicy.objects.update_or_create(project=labelled_project, defaults={"finetune": {"epochs": 50, "small_data_epochs": 50, "batch_size": 4}})
    snapshot = snapshot_create(project=labelled_project)
    version = ModelVersion.objects.create(project=labelled_project, number=1, kind="finetuned", snapshot=snapshot,
                                          base_model="base", hyperparameters={"epochs": 50, "small_data_epochs": 50, "batch_size": 4})
    # A worker of its own, on a queue of its own, so that killing it touches nothing else.
    worker = start_celery_worker("training-doomed")
    try:
        from models_registry.training import train_version

        train_version.apply_async(args=[version.id], queue="training-doomed")
        wait_for(lambda: ModelVersion.objects.filter(id=version.id, progress__step__gte=1).exists(), timeout=120,
                 what="training to start")
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        stop_celery_worker(worker) if worker.poll() is None else None
    assert ModelVersion.objects.get(id=version.id).status == VersionStatus.TRAINING  # nobody said anything
    wait_for(lambda: training.training_reap(timeout_s=2) == 1, timeout=30, what="the reaper to notice")
    version.refresh_from_db()
    assert version.status == VersionStatus.FAILED and "no heartbeat" in version.error
