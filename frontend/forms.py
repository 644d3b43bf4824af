"""The pages' forms. Their fields are the API serializers' fields, their rules the same shared
checks (labeller.validators, feedback.serving_policy), and their messages the API's, so a page
refuses what the API refuses, in the same words."""
from django import forms
from django.core.validators import URLValidator

from core.errors import DomainError
from feedback import serving_policy
from feedback.models import Scope
from labeller import selectors, validators
from labeller.exporting import EXPORT_STATUSES
from labeller.importing import ImportMode
from labeller.models import ExportFormat, Role

# The API's (Django REST framework's) words for the problems both refuse.
NULL = "This field may not be null."
BLANK = "This field may not be blank."
EMPTY_LIST = "This list may not be empty."
NOT_A_CHOICE = '"%(value)s" is not a valid choice.'
NOT_A_NUMBER = "A valid number is required."
NOT_AN_INTEGER = "A valid integer is required."
TOO_LONG = "Ensure this field has no more than %(limit_value)d characters."
REQUIRED = "This field is required."


def field_checked(check, value):
    """`value`, once `check(value)` passed; its DomainError becomes the field's error."""
    try:
        check(value)
    except DomainError as exc:
        raise forms.ValidationError(exc.message) from exc
    return value


def choices(values) -> list[tuple[str, str]]:
    return [(value, value) for value in values]


class ImportForm(forms.Form):
    file = forms.FileField(error_messages={"required": NULL})
    mode = forms.ChoiceField(choices=choices(ImportMode.CHOICES), error_messages={"invalid_choice": NOT_A_CHOICE})

    def clean_file(self):
        return field_checked(lambda upload: validators.upload_size_check(size=upload.size), self.cleaned_data["file"])


class ExportForm(forms.Form):
    format = forms.ChoiceField(choices=ExportFormat.choices, error_messages={"required": NULL, "invalid_choice": NOT_A_CHOICE})
    status = forms.ChoiceField(choices=choices(EXPORT_STATUSES), error_messages={"invalid_choice": NOT_A_CHOICE})
    min_agreement = forms.FloatField(required=False, min_value=0, max_value=1, error_messages={"invalid": NOT_A_NUMBER})


class ServingPolicyForm(forms.Form):
    abstain_below = forms.FloatField(error_messages={"required": NULL, "invalid": NOT_A_NUMBER})
    challenger_percent = forms.IntegerField(min_value=0, max_value=32767, error_messages={"required": NULL, "invalid": NOT_AN_INTEGER})
    shadow = forms.BooleanField(required=False)
    min_predictions = forms.IntegerField(min_value=0, max_value=2147483647, error_messages={"required": NULL, "invalid": NOT_AN_INTEGER})
    webhook_url = forms.CharField(required=False, max_length=200, validators=[URLValidator()], error_messages={"max_length": TOO_LONG})
    thresholds = forms.Field(required=False)

    def clean_abstain_below(self):
        return field_checked(serving_policy.abstain_below_check, self.cleaned_data["abstain_below"])

    def clean_challenger_percent(self):
        return field_checked(serving_policy.challenger_percent_check, self.cleaned_data["challenger_percent"])

    def clean_thresholds(self):
        return field_checked(serving_policy.thresholds_check, self.cleaned_data["thresholds"])

    def clean_webhook_url(self):
        return field_checked(serving_policy.webhook_url_check, self.cleaned_data["webhook_url"])


class TokenCreateForm(forms.Form):
    name = forms.CharField(max_length=100, error_messages={"required": BLANK, "max_length": TOO_LONG})
    scopes = forms.MultipleChoiceField(choices=Scope.choices, error_messages={"required": EMPTY_LIST, "invalid_choice": NOT_A_CHOICE})
    trusted = forms.BooleanField(required=False)


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices, error_messages={"required": REQUIRED, "invalid_choice": NOT_A_CHOICE})


class MemberAddForm(MemberRoleForm):
    """A user named by username or e-mail, with a role; `cleaned_data["username"]` is the user.
    Unknown, inactive and ambiguous get the API's one answer (labeller.selectors.user_find_for_invite)."""

    username = forms.CharField(max_length=254, error_messages={"required": BLANK, "max_length": TOO_LONG})
    field_order = ["username", "role"]

    def clean_username(self):
        try:
            return selectors.user_find_for_invite(identifier=self.cleaned_data["username"])
        except DomainError as exc:
            raise forms.ValidationError(exc.message) from exc


# Find and label similar: how many neighbours, from which cosine, to what.
SIMILAR_K = 20
SIMILAR_MAX_K = 200
SIMILAR_THRESHOLD = 0.7  # all-MiniLM-L6-v2: paraphrases of one request mostly score above it
SIMILAR_MAX_TEXT = 2000


class SimilarForm(forms.Form):
    """The find-similar query (GET): what to compare with, how many, and the preselection threshold."""

    text = forms.CharField(required=False, max_length=SIMILAR_MAX_TEXT, strip=True, error_messages={"max_length": TOO_LONG})
    k = forms.IntegerField(required=False, min_value=1, max_value=SIMILAR_MAX_K, error_messages={"invalid": NOT_AN_INTEGER})
    threshold = forms.FloatField(required=False, min_value=-1, max_value=1, error_messages={"invalid": NOT_A_NUMBER})

    def clean_k(self):
        return self.cleaned_data["k"] or SIMILAR_K

    def clean_threshold(self):
        value = self.cleaned_data["threshold"]
        return SIMILAR_THRESHOLD if value is None else value


def project_label_choices(project) -> list[tuple[str, str]]:
    """The labels an expert may give now, in their order (archived ones left out, where labels can be archived)."""
    labels = project.labels.all()
    if any(field.name == "archived" for field in labels.model._meta.get_fields()):
        labels = labels.filter(archived=False)
    return [(label.key, label.name) for label in labels]


class RelabelForm(forms.Form):
    """The labels an expert gives an item on its page (the project's labels; one or several by task type)."""

    labels = forms.MultipleChoiceField(error_messages={"required": EMPTY_LIST, "invalid_choice": NOT_A_CHOICE})

    def __init__(self, *args, project, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["labels"].choices = project_label_choices(project)


class ItemIdsField(forms.Field):
    """Several item ids (checkboxes of one name); which ones the caller may touch is the service's business."""

    widget = forms.MultipleHiddenInput
    default_error_messages = {"required": EMPTY_LIST, "invalid": NOT_AN_INTEGER}

    def to_python(self, value):
        try:
            ids = [int(v) for v in value or []]
        except (TypeError, ValueError):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None
        if any(not 0 < i < 2**63 for i in ids):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return ids


class LabelSimilarForm(RelabelForm):
    """The neighbours an expert accepts in one step, and the labels they get."""

    items = ItemIdsField()
