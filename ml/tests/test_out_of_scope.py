"""The out-of-scope score and its threshold (ml.out_of_scope), on vectors made by hand."""
import numpy as np

from ml import out_of_scope
from ml.heads import fit_head


def test_the_threshold_gives_up_at_most_the_allowed_share_of_right_answers():
    scores = np.array([9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.0])
    correct = np.array([False, False, True, False, True, True, True, True, True, True])
    # 10% of 10 items: one right answer may go, so the top four (two wrong, one right, one wrong) abstain
    threshold = out_of_scope.threshold_for(scores, correct, max_drop=0.1)
    assert (scores > threshold).sum() == 4 and threshold == 5.5
    assert out_of_scope.threshold_for(scores, correct, max_drop=0.0) == 7.5  # only the wrong ones before the first right
    assert out_of_scope.threshold_for(scores, np.ones(10, bool), max_drop=0.0) == float("inf")
    assert out_of_scope.threshold_for(scores, np.zeros(10, bool), max_drop=0.0) == float("-inf")


def test_a_query_far_from_every_label_scores_out_of_scope_and_one_near_a_label_does_not():
    rng = np.random.default_rng(0)
    centres = np.eye(16)[:4] * 3
    vectors = np.concatenate([c + rng.normal(scale=0.4, size=(50, 16)) for c in centres])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    labels = np.repeat(["a", "b", "c", "d"], 50)
    head = fit_head(vectors, [[y] for y in labels], classes=["a", "b", "c", "d"])
    held = np.concatenate([c + rng.normal(scale=0.4, size=(20, 16)) for c in centres])
    held /= np.linalg.norm(held, axis=1, keepdims=True)
    correct = head.predict_proba(held).argmax(axis=1) == np.repeat(np.arange(4), 20)
    rule = out_of_scope.ScopeRule.fit(head.predict_proba(held), held, vectors, correct, max_drop=0.05)
    inside = centres[1] / 3 + rng.normal(scale=0.05, size=16)
    outside = np.eye(16)[10] + rng.normal(scale=0.05, size=16)  # an axis no label lives on
    queries = np.stack([inside, outside]) / np.linalg.norm(np.stack([inside, outside]), axis=1, keepdims=True)
    assert out_of_scope.ScopeRule(**rule.as_dict()).out_of_scope(head.predict_proba(queries), queries, vectors).tolist() == [False, True]


def test_a_fine_tuned_rule_needs_validation_texts_enough_for_its_budget_and_a_finite_threshold():
    # Under 1 / FINETUNED_MAX_DROP texts not one abstention is allowed: the threshold would be
    # infinite, which the version's JSON metrics cannot hold (PostgreSQL refused it), so no rule.
    from ml.finetune import _scope_rule
    from ml.heads import NeighbourMemory
    from ml.out_of_scope import FINETUNED_MAX_DROP

    rng = np.random.default_rng(0)

    def unit(n):
        x = rng.normal(size=(n, 8)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    seen = NeighbourMemory.of(unit(40), rng.integers(0, 3, 40), {})
    enough = int(np.ceil(1 / FINETUNED_MAX_DROP))
    for n, has_rule in ((enough - 1, False), (enough + 20, True)):
        ids = rng.integers(0, 3, n)
        probs = np.full((n, 3), 0.05, dtype=np.float32)
        probs[np.arange(n), ids] = 0.9  # right on every text: no abstention is free
        rule = _scope_rule(seen, probs, unit(n), ids)
        assert (rule is not None) == has_rule
        if rule is not None:
            assert np.isfinite(rule.threshold)
