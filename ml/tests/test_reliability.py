"""Consensus labels and annotator accuracies: majority vote, Dawid–Skene (with and without a model
prior) and CROWDLAB on simulated annotators of known accuracy, and the input checks."""
import numpy as np
import pytest

from ml import reliability
from ml.reliability import MISSING

ACCURACIES = (0.95, 0.9, 0.8, 0.7, 0.5)
N_CLASSES = 12


def simulated(n_items=400, per_item=3, seed=0):
    """True labels, the (items x annotators) label matrix, each annotator's realised accuracy, and
    model probabilities that are right 85 % of the time (confidence 0.7 on their pick)."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, N_CLASSES, size=n_items)
    matrix = np.full((n_items, len(ACCURACIES)), MISSING)
    for i, t in enumerate(truth):
        for j in rng.choice(len(ACCURACIES), size=per_item, replace=False):
            matrix[i, j] = t if rng.random() < ACCURACIES[j] else (t + rng.integers(1, N_CLASSES)) % N_CLASSES
    given = matrix != MISSING
    realised = np.array([(matrix[given[:, j], j] == truth[given[:, j]]).mean() for j in range(len(ACCURACIES))])
    pick = np.where(rng.random(n_items) < 0.85, truth, (truth + rng.integers(1, N_CLASSES, size=n_items)) % N_CLASSES)
    probs = np.full((n_items, N_CLASSES), 0.3 / (N_CLASSES - 1))
    probs[np.arange(n_items), pick] = 0.7
    return truth, matrix, realised, probs


def test_weighing_annotators_beats_the_plain_majority_and_recovers_their_accuracies():
    truth, matrix, realised, probs = simulated()
    majority = reliability.majority_vote(matrix, N_CLASSES)
    skene = reliability.dawid_skene(matrix, N_CLASSES)
    with_model = reliability.dawid_skene(matrix, N_CLASSES, prior=probs)
    crowd = reliability.crowdlab(matrix, probs)
    accuracy = {name: (c.labels == truth).mean() for name, c in
                [("majority", majority), ("ds", skene), ("ds+model", with_model), ("crowdlab", crowd)]}
    assert accuracy["ds"] > accuracy["majority"]
    assert accuracy["ds+model"] > accuracy["ds"] and accuracy["crowdlab"] > accuracy["majority"]
    for consensus in (skene, with_model):
        assert np.abs(consensus.annotator_accuracy - realised).max() < 0.05
    # The ordering of annotators is right for every estimate, the plain one included.
    for consensus in (majority, skene, with_model, crowd):
        assert list(np.argsort(-consensus.annotator_accuracy)) == [0, 1, 2, 3, 4]
    for consensus in (majority, skene, with_model, crowd):
        assert consensus.labels.shape == truth.shape and ((0 <= consensus.confidence) & (consensus.confidence <= 1)).all()


def test_an_annotator_who_labelled_nothing_gets_no_accuracy_and_the_others_still_count():
    truth, matrix, _, probs = simulated(n_items=200)
    matrix = np.hstack([matrix, np.full((len(matrix), 1), MISSING)])
    for consensus in (reliability.majority_vote(matrix, N_CLASSES), reliability.dawid_skene(matrix, N_CLASSES),
                      reliability.crowdlab(matrix, probs)):
        assert np.isnan(consensus.annotator_accuracy[-1]) and not np.isnan(consensus.annotator_accuracy[:-1]).any()
        assert (consensus.labels == truth).mean() > 0.8


def test_a_tie_goes_to_the_model_when_it_has_a_view():
    matrix = np.array([[0, 1], [0, 0], [1, 1], [0, 0], [1, 1]])
    prior = np.array([[0.1, 0.9], [0.9, 0.1], [0.1, 0.9], [0.9, 0.1], [0.1, 0.9]])
    assert reliability.dawid_skene(matrix, 2, prior=prior).labels[0] == 1


@pytest.mark.parametrize("matrix,message", [
    (np.array([0, 1]), "matrix"),
    (np.array([[0.0, 1.0]]), "integer"),
    (np.array([[0, 5]]), "below 2"),
    (np.array([[MISSING, MISSING], [0, 1]]), "at least one label"),
])
def test_bad_label_matrices_are_refused_with_the_problem_named(matrix, message):
    with pytest.raises(ValueError, match=message):
        reliability.dawid_skene(matrix, 2)


def test_crowdlab_checks_the_model_probabilities_match_the_items():
    with pytest.raises(ValueError, match="2 items but 3 rows"):
        reliability.crowdlab(np.array([[0, 1], [1, 1]]), np.full((3, 2), 0.5))
