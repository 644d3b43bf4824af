from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from labeller.models import ActiveLearningState

from .selectors import encode_seconds_left


class ActiveLearningStateSerializer(serializers.ModelSerializer):
    encode_progress = serializers.FloatField(read_only=True)
    encode_seconds_left = serializers.SerializerMethodField(
        help_text="Seconds the running encode has left at its rate so far, all workers together; null when none runs")

    class Meta:
        model = ActiveLearningState
        fields = ["encoder_version", "encode_status", "encode_total", "encode_done", "encode_progress", "encode_seconds_left",
                  "encode_error",
                  "refresh_requested", "refresh_running", "labels_since_refresh", "last_refresh_at",
                  "last_refresh_seconds", "refresh_error", "head_version", "head_trained_on"]

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_encode_seconds_left(self, state) -> float | None:
        return encode_seconds_left(state)
