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
    assert result == {"passed": True, "failures": [], "better_than_champion": True, "primary_metric": "accuracy",
                      "versus_champion": None}  # no evaluation sizes in these metrics: no interval


def test_guardrails_are_validated_naming_the_entry_and_field():
    problems = gates.validate_guardrails([{"type": "min_recall", "label": "nope", "value": 2}, {"type": "vibes"}], {"fraud"})
    assert problems == ["guardrails[0].value: must be a number between 0 and 1", "guardrails[0].label: unknown label 'nope'",
                        "guardrails[1].type: must be one of min_recall, max_recall_drop, min_primary, min_eval_items, no_primary_drop"]


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


# --- the default guardrails: evaluation size, a drop beyond noise, a recall collapse ---

def measured(n, accuracy, recalls=None, support=None):
    per_label = {k: {"recall": r, "support": support or n // max(len(recalls), 1)} for k, r in (recalls or {}).items()}
    return {"n": n, "accuracy": accuracy, "macro_f1": accuracy, "per_label": per_label}


def test_a_new_policy_has_the_default_guardrails_and_they_are_valid():
    assert gates.default_guardrails() == gates.DEFAULT_GUARDRAILS
    assert gates.default_guardrails() is not gates.default_guardrails()  # no shared list between projects
    assert gates.validate_guardrails(gates.DEFAULT_GUARDRAILS, set()) == []


def test_a_version_evaluated_on_three_items_fails_the_default_gate():
    result = gates.check(measured(3, 1.0), guardrails=gates.default_guardrails(), primary_metric="accuracy", champion=None)
    assert not result["passed"] and result["failures"] == ["evaluated on 3 items; the gate needs 30"]


def test_an_empty_evaluation_set_is_named_once_not_twice():
    result = gates.check(measured(0, 0.0), guardrails=gates.default_guardrails(), primary_metric="accuracy", champion=None)
    assert len(result["failures"]) == 1 and "evaluation set is empty" in result["failures"][0]


def test_the_interval_of_a_difference_matches_newcombes_published_example():
    # Newcombe (1998), Statistics in Medicine 17:873, method 10: 56/70 vs 48/80 gives 0.0524 to 0.3339.
    low, high = gates.difference_interval(56 / 70, 70, 48 / 80, 80)
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)


def test_a_clear_drop_against_the_champion_fails_and_says_by_how_much_with_its_interval():
    result = gates.check(measured(300, 0.70), guardrails=gates.default_guardrails(), primary_metric="accuracy",
                         champion=measured(300, 0.80))
    assert result["failures"] == ["accuracy 0.70 vs champion 0.80, drop 0.10 beyond noise (95% CI \u22120.17\u2026\u22120.03)"]
    assert result["versus_champion"]["interval"][1] < 0


def test_a_drop_within_noise_passes_and_still_reports_its_interval():
    result = gates.check(measured(40, 0.78), guardrails=gates.default_guardrails(), primary_metric="accuracy",
                         champion=measured(40, 0.80))
    low, high = result["versus_champion"]["interval"]
    assert result["passed"] and low < -0.02 < 0 < high
    assert gates.versus_text({**result["versus_champion"], "champion_version": 3}).startswith("accuracy 0.78 vs 0.80 of v3: \u22120.02 (95% CI")


def test_the_confidence_of_the_drop_guardrail_sets_the_interval():
    args = dict(primary_metric="accuracy", champion=measured(200, 0.80))
    wide = gates.check(measured(200, 0.72), guardrails=[{"type": "no_primary_drop", "value": 0.999}], **args)
    narrow = gates.check(measured(200, 0.72), guardrails=[{"type": "no_primary_drop", "value": 0.8}], **args)
    assert wide["passed"] and not narrow["passed"] and "80% CI" in narrow["failures"][0]


def test_a_recall_collapse_on_a_well_supported_label_fails_but_not_on_a_rare_one():
    champion = measured(100, 0.8, {"fraud": 0.9, "rare": 0.9}) | {"per_label": {
        "fraud": {"recall": 0.9, "support": 40}, "rare": {"recall": 0.9, "support": 5}}}
    candidate = measured(100, 0.8) | {"per_label": {"fraud": {"recall": 0.5, "support": 40}, "rare": {"recall": 0.2, "support": 5}}}
    result = gates.check(candidate, guardrails=gates.default_guardrails(), primary_metric="accuracy", champion=champion)
    assert result["failures"] == ["recall of fraud drops by 0.400 (from 0.900 to 0.500 on 40 items), more than the allowed 0.300"]


@pytest.mark.parametrize("guardrail, problem", [
    ({"type": "min_eval_items", "value": 0}, "guardrails[0].value: must be a whole number of items between 1 and 1000000"),
    ({"type": "min_eval_items", "value": True}, "guardrails[0].value: must be a whole number of items between 1 and 1000000"),
    ({"type": "no_primary_drop", "value": 0.3}, "guardrails[0].value: must be a confidence level between 0.5 and 0.999 (e.g. 0.95)"),
    ({"type": "max_recall_drop", "value": 0.3, "min_support": "10"},
     "guardrails[0].min_support: must be a whole number of items between 1 and 1000000"),
])
def test_the_new_guardrails_are_validated_naming_the_field(guardrail, problem):
    assert gates.validate_guardrails([guardrail], set()) == [problem]
