from rest_framework import serializers

from .models import Alert, ApiToken, MonitoringPoint, Scope, ServingPolicy
from .monitoring import DEFAULT_THRESHOLDS


class TokenSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["prefix", "name", "scopes", "trusted", "created_at", "revoked_at", "last_used_at"]


class TokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=Scope.choices), allow_empty=False)
    trusted = serializers.BooleanField(default=False)


class ServingPolicySerializer(serializers.ModelSerializer):
    class Meta:
        model = ServingPolicy
        fields = ["abstain_below", "challenger_percent", "shadow", "thresholds", "min_predictions", "webhook_url"]

    def validate_abstain_below(self, value):
        if not 0 <= value <= 1:
            raise serializers.ValidationError("must be between 0 and 1")
        return value

    def validate_challenger_percent(self, value):
        if value > 100:
            raise serializers.ValidationError("must be between 0 and 100")
        return value

    def validate_thresholds(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("must be an object of {figure: threshold}")
        unknown = sorted(set(value) - set(DEFAULT_THRESHOLDS))
        if unknown:
            raise serializers.ValidationError(f"unknown figure '{unknown[0]}'; known: {', '.join(DEFAULT_THRESHOLDS)}")
        for name, limit in value.items():
            if isinstance(limit, bool) or not isinstance(limit, (int, float)) or limit < 0:
                raise serializers.ValidationError(f"{name}: must be a non-negative number")
        return value

    def validate_webhook_url(self, value):
        from .webhooks import WebhookRefused, webhook_check

        if value:
            try:
                webhook_check(value)
            except WebhookRefused as exc:
                raise serializers.ValidationError(str(exc).partition(": ")[2]) from exc
        return value


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
