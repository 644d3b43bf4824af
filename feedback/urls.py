from django.urls import path

from . import api

urlpatterns = [
    path("projects/<id:project_id>/predict", api.Predict.as_view(), name="api-predict"),
    path("projects/<id:project_id>/feedback", api.Feedback.as_view(), name="api-feedback"),
    path("projects/<id:project_id>/tokens/", api.TokenListCreate.as_view(), name="api-tokens"),
    path("projects/<id:project_id>/tokens/<str:prefix>", api.TokenRevoke.as_view(), name="api-token-revoke"),
    path("projects/<id:project_id>/serving-policy", api.ServingPolicyView.as_view(), name="api-serving-policy"),
    path("projects/<id:project_id>/monitoring", api.Monitoring.as_view(), name="api-monitoring"),
    path("projects/<id:project_id>/review", api.ReviewQueue.as_view(), name="api-review"),
    path("projects/<id:project_id>/review/<id:item_id>", api.ReviewDetail.as_view(), name="api-review-item"),
]
