from django.apps import AppConfig


class LabellerConfig(AppConfig):
    name = "labeller"
    verbose_name = "Labelling"

    def ready(self):
        from core.jobs import reaper_register

        reaper_register("export", "labeller.exporting.export_reap")
