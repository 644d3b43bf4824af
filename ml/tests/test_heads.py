"""The light head: fits, predicts, and round-trips through bytes without pickle."""
import numpy as np

from ml import heads
from ml.heads import LinearHead, NeighbourMemory, fit_head, self_train


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


def test_self_training_refits_on_the_pool_as_the_first_fit_labels_it():
    """The contract (its gain is measured on Banking77 by benchmarks/active_learning.py): the
    unlabelled items join the fit with the plain head's predictions, weighted PSEUDO_LABEL_WEIGHT."""
    from sklearn.linear_model import LogisticRegression

    vectors, labels = blobs(per_class=40)
    rng = np.random.default_rng(1)
    vectors = vectors + rng.normal(scale=0.8, size=vectors.shape).astype(np.float32)
    labelled, pool = np.arange(0, 120, 20), np.setdiff1d(np.arange(120), np.arange(0, 120, 20))
    classes = ["a", "b", "c"]
    plain = fit_head(vectors[labelled], [labels[i] for i in labelled], classes=classes)
    self_trained = self_train(plain, vectors[labelled], [labels[i] for i in labelled], vectors[pool])
    pseudo = np.array(classes)[plain.predict_proba(vectors[pool]).argmax(axis=1)]
    expected = LogisticRegression(C=10.0, max_iter=1000, tol=1e-8).fit(
        np.vstack([vectors[labelled], vectors[pool]]), [labels[i][0] for i in labelled] + list(pseudo),
        sample_weight=[1.0] * len(labelled) + [heads.PSEUDO_LABEL_WEIGHT] * len(pool))
    assert not np.allclose(self_trained.coef, plain.coef, atol=0.1)
    assert np.allclose(self_trained.predict_proba(vectors), expected.predict_proba(vectors), atol=0.02)


def test_self_training_samples_a_large_pool_and_leaves_multi_label_heads_alone(monkeypatch):
    vectors, labels = blobs(per_class=40)
    labelled, pool = np.arange(0, 120, 10), np.setdiff1d(np.arange(120), np.arange(0, 120, 10))
    classes = ["a", "b", "c"]
    args = (vectors[labelled], [labels[i] for i in labelled])
    monkeypatch.setattr(heads, "PSEUDO_LABEL_MAX", 20)
    plain = fit_head(*args, classes=classes)
    first, again = self_train(plain, *args, vectors[pool]), self_train(plain, *args, vectors[pool])
    assert np.array_equal(first.coef, again.coef)  # the sample is seeded
    assert not np.allclose(first.coef, plain.coef)
    multi = fit_head(*args, classes=classes, multi_label=True)
    assert self_train(multi, *args, vectors[pool]) is multi


def test_a_two_class_head_self_trains_too():
    vectors, labels = blobs()
    labelled = [0, 1, 20, 21]
    plain = fit_head(vectors[labelled], [labels[i] for i in labelled], classes=["a", "b", "c"])
    head = self_train(plain, vectors[labelled], [labels[i] for i in labelled], vectors[:40])
    assert list(head.predict_proba(vectors[:40]).argmax(axis=1)) == [0] * 20 + [1] * 20
    assert head.predict_proba(vectors[:40])[:, 2].max() < 1e-6  # never labelled: still never predicted


# --- the neighbour vote ---------------------------------------------------------------------

def unit(rows):
    rows = np.asarray(rows, dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_the_vote_weights_the_nearest_examples_by_similarity():
    memory = NeighbourMemory(unit([[1, 0], [0.9, 0.1], [0, 1]]), np.array([0, 0, 1]), k=2, temperature=0.05, weight=1.0)
    vote = memory.vote(unit([[1, 0.05], [0.1, 1]]), n_classes=3)
    assert np.allclose(vote.sum(axis=1), 1)
    assert vote[0, 0] == 1.0  # its two nearest are both class 0
    assert vote[1, 1] > 0.99 and vote[1, 2] == 0  # nearest is class 1; the second (class 0) is far, so weighs little


def test_the_mix_moves_the_head_towards_a_close_labelled_example():
    """An example labelled b sits inside a's region: the head says a, the example next to it says b."""
    vectors, labels = blobs()
    odd = unit([[2.5, 0.5, 0, 0, 0, 0]])
    head = fit_head(vectors, labels, classes=["a", "b", "c"])
    assert head.predict_proba(odd).argmax() == 0
    all_vectors = np.vstack([unit(vectors), odd])
    head.memory = NeighbourMemory(all_vectors, np.array([0] * 20 + [1] * 20 + [2] * 20 + [1]), k=1, weight=0.6)
    mixed = head.predict_proba(odd)
    assert mixed.argmax() == 1 and np.isclose(mixed.sum(), 1)


def test_a_memory_round_trips_through_safetensors_and_can_be_off(tmp_path):
    memory = NeighbourMemory.of(unit([[1, 0], [0, 1]]), [0, 1], {"knn_k": 3, "knn_weight": 0.25})
    assert (memory.k, memory.temperature, memory.weight) == (3, 0.05, 0.25)
    memory.save(tmp_path / "memory.safetensors")
    again = NeighbourMemory.load(tmp_path / "memory.safetensors")
    assert (again.k, again.weight) == (3, 0.25) and list(again.labels) == [0, 1]
    assert np.allclose(again.vectors, memory.vectors, atol=1e-3)
    assert NeighbourMemory.load(tmp_path / "absent.safetensors") is None
    assert NeighbourMemory.of(unit([[1, 0]]), [0], {"knn_weight": 0}) is None


def test_a_large_memory_keeps_a_seeded_sample(monkeypatch):
    import ml.heads

    monkeypatch.setattr(ml.heads, "KNN_MAX_EXAMPLES", 50)
    rng = np.random.default_rng(0)
    vectors, labels = unit(rng.normal(size=(80, 4))), np.arange(80) % 3
    a, b = NeighbourMemory.of(vectors, labels, {}), NeighbourMemory.of(vectors, labels, {})
    assert len(a.labels) == 50 and np.array_equal(a.labels, b.labels) and np.array_equal(a.vectors, b.vectors)
