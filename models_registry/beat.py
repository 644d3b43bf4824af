"""The beat scheduler: django-celery-beat's, except that one schedule it cannot load is skipped
and disabled instead of stopping beat (its DatabaseScheduler lets a ParseException escape, so a
single bad cron row, from before validation or the admin, would stop every schedule at start)."""
import logging

from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler

log = logging.getLogger(__name__)


class SafeDatabaseScheduler(DatabaseScheduler):
    def all_as_schedule(self):
        schedule = {}
        for model in self.enabled_models():
            try:
                schedule[model.name] = self.Entry(model, app=self.app)
            except Exception:  # noqa: BLE001 - any row beat cannot read: the others still run
                log.exception("beat: disabling schedule %r, which cannot be loaded", model.name)
                # update(), not save(): saving would mark the schedule changed and reload it all.
                PeriodicTask.objects.filter(pk=model.pk).update(enabled=False)
        return schedule
