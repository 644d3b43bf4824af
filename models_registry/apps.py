from django.apps import AppConfig


class ModelsRegistryConfig(AppConfig):
    name = "models_registry"
    verbose_name = "Model registry"

    def ready(self):
        from core.jobs import reaper_register

        reaper_register("training", "models_registry.training.training_jobs_reap")
