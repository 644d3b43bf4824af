"""Span versions' evaluation (strict entity scores, span calibration, the per-item counts) and the
promotion gate on span metrics (bootstrap interval of entity F1, per-type recall, item count)."""
import numpy as np
import pytest

from ml import finetune, gates, span_metrics, token_finetune


def span(start, end, label, confidence=None):
    return {"start": start, "end": end, "label": label, **({} if confidence is None else {"confidence": confidence})}


GOLD = [[span(0, 3, "PER")], [span(0, 3, "LOC"), span(5, 7, "PER")], []]
PRED = [[span(0, 3, "PER", 0.9)], [span(0, 3, "PER", 0.4)], [span(1, 2, "ORG", 0.65)]]


def test_entity_scores_are_strict_per_type_micro_and_macro():
    m = span_metrics.evaluate_spans(GOLD, PRED, ["PER", "ORG", "LOC", "MISC"])
    assert (m["n"], m["n_eval"], m["n_gold"], m["n_predicted"]) == (3, 3, 3, 3)
    assert (m["precision"], m["recall"], m["entity_f1"]) == (0.3333, 0.3333, 0.3333)  # only the first PER matches
    assert m["per_label"]["PER"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2, "predicted": 2}
    assert m["per_label"]["LOC"]["recall"] == 0.0 and m["per_label"]["LOC"]["support"] == 1
    assert m["per_label"]["MISC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0, "predicted": 0}
    assert m["macro_f1"] == round((0.5 + 0 + 0) / 3, 4)  # types gold or predicted: PER, LOC, ORG


def test_span_confidence_calibration_counts_an_exact_match_as_correct():
    m = span_metrics.evaluate_spans(GOLD, PRED, ["PER", "ORG", "LOC"])
    filled = [r for r in m["reliability"] if r["count"]]
    assert [(r["low"], r["count"], r["confidence"], r["accuracy"]) for r in filled] == [
        (0.4, 1, 0.4, 0.0), (0.6, 1, 0.65, 0.0), (0.9, 1, 0.9, 1.0)]
    assert len(m["reliability"]) == 10
    assert m["ece"] == pytest.approx((0.4 + 0.65 + 0.1) / 3, abs=1e-4)


def test_the_per_item_counts_are_stored_compactly_and_give_back_the_f1():
    gold = [[span(0, 3, "PER")]] * 500 + [[]] * 500
    pred = [[span(0, 3, "PER")]] * 400 + [[span(0, 3, "LOC")]] * 100 + [[]] * 500
    counts = span_metrics.f1_counts(gold, pred)
    assert counts == [[0, 0, 0, 500], [0, 1, 1, 100], [1, 0, 0, 400]]
    draws = span_metrics.bootstrap_f1(counts)
    assert abs(np.median(draws) - 0.8) < 0.02 and draws.std() > 0


def test_an_empty_evaluation_set_is_measured_as_nothing():
    m = span_metrics.evaluate_spans([], [], ["PER"])
    assert m["n"] == 0 and m["entity_f1"] == 0.0 and m["f1_counts"] == []
    assert gates.check(m, guardrails=gates.default_guardrails(), primary_metric="entity_f1", champion=None)["passed"] is False


def metrics_of(n_right, n_wrong, *, label="PER"):
    """A span version's metrics on n_right + n_wrong tweets with one `label` entity each."""
    gold = [[span(0, 3, label)]] * (n_right + n_wrong)
    pred = [[span(0, 3, label, 0.9)]] * n_right + [[span(0, 4, label, 0.9)]] * n_wrong
    return span_metrics.evaluate_spans(gold, pred, ["PER", "LOC"])


def test_the_gate_refuses_an_entity_f1_drop_beyond_noise_by_bootstrap():
    champion, worse, close = metrics_of(90, 10), metrics_of(50, 50), metrics_of(86, 14)
    guardrails = [{"type": "no_primary_drop", "value": 0.95}]
    refused = gates.check(worse, guardrails=guardrails, primary_metric="entity_f1", champion=champion)
    assert not refused["passed"] and "entity_f1 0.50 vs champion 0.90" in refused["failures"][0]
    assert refused["versus_champion"]["method"] == "bootstrap"
    kept = gates.check(close, guardrails=guardrails, primary_metric="entity_f1", champion=champion)
    assert kept["passed"] and kept["versus_champion"]["interval"][0] < 0 < kept["versus_champion"]["interval"][1]


def test_the_gate_reads_per_type_recall_and_the_item_count_of_span_metrics():
    champion, worse = metrics_of(40, 0), metrics_of(20, 20)
    guardrails = [{"type": "max_recall_drop", "value": 0.3, "min_support": 10}, {"type": "min_eval_items", "value": 50},
                  {"type": "min_recall", "label": "PER", "value": 0.6}]
    failures = gates.check(worse, guardrails=guardrails, primary_metric="entity_f1", champion=champion)["failures"]
    assert failures == ["recall of PER drops by 0.500 (from 1.000 to 0.500 on 40 items), more than the allowed 0.300",
                        "evaluated on 40 items; the gate needs 50", "recall of PER is 0.500, below 0.600"]
    assert gates.check(champion, guardrails=guardrails[:1], primary_metric="entity_f1", champion=champion)["passed"]


def test_fine_tune_overrides_are_checked_naming_the_setting():
    problems = finetune.override_problems(token_finetune.TokenFineTuneConfig,
                                          {"epochs": 0, "lr": 1, "mode": "every", "max_length": "64", "repair": 1})
    assert problems == [
        "finetune.epochs: must be between 1 and 10000",
        "finetune.lr: unknown setting; known: " + ", ".join(sorted(token_finetune.TokenFineTuneConfig().as_dict())),
        "finetune.mode: must be one of first, all, got 'every'",
        "finetune.max_length: must be a whole number, 0 or more, got '64'",
        "finetune.repair: must be true or false, got 1"]
    assert finetune.override_problems(token_finetune.TokenFineTuneConfig, {"epochs": 1, "max_length": 64, "encoder_lr": 3e-5}) == []
    assert finetune.override_problems(finetune.FineTuneConfig, []) == ["finetune: must be an object of settings"]


def test_the_token_fine_tunes_loss_and_decoding_settings_are_checked_naming_the_setting():
    problems = finetune.override_problems(token_finetune.TokenFineTuneConfig,
                                          {"o_weight": 0, "o_scale": 20, "label_smoothing": 1.0, "average_last": 0})
    assert problems == ["finetune.o_weight: must be above 0 and at most 10", "finetune.o_scale: must be above 0 and at most 10",
                        "finetune.label_smoothing: must be 0 or more and below 1", "finetune.average_last: must be between 1 and 10"]
    assert finetune.override_problems(token_finetune.TokenFineTuneConfig,
                                      {"o_weight": 0.5, "o_scale": 0.4, "label_smoothing": 0.1, "average_last": 2}) == []


def test_averaged_weights_are_the_element_wise_mean_and_keep_integer_buffers():
    import torch

    states = [{"w": torch.tensor([1.0, 3.0]), "ids": torch.tensor([0, 1])},
              {"w": torch.tensor([3.0, 5.0]), "ids": torch.tensor([0, 1])}]
    averaged = token_finetune.average_states(states)
    assert averaged["w"].tolist() == [2.0, 4.0] and averaged["ids"].tolist() == [0, 1]
