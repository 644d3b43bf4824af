"""Thin API views: validate with a serializer, call one service or selector, shape the answer."""
from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import FileResponse, Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import NotAllowed

from .. import exporting, importing, item_table, selectors, services
from ..models import Annotation, ExportJob, ExportStatus, Item, Membership, Role
from . import serializers as s
from .parsers import StrictMultiPartParser

ALWAYS_ALLOWED_PARAMS = {"page", "format"}


def validated_query(request, serializer_class, context=None):
    """Validate query parameters; unknown names are refused, so no lookup can be smuggled in."""
    known = set(serializer_class().fields) | ALWAYS_ALLOWED_PARAMS
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise ValidationError({unknown[0]: [f"unknown query parameter; allowed: {', '.join(sorted(known))}"]})
    serializer = serializer_class(data=request.query_params, context=context or {})
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class ProjectScopedMixin:
    """Resolves `project_id` from the URL for the caller: 404 for outsiders, 403 below `role`."""

    project_role = Role.VIEWER

    def required_role(self) -> str:
        return self.project_role

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        # Who may call is settled before the body is read, for every method (OPTIONS too): an
        # outsider gets 404 and a member below the role 403, never a validation answer about a
        # project they cannot see.
        self.project

    @property
    def project(self):
        if not hasattr(self, "_project"):
            self._project, self.membership = selectors.project_get_for(
                user=self.request.user, project_id=self.kwargs["project_id"], role=self.required_role()
            )
        return self._project


# Any project role reads; changing anything needs the project's admin role. (A comment, not a
# docstring: drf-spectacular would make it the description of every operation of its views.)
class AdminToChange(ProjectScopedMixin):
    def required_role(self):
        return Role.VIEWER if self.request.method in ("GET", "HEAD", "OPTIONS") else Role.ADMIN


class ProjectListCreate(generics.ListAPIView):
    serializer_class = s.ProjectSerializer

    def get_queryset(self):
        return selectors.projects_with_progress_for(user=self.request.user).order_by("id")

    def get_serializer_context(self):
        roles = dict(Membership.objects.filter(user=self.request.user).values_list("project_id", "role"))
        return {**super().get_serializer_context(), "roles": roles}

    @extend_schema(request=s.ProjectCreateSerializer, responses={201: s.ProjectSerializer})
    def post(self, request):
        serializer = s.ProjectCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        project = services.project_create(user=request.user, **serializer.validated_data)
        return Response(
            s.ProjectSerializer(project, context={"roles": {project.id: Role.ADMIN}}).data, status=status.HTTP_201_CREATED
        )


class ProjectDetail(ProjectScopedMixin, APIView):
    def required_role(self):
        return Role.ADMIN if self.request.method == "PATCH" else Role.VIEWER

    @extend_schema(responses=s.ProjectSerializer)
    def get(self, request, project_id):
        return Response(s.ProjectSerializer(self.project, context={"roles": {self.project.id: self.membership.role}}).data)

    @extend_schema(request=s.ProjectUpdateSerializer, responses=s.ProjectSerializer)
    def patch(self, request, project_id):
        serializer = s.ProjectUpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        project = services.project_update(project=self.project, **serializer.validated_data)
        return Response(s.ProjectSerializer(project, context={"roles": {project.id: self.membership.role}}).data)


class LabelListCreate(ProjectScopedMixin, APIView):
    def required_role(self):
        return Role.ADMIN if self.request.method == "POST" else Role.VIEWER

    @extend_schema(responses=s.LabelSerializer(many=True))
    def get(self, request, project_id):
        return Response(s.LabelSerializer(self.project.labels.all(), many=True).data)

    @extend_schema(request=s.LabelCreateSerializer, responses={201: s.LabelSerializer})
    def post(self, request, project_id):
        serializer = s.LabelCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        label = services.label_create(project=self.project, **serializer.validated_data)
        return Response(s.LabelSerializer(label).data, status=status.HTTP_201_CREATED)


class MemberListSet(ProjectScopedMixin, APIView):
    project_role = Role.ADMIN

    @extend_schema(responses=s.MembershipSerializer(many=True))
    def get(self, request, project_id):
        return Response(s.MembershipSerializer(self.project.memberships.select_related("user"), many=True).data)

    @extend_schema(request=s.MembershipSetSerializer, responses={200: s.MembershipSerializer, 409: OpenApiResponse(description="Would leave no admin")})
    def post(self, request, project_id):
        project = self.project  # the caller's role first: a non-admin learns nothing about usernames
        serializer = s.MembershipSetSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        membership = services.membership_set(
            project=project, user=serializer.validated_data["username"], role=serializer.validated_data["role"]
        )
        return Response(s.MembershipSerializer(membership).data)


class MemberDetail(ProjectScopedMixin, APIView):
    project_role = Role.ADMIN

    @extend_schema(responses={204: None, 404: OpenApiResponse(description="Not a member"),
                              409: OpenApiResponse(description="The last admin")})
    def delete(self, request, project_id, user_id):
        project = self.project
        user = get_user_model().objects.filter(id=user_id).first()
        if user is None or not services.membership_remove(project=project, user=user):
            raise Http404("No such member.")
        return Response(status=status.HTTP_204_NO_CONTENT)


class ImportCreate(ProjectScopedMixin, APIView):
    project_role = Role.ADMIN
    parser_classes = [StrictMultiPartParser]

    @extend_schema(
        request=s.ImportSerializer,
        responses={201: OpenApiResponse(description="Import report"),
                   400: OpenApiResponse(description="Nothing imported; every bad row listed"),
                   413: OpenApiResponse(description="The upload is larger than LABELLOOP_MAX_UPLOAD_BYTES")},
    )
    def post(self, request, project_id):
        project = self.project  # scope check before reading a possibly huge body
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
        limit = settings.LABELLOOP_MAX_UPLOAD_BYTES
        if declared > limit + 64 * 1024:  # room for the multipart envelope
            return Response(
                {"file": [f"upload of {declared} bytes exceeds the limit of {limit} bytes"]},
                status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        serializer = s.ImportSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        upload = serializer.validated_data["file"]
        result = importing.items_import(
            project=project, stream=upload.file, filename=upload.name, mode=serializer.validated_data["mode"]
        )
        return Response(result.as_dict(), status=status.HTTP_201_CREATED if result.committed else status.HTTP_400_BAD_REQUEST)


@extend_schema_view(get=extend_schema(parameters=[s.ItemQuerySerializer]))
class ItemList(ProjectScopedMixin, generics.ListAPIView):
    serializer_class = s.ItemSerializer

    def get_queryset(self):
        query = validated_query(self.request, s.ItemQuerySerializer)
        return selectors.items_for(project=self.project, status=query["status"], external_id=query.get("external_id"),
                                   ordering=query["ordering"])


def _label_keys(project) -> set[str]:
    return set(project.labels.values_list("key", flat=True))


class ItemTable(ProjectScopedMixin, APIView):
    """The data manager's table: filtered, sorted, searched, keyset-paged. The count comes with
    the first page only, exact up to 10,000 and past that an estimate marked as such."""

    @extend_schema(parameters=[s.ItemTableQuerySerializer], responses=s.ItemTablePageSerializer)
    def get(self, request, project_id):
        query = dict(validated_query(request, s.ItemTableQuerySerializer, context={"label_keys": _label_keys(self.project)}))
        sort, cursor, limit = query.pop("sort"), query.pop("cursor", None), query.pop("limit")
        page = item_table.items_table_page(project=self.project, filters=query, sort=sort, cursor=cursor, limit=limit)
        count = None if cursor else item_table.items_table_count(project=self.project, filters=query).as_dict()
        return Response({"results": [item_table.item_row(row, project=self.project) for row in page.rows],
                         "next_cursor": page.next_cursor, "sort": page.sort, "count": count})


class ItemBulk(ProjectScopedMixin, APIView):
    """A bulk action on a selection of items or on every item a filter keeps. Experts may requeue
    and mark for review; deleting needs the admin role; export is any expert's, as an export job."""

    project_role = Role.EXPERT

    @extend_schema(request=s.ItemBulkSerializer, responses={
        200: inline_serializer("ItemBulkDone", {"action": serializers.CharField(), "affected": serializers.IntegerField()}),
        202: s.ExportJobSerializer})
    def post(self, request, project_id):
        serializer = s.ItemBulkSerializer(data=request.data, context={"label_keys": _label_keys(self.project)})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        action = data["action"]
        filters = {"ids": data["ids"]} if "ids" in data else data["filter"]
        if action == s.BulkAction.EXPORT:
            job = exporting.export_create(project=self.project, user=request.user, format=data["format"], table_filters=filters)
            return Response(s.ExportJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)
        if action == s.BulkAction.DELETE and not self.membership.can(Role.ADMIN):
            raise NotAllowed("Deleting items needs the project role 'admin'.")
        items = item_table.items_table_filter(project=self.project, filters=filters)
        run = {s.BulkAction.REQUEUE: services.items_requeue, s.BulkAction.MARK_REVIEW: services.items_mark_for_review,
               s.BulkAction.DELETE: services.items_delete}[action]
        return Response({"action": action, "affected": run(items=items)})


class ItemDetail(ProjectScopedMixin, generics.RetrieveAPIView):
    serializer_class = s.ItemSerializer
    lookup_url_kwarg = "item_id"

    def get_queryset(self):
        return Item.objects.filter(project=self.project)


class QueueNext(ProjectScopedMixin, APIView):
    project_role = Role.EXPERT

    @extend_schema(request=s.QueueNextSerializer, responses={200: s.QueueItemSerializer, 204: None})
    def post(self, request, project_id):
        serializer = s.QueueNextSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        claimed = services.queue_next_with_suggestion(
            project=self.project, user=request.user, exclude=serializer.validated_data["exclude"]
        )
        if claimed is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        item, suggestion = claimed
        return Response(s.QueueItemSerializer(item, context={"suggestion": suggestion}).data)


class QueueRelease(ProjectScopedMixin, APIView):
    project_role = Role.EXPERT

    @extend_schema(request=None, responses={200: inline_serializer("QueueReleased", {"released": serializers.IntegerField()})})
    def post(self, request, project_id):
        return Response({"released": services.queue_release(project=self.project, user=request.user)})


class ItemScopedMixin(ProjectScopedMixin):
    project_role = Role.EXPERT

    @property
    def item(self):
        return selectors.item_get_for_submit(project=self.project, item_id=self.kwargs["item_id"])


HELD_OR_COMPLETE = OpenApiResponse(description="The item is held by another expert, or already has all the labels it needs")


class AnnotationSubmit(ItemScopedMixin, APIView):
    @extend_schema(request=s.AnnotationSubmitSerializer, responses={201: s.AnnotationSerializer, 409: HELD_OR_COMPLETE})
    def post(self, request, project_id, item_id):
        item = self.item  # 404 for an item of another project, whatever the body
        serializer = s.AnnotationSubmitSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        annotation = services.annotation_submit(item=item, user=request.user, **serializer.validated_data)
        return Response(s.AnnotationSerializer(annotation).data, status=status.HTTP_201_CREATED)


class ItemSkip(ItemScopedMixin, APIView):
    @extend_schema(request=s.SkipSerializer, responses={201: s.AnnotationSerializer, 409: HELD_OR_COMPLETE})
    def post(self, request, project_id, item_id):
        item = self.item
        serializer = s.SkipSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        annotation = services.annotation_submit(
            item=item, user=request.user, labels=[], skipped=True, **serializer.validated_data
        )
        return Response(s.AnnotationSerializer(annotation).data, status=status.HTTP_201_CREATED)


@extend_schema_view(get=extend_schema(parameters=[s.AnnotationQuerySerializer]))
class AnnotationList(ProjectScopedMixin, generics.ListAPIView):
    serializer_class = s.AnnotationSerializer

    def get_queryset(self):
        query = validated_query(self.request, s.AnnotationQuerySerializer)
        if query["mine"]:
            return selectors.annotation_history_for(project=self.project, user=self.request.user, limit=50)
        return selectors.annotations_for(project=self.project, item_id=query.get("item"))

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "with_text": True}


class AnnotationDetail(ProjectScopedMixin, APIView):
    """Read any annotation of the project; edit only your own (undo in the labelling screen)."""

    def required_role(self):
        return Role.EXPERT if self.request.method == "PATCH" else Role.VIEWER

    def get_annotation(self, annotation_id, *, own: bool):
        annotations = Annotation.objects.filter(project=self.project).select_related("item__project", "annotator")
        if own:
            annotations = annotations.filter(annotator=self.request.user)
        annotation = annotations.filter(id=annotation_id).first()
        if annotation is None:
            raise Http404("No such annotation in this project.")
        return annotation

    @extend_schema(responses=s.AnnotationSerializer)
    def get(self, request, project_id, annotation_id):
        annotation = self.get_annotation(annotation_id, own=False)
        return Response(s.AnnotationSerializer(annotation, context={"with_text": True}).data)

    @extend_schema(request=s.AnnotationSubmitSerializer, responses={200: s.AnnotationSerializer, 409: HELD_OR_COMPLETE})
    def patch(self, request, project_id, annotation_id):
        annotation = self.get_annotation(annotation_id, own=True)
        serializer = s.AnnotationSubmitSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        annotation = services.annotation_submit(item=annotation.item, user=request.user, **serializer.validated_data)
        return Response(s.AnnotationSerializer(annotation, context={"with_text": True}).data)


class AgreementView(ProjectScopedMixin, APIView):
    @extend_schema(responses={200: s.AgreementSerializer})
    def get(self, request, project_id):
        return Response(selectors.project_agreement(project=self.project))


class ExportListCreate(ProjectScopedMixin, generics.ListAPIView):
    serializer_class = s.ExportJobSerializer

    def get_queryset(self):
        return ExportJob.objects.filter(project=self.project)

    @extend_schema(request=s.ExportCreateSerializer, responses={202: s.ExportJobSerializer})
    def post(self, request, project_id):
        serializer = s.ExportCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        job = exporting.export_create(project=self.project, user=request.user, **serializer.validated_data)
        return Response(s.ExportJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class ExportDetail(ProjectScopedMixin, generics.RetrieveAPIView):
    serializer_class = s.ExportJobSerializer
    lookup_url_kwarg = "export_id"

    def get_queryset(self):
        return ExportJob.objects.filter(project=self.project)


class ExportDownload(ProjectScopedMixin, APIView):
    @extend_schema(responses={(200, "application/octet-stream"): OpenApiResponse(description="The export file (JSONL, CSV or Label Studio JSON)")})
    def get(self, request, project_id, export_id):
        job = ExportJob.objects.filter(project=self.project, id=export_id, status=ExportStatus.DONE).first()
        if job is None or not job.file_path.exists():
            raise Http404("No finished export with this id in this project.")
        filename = f"project-{self.project.id}-{job.created_at:%Y%m%d-%H%M%S}.{job.file_name.rsplit('.', 1)[1]}"
        return FileResponse(open(job.file_path, "rb"), as_attachment=True, filename=filename)
