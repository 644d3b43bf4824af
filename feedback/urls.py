from django.urls import path

from . import api

urlpatterns = [
    path("projects/<int:project_id>/predict", api.Predict.as_view(), name="api-predict"),
    path("projects/<int:project_id>/feedback", api.Feedback.as_view(), name="api-feedback"),
    path("projects/<int:project_id>/tokens/", api.TokenListCreate.as_view(), name="api-tokens"),
    path("projects/<int:project_id>/tokens/<str:prefix>", api.TokenRevoke.as_view(), name="api-token-revoke"),
    path("projects/<int:project_id>/serving-policy", api.ServingPolicyView.as_view(), name="api-serving-policy"),
    path("projects/<int:project_id>/monitoring", api.Monitoring.as_view(), name="api-monitoring"),
    path("projects/<int:project_id>/review", api.ReviewQueue.as_view(), name="api-review"),
    path("projects/<int:project_id>/review/<int:item_id>", api.ReviewDetail.as_view(), name="api-review-item"),
]
