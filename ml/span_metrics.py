"""Evaluation of a span model on an evaluation set, and the noise interval the promotion gate
puts on a difference of entity F1. Plain numpy, no Django.

A version's metrics (`evaluate_spans`) are shaped as a classification version's where the gate
reads them: `n` (evaluation items), the primary metric (`entity_f1`) and `per_label` with each
entity type's recall and support (its gold entities). Entity scores are strict (seqeval's strict
scheme, ml.spans.entity_scores): a predicted span counts only with the same start, end and type.

The interval. Entity F1 is not a proportion of items, and entities cluster in texts (a tweet with
three names gets all three right or wrong together), so a proportion's interval on it would be
wrong both ways. Each version's metrics keep, for every evaluation item, its (tp, fp, fn) counts,
stored compactly as the distinct triples with how many items had each (`f1_counts`: a few dozen
rows, whatever the evaluation set's size). The interval of the difference of two versions' F1 is
a percentile bootstrap that resamples each version's items independently: unpaired, as the
Newcombe interval for proportions is, because the two versions may have been measured on
different evaluation sets (labels arrive between retrains); on the same set this errs towards
calling a drop noise, never towards refusing a version for one.
"""
from __future__ import annotations

from collections import Counter
from typing import Sequence

import numpy as np

from .metrics import expected_calibration_error, reliability_table
from .spans import entity_scores, span_key

PRIMARY = "entity_f1"
BOOTSTRAP_DRAWS = 2000


def item_counts(gold: Sequence[dict], pred: Sequence[dict]) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) of one text, strict match."""
    tp = len({span_key(s) for s in gold} & {span_key(s) for s in pred})
    return tp, len(pred) - tp, len(gold) - tp


def f1_counts(gold: Sequence[Sequence[dict]], pred: Sequence[Sequence[dict]]) -> list[list[int]]:
    """[[tp, fp, fn, items], ...]: each distinct per-item triple and how many items had it, sorted."""
    counts = Counter(item_counts(g, p) for g, p in zip(gold, pred))
    return [[*triple, n] for triple, n in sorted(counts.items())]


def _f1(tp, fp, fn):
    denominator = 2 * tp + fp + fn
    return np.divide(2 * tp, denominator, out=np.zeros_like(denominator, dtype=float), where=denominator > 0)


def bootstrap_f1(counts: Sequence[Sequence[int]], *, draws: int = BOOTSTRAP_DRAWS, seed: int = 0) -> np.ndarray:
    """Micro entity F1 of `draws` resamples (items drawn with replacement) of an evaluation set
    given as f1_counts."""
    table = np.asarray(counts, dtype=float).reshape(-1, 4)
    n = int(table[:, 3].sum())
    if n == 0:
        return np.zeros(draws)
    picks = np.random.default_rng(seed).multinomial(n, table[:, 3] / n, size=draws)  # items per triple, per draw
    tp, fp, fn = (picks @ table[:, k] for k in range(3))
    return _f1(tp, fp, fn)


def f1_difference_interval(ours: Sequence[Sequence[int]], theirs: Sequence[Sequence[int]], *, confidence: float = 0.95,
                           draws: int = BOOTSTRAP_DRAWS) -> tuple[float, float]:
    """Percentile bootstrap interval of F1(ours) - F1(theirs), each resampled on its own
    (different seeds: two identical sets must not cancel draw by draw)."""
    difference = bootstrap_f1(ours, draws=draws, seed=1) - bootstrap_f1(theirs, draws=draws, seed=2)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(difference, [tail, 100 - tail])
    return float(low), float(high)


def evaluate_spans(gold: Sequence[Sequence[dict]], pred: Sequence[Sequence[dict]], labels: Sequence[str], *,
                   bins: int = 10) -> dict:
    """Entity precision, recall and F1 (micro: `entity_f1`, `precision`, `recall`; per type in
    `per_label`, every one of `labels` listed; `macro_f1` over the types gold or predicted), the
    calibration of span confidence (`ece`, `reliability`: a predicted span is correct when a gold
    span has its start, end and type) and the per-item counts the gate's interval needs."""
    scores = entity_scores(gold, pred)
    per_label = {label: {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0} for label in labels}
    per_label.update(scores["per_label"])
    for label, row in per_label.items():
        row["predicted"] = sum(s["label"] == label for p in pred for s in p)
    confidence, correct = [], []
    for g, p in zip(gold, pred):
        truth = {span_key(s) for s in g}
        for span in p:
            confidence.append(float(span.get("confidence", 1.0)))
            correct.append(float(span_key(span) in truth))
    confidence, correct = np.asarray(confidence), np.asarray(correct)
    micro = scores["micro"]
    return {
        "n": len(gold), "n_eval": len(gold),
        PRIMARY: micro["f1"], "precision": micro["precision"], "recall": micro["recall"],
        "macro_f1": scores["macro_f1"],
        "n_gold": sum(len(g) for g in gold), "n_predicted": sum(len(p) for p in pred),
        "per_label": per_label,
        "ece": round(expected_calibration_error(confidence, correct, bins=bins), 4),
        "reliability": reliability_table(confidence, correct, bins=bins),
        "f1_counts": f1_counts(gold, pred),
    }
