from django.urls import path

from labeller.api import converters  # noqa: F401  (registers <id:...>)

from . import api

urlpatterns = [
    path("projects/<id:project_id>/active-learning", api.ActiveLearningStatus.as_view(), name="api-active-learning"),
    path("projects/<id:project_id>/label-errors", api.LabelErrorsRun.as_view(), name="api-label-errors"),
]
