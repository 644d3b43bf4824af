"""Thin API views: validate with a serializer, call one service or selector, shape the answer."""
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import FileResponse, Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import exporting, importing, selectors, services
from ..models import Annotation, ExportJob, ExportStatus, Item, Label, Membership, Role
from . import serializers as s
from .parsers import StrictMultiPartParser

ALWAYS_ALLOWED_PARAMS = {"page", "format"}


def validated_query(request, serializer_class):
    """Validate query parameters; unknown names are refused, so no lookup can be smuggled in."""
    known = set(serializer_class().fields) | ALWAYS_ALLOWED_PARAMS
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise ValidationError({unknown[0]: [f"unknown query parameter; allowed: {', '.join(sorted(known))}"]})
    serializer = serializer_class(data=request.query_params)
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
        project = self.project
        for name, value in serializer.validated_data.items():
            setattr(project, name, value)
        project.save(update_fields=list(serializer.validated_data) or None)
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
        data = serializer.validated_data
        if self.project.labels.filter(key=data["key"]).exists():
            raise ValidationError({"key": [f"label '{data['key']}' already exists in this project"]})
        if data.get("shortcut") and self.project.labels.filter(shortcut=data["shortcut"]).exists():
            raise ValidationError({"shortcut": [f"shortcut '{data['shortcut']}' is already used"]})
        try:
            with transaction.atomic():
                label = Label.objects.create(project=self.project, order=self.project.labels.count(), **data)
        except IntegrityError:  # created by a concurrent request since the checks above: answer as they do
            if self.project.labels.filter(key=data["key"]).exists():
                raise ValidationError({"key": [f"label '{data['key']}' already exists in this project"]})
            raise ValidationError({"shortcut": [f"shortcut '{data['shortcut']}' is already used"]})
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
        items = Item.objects.filter(project=self.project)
        filters = {
            "done": Q(is_done=True),
            "not_done": Q(is_done=False),
            "labelled": Q(annotation_count__gt=0),
            "unlabelled": Q(annotation_count=0),
        }
        if query["status"] in filters:
            items = items.filter(filters[query["status"]])
        if "external_id" in query:
            items = items.filter(external_id=query["external_id"])
        return items.order_by(query["ordering"], "id")


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
        item = services.queue_claim_next(
            project=self.project, user=request.user, exclude=serializer.validated_data["exclude"]
        )
        if item is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(s.QueueItemSerializer(item).data)


class QueueRelease(ProjectScopedMixin, APIView):
    project_role = Role.EXPERT

    @extend_schema(request=None, responses={200: inline_serializer("QueueReleased", {"released": serializers.IntegerField()})})
    def post(self, request, project_id):
        return Response({"released": services.queue_release(project=self.project, user=request.user)})


class ItemScopedMixin(ProjectScopedMixin):
    project_role = Role.EXPERT

    @property
    def item(self):
        try:
            return Item.objects.select_related("project").only(
                "id", "project", "held_by", "held_until", "is_done"
            ).get(project=self.project, id=self.kwargs["item_id"])
        except Item.DoesNotExist:
            raise Http404("No such item in this project.")


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
        annotations = Annotation.objects.filter(project=self.project).select_related("annotator", "item__project")
        if "item" in query:
            annotations = annotations.filter(item_id=query["item"])
        return annotations.order_by("id")

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
