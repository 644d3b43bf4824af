"""Light classifier heads fitted on stored embeddings: what the fast refresh trains in seconds."""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass
class LinearHead:
    """A linear classifier over unit embeddings, kept as plain arrays (no pickle anywhere).

    Single-label heads give a softmax over classes; multi-label heads an independent sigmoid each.
    """

    classes: list[str]
    coef: np.ndarray  # (n_classes, dim)
    intercept: np.ndarray  # (n_classes,)
    multi_label: bool = False

    def logits(self, vectors: np.ndarray) -> np.ndarray:
        return vectors @ self.coef.T + self.intercept

    def predict_proba(self, vectors: np.ndarray) -> np.ndarray:
        z = self.logits(vectors)
        if self.multi_label:
            return 1.0 / (1.0 + np.exp(-z))
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, coef=self.coef.astype(np.float32), intercept=self.intercept.astype(np.float32),
                 classes=np.array(self.classes), multi_label=np.array(self.multi_label))
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> "LinearHead":
        with np.load(io.BytesIO(blob), allow_pickle=False) as data:
            return cls(classes=[str(c) for c in data["classes"]], coef=data["coef"], intercept=data["intercept"],
                       multi_label=bool(data["multi_label"]))


def fit_head(vectors: np.ndarray, label_sets: Sequence[Sequence[str]], *, classes: Sequence[str],
             multi_label: bool = False, c: float = 10.0, seed: int = 0) -> LinearHead:
    """Fit a logistic-regression head. Classes never labelled yet get a very negative bias, so
    they are predicted with probability ~0 instead of breaking the fit."""
    import warnings

    from sklearn.linear_model import LogisticRegression

    # Early in a project most classes have one or two examples; sklearn warns that this "could be
    # regression". It is not: silence that one warning.
    warnings.filterwarnings("ignore", message="The number of unique classes is greater than 50%")

    classes = list(classes)
    dim = vectors.shape[1]
    coef = np.zeros((len(classes), dim), dtype=np.float32)
    intercept = np.full(len(classes), -20.0, dtype=np.float32)
    index = {label: i for i, label in enumerate(classes)}
    if multi_label:
        for label, i in index.items():
            y = np.array([label in labels for labels in label_sets])
            if y.all() or not y.any():
                intercept[i] = 20.0 if y.all() else -20.0
                continue
            model = LogisticRegression(C=c, max_iter=300, random_state=seed).fit(vectors, y)
            coef[i], intercept[i] = model.coef_[0], model.intercept_[0]
        return LinearHead(classes, coef, intercept, multi_label=True)
    y = np.array([labels[0] for labels in label_sets])
    seen = sorted(set(y), key=index.get)
    if len(seen) == 1:
        intercept[index[seen[0]]] = 20.0
        return LinearHead(classes, coef, intercept)
    model = LogisticRegression(C=c, max_iter=300, random_state=seed).fit(vectors, y)
    for row, label in enumerate(model.classes_):
        i = index[label]
        if len(model.classes_) == 2:  # sklearn keeps one row for two classes
            sign = 1.0 if row == 1 else -1.0
            coef[i], intercept[i] = sign * model.coef_[0] / 2, sign * model.intercept_[0] / 2
        else:
            coef[i], intercept[i] = model.coef_[row], model.intercept_[row]
    return LinearHead(classes, coef, intercept)
