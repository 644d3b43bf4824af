"""The out-of-scope score and its threshold (ml.out_of_scope), on vectors made by hand."""
import json

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
    rule = out_of_scope.ScopeRule.fit(head.predict_proba(held), held, vectors, np.repeat(np.arange(4), 20), max_drop=0.05)
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


def blobs(rng, centres, n):
    x = np.concatenate([c + rng.normal(scale=0.4, size=(n, centres.shape[1])) for c in centres])
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), np.repeat(np.arange(len(centres)), n)


def test_with_an_out_of_scope_class_its_answers_are_out_of_scope_and_its_examples_no_in_scope_neighbours():
    rng = np.random.default_rng(0)
    centres = np.eye(16)[:4] * 3  # classes 0-2 in scope, class 3 the project's out-of-scope label
    vectors, targets = blobs(rng, centres, 50)
    head = fit_head(vectors, [[str(t)] for t in targets], classes=["0", "1", "2", "3"])
    held, held_targets = blobs(rng, centres, 20)
    memory = out_of_scope.in_scope_memory(vectors, targets, 3)
    assert len(memory) == 150 and not any((memory == row).all(axis=1).any() for row in vectors[targets == 3])
    rule = out_of_scope.ScopeRule.fit(head.predict_proba(held), held, memory, held_targets, max_drop=0.05, oos_class=3)
    assert rule.as_dict()["oos_class"] == 3 and out_of_scope.ScopeRule(**rule.as_dict()) == rule

    like_the_examples = centres[3] / 3 + rng.normal(scale=0.05, size=16)
    inside = centres[1] / 3 + rng.normal(scale=0.05, size=16)
    queries = np.stack([like_the_examples, inside])
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    probs = head.predict_proba(queries)
    assert probs.argmax(axis=1).tolist() == [3, 1]
    assert rule.out_of_scope(probs, queries, rule.in_scope_memory(vectors, targets)).tolist() == [True, False]


def test_in_scope_items_the_class_takes_are_paid_from_the_budget_first():
    # 100 in-scope items of class 0, all answered right but two taken by the out-of-scope class 2:
    # those two spend the 2-point budget, so the threshold may cost no other right answer.
    probs = np.tile([0.8, 0.1, 0.1], (100, 1))
    probs[:2] = [0.1, 0.1, 0.8]
    probs[2:10, 0] = np.linspace(0.5, 0.7, 8)  # less sure: the highest scores among the rest
    probs[2:10, 1] = 0.9 - probs[2:10, 0]
    distances = np.full(100, 0.5)
    targets = np.zeros(100, dtype=int)
    rule = out_of_scope.ScopeRule.from_probs(probs, distances, targets, max_drop=0.02, oos_class=2)
    assert rule.threshold == float("inf")
    # Served all the same (as JSON, no infinity): the class alone judges, no score passes.
    served = out_of_scope.servable(rule)
    assert served is not None and json.loads(json.dumps(served.as_dict()))["threshold"] == out_of_scope.NO_SCORE
    assert served.out_of_scope(probs, np.eye(4)[:1].repeat(100, 0), np.eye(4)[1:2]).tolist() == [True] * 2 + [False] * 98
    larger = out_of_scope.ScopeRule.from_probs(probs, distances, targets, max_drop=0.04, oos_class=2)
    abstained = larger.scores_of(out_of_scope.doubt(np.delete(probs, 2, axis=1)), distances,
                                 np.log(np.clip(probs[:, 2], 1e-6, 1)))[2:] > larger.threshold
    assert abstained.sum() == 2  # what is left of a 4-point budget: two more right answers
    # Labelled out-of-scope examples (target 2) are no in-scope items: they neither count nor spend.
    with_examples = out_of_scope.ScopeRule.from_probs(np.concatenate([probs, np.tile([0.1, 0.1, 0.8], (30, 1))]),
                                                      np.full(130, 0.5), np.r_[targets, np.full(30, 2)],
                                                      max_drop=0.02, oos_class=2)
    assert with_examples.threshold == float("inf") and with_examples.oos_mean == rule.oos_mean


def test_a_fine_tuned_versions_rule_knows_the_out_of_scope_class_and_measures_distance_to_in_scope_texts_only():
    from ml.finetune import _scope_rule
    from ml.heads import NeighbourMemory

    rng = np.random.default_rng(1)
    centres = np.eye(16)[:3] * 3  # class 2: the out-of-scope label
    seen_vectors, seen_ids = blobs(rng, centres, 40)
    val_vectors, val_ids = blobs(rng, centres, 60)
    probs = np.full((len(val_ids), 3), 0.05, dtype=np.float32)
    probs[np.arange(len(val_ids)), val_ids] = 0.9
    probs[:5] = [0.4, 0.35, 0.25]  # a few unsure answers the budget may abstain on
    seen = NeighbourMemory.of(seen_vectors, seen_ids, {})
    rule = _scope_rule(seen, probs, val_vectors, val_ids, oos_class=2)
    assert rule is not None and rule.oos_class == 2
    plain = _scope_rule(seen, probs, val_vectors, val_ids)
    assert plain.oos_class is None
    # The out-of-scope texts' blob is far from the in-scope memory: the in-scope items' mean
    # distance is what the rule standardises by, the same with or without the class here.
    assert abs(rule.distance_mean - out_of_scope.neighbour_distance(val_vectors[val_ids != 2], seen_vectors[seen_ids != 2]).mean()) < 1e-5
