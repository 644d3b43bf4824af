from django.contrib.auth import views as auth_views
from django.urls import path

from labeller.api import converters  # noqa: F401  (registers <id:...> and <number:...>)

from . import member_views, model_version_views, monitoring_views, settings_views, views

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.project_list, name="project-list"),
    path("projects/<id:project_id>/", views.project_detail, name="project-detail"),
    path("projects/<id:project_id>/import", views.project_import, name="project-import"),
    path("projects/<id:project_id>/export", views.project_export, name="project-export"),
    path("projects/<id:project_id>/label", views.label_screen, name="label-screen"),
    path("projects/<id:project_id>/models", model_version_views.models_page, name="models-page"),
    path("projects/<id:project_id>/models/retrain", model_version_views.retrain, name="models-retrain"),
    path("projects/<id:project_id>/models/<number:number>/promote", model_version_views.promote, name="models-promote"),
    path("projects/<id:project_id>/models/<number:number>/cancel", model_version_views.cancel, name="models-cancel"),
    path("projects/<id:project_id>/models/rollback", model_version_views.rollback, name="models-rollback"),
    path("projects/<id:project_id>/members", member_views.members_page, name="members-page"),
    path("projects/<id:project_id>/members/add", member_views.member_add, name="members-add"),
    path("projects/<id:project_id>/members/<id:user_id>/role", member_views.member_role, name="member-role"),
    path("projects/<id:project_id>/members/<id:user_id>/remove", member_views.member_remove, name="member-remove"),
    path("projects/<id:project_id>/settings", settings_views.settings_page, name="settings-page"),
    path("projects/<id:project_id>/settings/training", settings_views.training_section, name="settings-training"),
    path("projects/<id:project_id>/settings/<slug:section>", settings_views.project_section, name="settings-project"),
    path("projects/<id:project_id>/monitoring", monitoring_views.monitoring_page, name="monitoring-page"),
    path("projects/<id:project_id>/monitoring/policy", monitoring_views.policy_update, name="monitoring-policy"),
    path("projects/<id:project_id>/monitoring/recompute", monitoring_views.recompute, name="monitoring-recompute"),
    path("projects/<id:project_id>/monitoring/tokens", monitoring_views.token_create, name="monitoring-token-create"),
    path("projects/<id:project_id>/monitoring/tokens/<str:prefix>/revoke", monitoring_views.token_revoke,
         name="monitoring-token-revoke"),
]
