"""Likely label errors: confident learning (Northcutt et al. 2021, through cleanlab) on out-of-sample
probabilities of the product's own heads.

Each labelled item is predicted by a head that never saw it: the labelled items are split into K
folds, and each fold is predicted by `ml.heads.fit_head` fitted on the others (the head the refresh
and a registered version fit), mixed with the neighbour vote of `ml.heads.NeighbourMemory` over the
other folds' items (the vote a registered version mixes in). Confident learning then estimates how
many labels of each class went to each other class and flags that many items, the least
self-confident first. How the settings below were chosen, on validation data only:
docs/label-errors.md and docs/benchmarks.md, "Label errors and annotator reliability".

Plain numpy, scikit-learn and cleanlab: no Django.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .heads import KNN_DEFAULTS, NeighbourMemory, fit_head

# Chosen on validation data (Banking77: a held-out part of train; CLINC150: val.csv), never on a
# test split; docs/label-errors.md says why each.
DEFAULT_FOLDS = 5
DEFAULT_C = 10.0
DEFAULT_KNN_WEIGHT = KNN_DEFAULTS["knn_weight"]
# Flag the items whose given label has the lowest out-of-sample probability, as many as confident
# learning's calibrated estimate of the number of wrong labels. On validation data cleanlab's
# default filter (prune_by_noise_rate) had precision about 0.8, ranking by self-confidence about
# 0.98-1.00, but its uncalibrated count fell short of the true number of errors (recall 0.80-0.84);
# the calibrated count overshoots a little (re-review 1.04-1.13x the errors), which recall and
# accuracy after re-review want.
DEFAULT_FILTER_BY = "low_self_confidence"
DEFAULT_COUNT = "off_diagonal_calibrated"
# Multi-label: cleanlab's default filter (not compared on validation data: no multi-label benchmark yet).
MULTI_LABEL_FILTER_BY = "prune_by_noise_rate"
# Multi-label: a class counts as predicted for the suggestion from this probability on.
MULTI_LABEL_THRESHOLD = 0.5


@dataclass(frozen=True)
class LabelError:
    """One labelled item's verdict. `score` ranks items from most to least likely mislabelled
    (cleanlab's label quality: lower is more suspect); `self_confidence` is the out-of-sample
    probability of the given label (multi-label: of the given yes/no on the class the model
    disagrees with most)."""

    index: int
    flagged: bool
    given: tuple[str, ...]
    suggested: tuple[str, ...]
    self_confidence: float
    score: float


def out_of_sample_probabilities(vectors: np.ndarray, label_sets: Sequence[Sequence[str]], classes: Sequence[str], *,
                                multi_label: bool = False, folds: int = DEFAULT_FOLDS, c: float = DEFAULT_C,
                                knn_weight: float = DEFAULT_KNN_WEIGHT, seed: int = 0) -> np.ndarray:
    """(n, n_classes): each item's probabilities from a head fitted on the other folds.

    Single-label folds are stratified by label (a class with fewer items than folds still lands in
    as many folds as it has items); multi-label folds are plain random splits. `knn_weight` mixes
    in the neighbour vote of the other folds' items (0: the linear head alone; multi-label heads
    never mix, as registered multi-label versions do not)."""
    linear, vote = out_of_sample_parts(vectors, label_sets, classes, multi_label=multi_label, folds=folds, c=c,
                                       seed=seed, with_vote=bool(knn_weight) and not multi_label)
    return linear if vote is None else (1.0 - knn_weight) * linear + knn_weight * vote


def out_of_sample_parts(vectors: np.ndarray, label_sets: Sequence[Sequence[str]], classes: Sequence[str], *,
                        multi_label: bool = False, folds: int = DEFAULT_FOLDS, c: float = DEFAULT_C, seed: int = 0,
                        with_vote: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """The linear heads' out-of-sample probabilities and the neighbour vote's (None without
    `with_vote`), apart: one set of fold fits serves every vote weight."""
    from sklearn.model_selection import KFold, StratifiedKFold

    vectors = np.asarray(vectors, dtype=np.float32)
    classes = list(classes)
    n = len(vectors)
    if n != len(label_sets):
        raise ValueError(f"{n} vectors but {len(label_sets)} label sets")
    if n < 2:
        raise ValueError("out-of-sample probabilities need at least two labelled items")
    folds = max(2, min(folds, n))
    if multi_label:
        splits = list(KFold(n_splits=folds, shuffle=True, random_state=seed).split(vectors))
    else:
        index = {label: i for i, label in enumerate(classes)}
        y = np.array([index[labels[0]] for labels in label_sets])
        import warnings

        largest = int(np.bincount(y).max())
        if largest < 2:  # every class once (as a warm-up serves them): nothing to stratify
            splits = list(KFold(n_splits=folds, shuffle=True, random_state=seed).split(vectors))
        else:
            with warnings.catch_warnings():  # a class with fewer items than folds: still spread over them
                warnings.filterwarnings("ignore", message="The least populated class")
                # StratifiedKFold refuses more folds than the largest class has items.
                stratified = StratifiedKFold(n_splits=min(folds, largest), shuffle=True, random_state=seed)
                splits = list(stratified.split(vectors, y))
    linear = np.zeros((n, len(classes)), dtype=np.float64)
    vote = np.zeros_like(linear) if with_vote and not multi_label else None
    for train, held in splits:
        head = fit_head(vectors[train], [label_sets[i] for i in train], classes=classes, multi_label=multi_label,
                        c=c, seed=seed)
        linear[held] = head.predict_proba(vectors[held])
        if vote is not None:
            vote[held] = NeighbourMemory(vectors=vectors[train], labels=y[train]).vote(vectors[held], len(classes))
    return linear, vote


def find_label_errors(label_sets: Sequence[Sequence[str]], classes: Sequence[str], probs: np.ndarray | None = None, *,
                      vectors: np.ndarray | None = None, multi_label: bool = False,
                      filter_by: str | None = None, count: str = DEFAULT_COUNT, seed: int = 0,
                      **probability_settings) -> list[LabelError]:
    """The verdict on every labelled item, in input order.

    `probs` are out-of-sample probabilities (a registered version's out-of-fold predictions, say);
    without them they are computed from `vectors` by `out_of_sample_probabilities` (its settings
    pass through). `filter_by` is one of cleanlab's filters; with the ranking filters
    (low_self_confidence, low_normalized_margin) `count` is how cleanlab's num_label_issues
    estimates how many to flag. Every label must be one of `classes`."""
    from cleanlab.filter import find_label_issues

    classes = list(classes)
    index = {label: i for i, label in enumerate(classes)}
    for row, labels in enumerate(label_sets):
        if not labels and not multi_label:
            raise ValueError(f"item {row} has no label")
        unknown = [label for label in labels if label not in index]
        if unknown:
            raise ValueError(f"item {row} has labels not among the classes: {unknown}")
    if probs is None:
        if vectors is None:
            raise ValueError("give out-of-sample probs, or the vectors to compute them from")
        probs = out_of_sample_probabilities(vectors, label_sets, classes, multi_label=multi_label, seed=seed,
                                            **probability_settings)
    probs = np.asarray(probs, dtype=np.float64)
    if probs.shape != (len(label_sets), len(classes)):
        raise ValueError(f"probs has shape {probs.shape}, expected {(len(label_sets), len(classes))}")
    if len(label_sets) == 0:
        return []
    if multi_label:
        return _multi_label_errors(label_sets, classes, index, probs, filter_by or MULTI_LABEL_FILTER_BY)
    from cleanlab.count import num_label_issues
    from cleanlab.rank import get_label_quality_scores

    filter_by = filter_by or DEFAULT_FILTER_BY
    y = np.array([index[labels[0]] for labels in label_sets])
    clipped = _clip(probs)
    scores = get_label_quality_scores(y, clipped, method="self_confidence")
    if filter_by in ("low_self_confidence", "low_normalized_margin"):
        ranking = scores if filter_by == "low_self_confidence" else \
            get_label_quality_scores(y, clipped, method="normalized_margin")

        def find():
            mask = np.zeros(len(y), dtype=bool)
            mask[np.argsort(ranking, kind="stable")[:num_label_issues(y, clipped, estimation_method=count)]] = True
            return mask
    else:
        def find():
            return find_label_issues(labels=y, pred_probs=clipped, filter_by=filter_by)
    flagged = _flags(find, len(y))
    suggested = probs.argmax(axis=1)
    return [LabelError(index=i, flagged=bool(flagged[i]), given=(classes[y[i]],), suggested=(classes[suggested[i]],),
                       self_confidence=float(probs[i, y[i]]), score=float(scores[i])) for i in range(len(y))]


# A head fitted on the settled items alone judges an item only where it has seen both the item's
# label and its own answer this many times among them: with a handful of settled items it knows a
# few classes, and would answer one of them for everything.
SECOND_OPINION_MIN_PER_CLASS = 2
# Chosen on validation data (docs/benchmarks.md, "A second opinion from the settled items"): 0.5
# cost precision on uniform noise; 0.8 cost nothing there and kept most of the gain on confusable noise.
SECOND_OPINION_CONFIDENCE = 0.8


def second_opinion(vectors: np.ndarray, labels: np.ndarray, settled: np.ndarray, classes: Sequence[str], *,
                   confidence: float = SECOND_OPINION_CONFIDENCE, c: float = DEFAULT_C,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(flags, answers, their probabilities): unsettled items whose label a head fitted on the
    settled items alone (a second expert's label already decided them) confidently disagrees with
    — its answer differs from the item's label with probability >= `confidence`, both classes seen
    among the settled items — and that head's answer for every item with its probability (-1 and
    0 for the settled ones). Single-label; `labels` are class indices.

    Why: confident learning reads probabilities of heads fitted on the labels it doubts. Where a
    share of one class was given its most confusable other class, those heads learn the mistake,
    and audit after audit leaves such items unflagged. The settled items are few but clean, and
    they sit where the heads were unsure: that border. (docs/label-errors.md, "A second opinion".)"""
    labels, settled = np.asarray(labels), np.asarray(settled, dtype=bool)
    flags, answers, sure = np.zeros(len(labels), dtype=bool), np.full(len(labels), -1), np.zeros(len(labels))
    seen = np.bincount(labels[settled], minlength=len(classes)) >= SECOND_OPINION_MIN_PER_CLASS
    if seen.sum() < 2:
        return flags, answers, sure
    head = fit_head(np.asarray(vectors)[settled], [[classes[i]] for i in labels[settled]], classes=list(classes), c=c,
                    seed=seed)
    rest = np.flatnonzero(~settled)
    probs = head.predict_proba(np.asarray(vectors)[rest])
    answers[rest], sure[rest] = probs.argmax(axis=1), probs.max(axis=1)
    flags[rest] = ((answers[rest] != labels[rest]) & (sure[rest] >= confidence)
                   & seen[labels[rest]] & seen[answers[rest]])
    return flags, answers, sure


def _multi_label_errors(label_sets, classes, index, probs, filter_by) -> list[LabelError]:
    from cleanlab.filter import find_label_issues
    from cleanlab.multilabel_classification.rank import get_label_quality_scores

    given = [sorted({index[label] for label in labels}) for labels in label_sets]
    probs = _clip(probs, normalise=False)
    flagged = _flags(lambda: find_label_issues(labels=given, pred_probs=probs, multi_label=True, filter_by=filter_by),
                     len(given))
    scores = get_label_quality_scores(given, probs)
    onehot = np.zeros_like(probs, dtype=bool)
    for row, labels in enumerate(given):
        onehot[row, labels] = True
    agreement = np.where(onehot, probs, 1.0 - probs)  # the probability of each class's given yes/no
    errors = []
    for i in range(len(given)):
        predicted = np.flatnonzero(probs[i] >= MULTI_LABEL_THRESHOLD)
        errors.append(LabelError(index=i, flagged=bool(flagged[i]), given=tuple(classes[j] for j in given[i]),
                                 suggested=tuple(classes[j] for j in predicted), self_confidence=float(agreement[i].min()),
                                 score=float(scores[i])))
    return errors


def _flags(find, n: int) -> np.ndarray:
    """cleanlab's flags, or none where it cannot estimate noise (too few items per class): a flag
    there would be a guess, and re-review costs an expert's time."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cleanlab warns about classes with few examples; the flags still stand
        try:
            return np.asarray(find(), dtype=bool)
        except ValueError:
            return np.zeros(n, dtype=bool)


def _clip(probs: np.ndarray, *, normalise: bool = True) -> np.ndarray:
    # A head's probability for a class never labelled in a fold is ~exp(-20); cleanlab wants no
    # exact zeros, and single-label rows that sum to 1.
    clipped = np.clip(probs, 1e-9, 1.0)
    return clipped / clipped.sum(axis=1, keepdims=True) if normalise else clipped
