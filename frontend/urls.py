from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.project_list, name="project-list"),
    path("projects/<int:project_id>/", views.project_detail, name="project-detail"),
    path("projects/<int:project_id>/import", views.project_import, name="project-import"),
    path("projects/<int:project_id>/export", views.project_export, name="project-export"),
    path("projects/<int:project_id>/label", views.label_screen, name="label-screen"),
]
