"""Projects, their labels and members, items, annotations and export jobs."""
from __future__ import annotations

import uuid
from typing import Self

from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone


class TaskType(models.TextChoices):
    SINGLE_LABEL = "single_label", "Single-label classification"
    MULTI_LABEL = "multi_label", "Multi-label classification"
    SPANS = "spans", "Span labelling (named entities)"


class Strategy(models.TextChoices):
    RANDOM = "random", "Random"
    LEAST_CONFIDENCE = "least_confidence", "Least confidence"
    ENTROPY = "entropy", "Prediction entropy"
    MARGIN = "margin", "Breaking ties (margin)"


class SuggestionMode(models.TextChoices):
    PRESELECT = "preselect", "Pre-select the suggested label"
    HIGHLIGHT = "highlight", "Highlight the suggested label"
    OFF = "off", "Show no suggestion"


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    EXPERT = "expert", "Expert"
    VIEWER = "viewer", "Viewer"


# What each role may do, lowest first: a role can do everything the roles before it can.
ROLE_RANK = {Role.VIEWER: 0, Role.EXPERT: 1, Role.ADMIN: 2}


def _default_hold_seconds() -> int:
    return settings.LABELLOOP_DEFAULT_HOLD_SECONDS


class Project(models.Model):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    guidelines = models.TextField(blank=True, help_text="Markdown, shown beside each item.")
    task_type = models.CharField(max_length=20, choices=TaskType.choices, default=TaskType.SINGLE_LABEL)
    # The item schema: the payload fields every item must carry, and the one the model reads.
    text_field = models.CharField(max_length=100, default="text")
    required_fields = models.JSONField(default=list, blank=True)
    # Other fields the predict and feedback APIs accept, with their JSON types:
    # {"channel": "string", "amount": "number"}. A field outside the schema is refused.
    field_types = models.JSONField(default=dict, blank=True)
    # How many different experts must label an item before it is done (overlap for agreement).
    labels_per_item = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1)])
    hold_seconds = models.PositiveIntegerField(default=_default_hold_seconds, validators=[MinValueValidator(10)])
    # Active learning: how the queue is ordered and what the expert is shown.
    strategy = models.CharField(max_length=20, choices=Strategy.choices, default=Strategy.MARGIN)
    diversity = models.BooleanField(default=True, help_text="Cluster each batch so it holds no near-copies.")
    warm_up = models.BooleanField(default=True, help_text=(
        "Single-label projects: until there are as many labels as classes, serve the most typical item "
        "of each cluster no label covers yet, then the strategy."))
    refresh_every = models.PositiveIntegerField(default=10, validators=[MinValueValidator(1)],
                                                help_text="Refit the head and re-rank the pool every this many new labels.")
    eval_share = models.FloatField(default=0.1, help_text="Share of served items drawn at random as the evaluation set.")
    suggestion_mode = models.CharField(max_length=10, choices=SuggestionMode.choices, default=SuggestionMode.HIGHLIGHT)
    # The share of served items whose suggestion is withheld at random, so the annotator page can
    # compare the labels given with and without one (what suggestions do to experts).
    suggestion_holdout = models.FloatField(default=0.0, help_text="Share of served items shown without the suggestion (0–0.5).")
    # Single-label projects: the key of a label that means "none of the other labels". Versions
    # answer it as out of scope and learn from its examples what the project does not serve
    # (ml.out_of_scope); blank: no such label.
    out_of_scope_label = models.CharField(max_length=100, blank=True, help_text=(
        "Single-label projects: the key of the label meaning 'none of the others'; predictions of it are out of scope."))
    # Span labelling: whether two spans of an annotation may share characters (nested entities).
    spans_overlap = models.BooleanField(default=False, help_text="Span projects: allow overlapping spans.")
    base_model_path = models.CharField(max_length=500, blank=True,
                                       help_text="Local path of a Hugging Face encoder; blank for all-MiniLM-L6-v2.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name

    def schema_fields(self) -> list[str]:
        """Every field an item must have: the text field first, then the other required ones."""
        return [self.text_field] + [f for f in self.required_fields if f != self.text_field]


class Label(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="labels")
    key = models.CharField(
        max_length=100,
        validators=[RegexValidator(r"^[A-Za-z0-9_.:-]+$", "Use letters, digits and _ . : - only.")],
        help_text="Stable identifier used in annotations, exports and the API.",
    )
    name = models.CharField(max_length=200)
    color = models.CharField(max_length=7, default="#4f46e5", validators=[RegexValidator(r"^#[0-9a-fA-F]{6}$")])
    shortcut = models.CharField(max_length=1, blank=True)
    order = models.PositiveIntegerField(default=0)
    # Retired: its annotations and exports keep it, new annotations cannot choose it.
    archived = models.BooleanField(default=False)

    class Meta:
        ordering = ["order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "key"], name="label_unique_key_per_project"),
            models.UniqueConstraint(
                fields=["project", "shortcut"], condition=~Q(shortcut=""), name="label_unique_shortcut_per_project"
            ),
        ]

    def __str__(self) -> str:
        return self.key


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.EXPERT)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="membership_unique_user_per_project")]

    def can(self, role: str) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


class ItemStatus(models.TextChoices):
    """The item filters of the item list and of exports: which items a status keeps."""

    ALL = "all", "All items"
    DONE = "done", "Done (has every label it needs)"
    NOT_DONE = "not_done", "Not done"
    LABELLED = "labelled", "Labelled (at least one label)"
    UNLABELLED = "unlabelled", "Unlabelled"


# The experts' majority and the model's prediction are both known and differ.
DISAGREES = ~Q(majority="") & ~Q(predicted="") & ~Q(majority=models.F("predicted"))


class ItemSource(models.TextChoices):
    """How an item came into the project."""

    IMPORT = "import", "Imported"
    PREDICTION = "prediction", "A prediction the model abstained on"
    FEEDBACK = "feedback", "Product feedback"


def label_keys_cell(labels) -> str:
    """Label keys as one sortable, filterable column value: sorted, joined by '|'."""
    return "|".join(sorted(labels))


class Item(models.Model):
    """One thing to label. `data` can be large, so the queue's hot queries never select it."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="items")
    external_id = models.CharField(max_length=255, null=True, blank=True)
    data = models.JSONField()
    # Filled by active learning later; until then every item is 0 and the queue is import order.
    priority = models.FloatField(default=0.0)
    # Submitted, not skipped. Not a small integer: trusted feedback adds a label per event, unbounded.
    annotation_count = models.PositiveIntegerField(default=0)
    is_done = models.BooleanField(default=False)
    held_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    held_until = models.DateTimeField(null=True, blank=True)
    # Drawn at random at import: served at `eval_share` of the queue, never used to fit the model.
    is_eval = models.BooleanField(default=False)
    # A product user said the model is wrong here: an expert's label settles it, ahead of the queue.
    needs_review = models.BooleanField(default=False)
    # The model's suggestion and its explanation, precomputed by the refresh for the top of the queue.
    suggestion = models.JSONField(null=True, blank=True)
    # Set while the import that wrote it is unfinished (SQLite imports commit batch by batch):
    # such an item is not served, and is deleted if its import fails. Cleared when it completes.
    import_id = models.UUIDField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # Denormalised for the data manager's table, so that filtering and sorting a million items
    # never joins and aggregates annotations or the prediction log. Kept up to date by the services
    # that change what they summarise (annotation_submit, the import, feedback routing, predict).
    source = models.CharField(max_length=10, choices=ItemSource.choices, default=ItemSource.IMPORT)
    # The text field's value, written with the item: what full-text search reads (the text field
    # is per project, so no one index expression over `data` serves every project).
    search_text = models.TextField(blank=True, default="", editable=False)
    majority = models.CharField(max_length=200, blank=True, default="", editable=False)  # label_keys_cell()
    agreement = models.FloatField(null=True, blank=True, editable=False)
    labelled_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The last logged prediction of the model for this item (label_keys_cell) and its confidence.
    predicted = models.CharField(max_length=200, blank=True, default="", editable=False)
    confidence = models.FloatField(null=True, blank=True, editable=False)
    # Confident learning thinks the majority label is wrong (active_learning.label_errors):
    # until an expert labels the item again. label_error keeps the verdict (suggested labels,
    # self_confidence, score, computed_at) and, once settled, who re-reviewed it and the outcome.
    likely_mislabelled = models.BooleanField(default=False, editable=False)
    label_error = models.JSONField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "external_id"],
                condition=Q(external_id__isnull=False),
                name="item_unique_external_id_per_project",
            ),
        ]
        indexes = [
            # The expert queue: open items of a project, items under review first, then highest
            # priority, then import order.
            models.Index(
                "project",
                models.F("needs_review").desc(),
                models.F("priority").desc(),
                "id",
                condition=Q(is_done=False),
                name="item_queue_idx",
            ),
            # "Which items does this expert hold right now?"
            models.Index(fields=["held_by", "project"], condition=Q(held_by__isnull=False), name="item_held_idx"),
            # Completing or discarding an unfinished import; empty the rest of the time.
            models.Index(fields=["import_id"], condition=Q(import_id__isnull=False), name="item_unfinished_import_idx"),
            # The data manager's table (labeller.item_table): the first page sorted by a column,
            # or filtered on one, walks one of these in keyset order instead of sorting the project.
            models.Index(fields=["project", "created_at", "id"], name="item_table_created_idx"),
            models.Index(fields=["project", "labelled_at", "id"], name="item_table_labelled_idx"),
            models.Index(fields=["project", "confidence", "id"], name="item_table_confidence_idx"),
            models.Index(fields=["project", "agreement", "id"], name="item_table_agreement_idx"),
            models.Index(fields=["project", "majority", "id"], name="item_table_majority_idx"),
            models.Index(fields=["project", "predicted", "id"], name="item_table_predicted_idx"),
            models.Index(fields=["project", "source", "id"], name="item_table_source_idx"),
            # Rare flags: small partial indexes for "needs review", "in the evaluation set",
            # "experts and the model disagree" and "likely mislabelled".
            models.Index(fields=["project", "id"], condition=Q(needs_review=True), name="item_table_review_idx"),
            models.Index(fields=["project", "id"], condition=Q(is_eval=True), name="item_table_eval_idx"),
            models.Index(fields=["project", "id"], condition=DISAGREES, name="item_table_disagree_idx"),
            models.Index(fields=["project", "id"], condition=Q(likely_mislabelled=True), name="item_table_mislabelled_idx"),
            # The full-text index lives in migrations: a GIN expression index on PostgreSQL, an FTS5
            # table kept by triggers on SQLite (0011_item_table_columns).
        ]

    def text(self) -> str:
        return str(self.data.get(self.project.text_field, ""))

    def save(self, *args, **kwargs):
        # Services that bulk-create items set search_text themselves; this covers create()/save().
        if not self.search_text and isinstance(self.data, dict) and self.project_id:
            self.search_text = search_text_of(self.data, self.project.text_field)
        super().save(*args, **kwargs)


def search_text_of(data: dict, text_field: str) -> str:
    value = data.get(text_field, "") if isinstance(data, dict) else ""
    return value if isinstance(value, str) else str(value)


class AnnotationSource(models.TextChoices):
    EXPERT = "expert", "Expert in the labelling screen or API"
    IMPORT = "import", "Imported with the item"
    FEEDBACK = "feedback", "Feedback from a trusted product source"
    # An expert accepted it in bulk, as like another item (`labelled_from`), without opening it.
    SIMILAR = "similar", "Labelled in bulk as similar to another item"


class Annotation(models.Model):
    """An expert's labels for an item (or a skip). One per expert and item; edits update it."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="annotations")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="annotations")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="annotations"
    )
    labels = models.JSONField(default=list, blank=True)  # label keys
    skipped = models.BooleanField(default=False)
    source = models.CharField(max_length=10, choices=AnnotationSource.choices, default=AnnotationSource.EXPERT)
    lead_time = models.FloatField(null=True, blank=True, help_text="Seconds the expert spent on the item.")
    # What the model suggested on the expert's screen, and whether the expert's labels equal it.
    suggested_labels = models.JSONField(null=True, blank=True)
    suggestion_accepted = models.BooleanField(null=True, blank=True)
    # What the model would have suggested when the project's holdout withheld it from the expert:
    # the baseline against which suggestion_accepted is read (labeller.suggestion_holdout).
    withheld_suggestion = models.JSONField(null=True, blank=True)
    # For source "similar": the item the expert labelled these from. Not indexed: read per annotation.
    labelled_from = models.ForeignKey(Item, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                      db_index=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["item", "annotator"], name="annotation_unique_per_expert_and_item"),
        ]
        indexes = [
            # An expert's recent history (undo / edit) in the labelling screen.
            models.Index(fields=["annotator", "project", "-updated_at"], name="annotation_history_idx"),
        ]


class ExportFormat(models.TextChoices):
    JSONL = "jsonl", "JSON Lines"
    CSV = "csv", "CSV"
    LABEL_STUDIO = "label_studio", "Label Studio JSON"
    CONLL = "conll", "CoNLL (BIO tags), span projects only"


class ExportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ExportJob(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="exports")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    format = models.CharField(max_length=20, choices=ExportFormat.choices)
    # Validated filters: {"status": an ItemStatus of exporting.EXPORT_STATUSES, "min_agreement": float|None}
    filters = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=ExportStatus.choices, default=ExportStatus.QUEUED)
    total = models.PositiveIntegerField(default=0)
    written = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    # What the finished file holds and what it left out, counted as it was written (see
    # exporting.ExportSummary): an export never drops items or skips without saying so.
    summary = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Last sign of life: set when queued, claimed and as rows are written; core.jobs reaps
    # a job whose heartbeat stops (a lost message, a killed worker). `attempts`: times re-sent.
    heartbeat_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]

    @property
    def file_name(self) -> str:
        """Server-chosen, never from user input: the job id and the format's extension."""
        extension = {ExportFormat.JSONL: "jsonl", ExportFormat.CSV: "csv", ExportFormat.LABEL_STUDIO: "json",
                     ExportFormat.CONLL: "conll"}
        return f"{self.id}.{extension[self.format]}"

    @property
    def file_path(self):
        return settings.LABELLOOP_EXPORT_DIR / self.file_name

    def filter_text(self) -> str:
        """The items the job was asked for, as the jobs list shows it: "done, agreement ≥ 0.8"."""
        text = self.filters.get("status") or ItemStatus.ALL
        if self.filters.get("min_agreement") is not None:
            text += f", agreement ≥ {self.filters['min_agreement']:g}"
        return text

    @property
    def items_in_file(self) -> int:
        """Items the file holds (jobs written before the summary existed: the items filtered)."""
        return self.summary.get("items_written", self.total)

    def summary_text(self) -> str:
        """What the finished file holds and left out, in words; empty before it is written."""
        s = self.summary
        if not s:
            return ""
        lines = [f"{_items(s['items_written'])} written."]
        left_out = []
        if s["not_matching_status"]:
            # .get: items added while an "all" export ran count here too, and must not break the page.
            why = _NOT_MATCHING.get(self.filters.get("status"), "outside the filter")
            left_out.append(f"{_items(s['not_matching_status'])} {why}")
        if s["below_min_agreement"]:
            left_out.append(f"{_items(s['below_min_agreement'])} with agreement below "
                            f"{self.filters['min_agreement']:g} (or none)")
        if left_out:
            lines.append(f"Left out: {'; '.join(left_out)}.")
        if s["skipped_annotations"]:
            n = s["skipped_annotations"]
            lines.append(f"{n} skipped annotation{'s' if n != 1 else ''} included, marked as skipped.")
        if s["skipped_only_items_left_out"]:
            n = s["skipped_only_items_left_out"]
            lines.append(f"{_items(n)} only ever skipped {'was' if n == 1 else 'were'} left out.")
        return " ".join(lines)

    @property
    def progress(self) -> float:
        if self.status == ExportStatus.DONE:
            return 1.0
        return self.written / self.total if self.total else 0.0


# Why an item falls outside an export's status filter, as the job's summary says it.
_NOT_MATCHING = {ItemStatus.DONE: "not done", ItemStatus.NOT_DONE: "already done",
                 ItemStatus.LABELLED: "not labelled", ItemStatus.UNLABELLED: "already labelled"}


def _items(n: int) -> str:
    return f"{n} item{'s' if n != 1 else ''}"


class ItemVector(models.Model):
    """An item's embedding under one encoder version, stored as float16 bytes."""

    item = models.OneToOneField(Item, primary_key=True, on_delete=models.CASCADE, related_name="vector")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    encoder_version = models.CharField(max_length=200)
    vector = models.BinaryField()

    class Meta:
        indexes = [
            # The refresh reads every vector of a project under its current encoder.
            models.Index(fields=["project", "encoder_version"], name="itemvector_project_idx"),
        ]


class ItemWordVectors(models.Model):
    """A span project's item as its words under the frozen base encoder: the (n_words x dim)
    float16 matrix of each word's first sub-token state (ml.token_model.encode_words), row i for
    the i-th word of ml.token_model.words_of(the text the model read). The span refresh fits its
    word head on these and scores the pool with them; the item's ItemVector holds its sentence
    vector beside them."""

    item = models.OneToOneField(Item, primary_key=True, on_delete=models.CASCADE, related_name="word_vectors")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    encoder_version = models.CharField(max_length=200)
    n_words = models.PositiveIntegerField()
    vectors = models.BinaryField()

    class Meta:
        indexes = [
            # The span refresh streams every word matrix of a project under its current encoder.
            models.Index(fields=["project", "encoder_version"], name="itemwordvectors_project_idx"),
        ]


class JobStatus(models.TextChoices):
    IDLE = "idle", "Idle"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    FAILED = "failed", "Failed"


class OneRowPerProject:
    """A model keyed by its project (a primary-key OneToOneField): a project has its row from the
    first time anything reads it, with the field defaults."""

    @classmethod
    def for_project(cls, project: Project | int) -> Self:
        """The project's row (a Project or its id), created with the defaults if missing."""
        if isinstance(project, Project):
            row, _ = cls.objects.get_or_create(project=project)
        else:
            row, _ = cls.objects.get_or_create(project_id=project)
        return row


class ActiveLearningState(OneRowPerProject, models.Model):
    """Per project: encoding progress, the refresh lock and the light head it last fitted."""

    project = models.OneToOneField(Project, primary_key=True, on_delete=models.CASCADE, related_name="al_state")
    encoder_version = models.CharField(max_length=200, blank=True)
    encode_status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.IDLE)
    encode_total = models.PositiveIntegerField(default=0)
    encode_done = models.PositiveIntegerField(default=0)
    encode_error = models.TextField(blank=True)
    # Heartbeats and re-sends of the encode and refresh jobs (see core.jobs).
    encode_heartbeat_at = models.DateTimeField(null=True, blank=True)
    encode_attempts = models.PositiveIntegerField(default=0)
    encode_started_at = models.DateTimeField(null=True, blank=True)  # when the current run was planned (its ETA)
    # A refresh is requested by setting `refresh_requested`; a worker claims it by flipping
    # `refresh_running`. Requests made while one runs collapse into a single follow-up run.
    refresh_requested = models.BooleanField(default=False)
    refresh_running = models.BooleanField(default=False)
    refresh_started_at = models.DateTimeField(null=True, blank=True)
    refresh_heartbeat_at = models.DateTimeField(null=True, blank=True)
    refresh_attempts = models.PositiveIntegerField(default=0)
    labels_since_refresh = models.PositiveIntegerField(default=0)
    last_refresh_at = models.DateTimeField(null=True, blank=True)
    last_refresh_seconds = models.FloatField(null=True, blank=True)
    refresh_error = models.TextField(blank=True)
    head = models.BinaryField(null=True, blank=True)  # ml.heads.LinearHead.to_bytes(): numpy arrays, no pickle
    head_version = models.PositiveIntegerField(default=0)
    head_trained_on = models.PositiveIntegerField(default=0)

    @property
    def encode_progress(self) -> float:
        return self.encode_done / self.encode_total if self.encode_total else 0.0


class LabelReliability(OneRowPerProject, models.Model):
    """Per project: the last fit of the consensus estimator (labeller.consensus) over the items
    with two or more labels: each annotator's estimated accuracy, the class prior, and what it was
    fitted on. Written by labeller.consensus.consensus_refresh only; read by everything that
    resolves an item's labels (exports, training, the data manager's majority, the annotator page,
    feedback source reliability)."""

    project = models.OneToOneField(Project, primary_key=True, on_delete=models.CASCADE, related_name="label_reliability")
    # "dawid_skene" (labels only) or "dawid_skene_model_prior" (with the model's out-of-sample
    # probabilities as each item's prior); blank until the first fit.
    method = models.CharField(max_length=40, blank=True)
    computed_at = models.DateTimeField(null=True, blank=True)
    # Submitted annotations of the project when last fitted (or when a fit was claimed): the
    # automatic re-fit after enough new labels compares against it.
    labels_at = models.PositiveIntegerField(default=0)
    items_fitted = models.PositiveIntegerField(default=0)  # items with two or more labels
    classes = models.JSONField(default=list, blank=True)
    class_prior = models.JSONField(default=list, blank=True)
    # {answer key ("user:<id>", "import", "feedback"): {"accuracy": float, "shared": items in the fit}}
    annotators = models.JSONField(default=dict, blank=True)

    @property
    def fitted(self) -> bool:
        return self.computed_at is not None and bool(self.classes)


class ItemConsensus(models.Model):
    """An item's consensus label as the last fit resolved it (with the model's prior where the fit
    had one), valid while the item's answers are the ones it was computed from (`signature`)."""

    item = models.OneToOneField(Item, primary_key=True, on_delete=models.CASCADE, related_name="consensus")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    labels = models.JSONField(default=list)
    confidence = models.FloatField()
    signature = models.CharField(max_length=64)

    class Meta:
        indexes = [
            # Exports and training read every stored consensus of a project at once.
            models.Index(fields=["project"], name="itemconsensus_project_idx"),
        ]


class ChunkStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class EncodeChunk(models.Model):
    """One piece of a project's encode run: the items with ids first_id..last_id that had no
    vector when the run was planned. Any worker process claims a queued chunk by a conditional
    update, beats its heart as it stores vectors and marks it done; a chunk whose worker died is
    queued again by the reaper (active_learning.encoding, docs/active-learning.md). The rows of a
    run stay until the next run is planned: they say who encoded what."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    first_id = models.BigIntegerField()
    last_id = models.BigIntegerField()
    encoder_version = models.CharField(max_length=200)
    status = models.CharField(max_length=10, choices=ChunkStatus.choices, default=ChunkStatus.QUEUED)
    heartbeat_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True)  # the Celery worker that last claimed it
    encoded = models.PositiveIntegerField(default=0)  # vectors it stored

    class Meta:
        indexes = [
            # "Is any chunk of this run still to do?", asked as each chunk finishes.
            models.Index(fields=["project", "status"], name="encodechunk_project_idx"),
            # The reaper's "running chunks with an old heartbeat".
            models.Index(fields=["status", "heartbeat_at"], name="encodechunk_reap_idx"),
        ]
        constraints = [models.CheckConstraint(condition=Q(first_id__lte=models.F("last_id")), name="encodechunk_range")]
