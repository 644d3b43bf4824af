"""The serving half of the loop: API tokens of product backends, the prediction log, feedback
events, idempotency records, schema-violation counts, monitoring points and alerts."""
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from labeller.models import Item, OneRowPerProject, Project
from models_registry.models import ModelVersion


class Scope(models.TextChoices):
    PREDICT = "predict", "Call the predict API"
    FEEDBACK = "feedback", "Post feedback events"


class ApiToken(models.Model):
    """A product backend's key for one project. Only a SHA-256 of the secret is stored: the
    secret is 32 random bytes, so a fast hash is enough (no dictionary to attack)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, unique=True, help_text="Public part, shown to tell tokens apart.")
    secret_hash = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    # Feedback from a trusted source becomes training data directly; from an untrusted one, a
    # disagreement with the model goes to expert review first.
    trusted = models.BooleanField(default=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


class ServedAs(models.TextChoices):
    CHAMPION = "champion", "Champion"
    CHALLENGER = "challenger", "Challenger"
    SHADOW = "shadow", "Challenger in shadow (not returned)"


class Prediction(models.Model):
    """One answer the predict API gave (or, for shadow rows, computed and kept to itself)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="predictions")
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="predictions")
    served_as = models.CharField(max_length=10, choices=ServedAs.choices)
    token = models.ForeignKey(ApiToken, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    external_id = models.CharField(max_length=255, blank=True)
    caller_key = models.CharField(max_length=200, blank=True, help_text="The sticky routing key the caller sent.")
    data = models.JSONField()
    labels = models.JSONField()
    confidence = models.FloatField()
    top = models.JSONField(help_text="[{label, p}] best first")
    abstain = models.BooleanField(default=False)
    # The version judged the query to belong to none of its labels (ml.out_of_scope); it abstains.
    out_of_scope = models.BooleanField(default=False)
    # The queue item the prediction refers to, once it has one (abstained, or sent to review).
    item = models.ForeignKey(Item, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=False)

    class Meta:
        indexes = [
            # Monitoring reads a project's predictions of one window, per version.
            models.Index(fields=["project", "created_at"], name="prediction_window_idx"),
        ]


class FeedbackKind(models.TextChoices):
    CORRECTION = "correction", "The user gave the right label"
    CONFIRMATION = "confirmation", "The user confirmed the prediction"
    REJECTION = "rejection", "The user said the prediction is wrong"
    # Span projects: one span of the prediction is wrong, or one is missing from it.
    SPAN_WRONG = "span_wrong", "The user said one of the predicted spans is wrong"
    SPAN_MISSING = "span_missing", "The user gave a span the prediction missed"


# Kinds that say the model was wrong whatever it said (a span one names where).
SAYS_WRONG = {FeedbackKind.REJECTION, FeedbackKind.SPAN_WRONG, FeedbackKind.SPAN_MISSING}


class FeedbackStatus(models.TextChoices):
    PENDING = "pending", "Stored, not yet routed"
    AGREES = "agrees", "Agrees with the model; nothing to review"
    TRAINING = "training", "From a trusted source: became training data"
    REVIEW = "review", "Waiting for an expert's review"
    REVIEWED = "reviewed", "An expert decided"
    NO_ITEM = "no_item", "Nothing to review: no item data"
    FAILED = "failed", "Could not be routed: see route_error"


class FeedbackEvent(models.Model):
    """What a product's end user did with a prediction. Stored before the API answers."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="feedback_events")
    token = models.ForeignKey(ApiToken, null=True, blank=True, on_delete=models.SET_NULL, related_name="events")
    # A project member who posted it with their own credentials (no token): a source of its own.
    # Not indexed: it is read per project, and every index is paid on every insert.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                             db_index=False)
    prediction = models.ForeignKey(Prediction, null=True, blank=True, on_delete=models.SET_NULL, related_name="feedback")
    version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    kind = models.CharField(max_length=12, choices=FeedbackKind.choices)
    label = models.CharField(max_length=100, blank=True, help_text="The right label, for a correction.")
    predicted_labels = models.JSONField(default=list, blank=True, help_text="What the model had said.")
    # Span projects: a correction's whole corrected list of spans, or the one span a span_wrong or
    # span_missing event names (as a list of one); null for classification events.
    spans = models.JSONField(null=True, blank=True, help_text="Span projects: the corrected spans, or the span named.")
    data = models.JSONField(null=True, blank=True, help_text="The item, when the event carries it itself.")
    external_id = models.CharField(max_length=255, blank=True)
    end_user = models.CharField(max_length=200, help_text="Pseudonymous id of the product's user.")
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=10, choices=FeedbackStatus.choices, default=FeedbackStatus.PENDING)
    item = models.ForeignKey(Item, null=True, blank=True, on_delete=models.SET_NULL, related_name="feedback_events")
    # Set when an expert reviews the item: did the expert's label agree with this event?
    expert_agrees = models.BooleanField(null=True, blank=True)
    # Why routing failed, for an event set aside (status failed) so the ones after it still route.
    route_error = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            # The router picks up a project's stored, not yet routed events in arrival order.
            models.Index(fields=["project", "id"], condition=Q(status="pending"), name="feedback_pending_idx"),
            models.Index(fields=["project", "occurred_at"], name="feedback_window_idx"),
            # An end user's track record: how often experts agreed with their past feedback.
            models.Index(fields=["project", "end_user"], name="feedback_end_user_idx"),
        ]

    def corrected(self) -> list:
        """A correction's right answer as the project's value: the label, or the spans."""
        return self.spans if self.spans is not None else [self.label]

    def disagrees(self, task_type) -> bool:
        """Does the user say the model was wrong? `task_type`: the project's, which compares values."""
        if self.kind == FeedbackKind.CONFIRMATION:
            return False
        if self.kind in SAYS_WRONG:
            return True
        return task_type.canonical(self.corrected()) != task_type.canonical(self.predicted_labels)

    @property
    def source_name(self) -> str:
        """Who sent it: the token's name, or the member's username."""
        if self.token_id:
            return self.token.name
        return f"{self.user.username} (member)" if self.user_id else "unknown"


class IdempotencyRecord(models.Model):
    """Stripe's Idempotency-Key: the first response to a key is kept and replayed to retries."""

    token = models.ForeignKey(ApiToken, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path and body.")
    completed = models.BooleanField(default=False)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["token", "key"], condition=Q(token__isnull=False), name="idempotency_unique_token_key"),
            models.UniqueConstraint(fields=["user", "key"], condition=Q(user__isnull=False), name="idempotency_unique_user_key"),
        ]


class SchemaViolation(models.Model):
    """Payloads refused for not matching the item schema, counted per token, day, field and problem."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="schema_violations")
    token = models.ForeignKey(ApiToken, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    source = models.CharField(max_length=50, help_text='"token:<id>" or "user:<id>": who sent it.')
    day = models.DateField()
    endpoint = models.CharField(max_length=20)
    field = models.CharField(max_length=200)
    problem = models.CharField(max_length=100)
    count = models.PositiveIntegerField(default=0)
    last_seen_at = models.DateTimeField()

    class Meta:
        ordering = ["-day", "-count"]
        constraints = [
            models.UniqueConstraint(fields=["project", "source", "day", "endpoint", "field", "problem"],
                                    name="violation_unique_bucket"),
        ]


class Period(models.TextChoices):
    HOUR = "hour", "Hour"
    DAY = "day", "Day"


class MonitoringPoint(models.Model):
    """One version's health over one hour or day: written and rewritten by the monitoring job."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="monitoring_points")
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="+")
    period = models.CharField(max_length=4, choices=Period.choices)
    start = models.DateTimeField()
    predictions = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(default=dict)
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["start"]
        constraints = [
            models.UniqueConstraint(fields=["project", "version", "period", "start"], name="monitoring_unique_bucket"),
        ]


class AlertStatus(models.TextChoices):
    OPEN = "open", "Open"
    RESOLVED = "resolved", "Resolved"


class Alert(models.Model):
    """A monitored figure crossed its project's threshold. One open alert per version and metric."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="alerts")
    version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    metric = models.CharField(max_length=50)
    key = models.CharField(max_length=80, help_text="metric and version: at most one open alert per key")
    value = models.FloatField()
    threshold = models.FloatField()
    message = models.TextField()
    status = models.CharField(max_length=10, choices=AlertStatus.choices, default=AlertStatus.OPEN)
    webhook_status = models.CharField(max_length=200, blank=True, help_text="Outcome of the webhook POST.")
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["project", "key"], condition=Q(status="open"), name="alert_one_open_per_key"),
        ]


class ServingPolicy(OneRowPerProject, models.Model):
    """How a project serves predictions, trusts feedback and when monitoring raises an alert."""

    project = models.OneToOneField(Project, primary_key=True, on_delete=models.CASCADE, related_name="serving_policy")
    abstain_below = models.FloatField(default=0.5, help_text="Abstain (ask a person) below this confidence.")
    challenger_percent = models.PositiveSmallIntegerField(default=0, help_text="Share of callers served by the challenger.")
    shadow = models.BooleanField(default=False, help_text="Also score every request with the challenger, unreturned.")
    # {"disagreement_rate": 0.3, "prediction_js": 0.1, "domain_auc": 0.8, "oov_rate_increase": 0.1,
    #  "abstain_rate": 0.5, "out_of_scope_rate": 0.2, "schema_violations_per_day": 10}; a missing key uses the default.
    thresholds = models.JSONField(default=dict, blank=True)
    min_predictions = models.PositiveIntegerField(default=50, help_text="Judge drift only on at least this many.")
    webhook_url = models.URLField(blank=True)
