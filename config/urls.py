from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("labeller.api.urls")),
    path("api/", include("active_learning.urls")),
    path("api/", include("models_registry.urls")),
    path("api/", include("feedback.urls")),
    path("", include("frontend.urls")),
]
