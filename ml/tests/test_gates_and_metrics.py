"""The promotion gate and the evaluation metrics, on hand-made numbers."""
import numpy as np
import pytest

from ml import gates
from ml.metrics import evaluate_single_label, expected_calibration_error


def metrics(accuracy, recalls):
    return {"accuracy": accuracy, "per_label": {k: {"recall": r, "support": 10} for k, r in recalls.items()}}


def test_a_version_below_a_labels_minimum_recall_fails():
    result = gates.check(metrics(0.9, {"fraud": 0.85, "other": 0.95}),
                         guardrails=[{"type": "min_recall", "label": "fraud", "value": 0.9}], primary_metric="accuracy", champion=None)
    assert not result["passed"] and result["failures"] == ["recall of fraud is 0.850, below 0.900"]


def test_a_recall_drop_against_the_champion_beyond_the_allowance_fails():
    champion = metrics(0.88, {"fraud": 0.95, "other": 0.80})
    candidate = metrics(0.90, {"fraud": 0.92, "other": 0.90})  # better overall, worse where it hurts
    result = gates.check(candidate, guardrails=[{"type": "max_recall_drop", "value": 0.02}], primary_metric="accuracy", champion=champion)
    assert not result["passed"] and "recall of fraud drops by 0.030" in result["failures"][0]
    assert result["better_than_champion"] is True


def test_a_version_within_every_guardrail_passes():
    champion = metrics(0.88, {"fraud": 0.95})
    result = gates.check(metrics(0.89, {"fraud": 0.94}), guardrails=[{"type": "max_recall_drop", "value": 0.02},
                                                                     {"type": "min_primary", "value": 0.85}],
                         primary_metric="accuracy", champion=champion)
    assert result == {"passed": True, "failures": [], "better_than_champion": True, "primary_metric": "accuracy"}


def test_guardrails_are_validated_naming_the_entry_and_field():
    problems = gates.validate_guardrails([{"type": "min_recall", "label": "nope", "value": 2}, {"type": "vibes"}], {"fraud"})
    assert problems == ["guardrails[0].value: must be a number between 0 and 1", "guardrails[0].label: unknown label 'nope'",
                        "guardrails[1].type: must be one of min_recall, max_recall_drop, min_primary"]


def test_evaluation_reports_accuracy_macro_f1_per_label_confusion_and_calibration():
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    result = evaluate_single_label(probs, ["a", "a", "b", "b"], ["a", "b"])
    assert result["accuracy"] == 0.75
    assert result["per_label"]["b"]["recall"] == 0.5 and result["per_label"]["a"]["precision"] == pytest.approx(2 / 3)
    assert result["confusion"] == {"labels": ["a", "b"], "matrix": [[2, 0], [1, 1]]}
    assert result["macro_f1"] == pytest.approx((0.8 + 2 / 3) / 2)
    assert 0 <= result["ece"] <= 1


def test_a_perfectly_calibrated_model_has_zero_calibration_error():
    assert expected_calibration_error(np.array([1.0, 1.0]), np.array([1.0, 1.0])) == 0.0
    assert expected_calibration_error(np.array([0.9, 0.9]), np.array([0.0, 0.0])) == pytest.approx(0.9)


def test_an_empty_evaluation_set_measures_nothing_and_fails_the_gate():
    from ml.metrics import evaluate_multi_label

    single = evaluate_single_label(np.zeros((0, 2)), [], ["fraud", "other"])
    multi = evaluate_multi_label(np.zeros((0, 2)), [], ["fraud", "other"])
    for measured in (single, multi):
        assert measured["n"] == 0 and measured["accuracy"] == 0.0 and measured["per_label"]["fraud"]["support"] == 0
    assert single["confusion"]["matrix"] == [[0, 0], [0, 0]]
    result = gates.check(single, guardrails=[], primary_metric="accuracy", champion=None)
    assert not result["passed"] and "evaluation set is empty" in result["failures"][0]
