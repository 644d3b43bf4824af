"""The registry API: versions, retraining, promotion, rollback and the training policy.
Reading needs any project role; every change needs the project's admin role."""
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from labeller.api.views import ProjectScopedMixin
from labeller.models import Role

from . import promotion, schedules, training
from . import serializers as s
from .models import ModelVersion


class AdminToChange(ProjectScopedMixin):
    def required_role(self):
        return Role.VIEWER if self.request.method in ("GET", "HEAD", "OPTIONS") else Role.ADMIN


class VersionMixin(AdminToChange):
    def get_version(self) -> ModelVersion:
        version = ModelVersion.objects.filter(project=self.project, number=self.kwargs["number"]).select_related(
            "project", "snapshot").first()
        if version is None:
            raise Http404("No such model version in this project.")
        return version


def refused(exc: Exception):
    field, _, message = str(exc).partition(": ")
    raise ValidationError({field: [message]} if message else {"detail": str(exc)})


class RetrainConflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class VersionListRetrain(AdminToChange, generics.ListAPIView):
    serializer_class = s.ModelVersionSummarySerializer

    def get_queryset(self):
        return ModelVersion.objects.filter(project=self.project).select_related("snapshot", "triggered_by_user").prefetch_related("aliases")

    # A plain list of the versions queued (one per kind), not a page: written as a schema so
    # drf-spectacular does not wrap it in this list view's pagination.
    @extend_schema(request=s.RetrainSerializer, responses={202: OpenApiResponse(
        response={"type": "array", "items": {"$ref": "#/components/schemas/ModelVersionSummary"}},
        description="The versions queued for training, one per kind"),
        409: OpenApiResponse(description="A version of this project is queued or training: retrain when it has "
                                         "finished, or cancel it")})
    def post(self, request, project_id):
        serializer = s.RetrainSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            versions = training.retrain_request(project=self.project, user=request.user, kinds=serializer.validated_data.get("kinds"))
        except training.RetrainBusy as exc:
            raise RetrainConflict(str(exc)) from exc
        except (training.NothingToTrain, ValueError) as exc:
            refused(exc)
        return Response(s.ModelVersionSummarySerializer(versions, many=True).data, status=status.HTTP_202_ACCEPTED)


class VersionDetail(VersionMixin, APIView):
    @extend_schema(responses=s.ModelVersionSerializer)
    def get(self, request, project_id, number):
        return Response(s.ModelVersionSerializer(self.get_version()).data)


class VersionPromote(VersionMixin, APIView):
    @extend_schema(request=s.PromoteSerializer, responses=s.AliasMoveSerializer)
    def post(self, request, project_id, number):
        serializer = s.PromoteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            move = promotion.version_promote(version=self.get_version(), user=request.user, **serializer.validated_data)
        except promotion.PromotionRefused as exc:
            refused(exc)
        return Response(s.AliasMoveSerializer(move).data)


class VersionChallenger(VersionMixin, APIView):
    @extend_schema(request=s.ReasonSerializer, responses=s.AliasMoveSerializer)
    def post(self, request, project_id, number):
        serializer = s.ReasonSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            move = promotion.version_set_challenger(version=self.get_version(), user=request.user, **serializer.validated_data)
        except promotion.PromotionRefused as exc:
            refused(exc)
        return Response(s.AliasMoveSerializer(move).data)


class VersionCancel(VersionMixin, APIView):
    @extend_schema(request=None, responses={202: s.ModelVersionSummarySerializer,
                                            400: OpenApiResponse(description="Only queued or training versions can be cancelled")})
    def post(self, request, project_id, number):
        version = self.get_version()
        if not training.version_cancel(version=version):
            raise ValidationError({"version": [f"v{version.number} is {version.status}; only queued or training versions can be cancelled"]})
        version.refresh_from_db()
        return Response(s.ModelVersionSummarySerializer(version).data, status=status.HTTP_202_ACCEPTED)


class ChampionRollback(AdminToChange, APIView):
    @extend_schema(request=s.ReasonSerializer, responses=s.AliasMoveSerializer)
    def post(self, request, project_id):
        serializer = s.ReasonSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            move = promotion.champion_rollback(project=self.project, user=request.user, **serializer.validated_data)
        except promotion.PromotionRefused as exc:
            refused(exc)
        return Response(s.AliasMoveSerializer(move).data)


class AliasHistory(AdminToChange, generics.ListAPIView):
    serializer_class = s.AliasMoveSerializer

    def get_queryset(self):
        return self.project.alias_moves.select_related("from_version", "to_version", "moved_by")


class TrainingPolicyView(AdminToChange, APIView):
    def _data(self):
        policy = training.policy_for(self.project)
        return {"primary_metric": policy.primary_metric, "guardrails": policy.guardrails, "auto_promote": policy.auto_promote,
                "kinds": policy.retrain_kinds(), "retrain_after_labels": policy.retrain_after_labels,
                "schedule": schedules.schedule_of(self.project)}

    @extend_schema(responses=s.TrainingPolicySerializer)
    def get(self, request, project_id):
        return Response(self._data())

    @extend_schema(request=s.TrainingPolicySerializer, responses=s.TrainingPolicySerializer)
    def patch(self, request, project_id):
        labels = list(self.project.labels.values_list("key", flat=True))
        serializer = s.TrainingPolicySerializer(data=request.data, context={"labels": labels})
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        if "schedule" in data:
            schedules.schedule_set(project=self.project, cron=data.pop("schedule"))
        policy = training.policy_for(self.project)
        for name, value in data.items():
            setattr(policy, name, value)
        policy.save()
        return Response(self._data())
