from rest_framework import serializers

from labeller.models import ActiveLearningState


class ActiveLearningStateSerializer(serializers.ModelSerializer):
    encode_progress = serializers.FloatField(read_only=True)

    class Meta:
        model = ActiveLearningState
        fields = ["encoder_version", "encode_status", "encode_total", "encode_done", "encode_progress", "encode_error",
                  "refresh_requested", "refresh_running", "labels_since_refresh", "last_refresh_at",
                  "last_refresh_seconds", "refresh_error", "head_version", "head_trained_on"]
