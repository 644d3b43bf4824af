"""Drift checks on hand-made texts and seeded Gaussian samples."""
import json

import numpy as np
import pytest

from ml import drift


def gaussian(n, *, shift=0.0, seed, dim=8):
    return np.random.default_rng(seed).normal(loc=shift, size=(n, dim))


def test_tokens_are_lowercase_words_with_apostrophes_and_digits():
    assert drift.tokenize("Where's my CARD? Ordered 3 days ago!") == ["where's", "my", "card", "ordered", "3", "days", "ago"]


def test_the_vocabulary_drops_tokens_below_the_minimum_count():
    texts = ["card arrived", "card lost", "typo"]
    assert drift.vocabulary(texts) == {"card", "arrived", "lost", "typo"}
    assert drift.vocabulary(texts, min_count=2) == {"card"}


def test_the_oov_rate_is_the_share_of_pooled_tokens_outside_the_vocabulary():
    vocab = {"my", "card", "is", "lost"}
    assert drift.oov_rate(["My card is lost", "crypto wallet card"], vocab) == pytest.approx(2 / 7)
    assert drift.oov_rate(["", "?!"], vocab) == 0.0


def test_identical_length_samples_show_no_shift():
    lengths = [5, 8, 13, 21, 34]
    result = drift.length_shift(lengths, lengths)
    assert result["ks"] == 0.0 and result["p_value"] == pytest.approx(1.0)
    assert result["reference_mean"] == result["live_mean"] == 16.2


def test_longer_live_inputs_give_a_large_ks_statistic():
    result = drift.length_shift([5, 6, 7, 8, 9] * 10, [50, 60, 70, 80, 90] * 10)
    assert result["ks"] == 1.0 and result["p_value"] < 1e-6 and result["live_mean"] == 70.0


def test_an_empty_side_gives_its_mean_as_none_and_no_test():
    assert drift.length_shift([], [3, 5]) == {"reference_mean": None, "live_mean": 4.0, "ks": None, "p_value": None}


def test_a_classifier_cannot_tell_two_samples_of_one_distribution_apart():
    auc = drift.domain_classifier_auc(gaussian(300, seed=1), gaussian(300, seed=2))
    assert abs(auc - 0.5) < 0.15


def test_a_classifier_separates_a_shifted_sample():
    assert drift.domain_classifier_auc(gaussian(300, seed=1), gaussian(300, shift=1.0, seed=2)) > 0.9


def test_the_domain_classifier_is_reproducible_and_subsamples_big_sides():
    ref, live = gaussian(400, seed=1), gaussian(400, shift=0.3, seed=2)
    a = drift.domain_classifier_auc(ref, live, max_per_side=100, seed=7)
    assert a == drift.domain_classifier_auc(ref, live, max_per_side=100, seed=7)
    assert a != drift.domain_classifier_auc(ref, live, max_per_side=100, seed=8)


def test_the_domain_classifier_shrinks_its_folds_for_a_tiny_side_and_gives_up_below_two():
    assert drift.domain_classifier_auc(gaussian(50, seed=1), gaussian(3, shift=5.0, seed=2)) == 1.0
    assert drift.domain_classifier_auc(gaussian(50, seed=1), gaussian(1, seed=2)) is None


def test_mmd_is_near_zero_for_one_distribution_and_grows_with_the_shift():
    ref = gaussian(200, seed=1)
    same = drift.mmd_rbf(ref, gaussian(200, seed=2))
    small = drift.mmd_rbf(ref, gaussian(200, shift=0.5, seed=3))
    large = drift.mmd_rbf(ref, gaussian(200, shift=2.0, seed=4))
    assert abs(same) < 0.01
    assert same < small < large and large > 0.2


def test_mmd_sees_a_change_in_spread_that_leaves_the_mean_alone():
    ref = gaussian(200, seed=1)
    wider = np.random.default_rng(2).normal(scale=3.0, size=(200, 8))
    assert drift.mmd_rbf(ref, wider) > 10 * abs(drift.mmd_rbf(ref, gaussian(200, seed=3)))


def test_mmd_needs_two_rows_a_side():
    assert drift.mmd_rbf(gaussian(10, seed=1), gaussian(1, seed=2)) is None


def test_js_divergence_is_zero_for_the_same_distribution_whatever_the_scale():
    assert drift.js_divergence({"a": 3, "b": 1}, {"a": 0.75, "b": 0.25}) == pytest.approx(0.0, abs=1e-12)


def test_js_divergence_is_one_for_disjoint_labels():
    assert drift.js_divergence({"a": 5}, {"b": 2}) == pytest.approx(1.0)


def test_js_divergence_is_symmetric_and_counts_missing_labels_as_zero():
    p, q = {"a": 8, "b": 2}, {"a": 5, "b": 3, "new": 2}
    assert drift.js_divergence(p, q) == pytest.approx(drift.js_divergence(q, p))
    # Hand-computed: m = (0.65, 0.25, 0.10); JS = 0.5·KL(p‖m) + 0.5·KL(q‖m) in bits.
    expected = 0.5 * (0.8 * np.log2(0.8 / 0.65) + 0.2 * np.log2(0.2 / 0.25)) \
        + 0.5 * (0.5 * np.log2(0.5 / 0.65) + 0.3 * np.log2(0.3 / 0.25) + 0.2 * np.log2(0.2 / 0.10))
    assert drift.js_divergence(p, q) == pytest.approx(expected)


def test_js_divergence_of_empty_sides():
    assert drift.js_divergence({}, {}) == 0.0
    assert drift.js_divergence({"a": 1}, {}) == 1.0


def test_wilson_interval_matches_the_textbook_value():
    low, high = drift.wilson_interval(8, 10)
    assert low == pytest.approx(0.490, abs=1e-3) and high == pytest.approx(0.943, abs=1e-3)


def test_wilson_interval_stays_inside_zero_and_one_at_the_extremes():
    low, high = drift.wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.278, abs=1e-3)
    low, high = drift.wilson_interval(10, 10)
    assert high == 1.0 and low == pytest.approx(0.722, abs=1e-3)


def test_wilson_interval_is_none_without_trials_and_refuses_impossible_counts():
    assert drift.wilson_interval(0, 0) is None
    with pytest.raises(ValueError):
        drift.wilson_interval(11, 10)


def test_every_result_is_json_serialisable():
    ref, live = gaussian(20, seed=1), gaussian(20, seed=2)
    results = {
        "oov": drift.oov_rate(["a b"], {"a"}),
        "length": drift.length_shift([1, 2, 3], [2, 3, 4]),
        "auc": drift.domain_classifier_auc(ref, live),
        "mmd": drift.mmd_rbf(ref, live),
        "js": drift.js_divergence({"a": 1}, {"a": 1, "b": 1}),
        "wilson": drift.wilson_interval(3, 7),
    }
    assert json.loads(json.dumps(results))["length"]["ks"] == results["length"]["ks"]
