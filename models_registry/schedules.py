"""Per-project retraining schedules, stored with django-celery-beat (editable in the admin)."""
import json

from django_celery_beat.models import CrontabSchedule, PeriodicTask

from labeller.models import Project


def schedule_name(project: Project) -> str:
    return f"retrain project {project.id}"


def schedule_set(*, project: Project, cron: str | None) -> PeriodicTask | None:
    """Set the project's retrain schedule from a five-field cron expression; None removes it."""
    if not cron:
        PeriodicTask.objects.filter(name=schedule_name(project)).delete()
        return None
    fields = cron.split()
    if len(fields) != 5:
        raise ValueError("cron: use five fields, e.g. '0 3 * * 1' (03:00 every Monday)")
    minute, hour, day_of_month, month_of_year, day_of_week = fields
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month_of_year, day_of_week=day_of_week,
        timezone="UTC",
    )
    task, _ = PeriodicTask.objects.update_or_create(
        name=schedule_name(project),
        defaults={"crontab": crontab, "interval": None, "task": "models_registry.tasks.scheduled_retrain",
                  "args": json.dumps([project.id]), "enabled": True},
    )
    return task


def schedule_of(project: Project) -> str | None:
    task = PeriodicTask.objects.filter(name=schedule_name(project)).select_related("crontab").first()
    if not task or not task.crontab:
        return None
    c = task.crontab
    return f"{c.minute} {c.hour} {c.day_of_month} {c.month_of_year} {c.day_of_week}"
