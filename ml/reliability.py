"""Consensus labels and annotator accuracies from several labels per item (issue 17, part 2).

Labels come as an (items × annotators) matrix of class indices, -1 where an annotator did not label
an item. Three estimates, each returning every item's consensus label with its confidence and each
annotator's estimated accuracy:

- `majority_vote`: the most frequent label (ties broken at random, seeded); an annotator's
  accuracy is their agreement with the others' majority on the items they share.
- `dawid_skene`: one-coin Dawid–Skene (each annotator right with probability p_j, wrong uniformly
  over the other classes), fitted by EM; with `prior` (a model's out-of-sample probabilities) the
  model's view of each item replaces the class frequencies as the prior, so a label that only one
  annotator gave can still win where the model agrees with it.
- `crowdlab`: cleanlab's CROWDLAB (Goh, Tkachenko and Mueller 2022), which weighs the model's
  out-of-sample probabilities against each annotator by how often each agrees with consensus.

Which the product uses, and why: docs/label-errors.md ("Annotator reliability"). Plain numpy and
cleanlab: no Django.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MISSING = -1


@dataclass(frozen=True)
class Consensus:
    labels: np.ndarray  # (n_items,) class index
    confidence: np.ndarray  # (n_items,) in [0, 1]: the consensus label's posterior (CROWDLAB: its quality score)
    annotator_accuracy: np.ndarray  # (n_annotators,) estimated; NaN for an annotator with no scorable label


def _check(matrix, n_classes: int) -> np.ndarray:
    matrix = np.asarray(matrix)
    if matrix.ndim != 2:
        raise ValueError(f"labels must be an (items x annotators) matrix, got shape {matrix.shape}")
    if not np.issubdtype(matrix.dtype, np.integer):
        raise ValueError("labels must be integer class indices (-1 where missing)")
    if matrix.size and (matrix.max() >= n_classes or matrix.min() < MISSING):
        raise ValueError(f"labels must be class indices below {n_classes}, or -1 where missing")
    if matrix.size and ((matrix != MISSING).sum(axis=1) == 0).any():
        raise ValueError("every item needs at least one label")
    return matrix


def _votes(matrix: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_items, n_classes): how many annotators gave each class."""
    votes = np.zeros((len(matrix), n_classes))
    rows, cols = np.nonzero(matrix != MISSING)
    np.add.at(votes, (rows, matrix[rows, cols]), 1)
    return votes


def majority_vote(matrix, n_classes: int, *, seed: int = 0) -> Consensus:
    matrix = _check(matrix, n_classes)
    votes = _votes(matrix, n_classes)
    rng = np.random.default_rng(seed)
    # Ties broken at random: a tiny seeded jitter below one vote.
    labels = (votes + rng.random(votes.shape) * 0.1 * (votes > 0)).argmax(axis=1)
    confidence = votes[np.arange(len(votes)), labels] / votes.sum(axis=1)
    accuracy = np.full(matrix.shape[1], np.nan)
    for j in range(matrix.shape[1]):
        rows = np.flatnonzero(matrix[:, j] != MISSING)
        others = votes[rows].copy()
        others[np.arange(len(rows)), matrix[rows, j]] -= 1  # the others' votes, without j's own
        shared = others.sum(axis=1) > 0
        if shared.any():
            others_majority = (others[shared] + rng.random(others[shared].shape) * 0.1 * (others[shared] > 0)).argmax(axis=1)
            accuracy[j] = float((others_majority == matrix[rows[shared], j]).mean())
    return Consensus(labels, confidence, accuracy)


def dawid_skene(matrix, n_classes: int, *, prior: np.ndarray | None = None, iterations: int = 50,
                tolerance: float = 1e-6) -> Consensus:
    """One-coin Dawid–Skene by EM, started from the majority vote. `prior`: (n_items, n_classes)
    out-of-sample model probabilities to use as each item's prior instead of the class frequencies;
    a row of NaN where the model has no view of an item (that item keeps the estimated frequencies)."""
    matrix = _check(matrix, n_classes)
    n, m = matrix.shape
    given = matrix != MISSING
    votes = _votes(matrix, n_classes)
    posterior = votes / votes.sum(axis=1, keepdims=True)
    known = None
    if prior is not None:
        prior = np.asarray(prior, dtype=np.float64)
        if prior.shape != (n, n_classes):
            raise ValueError(f"prior has shape {prior.shape}, expected {(n, n_classes)}")
        known = ~np.isnan(prior).any(axis=1)  # a NaN row: no model view of that item
        prior = np.clip(np.nan_to_num(prior, nan=1.0), 1e-6, 1.0)
        prior = prior / prior.sum(axis=1, keepdims=True)
    accuracy = np.full(m, 0.7)
    for _ in range(iterations):
        # M step: each annotator's accuracy is the posterior mass on the labels they gave.
        new = np.array([posterior[given[:, j], matrix[given[:, j], j]].mean() if given[:, j].any() else np.nan
                        for j in range(m)])
        new = np.clip(np.nan_to_num(new, nan=0.5), 1e-3, 1 - 1e-3)
        class_prior = np.broadcast_to(posterior.mean(axis=0) + 1e-9, (n, n_classes))
        if prior is not None:
            class_prior = np.where(known[:, None], prior, class_prior)
        # E step, in logs: a label c from annotator j adds log p_j to class c and log((1-p_j)/(K-1)) to the rest.
        log_post = np.log(class_prior).copy()
        wrong = np.log((1 - new) / max(n_classes - 1, 1))
        for j in range(m):
            rows = np.flatnonzero(given[:, j])
            log_post[rows] += wrong[j]
            log_post[rows, matrix[rows, j]] += np.log(new[j]) - wrong[j]
        log_post -= log_post.max(axis=1, keepdims=True)
        posterior = np.exp(log_post)
        posterior /= posterior.sum(axis=1, keepdims=True)
        done = np.abs(new - accuracy).max() < tolerance
        accuracy = new
        if done:
            break
    accuracy = np.where(given.any(axis=0), accuracy, np.nan)
    labels = posterior.argmax(axis=1)
    return Consensus(labels, posterior[np.arange(n), labels], accuracy)


def crowdlab(matrix, pred_probs: np.ndarray) -> Consensus:
    """CROWDLAB's consensus and quality score; an annotator's accuracy is their agreement with the
    consensus of the items they labelled (cleanlab's `agreement_with_consensus`)."""
    import warnings

    from cleanlab.multiannotator import get_label_quality_multiannotator

    pred_probs = np.asarray(pred_probs, dtype=np.float64)
    matrix = _check(matrix, pred_probs.shape[1])
    if len(matrix) != len(pred_probs):
        raise ValueError(f"{len(matrix)} items but {len(pred_probs)} rows of pred_probs")
    labels = np.where(matrix == MISSING, np.nan, matrix.astype(np.float64))
    labelled = ~np.isnan(labels).all(axis=0)  # cleanlab refuses an annotator with no label
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "annotators agree on all items" and the like: still a valid answer
        result = get_label_quality_multiannotator(labels[:, labelled], pred_probs, verbose=False)
    quality = result["label_quality"]
    accuracy = np.full(matrix.shape[1], np.nan)
    accuracy[labelled] = result["annotator_stats"].sort_index()["agreement_with_consensus"].to_numpy()
    return Consensus(quality["consensus_label"].to_numpy().astype(int),
                     quality["consensus_quality_score"].to_numpy(), accuracy)


def item_posterior(answers, accuracy, prior) -> np.ndarray:
    """One item's class posterior under one-coin Dawid–Skene with the annotators' accuracies known:
    the E step of `dawid_skene` for a single item. `answers`: the class index each annotator gave;
    `accuracy`: each one's estimated accuracy (same order); `prior`: (n_classes,) class prior (the
    class frequencies, or the model's probabilities for the item). This is how a fitted estimate
    resolves an item whose labels changed after the fit, without refitting."""
    prior = np.clip(np.asarray(prior, dtype=np.float64), 1e-9, None)
    n_classes = len(prior)
    log_post = np.log(prior / prior.sum())
    for label, p in zip(answers, accuracy):
        p = float(np.clip(p, 1e-3, 1 - 1e-3))
        wrong = np.log((1 - p) / max(n_classes - 1, 1))
        log_post += wrong
        log_post[int(label)] += np.log(p) - wrong
    log_post -= log_post.max()
    posterior = np.exp(log_post)
    return posterior / posterior.sum()
