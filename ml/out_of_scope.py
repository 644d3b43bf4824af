"""Out-of-scope queries: a score of how far a query lies outside every label the model knows, and
the threshold above which a prediction abstains. Plain numpy; no Django.

A deployed intent model sees queries that belong to no label; its softmax still spreads all the
probability over the labels it has, so a confident wrong answer is common. The score sums two
signals, each standardised on the project's own labelled in-scope items:

- doubt, 1 − the version's top probability: what the abstain threshold always read; it catches
  queries torn between known labels (an unknown intent close to known ones);
- distance to the labelled examples, 1 − the mean cosine similarity of the k = 10 most similar
  ones (the version's neighbour memory): it catches queries far from everything labelled, which
  a softmax can still answer confidently.

Chosen on validation data of two datasets (CLINC150's val.csv, and Banking77 with 15 intents held
out of a part of its training split), where the sum caught more out-of-scope queries than either
alone, than the energy of the logits, a Mahalanobis distance, or energy plus distance (which won on
CLINC150 and lost to the top probability on Banking77). benchmarks/out_of_scope.py has the test
figures; docs/out-of-scope.md the reasoning.

The threshold is chosen on labelled in-scope items alone (a project rarely has out-of-scope
examples): the most out-of-scope-looking share of them that can be abstained on while the
in-scope accuracy, abstentions counted wrong, falls by at most `max_drop`.

A project that does label out-of-scope examples (Project.out_of_scope_label: one class meaning
"none of the others") gets a third signal and a shortcut: the doubt reads the in-scope classes
only, the distance the in-scope examples only, the score adds log P(out-of-scope class) (how much
a query resembles the examples of what the project does not serve), and a query the model answers
with that class is out of scope whatever its score. The share of in-scope items the class takes is
spent from the budget first. Chosen on validation data (docs/out-of-scope.md, "An out-of-scope
label"): CLINC150's val.csv recall 0.890 → 0.960; Banking77 with examples of 5 of 15 unknown
intents 0.379 → 0.574.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Callable

import numpy as np

NEIGHBOURS = 10
MAX_DROP = 0.02  # in-scope accuracy a project gives up for catching out-of-scope queries
# A fine-tuned version reads its rule off the split that also chose its epoch, on which it does a
# little better than on new queries: a 2-point budget there cost 3.0-3.1 points on validation data
# of both datasets (and 2.8 on test). Half of it, chosen on that validation data, cost 1.4-1.55
# (docs/out-of-scope.md, "A fine-tuned version's budget").
FINETUNED_MAX_DROP = 0.01
_CHUNK = 1024


def energy(logits: np.ndarray) -> np.ndarray:
    """−logsumexp of each row of logits: higher = less like any known label (a comparison in the
    benchmark; the rule does not use it)."""
    top = logits.max(axis=1)
    return -(top + np.log(np.exp(logits - top[:, None]).sum(axis=1)))


def doubt(probs: np.ndarray) -> np.ndarray:
    """1 − each row's top probability."""
    return 1.0 - probs.max(axis=1)


def neighbour_distance(vectors: np.ndarray, memory: np.ndarray, *, k: int = NEIGHBOURS) -> np.ndarray:
    """1 − mean cosine similarity of each row to its k most similar memory rows (unit rows both)."""
    memory = np.asarray(memory, dtype=np.float32)
    k = max(1, min(k, len(memory)))
    out = np.empty(len(vectors), dtype=np.float32)
    for start in range(0, len(vectors), _CHUNK):
        similarity = np.asarray(vectors[start:start + _CHUNK], dtype=np.float32) @ memory.T
        nearest = np.partition(similarity, similarity.shape[1] - k, axis=1)[:, -k:]
        out[start:start + _CHUNK] = 1.0 - nearest.mean(axis=1)
    return out


def in_scope_memory(vectors: np.ndarray, labels: np.ndarray, oos_class: int | None) -> np.ndarray:
    """The memory rows the distance reads: every labelled example but those of the out-of-scope
    class (a query near them is out of scope, not close to what the model serves)."""
    return vectors if oos_class is None else vectors[np.asarray(labels) != oos_class]


def _log_class(probs: np.ndarray, cls: int) -> np.ndarray:
    return np.log(np.clip(probs[:, cls], 1e-6, 1.0))


def _z(values: np.ndarray, mean: float, sd: float) -> np.ndarray:
    return (values - mean) / sd


@dataclass
class ScopeRule:
    """How to read the signals for one model: their mean and spread over its labelled in-scope
    items, and the threshold on their standardised sum above which it abstains; with an
    out-of-scope class, that class and the mean and spread of its log probability."""

    doubt_mean: float
    doubt_sd: float
    distance_mean: float
    distance_sd: float
    threshold: float
    k: int = NEIGHBOURS
    oos_class: int | None = None
    oos_mean: float = 0.0
    oos_sd: float = 1.0

    def in_scope_memory(self, vectors: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return in_scope_memory(vectors, labels, self.oos_class)

    def scores(self, probs: np.ndarray, vectors: np.ndarray, memory: np.ndarray) -> np.ndarray:
        """`memory`: the in-scope memory rows (`in_scope_memory`)."""
        distances = neighbour_distance(vectors, memory, k=self.k)
        if self.oos_class is None:
            return self.scores_of(doubt(probs), distances)
        return self.scores_of(doubt(np.delete(probs, self.oos_class, axis=1)), distances, _log_class(probs, self.oos_class))

    def out_of_scope(self, probs: np.ndarray, vectors: np.ndarray, memory: np.ndarray) -> np.ndarray:
        outside = self.scores(probs, vectors, memory) > self.threshold
        if self.oos_class is not None:
            outside |= probs.argmax(axis=1) == self.oos_class
        return outside

    @classmethod
    def fit(cls, probs: np.ndarray, vectors: np.ndarray, memory: np.ndarray, targets: np.ndarray, *,
            max_drop: float = MAX_DROP, k: int = NEIGHBOURS, oos_class: int | None = None) -> "ScopeRule":
        """From labelled items the model did not learn from (a validation split, or out-of-fold):
        its probabilities for them, their vectors and class indices, and `memory`, the labelled
        examples' vectors of the other items (the in-scope ones, with an `oos_class`)."""
        return cls.from_probs(probs, neighbour_distance(vectors, memory, k=k), targets, max_drop=max_drop, k=k,
                              oos_class=oos_class)

    @classmethod
    def from_probs(cls, probs: np.ndarray, distances: np.ndarray, targets: np.ndarray, *,
                   max_drop: float = MAX_DROP, k: int = NEIGHBOURS, oos_class: int | None = None) -> "ScopeRule":
        """As `fit`, with the distances already computed (out-of-fold, each fold its own model)."""
        answers, targets = probs.argmax(axis=1), np.asarray(targets)
        if oos_class is None:
            return cls.from_signals(doubt(probs), distances, answers == targets, max_drop=max_drop, k=k)
        inscope = targets != oos_class
        probs, distances, targets, answers = probs[inscope], distances[inscope], targets[inscope], answers[inscope]
        doubts, logs = doubt(np.delete(probs, oos_class, axis=1)), _log_class(probs, oos_class)
        rule = cls._standardised(doubts, distances, k, oos_class, logs)
        # What the class already took from in-scope items (each counted as a right answer lost)
        # comes out of the budget; the threshold spends the rest on the others.
        taken = answers == oos_class
        rest = ~taken
        left = max(0.0, max_drop - taken.mean()) * len(targets) / max(int(rest.sum()), 1)
        rule.threshold = threshold_for(rule.scores_of(doubts[rest], distances[rest], logs[rest]),
                                       (answers == targets)[rest], max_drop=left)
        return rule

    @classmethod
    def from_signals(cls, doubts: np.ndarray, distances: np.ndarray, correct: np.ndarray, *,
                     max_drop: float = MAX_DROP, k: int = NEIGHBOURS) -> "ScopeRule":
        """A rule without an out-of-scope class from the two signals and whether each answer was right."""
        rule = cls._standardised(doubts, distances, k)
        rule.threshold = threshold_for(rule.scores_of(doubts, distances), correct, max_drop=max_drop)
        return rule

    @classmethod
    def _standardised(cls, doubts: np.ndarray, distances: np.ndarray, k: int, oos_class: int | None = None,
                      logs: np.ndarray | None = None) -> "ScopeRule":
        """A rule holding the signals' means and spreads over these in-scope items; no threshold yet."""
        def spread(values: np.ndarray) -> tuple[float, float]:
            return float(values.mean()), float(values.std() or 1.0)

        oos = spread(logs) if logs is not None else (0.0, 1.0)
        return cls(*spread(doubts), *spread(distances), 0.0, k, oos_class, *oos)

    def scores_of(self, doubts: np.ndarray, distances: np.ndarray, logs: np.ndarray | None = None) -> np.ndarray:
        summed = _z(doubts, self.doubt_mean, self.doubt_sd) + _z(distances, self.distance_mean, self.distance_sd)
        return summed if logs is None else summed + _z(logs, self.oos_mean, self.oos_sd)

    def as_dict(self) -> dict:
        """As the version's metrics keep it; without an out-of-scope class, as rules were before one."""
        rule = asdict(self)
        if self.oos_class is None:
            for key in ("oos_class", "oos_mean", "oos_sd"):
                del rule[key]
        return rule


def threshold_for(scores: np.ndarray, correct: np.ndarray, *, max_drop: float = MAX_DROP) -> float:
    """The lowest score above which items may be abstained on (higher = more out of scope) while
    the accuracy over these in-scope items, abstentions counted wrong, drops by at most
    `max_drop`: abstaining on an item the model got wrong costs nothing, on one it got right costs
    1/n. +inf when not even the single highest may go."""
    order = np.argsort(-scores, kind="stable")
    lost = np.cumsum(np.asarray(correct, dtype=bool)[order])  # right answers lost abstaining on the top k+1
    allowed = int(np.floor(max_drop * len(scores) + 1e-9))
    k = int(np.searchsorted(lost, allowed, side="right"))  # the top k cost at most `allowed`
    if k == 0:
        return float("inf")
    if k >= len(scores):
        return float("-inf")
    # Between the k-th and the (k+1)-th highest scores, so ties stay on the kept side.
    return float((scores[order[k - 1]] + scores[order[k]]) / 2)


MIN_LABELLED = 50  # below this a threshold would rest on a handful of items: no rule
FOLDS = 5


def rule_out_of_fold(vectors: np.ndarray, targets: np.ndarray, fit: Callable, *, folds: int = FOLDS, seed: int = 0,
                     max_drop: float = MAX_DROP, oos_class: int | None = None) -> ScopeRule | None:
    """A ScopeRule for a model trained on all of (vectors, targets) (class indices), read off
    `folds` models each trained without a fold: every labelled item is scored by a model that did
    not see it, so its doubt and distance are what an unseen in-scope query gets. `fit(vectors,
    targets)` trains one (a LinearHead with its neighbour memory). `oos_class`: the class of the
    project's out-of-scope label, if it has one. None with too few labels or fewer than two classes."""
    targets = np.asarray(targets)
    if len(targets) < MIN_LABELLED or len(set(targets.tolist())) < 2:
        return None
    fold = np.random.default_rng(seed).permutation(len(targets)) % folds
    probs, distances = None, np.zeros(len(targets))
    for k in range(folds):
        held = fold == k
        model = fit(vectors[~held], targets[~held])
        fold_probs = model.predict_proba(vectors[held])
        if probs is None:
            probs = np.zeros((len(targets), fold_probs.shape[1]))
        probs[held] = fold_probs
        distances[held] = neighbour_distance(vectors[held], in_scope_memory(model.memory.vectors, model.memory.labels, oos_class))
    return servable(ScopeRule.from_probs(probs, distances, targets, max_drop=max_drop, oos_class=oos_class))


# A threshold no score passes (a sum of three standardised signals stays within tens), in the JSON a
# version keeps its rule in, which has no infinity.
NO_SCORE = 1e12


def servable(rule: ScopeRule) -> ScopeRule | None:
    """The rule a version may store and serve, or None when its threshold is not finite (the
    budget allows no abstention, or any): a version keeps its rule as JSON, which has no infinity.
    With an out-of-scope class whose answers spent the whole budget, the class alone still judges."""
    if rule.oos_class is not None and rule.threshold == float("inf"):
        return replace(rule, threshold=NO_SCORE)
    return rule if np.isfinite(rule.threshold) else None
