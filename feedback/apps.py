from django.apps import AppConfig


class FeedbackConfig(AppConfig):
    name = "feedback"
    verbose_name = "Product feedback"

    def ready(self):
        from . import openapi, signals  # noqa: F401  (the schema's token scheme; connects the receivers)
