from django.urls import path

from . import api

urlpatterns = [
    path("projects/<int:project_id>/models/", api.VersionListRetrain.as_view(), name="api-models"),
    path("projects/<int:project_id>/models/rollback", api.ChampionRollback.as_view(), name="api-models-rollback"),
    path("projects/<int:project_id>/models/aliases", api.AliasHistory.as_view(), name="api-models-aliases"),
    path("projects/<int:project_id>/models/<int:number>/", api.VersionDetail.as_view(), name="api-model"),
    path("projects/<int:project_id>/models/<int:number>/promote", api.VersionPromote.as_view(), name="api-model-promote"),
    path("projects/<int:project_id>/models/<int:number>/challenger", api.VersionChallenger.as_view(), name="api-model-challenger"),
    path("projects/<int:project_id>/models/<int:number>/cancel", api.VersionCancel.as_view(), name="api-model-cancel"),
    path("projects/<int:project_id>/training-policy", api.TrainingPolicyView.as_view(), name="api-training-policy"),
]
