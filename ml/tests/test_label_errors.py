"""Likely label errors on a real slice of Banking77: out-of-sample probabilities, flags, suggestions,
multi-label, and the input checks."""
import csv
from pathlib import Path

import numpy as np
import pytest

from ml.label_errors import LabelError, find_label_errors, out_of_sample_parts, out_of_sample_probabilities

BANKING77 = Path(__file__).resolve().parents[2] / "datasets" / "banking77" / "train.csv"
# Six intents that the base model keeps apart well, 40 queries each: a slice big enough for 5 folds.
INTENTS = ["card_arrival", "exchange_rate", "lost_or_stolen_card", "pin_blocked", "top_up_failed", "transfer_timing"]


@pytest.fixture(scope="module")
def banking_slice():
    from ml.encoder import Encoder

    texts, labels = [], []
    with BANKING77.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            if row["category"] in INTENTS and labels.count(row["category"]) < 40:
                texts.append(row["text"])
                labels.append(row["category"])
    vectors = Encoder(threads=1).encode(texts).astype(np.float16).astype(np.float32)  # as stored
    return vectors, labels


def corrupted(labels, every=12):
    """Every `every`-th label moved to the next intent: the rows and the noisy labels."""
    rows = list(range(0, len(labels), every))
    noisy = list(labels)
    for row in rows:
        noisy[row] = INTENTS[(INTENTS.index(labels[row]) + 1) % len(INTENTS)]
    return rows, noisy


def test_out_of_sample_probabilities_are_distributions_from_heads_that_never_saw_the_item(banking_slice):
    vectors, labels = banking_slice
    label_sets = [[label] for label in labels]
    probs = out_of_sample_probabilities(vectors, label_sets, INTENTS + ["never_labelled"], seed=0)
    assert probs.shape == (len(labels), 7)
    assert np.allclose(probs.sum(axis=1), 1.0)
    assert probs[:, 6].max() < 1e-3  # a class nobody labelled stays unlikely
    # An item whose own label is wrong is still predicted as its true intent: its head never saw it.
    rows, noisy = corrupted(labels)
    noisy_probs = out_of_sample_probabilities(vectors, [[label] for label in noisy], INTENTS, seed=0)
    predicted = [INTENTS[i] for i in noisy_probs[rows].argmax(axis=1)]
    assert np.mean([p == labels[r] for p, r in zip(predicted, rows)]) >= 0.9
    # The mix is the linear heads' probabilities and the vote, weighted.
    linear, vote = out_of_sample_parts(vectors, label_sets, INTENTS, seed=0)
    mixed = out_of_sample_probabilities(vectors, label_sets, INTENTS, seed=0, knn_weight=0.25)
    assert np.allclose(mixed, 0.75 * linear + 0.25 * vote)
    assert np.allclose(out_of_sample_probabilities(vectors, label_sets, INTENTS, seed=0, knn_weight=0), linear)


def test_the_wrong_labels_are_flagged_with_their_true_intent_suggested_and_few_right_ones(banking_slice):
    vectors, labels = banking_slice
    rows, noisy = corrupted(labels)
    errors = find_label_errors([[label] for label in noisy], INTENTS, vectors=vectors)
    assert len(errors) == len(labels) and all(isinstance(e, LabelError) for e in errors)
    flagged = {e.index for e in errors if e.flagged}
    hits = flagged & set(rows)
    assert len(hits) / len(rows) >= 0.85  # recall
    # Precision, and the re-review budget: the calibrated count errs towards a few extra flags.
    assert len(hits) / len(flagged) >= 0.8 and len(flagged) <= 1.5 * len(rows)
    for row in hits:
        error = errors[row]
        assert error.given == (noisy[row],) and error.suggested != error.given
        assert error.self_confidence < 0.5
    assert np.mean([errors[row].suggested == (labels[row],) for row in hits]) >= 0.9
    # The ranking puts the wrong labels first.
    ranked = sorted(errors, key=lambda e: e.score)[:len(rows)]
    assert len({e.index for e in ranked} & set(rows)) / len(rows) >= 0.85
    # Clean labels: (almost) nothing to re-review.
    clean = find_label_errors([[label] for label in labels], INTENTS, vectors=vectors)
    assert sum(e.flagged for e in clean) <= 0.03 * len(labels)


@pytest.mark.parametrize("options", [{}, {"count": "off_diagonal"}, {"filter_by": "low_normalized_margin"},
                                      {"filter_by": "prune_by_noise_rate"}, {"filter_by": "both"}])
def test_given_probabilities_are_used_as_they_are(options):
    labels = [["a"], ["a"], ["a"], ["b"], ["b"], ["b"], ["a"], ["b"]] * 3
    probs = np.array([[0.95, 0.05] if l == ["a"] else [0.05, 0.95] for l in labels])
    probs[6] = [0.02, 0.98]  # labelled a, confidently b
    errors = find_label_errors(labels, ["a", "b"], probs, **options)
    assert [e.index for e in errors if e.flagged] == [6]
    assert errors[6].suggested == ("b",) and errors[6].self_confidence == pytest.approx(0.02)
    assert min(errors, key=lambda e: e.score).index == 6


def test_multi_label_items_missing_or_carrying_a_wrong_label_are_flagged(banking_slice):
    vectors, labels = banking_slice
    # Two groups of intents, each item tagged with its intent and its group.
    group = {intent: ("cards" if intent in INTENTS[:3] else "payments") for intent in INTENTS}
    classes = INTENTS + ["cards", "payments"]
    label_sets = [[label, group[label]] for label in labels]
    wrong = list(range(0, len(labels), 15))
    for row in wrong:  # the group tag dropped, or swapped for the other group
        label_sets[row] = [labels[row]] if row % 2 else [labels[row], "payments" if group[labels[row]] == "cards" else "cards"]
    errors = find_label_errors(label_sets, classes, vectors=vectors, multi_label=True)
    flagged = {e.index for e in errors if e.flagged}
    assert len(flagged & set(wrong)) / len(wrong) >= 0.75
    assert len(flagged - set(wrong)) <= 0.05 * len(labels)
    for row in flagged & set(wrong):
        assert set(errors[row].suggested) == {labels[row], group[labels[row]]}
        assert errors[row].self_confidence < 0.5


@pytest.mark.parametrize("label_sets,probs,message", [
    ([["a"], ["z"]], np.array([[0.9, 0.1], [0.1, 0.9]]), "not among the classes"),
    ([["a"], []], np.array([[0.9, 0.1], [0.1, 0.9]]), "has no label"),
    ([["a"], ["b"]], np.array([[0.9, 0.1]]), "probs has shape"),
    ([["a"], ["b"]], None, "give out-of-sample probs"),
])
def test_bad_input_is_refused_with_the_problem_named(label_sets, probs, message):
    with pytest.raises(ValueError, match=message):
        find_label_errors(label_sets, ["a", "b"], probs)


def test_too_few_items_per_class_to_estimate_noise_flag_nothing():
    errors = find_label_errors([["a"], ["b"]], ["a", "b", "c"], np.array([[0.1, 0.8, 0.1], [0.8, 0.1, 0.1]]))
    assert len(errors) == 2 and all(e.suggested for e in errors)


@pytest.mark.parametrize("labels", [["a", "b", "c", "d", "e", "f"], ["a", "a", "b", "c", "d", "e", "f"]])
def test_classes_with_fewer_items_than_folds_get_probabilities_instead_of_an_error(labels):
    # During the warm-up every label can be a new class; StratifiedKFold alone refused that.
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(len(labels), 8))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    classes = sorted(set(labels))
    probs = out_of_sample_probabilities(vectors, [[label] for label in labels], classes, folds=5)
    assert probs.shape == (len(labels), len(classes)) and np.allclose(probs.sum(axis=1), 1.0)


def test_a_head_on_the_settled_items_flags_the_unsettled_labels_it_confidently_disagrees_with():
    from ml.label_errors import second_opinion

    rng = np.random.default_rng(0)
    centres = np.eye(8)[:2] * 3
    vectors = np.concatenate([c + rng.normal(scale=0.3, size=(40, 8)) for c in centres])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    truth = np.repeat([0, 1], 40)
    labels = truth.copy()
    labels[30:40] = 1  # a quarter of class 0 given the other class, the same mistake each time
    settled = np.zeros(80, dtype=bool)
    settled[[0, 1, 2, 3, 30, 31, 40, 41, 42, 43]] = True
    labels[[30, 31]] = 0  # a second expert settled two of them, rightly
    flagged, answers, sure = second_opinion(vectors, labels, settled, ["a", "b"], confidence=0.6)
    assert flagged.tolist() == [i in range(32, 40) for i in range(80)]  # the eight still wrong, nothing else
    assert (answers[~settled] == truth[~settled]).all() and (answers[settled] == -1).all()
    assert (sure[flagged] >= 0.6).all() and (sure[~settled] >= 0.5).all() and (sure[settled] == 0).all()
    assert not second_opinion(vectors, labels, settled, ["a", "b"], confidence=1.0)[0].any()
    only_one_class = settled & (truth == 0)
    assert not second_opinion(vectors, labels, only_one_class, ["a", "b"], confidence=0.5)[0].any()
    # A class seen once among the settled items is not one the head can judge by.
    once = settled & ~np.isin(np.arange(80), [41, 42, 43])
    assert not second_opinion(vectors, labels, once, ["a", "b"], confidence=0.5)[0].any()
