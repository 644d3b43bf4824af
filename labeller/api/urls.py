from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from . import auth, converters, views  # converters registers <id:...> and <number:...>

urlpatterns = [
    path("auth/token", auth.TokenObtain.as_view(), name="api-token"),
    path("auth/logout", auth.TokenRevoke.as_view(), name="api-logout"),
    path("auth/logout-all", auth.TokenRevokeAll.as_view(), name="api-logout-all"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # An HTML page: OPTIONS has no metadata to give (DRF's would render through the page's template, a 500).
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema", metadata_class=None), name="api-docs"),
    path("projects/", views.ProjectListCreate.as_view(), name="api-projects"),
    path("projects/<id:project_id>/", views.ProjectDetail.as_view(), name="api-project"),
    path("projects/<id:project_id>/labels/", views.LabelListCreate.as_view(), name="api-labels"),
    path("projects/<id:project_id>/members/", views.MemberListSet.as_view(), name="api-members"),
    path("projects/<id:project_id>/members/<id:user_id>/", views.MemberDetail.as_view(), name="api-member"),
    path("projects/<id:project_id>/imports", views.ImportCreate.as_view(), name="api-import"),
    path("projects/<id:project_id>/items/", views.ItemList.as_view(), name="api-items"),
    path("projects/<id:project_id>/items/table", views.ItemTable.as_view(), name="api-items-table"),
    path("projects/<id:project_id>/items/bulk", views.ItemBulk.as_view(), name="api-items-bulk"),
    path("projects/<id:project_id>/items/<id:item_id>/", views.ItemDetail.as_view(), name="api-item"),
    path("projects/<id:project_id>/items/<id:item_id>/annotations", views.AnnotationSubmit.as_view(), name="api-annotate"),
    path("projects/<id:project_id>/items/<id:item_id>/skip", views.ItemSkip.as_view(), name="api-skip"),
    path("projects/<id:project_id>/queue/next", views.QueueNext.as_view(), name="api-queue-next"),
    path("projects/<id:project_id>/queue/release", views.QueueRelease.as_view(), name="api-queue-release"),
    path("projects/<id:project_id>/annotations/", views.AnnotationList.as_view(), name="api-annotations"),
    path("projects/<id:project_id>/annotations/<id:annotation_id>/", views.AnnotationDetail.as_view(), name="api-annotation"),
    path("projects/<id:project_id>/agreement", views.AgreementView.as_view(), name="api-agreement"),
    path("projects/<id:project_id>/exports/", views.ExportListCreate.as_view(), name="api-exports"),
    path("projects/<id:project_id>/exports/<uuid:export_id>/", views.ExportDetail.as_view(), name="api-export"),
    path("projects/<id:project_id>/exports/<uuid:export_id>/download", views.ExportDownload.as_view(), name="api-export-download"),
]
