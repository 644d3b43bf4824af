"""The active-learning API: encoding progress and the last refresh of a project's loop."""
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from labeller.api.views import ProjectScopedMixin
from labeller.models import Role

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
