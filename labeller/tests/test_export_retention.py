"""Export files and their jobs are deleted LABELLOOP_EXPORT_RETENTION_DAYS after they were asked for."""
import os
from datetime import timedelta

import pytest
from django.utils import timezone

from labeller.exporting import export_write, exports_expire
from labeller.models import ExportJob

pytestmark = pytest.mark.django_db


@pytest.fixture
def export_dir(settings, tmp_path):
    settings.LABELLOOP_EXPORT_DIR = tmp_path / "exports"
    settings.LABELLOOP_EXPORT_RETENTION_DAYS = 7
    return settings.LABELLOOP_EXPORT_DIR


def written_export(project, owner, *, days_old: float) -> ExportJob:
    job = ExportJob.objects.create(project=project, created_by=owner, format="csv")
    export_write(job=job)
    ExportJob.objects.filter(id=job.id).update(created_at=timezone.now() - timedelta(days=days_old))
    return ExportJob.objects.get(id=job.id)


def age(path, *, days: float) -> None:
    then = (timezone.now() - timedelta(days=days)).timestamp()
    os.utime(path, (then, then))


def test_an_export_older_than_the_retention_is_deleted_with_its_file(project, owner, add_items, export_dir):
    add_items(project, ["where is my card"])
    old, recent = written_export(project, owner, days_old=8), written_export(project, owner, days_old=6)
    assert old.file_path.exists() and recent.file_path.exists()
    assert exports_expire() == 1
    assert not old.file_path.exists() and not ExportJob.objects.filter(id=old.id).exists()
    assert recent.file_path.exists() and ExportJob.objects.filter(id=recent.id).exists()


def test_expiring_twice_deletes_nothing_more(project, owner, export_dir):
    written_export(project, owner, days_old=30)
    assert exports_expire() == 1
    assert exports_expire() == 0


def test_a_job_whose_file_is_already_gone_is_still_deleted(project, owner, export_dir):
    job = written_export(project, owner, days_old=30)
    job.file_path.unlink()  # a run that died after deleting the file
    assert exports_expire() == 1
    assert not ExportJob.objects.exists()


def test_old_files_no_job_knows_are_swept_and_recent_ones_kept(project, owner, export_dir):
    export_dir.mkdir(parents=True, exist_ok=True)
    stale, fresh = export_dir / "0b9c.csv.part", export_dir / "1c2d.csv.part"  # a crashed write
    stale.write_text("half")
    fresh.write_text("being written")
    age(stale, days=8)
    exports_expire()
    assert not stale.exists() and fresh.exists()


def test_a_retention_of_zero_keeps_exports_forever(project, owner, export_dir, settings):
    settings.LABELLOOP_EXPORT_RETENTION_DAYS = 0
    job = written_export(project, owner, days_old=400)
    assert exports_expire() == 0
    assert job.file_path.exists()


def test_beat_expires_exports_through_a_registered_task(settings):
    from config.celery import app

    entry = next(e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "labeller.tasks.expire_exports")
    assert entry["schedule"] <= 24 * 3600
    app.loader.import_default_modules()
    assert "labeller.tasks.expire_exports" in app.tasks
