from rest_framework import serializers

from ml import gates

from .models import AliasMove, DatasetSnapshot, ModelKind, ModelVersion, PrimaryMetric


class SnapshotSerializer(serializers.ModelSerializer):
    class Meta:
        model = DatasetSnapshot
        fields = ["id", "content_hash", "n_train", "n_validation", "n_evaluation", "label_counts", "source_counts", "created_at"]


class ModelVersionSerializer(serializers.ModelSerializer):
    snapshot = SnapshotSerializer(read_only=True)
    aliases = serializers.SerializerMethodField()
    triggered_by_user = serializers.CharField(source="triggered_by_user.username", default=None, read_only=True, allow_null=True)

    class Meta:
        model = ModelVersion
        fields = ["number", "kind", "status", "aliases", "base_model", "hyperparameters", "code_version", "snapshot",
                  "metrics", "gate", "training_seconds", "examples_per_second", "triggered_by", "triggered_by_user",
                  "progress", "cancel_requested", "error", "checksum", "created_at", "started_at", "finished_at"]

    def get_aliases(self, version) -> list[str]:
        return [alias.name for alias in version.aliases.all()]


class ModelVersionSummarySerializer(ModelVersionSerializer):
    """The list view: metrics without the per-label tables and confusion matrix."""

    metrics = serializers.SerializerMethodField()

    def get_metrics(self, version) -> dict | None:
        if not version.metrics:
            return None
        return {k: version.metrics.get(k) for k in ("n", "accuracy", "macro_f1", "entity_f1", "ece")}


def distinct_kinds(value: list[str]) -> list[str]:
    # ["finetuned"] * 5000 is one fine-tune, not 5,000.
    return list(dict.fromkeys(value))


class RetrainSerializer(serializers.Serializer):
    kinds = serializers.ListField(child=serializers.ChoiceField(choices=ModelKind.choices), required=False, min_length=1,
                                  help_text="Kinds to train, each once (repeats are ignored).")

    def validate_kinds(self, value):
        return distinct_kinds(value)


class PromoteSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    override = serializers.BooleanField(default=False)


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class AliasMoveSerializer(serializers.ModelSerializer):
    from_version = serializers.IntegerField(source="from_version.number", default=None, read_only=True, allow_null=True)
    to_version = serializers.IntegerField(source="to_version.number", default=None, read_only=True, allow_null=True)
    moved_by = serializers.CharField(source="moved_by.username", default=None, read_only=True, allow_null=True)

    class Meta:
        model = AliasMove
        fields = ["name", "from_version", "to_version", "moved_by", "reason", "override", "moved_at"]


class TrainingPolicySerializer(serializers.Serializer):
    primary_metric = serializers.ChoiceField(choices=PrimaryMetric.choices, required=False)
    guardrails = serializers.ListField(
        child=serializers.DictField(), required=False,
        help_text="Objects of type min_eval_items, no_primary_drop, max_recall_drop, min_recall or min_primary "
                  "(docs/registry.md); a new project starts with ml.gates.DEFAULT_GUARDRAILS; [] = none.")
    auto_promote = serializers.BooleanField(required=False)
    kinds = serializers.ListField(child=serializers.ChoiceField(choices=ModelKind.choices), required=False)
    retrain_after_labels = serializers.IntegerField(min_value=0, max_value=1_000_000, required=False)
    schedule = serializers.CharField(required=False, allow_blank=True, allow_null=True,
                                     help_text="Five-field cron expression (UTC); blank removes the schedule.")
    finetune = serializers.DictField(required=False, help_text=(
        "Overrides of the fine-tuned kind's settings (ml.finetune.FineTuneConfig; span projects: "
        "ml.token_finetune.TokenFineTuneConfig), recorded on each fine-tuned version; {} = the defaults."))

    # context: "labels" (the project's label keys) and "task_type" (its TaskType).

    def validate_kinds(self, value):
        return distinct_kinds(value)

    def validate_primary_metric(self, value):
        allowed = self.context["task_type"].primary_metrics
        if value not in allowed:
            raise serializers.ValidationError(
                f"'{value}' is not measured for a {self.context['task_type'].key} project; choose {' or '.join(allowed)}")
        return value

    def validate_finetune(self, value):
        from ml import finetune, token_finetune

        config = token_finetune.TokenFineTuneConfig if self.context["task_type"].key == "spans" else finetune.FineTuneConfig
        problems = finetune.override_problems(config, value)
        if problems:
            raise serializers.ValidationError(problems)
        return value

    def validate_guardrails(self, value):
        problems = gates.validate_guardrails(value, set(self.context["labels"]))
        if problems:
            raise serializers.ValidationError(problems)
        return value

    def validate_schedule(self, value):
        from .schedules import cron_fields

        if value:
            try:
                cron_fields(value)
            except ValueError as exc:
                raise serializers.ValidationError(str(exc)) from exc
        return value or None
