"""Per-project retraining schedules, stored with django-celery-beat (editable in the admin)."""
import json

from celery.schedules import ParseException, crontab
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from core.errors import DomainError
from labeller.models import Project


def schedule_name(project: Project) -> str:
    return f"retrain project {project.id}"


# Cron's five fields in order, with the column each is stored in (and its length there).
CRON_FIELDS = [(name, CrontabSchedule._meta.get_field(name).max_length)
               for name in ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")]


def cron_fields(cron: str) -> dict[str, str]:
    """The five fields of a cron expression, checked with celery's own parser, which is what beat
    runs them through: a string it cannot read would stop beat for every project. ValueError
    naming the field otherwise."""
    values = cron.split()
    if len(values) != 5:
        raise ValueError("use five cron fields, e.g. '0 3 * * 1' (03:00 every Monday)")
    fields = {}
    for (name, max_length), value in zip(CRON_FIELDS, values):
        label = name.replace("_", " ")
        if len(value) > max_length:
            raise ValueError(f"{label}: at most {max_length} characters")
        try:
            crontab(**{name: value})
        except (ParseException, ValueError) as exc:
            raise ValueError(f"{label} '{value}': {exc}") from exc
        fields[name] = value
    return fields


def schedule_set(*, project: Project, cron: str | None) -> PeriodicTask | None:
    """Set the project's retrain schedule from a five-field cron expression; None removes it."""
    if not cron:
        PeriodicTask.objects.filter(name=schedule_name(project)).delete()
        return None
    try:
        fields = cron_fields(cron)
    except ValueError as exc:
        raise DomainError(str(exc), field="schedule") from exc
    schedule, _ = CrontabSchedule.objects.get_or_create(**fields, timezone="UTC")
    task, _ = PeriodicTask.objects.update_or_create(
        name=schedule_name(project),
        defaults={"crontab": schedule, "interval": None, "task": "models_registry.tasks.scheduled_retrain",
                  "args": json.dumps([project.id]), "enabled": True},
    )
    return task


def schedule_of(project: Project) -> str | None:
    task = PeriodicTask.objects.filter(name=schedule_name(project)).select_related("crontab").first()
    if not task or not task.crontab:
        return None
    c = task.crontab
    return f"{c.minute} {c.hour} {c.day_of_month} {c.month_of_year} {c.day_of_week}"
