"""Query strategies on hand-made probability tables."""
import numpy as np
import pytest

from ml import strategies as st

PROBS = np.array([
    [0.98, 0.01, 0.01],  # sure
    [0.50, 0.49, 0.01],  # a tie between two classes
    [0.36, 0.33, 0.31],  # flat: unsure of everything
    [0.70, 0.20, 0.10],
])


def order(scores):
    return list(np.argsort(-scores, kind="stable"))


def test_least_confidence_ranks_the_flattest_top_probability_first():
    assert order(st.uncertainty(PROBS, st.LEAST_CONFIDENCE)) == [2, 1, 3, 0]


def test_entropy_ranks_the_flattest_distribution_first():
    # [0.7, 0.2, 0.1] spreads more mass than a two-way tie, so entropy puts it before the tie.
    assert order(st.uncertainty(PROBS, st.ENTROPY)) == [2, 3, 1, 0]


def test_margin_ranks_the_closest_tie_first():
    assert order(st.uncertainty(PROBS, st.MARGIN)) == [1, 2, 3, 0]
    tie_vs_flat = np.array([[0.50, 0.50, 0.0], [0.40, 0.30, 0.30]])
    assert order(st.uncertainty(tie_vs_flat, st.MARGIN)) == [0, 1]  # margin and entropy disagree here
    assert order(st.uncertainty(tie_vs_flat, st.ENTROPY)) == [1, 0]


def test_random_is_reproducible_with_a_seeded_generator():
    a = st.uncertainty(PROBS, st.RANDOM, rng=np.random.default_rng(3))
    b = st.uncertainty(PROBS, st.RANDOM, rng=np.random.default_rng(3))
    assert np.array_equal(a, b)


def test_multi_label_uncertainty_looks_at_each_label_as_a_yes_no_question():
    probs = np.array([[0.99, 0.01], [0.5, 0.01], [0.6, 0.4]])
    assert order(st.uncertainty(probs, st.MARGIN, multi_label=True))[0] == 1
    assert order(st.uncertainty(probs, st.ENTROPY, multi_label=True)) == [2, 1, 0]
    assert order(st.uncertainty(probs, st.LEAST_CONFIDENCE, multi_label=True)) == [2, 1, 0]


def test_an_unknown_strategy_is_refused():
    with pytest.raises(ValueError, match="unknown strategy"):
        st.uncertainty(PROBS, "vibes")


def test_the_diverse_batch_takes_no_near_copies():
    rng = np.random.default_rng(0)
    # Twenty near-copies of one sentence are the most uncertain; five distinct items a bit less.
    base = rng.normal(size=16)
    copies = base + rng.normal(scale=0.01, size=(20, 16))
    distinct = rng.normal(size=(5, 16)) * 3
    vectors = np.vstack([copies, distinct])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    scores = np.concatenate([np.full(20, 0.9) + rng.random(20) * 0.01, np.full(5, 0.8)])
    plain = st.rank_pool(scores, vectors, batch_size=5, diverse=False)[:5]
    diverse = st.rank_pool(scores, vectors, batch_size=5, diverse=True)[:5]
    assert all(i < 20 for i in plain)
    assert sum(i < 20 for i in diverse) == 1 and len(set(diverse)) == 5


def test_cold_start_puts_one_representative_of_each_cluster_first():
    rng = np.random.default_rng(1)
    centres = np.eye(8)[:4] * 5
    vectors = np.vstack([c + rng.normal(scale=0.1, size=(30, 8)) for c in centres])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    first = np.argsort(-st.cold_start(vectors, batch_size=4))[:4]
    assert sorted(i // 30 for i in first) == [0, 1, 2, 3]


def test_evaluation_items_are_interleaved_at_their_share():
    merged = st.interleave_evaluation(np.arange(90), np.arange(100, 110), share=0.1)
    assert len(merged) == 100 and set(merged) == set(range(90)) | set(range(100, 110))
    for n in (10, 20, 50, 100):
        assert sum(m >= 100 for m in merged[:n]) == n // 10


def interleaved_one_position_at_a_time(strategy_order, evaluation_order, share):
    """The rule, position by position: an evaluation item where the share's count steps up, while
    both orders last; then the rest of the other."""
    merged, s, e = [], 0, 0
    for position in range(len(strategy_order) + len(evaluation_order)):
        take_eval = int((position + 1) * share) > int(position * share)
        if (take_eval and e < len(evaluation_order)) or s >= len(strategy_order):
            merged.append(evaluation_order[e])
            e += 1
        else:
            merged.append(strategy_order[s])
            s += 1
    return merged


@pytest.mark.parametrize("share", [0.01, 0.1, 1 / 3, 0.5, 0.9, 1.0, 1.5])
@pytest.mark.parametrize("n_strategy, n_eval", [(0, 5), (1, 1), (7, 3), (90, 10), (10, 90), (200, 1)])
def test_the_interleaving_follows_the_share_until_either_order_runs_out(share, n_strategy, n_eval):
    strategy_order, evaluation_order = np.arange(n_strategy) + 1000, np.arange(n_eval)
    merged = st.interleave_evaluation(strategy_order, evaluation_order, share=share)
    assert merged.tolist() == interleaved_one_position_at_a_time(strategy_order, evaluation_order, share)


def test_without_evaluation_items_the_strategy_order_is_kept():
    assert list(st.interleave_evaluation(np.array([3, 1, 2]), np.array([], dtype=int), share=0.1)) == [3, 1, 2]


def test_the_diverse_batch_and_the_cold_start_cluster_into_at_most_max_clusters():
    rng = np.random.default_rng(0)
    n = st.MAX_CLUSTERS * 3
    vectors = rng.normal(size=(n, 8))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    scores = rng.random(n)
    batch = st.diverse_batch(scores, vectors, batch_size=10000 // 4)
    assert 0 < len(batch) <= st.MAX_CLUSTERS and len(set(batch.tolist())) == len(batch)
    order = st.rank_pool(scores, vectors, batch_size=10000 // 4)
    assert sorted(order.tolist()) == list(range(n))
    cold = st.cold_start(vectors, batch_size=10000)
    assert (cold >= 2.0).sum() <= st.MAX_CLUSTERS  # one representative per cluster goes first


def test_the_warm_up_serves_a_representative_of_each_cluster_no_label_covers_yet():
    rng = np.random.default_rng(1)
    centres = np.eye(8)[:4] * 5
    vectors = np.vstack([c + rng.normal(scale=0.1, size=(30, 8)) for c in centres])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    labelled = np.array([0, 31])  # clusters 0 and 1 already hold a label
    pool = np.setdiff1d(np.arange(len(vectors)), labelled)
    scores = st.cover_start(vectors, labelled, pool, clusters=4)
    first = pool[np.argsort(-scores, kind="stable")[:2]]
    assert sorted(i // 30 for i in first) == [2, 3]
    assert (scores >= 2.0).sum() == 2  # only the uncovered clusters' representatives jump the queue


def test_the_warm_up_lasts_one_label_per_class_within_the_cluster_cap():
    assert st.warm_up_labels(3) == 3 and st.warm_up_labels(150) == 150
    assert st.warm_up_labels(10_000) == st.MAX_CLUSTERS and st.warm_up_labels(0) == 1


@pytest.mark.parametrize("n, chunk", [(200, 7), (200, 1000), (260, 33)])
def test_the_streamed_warm_up_scores_the_pool_as_cover_start_does(n, chunk):
    rng = np.random.default_rng(n)
    vectors = np.eye(16)[rng.integers(0, 12, size=n)] * 2 + rng.normal(scale=0.4, size=(n, 16))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    labelled = rng.choice(n, 5, replace=False)
    pool = np.setdiff1d(np.arange(n), labelled)
    # A sample of 250: the 260-vector case fits its centres on a draw, as a large project does.
    expected = st.cover_start(vectors, labelled, pool, clusters=12, sample=250)
    k = st.warm_up_clusters(n_classes=12, batch_size=10, n_vectors=n)
    centres = st.warm_up_centres(vectors[st.warm_up_sample(n, sample=250)], k=k)
    best, typical = st.Representatives(k), []
    for start in range(0, len(pool), chunk):
        part, nearest = st.typicality(vectors[pool[start:start + chunk]], centres)
        best.add(part, nearest)
        typical.append(part)
    scores = best.scores(np.concatenate(typical), st.typicality(vectors[labelled], centres)[1])
    # Equal up to float32 rounding: BLAS may sum a chunk's matrix product in another order than the
    # whole pool's (it does on some CPUs), so the last bit can differ; the representatives cannot.
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-6)
    assert np.array_equal(np.flatnonzero(scores >= 2.0), np.flatnonzero(expected >= 2.0))
    assert 1 <= (scores >= 2.0).sum() <= k
