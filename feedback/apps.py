from django.apps import AppConfig


class FeedbackConfig(AppConfig):
    name = "feedback"
    verbose_name = "Product feedback"

    def ready(self):
        from . import signals  # noqa: F401  (connects the receivers)
