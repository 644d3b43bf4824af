"""The pages' forms refuse what the API's serializers refuse, in the same words."""
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from feedback.serializers import ServingPolicySerializer, TokenCreateSerializer
from frontend.forms import ExportForm, ImportForm, ServingPolicyForm, TokenCreateForm
from labeller.api.serializers import ExportCreateSerializer, ImportSerializer

POLICY = {"abstain_below": 0.4, "challenger_percent": 10, "shadow": False, "min_predictions": 30, "webhook_url": "",
          "thresholds": {}}


def both_refuse(form, serializer) -> dict:
    assert not form.is_valid() and not serializer.is_valid()
    form_errors = {field: [str(p) for p in problems] for field, problems in form.errors.items()}
    assert form_errors == {field: [str(p) for p in problems] for field, problems in serializer.errors.items()}
    return form_errors


def test_an_oversized_upload_is_refused_alike(settings):
    settings.LABELLOOP_MAX_UPLOAD_BYTES = 10
    upload = lambda: SimpleUploadedFile("items.csv", b"text\n" + b"x" * 20)  # noqa: E731
    errors = both_refuse(ImportForm({"mode": "atomic"}, {"file": upload()}),
                         ImportSerializer(data={"file": upload(), "mode": "atomic"}))
    assert errors == {"file": ["is 25 bytes; the limit is 10 bytes"]}


def test_an_unknown_export_format_is_refused_alike():
    data = {"format": "xml", "status": "all", "min_agreement": "2"}
    assert both_refuse(ExportForm(data), ExportCreateSerializer(data=data)).keys() == {"format", "min_agreement"}


@pytest.mark.parametrize("change", [{"challenger_percent": 150}, {"abstain_below": 1.5},
                                    {"thresholds": {"nonsense": 1}}, {"thresholds": {"domain_auc": -1}}])
def test_a_bad_serving_policy_is_refused_alike(change):
    data = {**POLICY, **change}
    both_refuse(ServingPolicyForm(data), ServingPolicySerializer(data=data))


def test_a_token_without_scopes_is_refused_alike():
    data = {"name": "app", "scopes": [], "trusted": False}
    assert both_refuse(TokenCreateForm(data), TokenCreateSerializer(data=data)) == {"scopes": ["This list may not be empty."]}
