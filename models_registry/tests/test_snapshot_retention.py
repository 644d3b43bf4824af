"""Dataset snapshots no model version was trained on are deleted, file and row, after
LABELLOOP_SNAPSHOT_RETENTION_DAYS; a snapshot a version names is kept for as long as the version."""
import os
from datetime import timedelta

import pytest
from django.utils import timezone

from labeller.models import Annotation
from models_registry.models import DatasetSnapshot, ModelVersion
from models_registry.snapshots import snapshot_create, snapshots_expire

pytestmark = pytest.mark.django_db


@pytest.fixture
def artefacts(settings, tmp_path):
    settings.LABELLOOP_ARTEFACT_DIR = tmp_path / "artefacts"
    settings.LABELLOOP_SNAPSHOT_RETENTION_DAYS = 30
    return settings.LABELLOOP_ARTEFACT_DIR


def aged(snapshot, *, days: float) -> DatasetSnapshot:
    DatasetSnapshot.objects.filter(id=snapshot.id).update(created_at=timezone.now() - timedelta(days=days))
    return DatasetSnapshot.objects.get(id=snapshot.id)


def relabel_one(project, nth):
    annotation = Annotation.objects.filter(project=project).order_by("id")[nth]
    annotation.labels = ["exchange_rate"] if annotation.labels != ["exchange_rate"] else ["card_arrival"]
    annotation.save()


@pytest.fixture
def three_snapshots(labelled_project, artefacts):
    """An old one a version was trained on, an old unused one and a recent unused one."""
    trained = aged(snapshot_create(project=labelled_project), days=40)
    ModelVersion.objects.create(project=labelled_project, number=1, kind="head", base_model="test", snapshot=trained)
    relabel_one(labelled_project, 0)
    unused = aged(snapshot_create(project=labelled_project), days=31)
    relabel_one(labelled_project, 1)
    recent = aged(snapshot_create(project=labelled_project), days=29)
    assert len({trained.id, unused.id, recent.id}) == 3
    return trained, unused, recent


def test_an_old_snapshot_no_version_uses_is_deleted_with_its_file(three_snapshots, artefacts):
    trained, unused, recent = three_snapshots
    assert all((artefacts / s.path).exists() for s in three_snapshots)
    assert snapshots_expire() == 1
    assert not (artefacts / unused.path).exists() and not DatasetSnapshot.objects.filter(id=unused.id).exists()
    assert (artefacts / trained.path).exists() and (artefacts / recent.path).exists()
    assert set(DatasetSnapshot.objects.values_list("id", flat=True)) == {trained.id, recent.id}


def test_expiring_snapshots_twice_deletes_nothing_more(three_snapshots):
    assert snapshots_expire() == 1
    assert snapshots_expire() == 0


def test_an_old_snapshot_file_left_without_its_row_is_swept(three_snapshots, artefacts):
    trained, unused, recent = three_snapshots
    orphan = artefacts / "snapshots" / str(trained.project_id) / ("f" * 64 + ".jsonl")
    orphan.write_text("{}\n")
    then = (timezone.now() - timedelta(days=31)).timestamp()
    os.utime(orphan, (then, then))
    snapshots_expire()
    assert not orphan.exists() and (artefacts / trained.path).exists()


def test_a_retention_of_zero_keeps_snapshots_forever(three_snapshots, settings):
    settings.LABELLOOP_SNAPSHOT_RETENTION_DAYS = 0
    assert snapshots_expire() == 0
    assert DatasetSnapshot.objects.count() == 3


def test_beat_expires_snapshots_through_a_registered_task(settings):
    from config.celery import app

    entry = next(e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "models_registry.tasks.expire_snapshots")
    assert entry["schedule"] <= 24 * 3600
    app.loader.import_default_modules()
    assert "models_registry.tasks.expire_snapshots" in app.tasks


def test_the_copy_in_a_shared_remote_store_is_deleted_too(labelled_project, artefacts, settings, tmp_path):
    settings.STORAGES = {**settings.STORAGES, "artefacts": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path / "remote")}}}
    snapshot = aged(snapshot_create(project=labelled_project), days=31)
    assert (tmp_path / "remote" / snapshot.path).exists()
    assert snapshots_expire() == 1
    assert not (tmp_path / "remote" / snapshot.path).exists() and not (artefacts / snapshot.path).exists()
