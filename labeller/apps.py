from django.apps import AppConfig


class LabellerConfig(AppConfig):
    name = "labeller"
    verbose_name = "Labelling"
