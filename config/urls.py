from django.contrib import admin
from django.urls import include, path

from . import converters  # noqa: F401  registers <id:...> before the apps' urls are read

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("labeller.api.urls")),
    path("api/", include("models_registry.urls")),
    path("api/", include("feedback.urls")),
    path("", include("frontend.urls")),
]
