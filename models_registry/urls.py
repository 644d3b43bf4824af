from django.urls import path

from . import api

urlpatterns = [
    path("projects/<id:project_id>/models/", api.VersionListRetrain.as_view(), name="api-models"),
    path("projects/<id:project_id>/models/rollback", api.ChampionRollback.as_view(), name="api-models-rollback"),
    path("projects/<id:project_id>/models/aliases", api.AliasHistory.as_view(), name="api-models-aliases"),
    path("projects/<id:project_id>/models/<id:number>/", api.VersionDetail.as_view(), name="api-model"),
    path("projects/<id:project_id>/models/<id:number>/promote", api.VersionPromote.as_view(), name="api-model-promote"),
    path("projects/<id:project_id>/models/<id:number>/challenger", api.VersionChallenger.as_view(), name="api-model-challenger"),
    path("projects/<id:project_id>/models/<id:number>/cancel", api.VersionCancel.as_view(), name="api-model-cancel"),
    path("projects/<id:project_id>/training-policy", api.TrainingPolicyView.as_view(), name="api-training-policy"),
]
