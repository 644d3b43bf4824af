from django.contrib.auth import views as auth_views
from django.urls import path

from labeller.api import converters  # noqa: F401  (registers <id:...> and <number:...>)

from . import (annotator_views, data_manager_views, item_views, label_views, member_views, model_version_views,
               monitoring_views, project_views, views)

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.project_list, name="project-list"),
    path("projects/new", project_views.project_new, name="project-new"),
    path("projects/new/guidelines-preview", project_views.guidelines_preview, name="project-new-preview"),
    path("projects/<id:project_id>/", views.project_detail, name="project-detail"),
    path("projects/<id:project_id>/import", views.project_import, name="project-import"),
    path("projects/<id:project_id>/export", views.project_export, name="project-export"),
    path("projects/<id:project_id>/label", views.label_screen, name="label-screen"),
    path("projects/<id:project_id>/items/<id:item_id>", item_views.item_page, name="item-page"),
    path("projects/<id:project_id>/items/<id:item_id>/relabel", item_views.item_relabel, name="item-relabel"),
    path("projects/<id:project_id>/items/<id:item_id>/label-similar", item_views.item_label_similar,
         name="item-label-similar"),
    path("projects/<id:project_id>/similar", item_views.similar_page, name="similar-page"),
    path("projects/<id:project_id>/items", data_manager_views.data_manager_page, name="data-manager"),
    path("projects/<id:project_id>/models", model_version_views.models_page, name="models-page"),
    path("projects/<id:project_id>/models/retrain", model_version_views.retrain, name="models-retrain"),
    path("projects/<id:project_id>/models/<number:number>/promote", model_version_views.promote, name="models-promote"),
    path("projects/<id:project_id>/models/<number:number>/cancel", model_version_views.cancel, name="models-cancel"),
    path("projects/<id:project_id>/models/rollback", model_version_views.rollback, name="models-rollback"),
    path("projects/<id:project_id>/members", member_views.members_page, name="members-page"),
    path("projects/<id:project_id>/members/add", member_views.member_add, name="members-add"),
    path("projects/<id:project_id>/members/<id:user_id>/role", member_views.member_role, name="member-role"),
    path("projects/<id:project_id>/members/<id:user_id>/remove", member_views.member_remove, name="member-remove"),
    path("projects/<id:project_id>/labels", label_views.labels_page, name="labels-page"),
    path("projects/<id:project_id>/labels/add", label_views.label_add, name="label-add"),
    path("projects/<id:project_id>/labels/<id:label_id>/update", label_views.label_update, name="label-update"),
    path("projects/<id:project_id>/labels/<id:label_id>/archive", label_views.label_archive, name="label-archive"),
    path("projects/<id:project_id>/labels/<id:label_id>/move", label_views.label_move, name="label-move"),
    path("projects/<id:project_id>/labels/<id:label_id>/delete", label_views.label_delete, name="label-delete"),
    path("projects/<id:project_id>/annotators", annotator_views.annotators_page, name="annotators-page"),
    path("projects/<id:project_id>/monitoring", monitoring_views.monitoring_page, name="monitoring-page"),
    path("projects/<id:project_id>/monitoring/policy", monitoring_views.policy_update, name="monitoring-policy"),
    path("projects/<id:project_id>/monitoring/recompute", monitoring_views.recompute, name="monitoring-recompute"),
    path("projects/<id:project_id>/monitoring/tokens", monitoring_views.token_create, name="monitoring-token-create"),
    path("projects/<id:project_id>/monitoring/tokens/<str:prefix>/revoke", monitoring_views.token_revoke,
         name="monitoring-token-revoke"),
]
