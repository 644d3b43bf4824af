from django.apps import AppConfig


class ActiveLearningConfig(AppConfig):
    name = "active_learning"
    verbose_name = "Active learning"

    def ready(self):
        from core.jobs import reaper_register

        from . import receivers  # noqa: F401  (wires the loop: see receivers.py)

        reaper_register("encode", "active_learning.encoding.encode_reap")
        reaper_register("refresh", "active_learning.refresh.refresh_reap")
