"""Dataset snapshots, model versions, the champion/challenger aliases and their audit trail."""
from django.conf import settings
from django.db import models
from django.db.models import Q

from labeller.models import OneRowPerProject, Project
from labeller.task_types import task_type_for
from ml.gates import default_guardrails


class ImmutableError(Exception):
    pass


class DatasetSnapshot(models.Model):
    """The training data of a project frozen at one moment; never changed once written."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="snapshots")
    content_hash = models.CharField(max_length=64)
    path = models.CharField(max_length=500, help_text="JSONL file in the artefact store.")
    n_train = models.PositiveIntegerField()
    n_validation = models.PositiveIntegerField()
    n_evaluation = models.PositiveIntegerField()
    label_counts = models.JSONField(help_text="{split: {label: count}}")
    source_counts = models.JSONField(help_text="{source: count}")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["project", "content_hash"], name="snapshot_unique_hash_per_project"),
        ]

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ImmutableError("a dataset snapshot is immutable; create a new one")
        super().save(*args, **kwargs)


class ModelKind(models.TextChoices):
    HEAD = "head", "Head on frozen embeddings"
    FINETUNED = "finetuned", "Fine-tuned transformer"


class VersionStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    TRAINING = "training", "Training"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class Trigger(models.TextChoices):
    ADMIN = "admin", "An admin"
    SCHEDULE = "schedule", "The schedule"
    THRESHOLD = "threshold", "New-label threshold"


class ModelVersion(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="model_versions")
    number = models.PositiveIntegerField()
    kind = models.CharField(max_length=10, choices=ModelKind.choices)
    status = models.CharField(max_length=10, choices=VersionStatus.choices, default=VersionStatus.QUEUED)
    base_model = models.CharField(max_length=500, help_text="Encoder version, or the version it was fine-tuned from.")
    snapshot = models.ForeignKey(DatasetSnapshot, null=True, blank=True, on_delete=models.PROTECT, related_name="versions")
    hyperparameters = models.JSONField(default=dict, blank=True)
    code_version = models.CharField(max_length=100, blank=True)
    metrics = models.JSONField(null=True, blank=True)
    gate = models.JSONField(null=True, blank=True, help_text="{passed, failures: [...]} against the champion")
    training_seconds = models.FloatField(null=True, blank=True)
    examples_per_second = models.FloatField(null=True, blank=True)
    triggered_by = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.ADMIN)
    triggered_by_user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    progress = models.JSONField(default=dict, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Times the reaper re-sent a queued version's lost message.")
    cancel_requested = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    artefact_path = models.CharField(max_length=500, blank=True)
    checksum = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="version_unique_number_per_project"),
            # At most one training run per project at a time: the database holds the rule.
            models.UniqueConstraint(fields=["project"], condition=Q(status="training"), name="version_one_training_per_project"),
        ]

    def __str__(self) -> str:
        return f"v{self.number} ({self.kind})"


class AliasName(models.TextChoices):
    CHAMPION = "champion", "Champion"
    CHALLENGER = "challenger", "Challenger"


class Alias(models.Model):
    """A movable name for a version, as in MLflow's registry."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="aliases")
    name = models.CharField(max_length=20, choices=AliasName.choices)
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="aliases")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="alias_unique_name_per_project")]


class AliasMove(models.Model):
    """Every promotion and rollback: who moved which alias, from where to where, when and why."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="alias_moves")
    name = models.CharField(max_length=20, choices=AliasName.choices)
    from_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    to_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    moved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reason = models.TextField()
    override = models.BooleanField(default=False, help_text="Promoted although a guardrail failed.")
    moved_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-moved_at", "-id"]


class PrimaryMetric(models.TextChoices):
    """Which metric the gate and the learning curve compare; a task type names those it allows
    (TaskType.primary_metrics: classification accuracy or macro-F1, spans entity F1)."""
    ACCURACY = "accuracy", "Accuracy"
    MACRO_F1 = "macro_f1", "Macro-F1"
    ENTITY_F1 = "entity_f1", "Entity F1"


class TrainingPolicy(OneRowPerProject, models.Model):
    """How a project retrains and what a version must show to be promoted."""

    project = models.OneToOneField(Project, primary_key=True, on_delete=models.CASCADE, related_name="training_policy")
    primary_metric = models.CharField(max_length=20, choices=PrimaryMetric.choices, default=PrimaryMetric.ACCURACY)
    # [{"type": "min_recall", "label": "lost_card", "value": 0.9},
    #  {"type": "max_recall_drop", "value": 0.02}, {"type": "min_primary", "value": 0.8}]; see ml.gates.
    # A new project starts with ml.gates.DEFAULT_GUARDRAILS; an empty list means no guardrails.
    guardrails = models.JSONField(default=default_guardrails, blank=True)
    auto_promote = models.BooleanField(default=False)
    kinds = models.JSONField(default=list, blank=True, help_text='Kinds a retrain produces; empty = ["head", "finetuned"].')
    retrain_after_labels = models.PositiveIntegerField(default=0, help_text="Retrain after this many new labels; 0 = off.")
    labels_at_last_retrain = models.PositiveIntegerField(default=0)
    finetune = models.JSONField(default=dict, blank=True, help_text="Overrides of ml.finetune.FineTuneConfig.")
    validation_share = models.FloatField(default=0.1)

    @classmethod
    def for_project(cls, project: Project | int) -> "TrainingPolicy":
        """The project's policy, created on first read with its task type's default primary metric."""
        if not isinstance(project, Project):
            project = Project.objects.get(id=project)
        row, _ = cls.objects.get_or_create(project=project, defaults={"primary_metric": task_type_for(project).primary_metrics[0]})
        return row

    def retrain_kinds(self) -> list[str]:
        return self.kinds or [ModelKind.HEAD, ModelKind.FINETUNED]
