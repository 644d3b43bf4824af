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


def evaluate_single_label(probs: np.ndarray, truth: Sequence[str], classes: Sequence[str]) -> dict:
    """Accuracy, macro-F1, per-label precision and recall, confusion matrix and calibration error.

    `probs` has one row per example and one column per class in `classes`.
    """
    from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

    classes = list(classes)
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
