from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_sqlite_search_index(sender, using="default", **kwargs):
    from django.db import connections

    from .search_index import sqlite_ensure

    connection = connections[using]
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            sqlite_ensure(cursor)


class LabellerConfig(AppConfig):
    name = "labeller"
    verbose_name = "Labelling"

    def ready(self):
        from core.jobs import reaper_register

        reaper_register("export", "labeller.exporting.export_reap")
        # A later migration that alters Item rebuilds the table on SQLite, dropping the FTS triggers.
        post_migrate.connect(_ensure_sqlite_search_index, sender=self)
