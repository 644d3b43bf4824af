"""The product-facing API (predict, feedback) and its admin side (tokens, serving policy,
monitoring, the review queue).

Product backends call predict and feedback with a project token (`Authorization: Bearer ll_…`),
which needs the matching scope; project members may call them too (expert role or higher).
Bodies are checked by hand rather than with nested serializers: a 1,000-event batch is checked in
a few milliseconds, and every problem is reported by its path (`events[12].label`).
"""
from __future__ import annotations

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404
from drf_spectacular.utils import (
    OpenApiExample, OpenApiParameter, OpenApiResponse, PolymorphicProxySerializer, extend_schema, inline_serializer,
)
from knox import auth as knox_auth
from rest_framework import authentication, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from core.enqueue import enqueue_on_commit
from labeller import selectors as labeller_selectors
from labeller.api.views import AdminToChange, ProjectScopedMixin
from labeller.models import Role

from . import idempotency, ingest, predicting, selectors, serving_policy, tokens
from . import serializers as s
from .models import ApiToken, Scope
from .schema import ItemSchema, check_item_data
from .violations import violations_record


def unprocessable(errors: dict) -> Response:
    return Response(errors, status=status.HTTP_422_UNPROCESSABLE_ENTITY)


THROTTLED = OpenApiResponse(description="The project token's rate (LABELLOOP_TOKEN_RATE) is spent; retry after Retry-After")
PREDICT_REQUEST = PolymorphicProxySerializer(
    component_name="Predict", serializers=[s.PredictOneSerializer, s.PredictManySerializer], resource_type_field_name=None)
PREDICT_RESPONSE = PolymorphicProxySerializer(
    component_name="PredictAnswer", serializers=[s.PredictionSerializer, s.PredictionsSerializer, s.SpanPredictionSerializer,
                                                 s.SpanPredictionsSerializer], resource_type_field_name=None)
FEEDBACK_REQUEST = PolymorphicProxySerializer(
    component_name="Feedback", serializers=[s.FeedbackEventSerializer, s.FeedbackBatchSerializer],
    resource_type_field_name=None)


class ProductEndpoint(APIView):
    """Resolves the project for a project token (with `scope`) or a member (expert or higher)."""

    scope: str
    authentication_classes = [tokens.ProjectTokenAuthentication, knox_auth.TokenAuthentication,
                              authentication.SessionAuthentication]
    throttle_classes = [tokens.ProjectTokenThrottle]

    def caller_project(self, project_id: int):
        if isinstance(self.request.auth, ApiToken):
            token = self.request.auth
            if token.project_id != project_id:
                raise Http404("No such project.")  # another project's token learns nothing
            if not token.has_scope(self.scope):
                raise PermissionDenied(f"scope: this token lacks the '{self.scope}' scope")
            return token.project, token
        project, _ = labeller_selectors.project_get_for(user=self.request.user, project_id=project_id, role=Role.EXPERT)
        return project, self.request.user


class Predict(ProductEndpoint):
    scope = Scope.PREDICT

    @extend_schema(
        request=PREDICT_REQUEST,
        examples=[OpenApiExample("one item", value={"data": {"text": "my card has not arrived"}, "key": "user-42"},
                                 request_only=True),
                  OpenApiExample("many", value={"items": [{"data": {"text": "lost my card"}, "external_id": "t-1"}]},
                                 request_only=True)],
        responses={200: PREDICT_RESPONSE,
                   409: OpenApiResponse(description="The project has no champion model to serve yet"),
                   413: OpenApiResponse(description="More than LABELLOOP_PREDICT_MAX_ITEMS items"),
                   422: OpenApiResponse(description="An item breaks the project's item schema; each problem by its path"),
                   429: THROTTLED},
        description="Label(s), confidence, top-k, model version and a prediction_id per item; abstain when unsure. "
                    "A span project answers each item's spans (code-point offsets, text, label, confidence) and the "
                    "text's confidence instead of label(s) and top-k.",
    )
    def post(self, request, project_id):
        project, caller = self.caller_project(project_id)
        body = request.data
        if not isinstance(body, dict):
            return unprocessable({"detail": ["the body must be a JSON object"]})
        single = "items" not in body
        raw_items = [body] if single else body["items"]
        if not isinstance(raw_items, list) or not raw_items:
            return unprocessable({"items": ["must be a non-empty list of items"]})
        limit = settings.LABELLOOP_PREDICT_MAX_ITEMS
        if len(raw_items) > limit:
            return Response({"items": [f"at most {limit} items per request, got {len(raw_items)}"]},
                            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        top_k = body.get("top_k", 3)
        if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= 20:
            return unprocessable({"top_k": ["must be an integer from 1 to 20"]})
        schema = ItemSchema.for_project(project)
        items, errors, violations = [], {}, []
        if not single:  # the batch is {items, top_k}: a misspelt option is refused, never ignored
            for name in sorted(set(body) - {"items", "top_k"}):
                errors[name] = ["unknown field; allowed: items, top_k"]
        allowed = {"data", "external_id", "key"} | ({"top_k"} if single else set())
        for i, raw in enumerate(raw_items):
            path = "" if single else f"items[{i}]."
            if not isinstance(raw, dict):
                errors[f"items[{i}]"] = ["must be an object"]
                continue
            for name in sorted(set(raw) - allowed):
                errors[f"{path}{name}"] = [f"unknown field; allowed: {', '.join(sorted(allowed))}"]
            found = check_item_data(schema, raw.get("data"), f"{path}data")
            violations.extend(found)
            for v in found:
                errors.setdefault(v.field, []).append(v.message)
            for name in ("external_id", "key"):
                value = raw.get(name)
                if value is not None and (not isinstance(value, str) or len(value) > 200):
                    errors[f"{path}{name}"] = ["must be a string of at most 200 characters"]
            items.append(raw)
        if errors:
            violations_record(project=project, caller=caller, endpoint="predict", violations=violations)
            return unprocessable(errors)
        answers = predicting.predict(project=project, items=items, caller=caller, top_k=top_k)
        return Response(answers[0] if single else {"predictions": answers})


class Feedback(ProductEndpoint):
    scope = Scope.FEEDBACK

    @extend_schema(
        request=FEEDBACK_REQUEST,
        parameters=[OpenApiParameter(idempotency.HEADER, str, OpenApiParameter.HEADER, required=False,
                                     description="Retries with the same key get the first response back.")],
        examples=[OpenApiExample("a correction", value={
            "prediction_id": "…", "kind": "correction", "label": "lost_or_stolen_card",
            "end_user": "u-7f3a", "occurred_at": "2026-11-25T10:00:00Z"}, request_only=True),
                  OpenApiExample("a span project's correction", value={
                      "prediction_id": "…", "kind": "correction", "end_user": "u-7f3a", "occurred_at": "2026-11-25T10:00:00Z",
                      "spans": [{"start": 0, "end": 12, "label": "PER", "text": "Donald Trump"},
                                {"start": 32, "end": 42, "label": "LOC"}]}, request_only=True)],
        responses={201: s.FeedbackAcceptedSerializer,
                   409: OpenApiResponse(description="A request with this Idempotency-Key is still in progress"),
                   413: OpenApiResponse(description="More than LABELLOOP_FEEDBACK_MAX_EVENTS events"),
                   422: OpenApiResponse(description="An event is invalid (each problem by its path), or the "
                                                    "Idempotency-Key was used for a different request"),
                   429: THROTTLED},
        description="One event, or {\"events\": [...]} up to 1,000. Stored before the answer; all or nothing.",
    )
    def post(self, request, project_id):
        project, caller = self.caller_project(project_id)
        body = request.data
        single = isinstance(body, dict) and "events" not in body
        events = [body] if single else body.get("events") if isinstance(body, dict) else None
        if not isinstance(events, list) or not events:
            return unprocessable({"events": ["send one event object, or {\"events\": [...]} with at least one"]})
        limit = settings.LABELLOOP_FEEDBACK_MAX_EVENTS
        if len(events) > limit:
            return Response({"events": [f"at most {limit} events per request, got {len(events)}"]},
                            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        by_token = isinstance(caller, ApiToken)
        checked = ingest.events_check(project=project, events=events, token=caller if by_token else None,
                                      user=None if by_token else caller)
        if checked.errors:
            violations_record(project=project, caller=caller, endpoint="feedback", violations=checked.violations)
            return unprocessable(checked.errors)

        def store() -> idempotency.Outcome:
            stored = ingest.events_store(project=project, events=checked.events)
            return idempotency.Outcome(status.HTTP_201_CREATED, {"accepted": len(stored), "event_ids": [e.id for e in stored]})

        key = request.headers.get(idempotency.HEADER)
        if key is None:
            with transaction.atomic():
                outcome = store()
        else:
            outcome = idempotency.run_once(
                caller=caller, key=key, work=store,
                request_fingerprint=idempotency.fingerprint(request.method, request.path, request.body))
        response = Response(outcome.body, status=outcome.status)
        if outcome.replayed:
            response["Idempotent-Replayed"] = "true"
        return response


class TokenListCreate(ProjectScopedMixin, APIView):
    project_role = Role.ADMIN

    @extend_schema(responses=s.TokenSerializer(many=True))
    def get(self, request, project_id):
        return Response(s.TokenSerializer(self.project.api_tokens.all(), many=True).data)

    @extend_schema(request=s.TokenCreateSerializer, responses={201: s.TokenCreatedSerializer})
    def post(self, request, project_id):
        serializer = s.TokenCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token, plain = tokens.token_create(project=self.project, user=request.user, **serializer.validated_data)
        return Response({**s.TokenSerializer(token).data, "token": plain,
                         "note": "Store this token now: only its hash is kept."}, status=status.HTTP_201_CREATED)


class TokenRevoke(ProjectScopedMixin, APIView):
    project_role = Role.ADMIN

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, project_id, prefix):
        token = ApiToken.objects.filter(project=self.project, prefix=prefix).first()
        if token is None:
            raise Http404("No such token in this project.")
        tokens.token_revoke(token=token)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ServingPolicyView(AdminToChange, APIView):
    @extend_schema(responses=s.ServingPolicySerializer)
    def get(self, request, project_id):
        return Response(s.ServingPolicySerializer(predicting.serving_policy_for(self.project)).data)

    @extend_schema(request=s.ServingPolicySerializer, responses=s.ServingPolicySerializer)
    def patch(self, request, project_id):
        policy = predicting.serving_policy_for(self.project)
        serializer = s.ServingPolicySerializer(policy, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        policy = serving_policy.serving_policy_update(policy=policy, **serializer.validated_data)
        return Response(s.ServingPolicySerializer(policy).data)


class Monitoring(AdminToChange, APIView):
    @extend_schema(parameters=[OpenApiParameter("period", str, enum=["hour", "day"], default="hour")],
                   responses={200: {"type": "object"}})
    def get(self, request, project_id):
        period = request.query_params.get("period", "hour")
        if period not in ("hour", "day"):
            raise ValidationError({"period": ["must be hour or day"]})
        overview = selectors.monitoring_overview(project=self.project, period=period)
        return Response({
            **overview,
            "points": s.MonitoringPointSerializer(overview["points"], many=True).data,
            "alerts": s.AlertSerializer(overview["alerts"], many=True).data,
        })

    @extend_schema(request=None, responses={202: inline_serializer("MonitoringQueued", {"queued": serializers.BooleanField()})})
    def post(self, request, project_id):
        """Recompute now (admins), instead of waiting for the periodic job."""
        from .tasks import monitor_one

        project_id = self.project.id  # resolved (and the role checked) now, not in the callback
        enqueue_on_commit(monitor_one, project_id)
        return Response({"queued": True}, status=status.HTTP_202_ACCEPTED)


class ReviewQueue(ProjectScopedMixin, APIView):
    project_role = Role.EXPERT

    @extend_schema(operation_id="projects_review_list", responses={200: {"type": "object"}})
    def get(self, request, project_id):
        return Response(selectors.review_queue(project=self.project))


class ReviewDetail(ProjectScopedMixin, APIView):
    """The review panel beside an item: the model's answer and the users' feedback side by side."""

    project_role = Role.EXPERT

    @extend_schema(operation_id="projects_review_item_retrieve", responses={200: {"type": "object"}})
    def get(self, request, project_id, item_id):
        return Response(selectors.review_item_get(project=self.project, item_id=item_id))
