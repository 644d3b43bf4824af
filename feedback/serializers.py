from rest_framework import serializers

from core.errors import DomainError

from . import serving_policy
from .models import Alert, ApiToken, FeedbackKind, MonitoringPoint, Scope, ServingPolicy


def _checked(check, value):
    """`check(value)`, its DomainError as this field's error."""
    try:
        return check(value)
    except DomainError as exc:
        raise serializers.ValidationError(exc.message) from exc


class TokenSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["prefix", "name", "scopes", "trusted", "created_at", "revoked_at", "last_used_at"]


class TokenCreatedSerializer(TokenSerializer):
    token = serializers.CharField(help_text="The secret, shown once: only its hash is kept.")
    note = serializers.CharField()

    class Meta(TokenSerializer.Meta):
        fields = TokenSerializer.Meta.fields + ["token", "note"]


class TokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=Scope.choices), allow_empty=False)
    trusted = serializers.BooleanField(default=False)


class ServingPolicySerializer(serializers.ModelSerializer):
    class Meta:
        model = ServingPolicy
        fields = ["abstain_below", "challenger_percent", "shadow", "thresholds", "min_predictions", "webhook_url"]

    def validate_abstain_below(self, value):
        return _checked(serving_policy.abstain_below_check, value)

    def validate_challenger_percent(self, value):
        return _checked(serving_policy.challenger_percent_check, value)

    def validate_thresholds(self, value):
        return _checked(serving_policy.thresholds_check, value)

    def validate_webhook_url(self, value):
        return _checked(serving_policy.webhook_url_check, value)


class MonitoringPointSerializer(serializers.ModelSerializer):
    version = serializers.IntegerField(source="version.number")

    class Meta:
        model = MonitoringPoint
        fields = ["version", "period", "start", "predictions", "metrics", "computed_at"]


class AlertSerializer(serializers.ModelSerializer):
    version = serializers.IntegerField(source="version.number", allow_null=True, default=None)

    class Meta:
        model = Alert
        fields = ["id", "metric", "version", "value", "threshold", "message", "status", "webhook_status", "created_at", "resolved_at"]


# The shapes of predict and feedback, for the OpenAPI contract. The views check bodies by hand (a
# 1,000-event batch in milliseconds, every problem named by its path); these say the same rules.
class PredictItemSerializer(serializers.Serializer):
    data = serializers.DictField(help_text="The item's fields as the project's item schema names them; the text field "
                                           "is a non-empty string.")
    external_id = serializers.CharField(max_length=200, required=False, allow_null=True, allow_blank=True)
    key = serializers.CharField(max_length=200, required=False, allow_null=True, allow_blank=True,
                                help_text="The caller's sticky key for the champion/challenger split.")


class PredictOneSerializer(PredictItemSerializer):
    top_k = serializers.IntegerField(min_value=1, max_value=20, default=3)


class PredictManySerializer(serializers.Serializer):
    items = serializers.ListField(child=PredictItemSerializer(), min_length=1,
                                 help_text="At most LABELLOOP_PREDICT_MAX_ITEMS (256) items; more is a 413.")
    top_k = serializers.IntegerField(min_value=1, max_value=20, default=3)


class TopLabelSerializer(serializers.Serializer):
    label = serializers.CharField()
    p = serializers.FloatField()


class PredictionSerializer(serializers.Serializer):
    prediction_id = serializers.UUIDField(help_text="Send it back with the user's feedback.")
    labels = serializers.ListField(child=serializers.CharField())
    label = serializers.CharField(allow_null=True)
    confidence = serializers.FloatField()
    top = TopLabelSerializer(many=True)
    abstain = serializers.BooleanField(help_text="Confidence below the project's threshold, or out of scope: the item is "
                                                 "queued for experts.")
    out_of_scope = serializers.BooleanField(help_text="The query looks like none of the labels (far from every labelled "
                                                      "example and not clearly one label): abstained, so an expert can add "
                                                      "the missing label.")
    model_version = serializers.IntegerField()
    served_as = serializers.ChoiceField(choices=["champion", "challenger"])
    external_id = serializers.CharField(required=False, help_text="Present when the item had one.")


class PredictionsSerializer(serializers.Serializer):
    predictions = PredictionSerializer(many=True)


class PredictedSpanSerializer(serializers.Serializer):
    start = serializers.IntegerField(help_text="Offset of the span's first character, in Unicode code points.")
    end = serializers.IntegerField(help_text="Offset just past its last character (exclusive), in code points.")
    label = serializers.CharField(help_text="A label key of the project (an entity type).")
    text = serializers.CharField(help_text="The text's slice start..end.")
    confidence = serializers.FloatField(help_text="How sure the model is of this span, 0 to 1.")


class SpanPredictionSerializer(serializers.Serializer):
    """A span project's answer: its spans instead of a label and top-k."""

    prediction_id = serializers.UUIDField(help_text="Send it back with the user's feedback.")
    spans = PredictedSpanSerializer(many=True, help_text="The entities found, by start; empty when there are none.")
    confidence = serializers.FloatField(help_text="The text's confidence: the model's least sure word.")
    abstain = serializers.BooleanField(help_text="Confidence below the project's threshold: the item is queued for experts.")
    out_of_scope = serializers.BooleanField(help_text="Always false: span versions judge no text out of scope.")
    model_version = serializers.IntegerField()
    served_as = serializers.ChoiceField(choices=["champion", "challenger"])
    external_id = serializers.CharField(required=False, help_text="Present when the item had one.")


class SpanPredictionsSerializer(serializers.Serializer):
    predictions = SpanPredictionSerializer(many=True)


class FeedbackEventSerializer(serializers.Serializer):
    prediction_id = serializers.UUIDField(required=False, help_text="A prediction of this project; or send the item's data.")
    kind = serializers.ChoiceField(choices=FeedbackKind.choices)
    label = serializers.CharField(required=False, allow_null=True, allow_blank=True,
                                  help_text="A correction's right label (a label key of the project); no other kind has one. "
                                            "A span project's events carry spans instead.")
    spans = serializers.ListField(child=serializers.DictField(), required=False,
                                  help_text="Span projects, a correction: the user's whole corrected list of spans "
                                            "{start, end, label, text?} (code points; empty: no entities).")
    span = serializers.DictField(required=False, help_text="Span projects, span_wrong: one of the prediction's spans "
                                                         "that is wrong; span_missing: a span it missed.")
    end_user = serializers.CharField(max_length=200, help_text="The pseudonymous id of the product's user.")
    occurred_at = serializers.DateTimeField(help_text="ISO 8601 with a time zone, not in the future.")
    data = serializers.DictField(required=False, allow_null=True, help_text="The item's fields, when there is no prediction_id.")
    external_id = serializers.CharField(max_length=255, required=False, allow_null=True, allow_blank=True)


class FeedbackBatchSerializer(serializers.Serializer):
    events = serializers.ListField(child=FeedbackEventSerializer(), min_length=1,
                                  help_text="At most LABELLOOP_FEEDBACK_MAX_EVENTS (1,000) events; more is a 413.")


class FeedbackAcceptedSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    event_ids = serializers.ListField(child=serializers.IntegerField())
