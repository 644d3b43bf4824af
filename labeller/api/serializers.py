"""Explicit input and output shapes of the labelling API."""
import math
import re

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.errors import DomainError

from .. import item_table, selectors, validators
from ..exporting import EXPORT_STATUSES
from ..importing import ImportMode
from .fields import IdField, WholeNumberField
from ..models import (
    Annotation, ExportFormat, ExportJob, Item, ItemSource, ItemStatus, Label, Membership, Project, Role, Strategy,
    SuggestionMode, TaskType,
)


# The JSON types an item field can be declared with (feedback.schema checks payloads against them).
FIELD_TYPES = ["string", "number", "integer", "boolean"]
FIELD_NAME = re.compile(r"^[A-Za-z0-9_]{1,100}$")
HOLDOUT_HELP = ("Share of served items shown without the model's suggestion (0–0.5), to measure on the annotator "
                "page what suggestions do to experts.")
OUT_OF_SCOPE_HELP = ("Single-label projects: the key of the label meaning 'none of the other labels' (blank: none). A "
                     "version learns from its examples what the project does not serve and answers it as out of scope "
                     "(docs/out-of-scope.md).")
WARM_UP_HELP = ("Single-label projects: until there are as many labels as classes, serve the most typical item of each "
                "cluster no label covers yet, then the strategy (docs/active-learning.md, \"Warm-up\").")


class LabelSerializer(serializers.ModelSerializer):
    class Meta:
        model = Label
        fields = ["key", "name", "color", "shortcut", "archived"]
        # Archived labels keep their annotations; new annotations cannot choose them.
        read_only_fields = ["archived"]


class LabelCreateSerializer(serializers.Serializer):
    key = serializers.RegexField(r"^[A-Za-z0-9_.:-]{1,100}$", error_messages={"invalid": "use 1-100 letters, digits, _ . : -"})
    name = serializers.CharField(max_length=200)
    color = serializers.RegexField(r"^#[0-9a-fA-F]{6}$", required=False, error_messages={"invalid": "use #rrggbb"})
    shortcut = serializers.CharField(max_length=1, required=False, allow_blank=True, trim_whitespace=False)

    def validate_shortcut(self, value):
        if value and (not value.isprintable() or value.isspace()):
            raise serializers.ValidationError("must be one printable, non-space character")
        return value


class ProjectSerializer(serializers.ModelSerializer):
    labels = LabelSerializer(many=True, read_only=True)
    role = serializers.SerializerMethodField()
    # Counted for the project list and detail; null where the answer does not count them.
    item_total = serializers.IntegerField(read_only=True, default=None, allow_null=True)
    item_done = serializers.IntegerField(read_only=True, default=None, allow_null=True)

    class Meta:
        model = Project
        fields = [
            "id", "name", "description", "guidelines", "task_type", "text_field", "required_fields",
            "field_types", "labels_per_item", "hold_seconds", "strategy", "diversity", "warm_up", "refresh_every",
            "eval_share", "suggestion_mode", "suggestion_holdout", "base_model_path", "spans_overlap", "out_of_scope_label",
            "labels", "role",
            "item_total", "item_done", "created_at",
        ]

    def get_role(self, project) -> str | None:
        return self.context.get("roles", {}).get(project.id)


class ProjectCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    guidelines = serializers.CharField(required=False, allow_blank=True, default="")
    task_type = serializers.ChoiceField(choices=TaskType.choices, default=TaskType.SINGLE_LABEL)
    text_field = serializers.RegexField(r"^[A-Za-z0-9_]{1,100}$", default="text")
    required_fields = serializers.ListField(
        child=serializers.RegexField(r"^[A-Za-z0-9_]{1,100}$"), required=False, default=list
    )
    field_types = serializers.DictField(
        child=serializers.ChoiceField(choices=FIELD_TYPES), required=False, default=dict,
        help_text="Other item fields with their JSON types, e.g. {\"channel\": \"string\"}; the text field is always a string.",
    )
    labels_per_item = serializers.IntegerField(min_value=1, max_value=20, default=1)
    hold_seconds = serializers.IntegerField(min_value=10, max_value=86400, default=settings.LABELLOOP_DEFAULT_HOLD_SECONDS)
    strategy = serializers.ChoiceField(choices=Strategy.choices, default=Strategy.MARGIN)
    diversity = serializers.BooleanField(default=True)
    warm_up = serializers.BooleanField(default=True, help_text=WARM_UP_HELP)
    refresh_every = serializers.IntegerField(min_value=1, max_value=10000, default=10)
    eval_share = serializers.FloatField(min_value=0, max_value=0.5, default=0.1)
    suggestion_mode = serializers.ChoiceField(choices=SuggestionMode.choices, default=SuggestionMode.HIGHLIGHT)
    suggestion_holdout = serializers.FloatField(min_value=0, max_value=0.5, default=0.0, help_text=HOLDOUT_HELP)
    base_model_path = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    spans_overlap = serializers.BooleanField(default=False, help_text="Span projects: allow overlapping spans.")
    out_of_scope_label = serializers.CharField(max_length=100, required=False, allow_blank=True, default="",
                                               help_text=OUT_OF_SCOPE_HELP)
    labels = LabelCreateSerializer(many=True, allow_empty=False)

    def validate_base_model_path(self, value):
        return validate_model_path(value)

    def validate_field_types(self, types):
        for name in types:
            if not FIELD_NAME.fullmatch(name):
                raise serializers.ValidationError(f"'{name[:100]}' is not a field name: use 1-100 letters, digits, _")
        return types

    def validate(self, data):
        if data.get("field_types", {}).get(data["text_field"], "string") != "string":
            raise serializers.ValidationError({"field_types": [f"the text field '{data['text_field']}' is always a string"]})
        return data

    def validate_labels(self, labels):
        keys = [label["key"] for label in labels]
        if len(set(keys)) != len(keys):
            raise serializers.ValidationError("label keys must be unique")
        # Case aside: the labelling screen matches shortcuts ignoring case.
        shortcuts = [label["shortcut"].lower() for label in labels if label.get("shortcut")]
        if len(set(shortcuts)) != len(shortcuts):
            raise serializers.ValidationError("label shortcuts must be unique")
        return labels


class ProjectUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    guidelines = serializers.CharField(required=False, allow_blank=True)
    labels_per_item = serializers.IntegerField(min_value=1, max_value=20, required=False)
    hold_seconds = serializers.IntegerField(min_value=10, max_value=86400, required=False)
    strategy = serializers.ChoiceField(choices=Strategy.choices, required=False)
    diversity = serializers.BooleanField(required=False)
    warm_up = serializers.BooleanField(required=False, help_text=WARM_UP_HELP)
    refresh_every = serializers.IntegerField(min_value=1, max_value=10000, required=False)
    eval_share = serializers.FloatField(min_value=0, max_value=0.5, required=False)
    suggestion_mode = serializers.ChoiceField(choices=SuggestionMode.choices, required=False)
    suggestion_holdout = serializers.FloatField(min_value=0, max_value=0.5, required=False, help_text=HOLDOUT_HELP)
    base_model_path = serializers.CharField(max_length=500, required=False, allow_blank=True)
    spans_overlap = serializers.BooleanField(required=False)
    out_of_scope_label = serializers.CharField(max_length=100, required=False, allow_blank=True, help_text=OUT_OF_SCOPE_HELP)

    def validate_base_model_path(self, value):
        return validate_model_path(value)


def validate_model_path(value: str) -> str:
    """A local Hugging Face model folder with safetensors weights (never a pickle), or blank: the
    bundled base model, or a folder inside LABELLOOP_BASE_MODELS_DIR, never the artefact folder
    (another project's fine-tuned version would bring its labels). Stored resolved, so the folder
    checked is the folder loaded; a path that is not allowed gets one message, whether or not it
    exists, so the field is no oracle for the server's files."""
    import os
    from pathlib import Path

    from ml.encoder import default_model_path

    if not value:
        return ""
    path = Path(value)
    if not path.is_absolute() or ".." in path.parts:
        raise serializers.ValidationError("must be an absolute path without '..'")
    real = Path(os.path.realpath(path))  # symlinks followed: a link in the folder cannot point out of it

    def inside(folder) -> bool:
        root = Path(os.path.realpath(folder))
        return real != root and real.is_relative_to(root)

    models_dir = settings.LABELLOOP_BASE_MODELS_DIR
    allowed = real == Path(os.path.realpath(default_model_path())) or (bool(models_dir) and inside(models_dir))
    if not allowed or inside(settings.LABELLOOP_ARTEFACT_DIR):
        raise serializers.ValidationError("must be the bundled base model or a folder inside LABELLOOP_BASE_MODELS_DIR")
    if not (real / "config.json").is_file() or not any(real.glob("*.safetensors")):
        raise serializers.ValidationError("must be a folder with config.json and .safetensors weights")
    return str(real)


class MembershipSerializer(serializers.ModelSerializer):
    user_id = serializers.IntegerField(read_only=True, help_text="For DELETE /api/projects/<id>/members/<user_id>/.")
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Membership
        fields = ["user_id", "username", "role"]


class MembershipSetSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=254, help_text="The user's username, or the e-mail address of exactly one user.")
    role = serializers.ChoiceField(choices=Role.choices)

    def validate_username(self, value):
        try:
            return selectors.user_find_for_invite(identifier=value)
        except DomainError as exc:
            raise serializers.ValidationError(exc.message) from exc


class ImportSerializer(serializers.Serializer):
    file = serializers.FileField()
    mode = serializers.ChoiceField(choices=ImportMode.CHOICES, default=ImportMode.ATOMIC)

    def validate_file(self, upload):
        try:
            validators.upload_size_check(size=upload.size)
        except DomainError as exc:
            raise serializers.ValidationError(exc.message) from exc
        return upload


class ItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = Item
        fields = ["id", "external_id", "data", "priority", "annotation_count", "is_done", "created_at"]


class ItemQuerySerializer(serializers.Serializer):
    """The only filters and orderings the item list accepts (no free-form lookups)."""

    ORDERINGS = ["id", "-id", "priority", "-priority", "created_at", "-created_at"]
    status = serializers.ChoiceField(choices=ItemStatus.values, default=ItemStatus.ALL.value)
    external_id = serializers.CharField(required=False, max_length=255)
    ordering = serializers.ChoiceField(choices=ORDERINGS, default="id")
    page = WholeNumberField(required=False, min_value=1)


class QueueNextSerializer(serializers.Serializer):
    exclude = serializers.ListField(child=IdField(), required=False, default=list, max_length=10)


class QueueItemSerializer(serializers.ModelSerializer):
    text = serializers.SerializerMethodField()
    held_until = serializers.DateTimeField(read_only=True)
    suggestion = serializers.SerializerMethodField()

    class Meta:
        model = Item
        fields = ["id", "external_id", "text", "data", "priority", "annotation_count", "held_until", "needs_review", "suggestion"]

    def get_text(self, item) -> str:
        return item.text()

    def get_suggestion(self, item) -> dict | None:
        """Label(s), confidence, top 3, nearest labelled items and the words that pushed it."""
        return self.context.get("suggestion")


@extend_schema_field({"oneOf": [
    {"type": "string", "maxLength": 100, "description": "a label key"},
    {"type": "object", "description": "a span, offsets in Unicode code points, end exclusive",
     "properties": {"start": {"type": "integer"}, "end": {"type": "integer"}, "label": {"type": "string"},
                    "text": {"type": "string"}},
     "required": ["start", "end", "label"], "additionalProperties": False},
]})
class AnswerField(serializers.Field):
    """One element of an annotation's labels: a label key (classification) or a span
    {"start", "end", "label", "text"?} with code-point offsets (span labelling). Only the shape is
    checked here; the project's task type checks the rest (services.labels_validate)."""

    default_error_messages = {"invalid": "must be a label key (up to 100 characters) or a span {{start, end, label}}"}
    SPAN_KEYS = {"start", "end", "label", "text"}

    def to_internal_value(self, data):
        if isinstance(data, str) and len(data) <= 100:
            return data
        if isinstance(data, dict) and set(data) <= self.SPAN_KEYS:
            return data
        self.fail("invalid")

    def to_representation(self, value):
        return value


class SuggestedField(AnswerField):
    """One element of the suggestion as the page showed it: a label key, or a suggested span with
    its `confidence` and whether the expert kept it (`accepted`)."""

    SPAN_KEYS = AnswerField.SPAN_KEYS | {"confidence", "accepted"}


class AnnotationSubmitSerializer(serializers.Serializer):
    labels = serializers.ListField(child=AnswerField(), max_length=1000)
    lead_time = serializers.FloatField(required=False, min_value=0, max_value=86400, allow_null=True)
    suggested_labels = serializers.ListField(
        child=SuggestedField(), max_length=1000, required=False, allow_null=True,
        help_text="The model's suggestion as shown to the expert; recorded with whether it was accepted. "
                  "Spans: each suggested span with its confidence and `accepted` (kept unchanged).",
    )


class SkipSerializer(serializers.Serializer):
    lead_time = serializers.FloatField(required=False, min_value=0, max_value=86400, allow_null=True)


class AnnotationSerializer(serializers.ModelSerializer):
    annotator = serializers.CharField(source="annotator.username", read_only=True, default=None)
    item_text = serializers.SerializerMethodField()
    item_done = serializers.BooleanField(source="item.is_done", read_only=True)

    class Meta:
        model = Annotation
        fields = ["id", "item", "item_text", "item_done", "annotator", "labels", "skipped", "source", "lead_time",
                  "suggested_labels", "suggestion_accepted", "created_at", "updated_at"]

    def get_item_text(self, annotation) -> str:
        return annotation.item.text() if self.context.get("with_text") else ""


class AnnotationQuerySerializer(serializers.Serializer):
    mine = serializers.BooleanField(default=False)
    item = IdField(required=False)
    page = WholeNumberField(required=False, min_value=1)


class AgreementSerializer(serializers.Serializer):
    statistic = serializers.CharField(help_text="krippendorff_alpha_nominal (classification) or pairwise_span_f1 (spans).")
    alpha = serializers.FloatField(required=False, allow_null=True, help_text="Classification: null until two experts have labelled an item.")
    f1 = serializers.DictField(child=serializers.FloatField(allow_null=True), required=False,
                               help_text="Spans: micro span F1 over pairs of annotators, 'exact' and 'overlap' (same label).")
    per_label = serializers.DictField(child=serializers.DictField(), required=False, help_text="Spans: the same per label, with its span count.")
    pairs = serializers.IntegerField(required=False, help_text="Spans: pairs of annotations compared.")
    items_with_overlap = serializers.IntegerField()


class ExportCreateSerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=ExportFormat.choices)
    status = serializers.ChoiceField(choices=EXPORT_STATUSES, default=ItemStatus.ALL.value)
    min_agreement = serializers.FloatField(required=False, min_value=0, max_value=1, allow_null=True, default=None)


class ExportJobSerializer(serializers.ModelSerializer):
    progress = serializers.FloatField(read_only=True)
    download_url = serializers.SerializerMethodField()
    filter_text = serializers.CharField(read_only=True)
    summary_text = serializers.CharField(read_only=True)

    class Meta:
        model = ExportJob
        fields = ["id", "format", "filters", "filter_text", "status", "total", "written", "progress", "summary",
                  "summary_text", "error", "created_at", "finished_at", "download_url"]

    def get_download_url(self, job) -> str | None:
        if job.status != "done":
            return None
        return f"/api/projects/{job.project_id}/exports/{job.id}/download"


class ShareField(serializers.FloatField):
    """A share from 0 to 1. NaN passes min/max checks (every comparison with it is false), so it
    is refused here."""

    def __init__(self, **kwargs):
        super().__init__(min_value=0, max_value=1, required=False, allow_null=True, default=None, **kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if math.isnan(value):
            self.fail("invalid")
        return value


class ItemTableFilterSerializer(serializers.Serializer):
    """The data manager's filters (labeller.item_table.items_table_filter), all optional and
    combined; the project's label keys come in the context."""

    status = serializers.ChoiceField(choices=ItemStatus.values, default=ItemStatus.ALL.value)
    label = serializers.CharField(required=False, max_length=100, help_text="Majority label (key)")
    predicted = serializers.CharField(required=False, max_length=100, help_text="The model's predicted label (key)")
    annotator = IdField(required=False, help_text="User id of an annotator who labelled the item")
    agreement_min = ShareField()
    agreement_max = ShareField()
    confidence_min = ShareField()
    confidence_max = ShareField()
    disagrees = serializers.BooleanField(required=False, allow_null=True, default=None,
                                         help_text="Experts' majority and the model's prediction differ")
    is_eval = serializers.BooleanField(required=False, allow_null=True, default=None)
    needs_review = serializers.BooleanField(required=False, allow_null=True, default=None)
    likely_mislabelled = serializers.BooleanField(required=False, allow_null=True, default=None,
                                                  help_text="Flagged as a likely label error (POST .../label-errors)")
    source = serializers.ChoiceField(choices=ItemSource.choices, required=False)
    created_after = serializers.DateTimeField(required=False)
    created_before = serializers.DateTimeField(required=False)
    labelled_after = serializers.DateTimeField(required=False)
    labelled_before = serializers.DateTimeField(required=False)
    q = serializers.CharField(required=False, max_length=500, allow_blank=True, help_text="Full-text search: every word")

    def _label(self, value):
        if value not in self.context.get("label_keys", ()):
            raise serializers.ValidationError("is not a label key of this project")
        return value

    validate_label = _label
    validate_predicted = _label


class ItemTableQuerySerializer(ItemTableFilterSerializer):
    sort = serializers.ChoiceField(choices=item_table.SORT_CHOICES, default="id")
    cursor = serializers.CharField(required=False, max_length=500)
    limit = WholeNumberField(required=False, min_value=1, max_value=200, default=50)


class ItemTableRowSerializer(serializers.Serializer):
    """A row of the data manager's table (item_table.item_row)."""

    id = serializers.IntegerField()
    external_id = serializers.CharField(allow_null=True)
    text = serializers.CharField()
    status = serializers.CharField()
    annotations = serializers.ListField(child=serializers.DictField())
    majority = serializers.ListField(child=serializers.CharField())
    agreement = serializers.FloatField(allow_null=True)
    predicted = serializers.ListField(child=serializers.CharField())
    confidence = serializers.FloatField(allow_null=True)
    disagrees = serializers.BooleanField()
    is_eval = serializers.BooleanField()
    needs_review = serializers.BooleanField()
    likely_mislabelled = serializers.DictField(allow_null=True, help_text=(
        'a likely label error: {"given": ["lost_or_stolen_card"], "suggested": ["card_arrival"], '
        '"self_confidence": 0.08, "similar": [...], "by": "confident_learning" or "second_opinion", '
        '"second_opinion": the settled-items head\'s probability or null}; null otherwise'))
    source = serializers.CharField()
    created_at = serializers.DateTimeField()
    labelled_at = serializers.DateTimeField(allow_null=True)
    url = serializers.CharField()
    spans = serializers.DictField(child=serializers.IntegerField(), allow_null=True,
                                  help_text="a span project's majority spans per label ({\"PER\": 2}); null otherwise")


class ItemTableCountSerializer(serializers.Serializer):
    value = serializers.IntegerField()
    exact = serializers.BooleanField()
    text = serializers.CharField(help_text='"412" or "about 412,000"')


class ItemTablePageSerializer(serializers.Serializer):
    results = ItemTableRowSerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True)
    sort = serializers.CharField(help_text="The order of the rows: under a date filter, import order reads as that date's")
    count = ItemTableCountSerializer(allow_null=True, help_text="On the first page only (no cursor)")


class BulkAction:
    REQUEUE = "requeue"
    MARK_REVIEW = "mark_review"
    DELETE = "delete"
    EXPORT = "export"
    CHOICES = (REQUEUE, MARK_REVIEW, DELETE, EXPORT)


class ItemBulkSerializer(serializers.Serializer):
    """A bulk action on a selection (`ids`) or on every item a filter keeps (`filter`)."""

    action = serializers.ChoiceField(choices=BulkAction.CHOICES)
    ids = serializers.ListField(child=IdField(), required=False, min_length=1, max_length=10_000)
    filter = serializers.DictField(required=False, help_text="The table's filters, as in GET items/table")
    format = serializers.ChoiceField(choices=ExportFormat.choices, required=False, help_text="For export")
    confirm = serializers.BooleanField(default=False, help_text="Required (true) to delete")

    def validate_filter(self, value):
        unknown = sorted(set(value) - set(ItemTableFilterSerializer().fields))
        if unknown:
            raise serializers.ValidationError(f"unknown filter '{unknown[0]}'")
        inner = ItemTableFilterSerializer(data=value, context=self.context)
        if not inner.is_valid():
            field, messages = next(iter(inner.errors.items()))
            raise serializers.ValidationError(f"{field}: {messages[0]}")
        return inner.validated_data

    def validate(self, attrs):
        if ("ids" in attrs) == ("filter" in attrs):
            raise serializers.ValidationError({"ids": ["give either ids (a selection) or filter, not both"]})
        if attrs["action"] == BulkAction.EXPORT and "format" not in attrs:
            raise serializers.ValidationError({"format": ["an export needs a format"]})
        if attrs["action"] == BulkAction.DELETE and not attrs["confirm"]:
            raise serializers.ValidationError({"confirm": ["deleting items needs confirm: true"]})
        return attrs
