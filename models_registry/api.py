"""The registry API: versions, retraining, promotion, rollback and the training policy.
Reading needs any project role; every change needs the project's admin role."""
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from labeller.api.views import AdminToChange

from . import promotion, training, training_policy
from . import serializers as s
from .models import ModelVersion


class VersionMixin(AdminToChange):
    def get_version(self) -> ModelVersion:
        version = ModelVersion.objects.filter(project=self.project, number=self.kwargs["number"]).select_related(
            "project", "snapshot").first()
        if version is None:
            raise Http404("No such model version in this project.")
        return version


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
        versions = training.retrain_request(project=self.project, user=request.user, kinds=serializer.validated_data.get("kinds"))
        return Response(s.ModelVersionSummarySerializer(versions, many=True).data, status=status.HTTP_202_ACCEPTED)


class VersionDetail(VersionMixin, APIView):
    @extend_schema(responses=s.ModelVersionSerializer)
    def get(self, request, project_id, number):
        return Response(s.ModelVersionSerializer(self.get_version()).data)


class VersionPromote(VersionMixin, APIView):
    @extend_schema(request=s.PromoteSerializer, responses={
        200: s.AliasMoveSerializer,
        409: OpenApiResponse(description="The version is already the champion: nothing moves")})
    def post(self, request, project_id, number):
        serializer = s.PromoteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        move = promotion.version_promote(version=self.get_version(), user=request.user, **serializer.validated_data)
        return Response(s.AliasMoveSerializer(move).data)


class VersionChallenger(VersionMixin, APIView):
    @extend_schema(request=s.ReasonSerializer, responses=s.AliasMoveSerializer)
    def post(self, request, project_id, number):
        serializer = s.ReasonSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        move = promotion.version_set_challenger(version=self.get_version(), user=request.user, **serializer.validated_data)
        return Response(s.AliasMoveSerializer(move).data)


class VersionCancel(VersionMixin, APIView):
    @extend_schema(request=None, responses={202: s.ModelVersionSummarySerializer,
                                            400: OpenApiResponse(description="Only queued or training versions can be cancelled")})
    def post(self, request, project_id, number):
        version = self.get_version()
        training.version_cancel_or_refuse(version=version)
        version.refresh_from_db()
        return Response(s.ModelVersionSummarySerializer(version).data, status=status.HTTP_202_ACCEPTED)


class ChampionRollback(AdminToChange, APIView):
    @extend_schema(request=s.ReasonSerializer, responses=s.AliasMoveSerializer)
    def post(self, request, project_id):
        serializer = s.ReasonSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        move = promotion.champion_rollback(project=self.project, user=request.user, **serializer.validated_data)
        return Response(s.AliasMoveSerializer(move).data)


class AliasHistory(AdminToChange, generics.ListAPIView):
    serializer_class = s.AliasMoveSerializer

    def get_queryset(self):
        return self.project.alias_moves.select_related("from_version", "to_version", "moved_by")


class TrainingPolicyView(AdminToChange, APIView):
    @extend_schema(responses=s.TrainingPolicySerializer)
    def get(self, request, project_id):
        return Response(training_policy.training_policy_read(project=self.project))

    @extend_schema(request=s.TrainingPolicySerializer, responses=s.TrainingPolicySerializer)
    def patch(self, request, project_id):
        serializer = s.TrainingPolicySerializer(data=request.data, context=training_policy.policy_context(project=self.project))
        serializer.is_valid(raise_exception=True)
        return Response(training_policy.training_policy_update(project=self.project, **serializer.validated_data))
