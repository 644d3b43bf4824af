"""The active-learning API: encoding progress and the last refresh of a project's loop; likely
label errors found on demand."""
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from labeller.api.views import ProjectScopedMixin
from labeller.models import Role

from .label_errors import label_errors_refresh
from .refresh import refresh_request
from .selectors import state_for
from .serializers import ActiveLearningStateSerializer


class ActiveLearningStatus(ProjectScopedMixin, APIView):
    """Encoding progress and the last refresh; POST asks for a refresh now."""

    def required_role(self):
        return Role.EXPERT if self.request.method == "POST" else Role.VIEWER

    @extend_schema(responses=ActiveLearningStateSerializer)
    def get(self, request, project_id):
        return Response(ActiveLearningStateSerializer(state_for(self.project.id)).data)

    @extend_schema(request=None, responses={202: ActiveLearningStateSerializer})
    def post(self, request, project_id):
        refresh_request(project_id=self.project.id)
        return Response(ActiveLearningStateSerializer(state_for(self.project.id)).data, status=status.HTTP_202_ACCEPTED)


class LabelErrorsRun(ProjectScopedMixin, APIView):
    """Look for likely label errors now and flag them in the data manager (experts and admins).
    409 for a span project, 400 while there are too few labels."""

    project_role = Role.EXPERT

    @extend_schema(request=None, responses={200: inline_serializer(
        "LabelErrorsFound", {"flagged": serializers.IntegerField(), "checked": serializers.IntegerField()}),
        400: OpenApiResponse(description="Too few labelled, encoded items to cross-validate"),
        409: OpenApiResponse(description="Not a classification project (span projects have no such flags)")})
    def post(self, request, project_id):
        found = label_errors_refresh(project=self.project)
        return Response({"flagged": found.flagged, "checked": found.checked})
