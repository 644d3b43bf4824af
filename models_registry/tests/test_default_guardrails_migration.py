"""The default guardrails migration: a project that existed before it keeps the gate it had (no
guardrails), while one that already has a policy is left alone and a new one gets the defaults."""
import importlib

import pytest
from django.apps import apps

from ml.gates import DEFAULT_GUARDRAILS
from models_registry.models import TrainingPolicy

pytestmark = pytest.mark.django_db

migration = importlib.import_module("models_registry.migrations.0004_default_guardrails")


def test_a_project_without_a_policy_row_keeps_no_guardrails_and_others_are_untouched(make_project):
    old, tuned = make_project(name="old"), make_project(name="tuned")
    TrainingPolicy.objects.create(project=tuned, guardrails=[{"type": "min_primary", "value": 0.7}])
    migration.keep_no_guardrails(apps, None)
    assert TrainingPolicy.objects.get(project=old).guardrails == []
    assert TrainingPolicy.objects.get(project=tuned).guardrails == [{"type": "min_primary", "value": 0.7}]
    assert TrainingPolicy.for_project(make_project(name="new")).guardrails == DEFAULT_GUARDRAILS
