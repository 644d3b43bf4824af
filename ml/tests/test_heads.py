"""The light head: fits, predicts, and round-trips through bytes without pickle."""
import numpy as np

from ml.heads import LinearHead, fit_head


def blobs(seed=0, per_class=20):
    rng = np.random.default_rng(seed)
    centres = np.eye(6)[:3] * 3
    vectors = np.vstack([c + rng.normal(scale=0.3, size=(per_class, 6)) for c in centres])
    labels = [[k] for k in ("a", "b", "c") for _ in range(per_class)]
    return vectors.astype(np.float32), labels


def test_a_head_learns_separable_classes_and_knows_unseen_ones_are_unlikely():
    vectors, labels = blobs()
    head = fit_head(vectors, labels, classes=["a", "b", "c", "never_seen"])
    probs = head.predict_proba(vectors)
    assert np.allclose(probs.sum(axis=1), 1)
    assert (probs.argmax(axis=1) == np.repeat([0, 1, 2], 20)).mean() == 1.0
    assert probs[:, 3].max() < 1e-6


def test_a_two_class_head_predicts_both_classes():
    vectors, labels = blobs()
    head = fit_head(vectors[:40], labels[:40], classes=["a", "b", "c"])
    assert list(head.predict_proba(vectors[[0, 39]]).argmax(axis=1)) == [0, 1]


def test_a_multi_label_head_gives_independent_probabilities():
    vectors, labels = blobs()
    label_sets = [l + (["c"] if i % 2 else []) for i, l in enumerate(labels)]
    head = fit_head(vectors, label_sets, classes=["a", "b", "c"], multi_label=True)
    probs = head.predict_proba(vectors)
    assert probs.shape == (60, 3) and not np.allclose(probs.sum(axis=1), 1)


def test_the_same_data_and_seed_give_the_same_head():
    vectors, labels = blobs()
    a = fit_head(vectors, labels, classes=["a", "b", "c"], seed=1)
    b = fit_head(vectors, labels, classes=["a", "b", "c"], seed=1)
    assert np.array_equal(a.coef, b.coef)


def test_a_head_round_trips_through_bytes():
    vectors, labels = blobs()
    head = fit_head(vectors, labels, classes=["a", "b", "c"])
    again = LinearHead.from_bytes(head.to_bytes())
    assert again.classes == head.classes
    assert np.allclose(again.predict_proba(vectors), head.predict_proba(vectors), atol=1e-5)
