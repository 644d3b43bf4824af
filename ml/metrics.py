"""Evaluation of a classifier on an evaluation set: plain numpy and scikit-learn, no Django."""
from __future__ import annotations

from typing import Sequence

import numpy as np

PRIMARY_METRICS = ("accuracy", "macro_f1")


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, *, bins: int = 10) -> float:
    """Mean gap between confidence and accuracy over equal-width confidence bins, weighted by size."""
    if len(confidence) == 0:
        return 0.0
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            error += mask.mean() * abs(confidence[mask].mean() - correct[mask].mean())
    return float(error)


def reliability_table(confidence: np.ndarray, correct: np.ndarray, *, bins: int = 10) -> list[dict]:
    """The reliability diagram as rows: each equal-width confidence bin's range, how many
    predictions fell in it, their mean confidence and the share correct (None for an empty bin)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1) if len(confidence) else np.zeros(0, int)
    rows = []
    for b in range(bins):
        mask = which == b
        rows.append({"low": round(float(edges[b]), 2), "high": round(float(edges[b + 1]), 2), "count": int(mask.sum()),
                     "confidence": round(float(confidence[mask].mean()), 4) if mask.any() else None,
                     "accuracy": round(float(correct[mask].mean()), 4) if mask.any() else None})
    return rows


def evaluate_single_label(probs: np.ndarray, truth: Sequence[str], classes: Sequence[str]) -> dict:
    """Accuracy, macro-F1, per-label precision and recall, confusion matrix and calibration error.

    `probs` has one row per example and one column per class in `classes`.
    """
    from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

    classes = list(classes)
    if len(truth) == 0:
        return _nothing_measured(classes, confusion={"labels": classes, "matrix": np.zeros((len(classes),) * 2, int).tolist()})
    index = {c: i for i, c in enumerate(classes)}
    y_true = np.array([index[t] for t in truth])
    y_pred = probs.argmax(axis=1) if len(probs) else np.zeros(0, dtype=int)
    labels = np.arange(len(classes))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    present = support > 0  # macro averages over the labels the evaluation set contains
    correct = (y_true == y_pred).astype(float)
    return {
        "n": int(len(y_true)),
        "accuracy": float(correct.mean()) if len(correct) else 0.0,
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels[present], average="macro", zero_division=0))
        if present.any() else 0.0,
        "per_label": {
            c: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]), "support": int(support[i])}
            for i, c in enumerate(classes)
        },
        "confusion": {"labels": classes, "matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist()},
        "ece": expected_calibration_error(probs.max(axis=1) if len(probs) else np.zeros(0), correct),
    }


def evaluate_multi_label(probs: np.ndarray, truth: Sequence[Sequence[str]], classes: Sequence[str], *,
                         threshold: float = 0.5) -> dict:
    """The multi-label counterpart: a label is predicted when its probability reaches `threshold`.
    accuracy is exact-set (subset) accuracy; macro- and micro-F1 and per-label precision and recall
    are over the label decisions; ece is over every (example, label) decision. No confusion matrix:
    it is not defined when an example has several labels."""
    from sklearn.metrics import f1_score, precision_recall_fscore_support

    classes = list(classes)
    if len(truth) == 0:
        return _nothing_measured(classes, micro_f1=0.0, threshold=threshold)
    index = {c: i for i, c in enumerate(classes)}
    y_true = np.zeros((len(truth), len(classes)), dtype=int)
    for row, labels in enumerate(truth):
        y_true[row, [index[label] for label in labels]] = 1
    probs = probs if len(probs) else np.zeros((0, len(classes)))
    y_pred = (probs >= threshold).astype(int)
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=0)
    present = np.flatnonzero(support > 0)
    decided = np.where(y_pred == 1, probs, 1 - probs).ravel()
    return {
        "n": int(len(y_true)),
        "accuracy": float((y_true == y_pred).all(axis=1).mean()) if len(y_true) else 0.0,
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)) if len(present) else 0.0,
        "micro_f1": float(f1_score(y_true, y_pred, average="micro", zero_division=0)) if len(y_true) else 0.0,
        "per_label": {
            c: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]), "support": int(support[i])}
            for i, c in enumerate(classes)
        },
        "threshold": threshold,
        "ece": expected_calibration_error(decided, (y_true == y_pred).ravel().astype(float)),
    }


def _nothing_measured(classes: list[str], **extra) -> dict:
    """The metrics of an empty evaluation set (a project with no evaluation items): n = 0 and
    zeros, which the promotion gate refuses."""
    return {"n": 0, "accuracy": 0.0, "macro_f1": 0.0, **extra, "ece": 0.0,
            "per_label": {c: {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0} for c in classes}}
