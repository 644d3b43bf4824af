"""Retrain schedules: a cron string celery cannot read is refused when set, and one already in the
database is skipped by beat (and disabled) instead of stopping every other schedule."""
import json

import pytest
from celery.utils.imports import symbol_by_name
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from config.celery import app
from models_registry import schedules

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("cron, problem", [
    ("0,,5 * * * *", "minute"),
    ("*/0 * * * *", "minute"),
    ("61 * * * *", "minute"),
    ("0 24 * * *", "hour"),
    ("0 3 32 * *", "day of month"),
    ("0 3 * 13 *", "month of year"),
    ("0 3 * * 9", "day of week"),
    ("0 3 * * funday", "day of week"),
    ("0 3 * * * *", "five cron fields"),
    (",".join(["1"] * 200) + " * * * *", "minute"),
])
def test_it_refuses_a_schedule_celery_cannot_read(project, client_for, owner, cron, problem):
    answer = client_for(owner).patch(f"/api/projects/{project.id}/training-policy", {"schedule": cron}, format="json")
    assert answer.status_code == 400 and problem in answer.json()["schedule"][0]
    assert not PeriodicTask.objects.filter(name=schedules.schedule_name(project)).exists()


def test_a_schedule_celery_reads_is_stored(project, client_for, owner):
    answer = client_for(owner).patch(f"/api/projects/{project.id}/training-policy", {"schedule": "0 3 * * mon-fri"},
                                     format="json")
    assert answer.status_code == 200 and answer.json()["schedule"] == "0 3 * * mon-fri"


@pytest.mark.django_db(transaction=True)  # beat commits and closes connections as it reads
def test_a_bad_schedule_already_stored_does_not_stop_beat_loading_the_others(project, settings):
    schedules.schedule_set(project=project, cron="*/5 * * * *")
    bad = CrontabSchedule.objects.create(minute="0,,5", hour="*", day_of_month="*", month_of_year="*", day_of_week="*",
                                         timezone="UTC")
    PeriodicTask.objects.create(name="retrain project 999", crontab=bad, task="models_registry.tasks.scheduled_retrain",
                                args=json.dumps([999]))

    scheduler = symbol_by_name(settings.CELERY_BEAT_SCHEDULER)(app=app)  # as `celery beat` starts it

    assert schedules.schedule_name(project) in scheduler.schedule
    assert "retrain project 999" not in scheduler.schedule
    assert PeriodicTask.objects.get(name="retrain project 999").enabled is False
