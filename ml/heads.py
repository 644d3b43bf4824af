"""Light classifier heads fitted on stored embeddings (what the fast refresh trains in seconds), and
the neighbour memory whose vote registered versions mix into their predictions."""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Sequence

import numpy as np


# The neighbour vote every registered single-label version mixes in, chosen on a dev split of
# training rows, never on the test split (see docs/benchmarks.md, section "Training", "the
# neighbour vote").
KNN_DEFAULTS = {"knn_k": 10, "knn_temperature": 0.05, "knn_weight": 0.4}
# Past this many examples a memory keeps a seeded random sample: the vote costs a product with the
# whole memory per request, and at this size it stays small beside the encoder's forward pass
# (same section of docs/benchmarks.md).
KNN_MAX_EXAMPLES = 10_000


@dataclass
class NeighbourMemory:
    """The labelled examples a version learned from, as unit embeddings with their class: a
    prediction mixes the linear head's probabilities with a vote of the `k` most similar of them,
    weighted by exp(cosine / temperature). The linear head smooths over a class; the vote keeps
    what single close examples say (what it adds: docs/benchmarks.md, section "Training", "the
    neighbour vote")."""

    vectors: np.ndarray  # (n, dim), unit rows
    labels: np.ndarray  # (n,) class index
    k: int = KNN_DEFAULTS["knn_k"]
    temperature: float = KNN_DEFAULTS["knn_temperature"]
    weight: float = KNN_DEFAULTS["knn_weight"]

    CHUNK = 1024  # query rows per similarity block: memory stays bounded for large evaluations

    def vote(self, vectors: np.ndarray, n_classes: int) -> np.ndarray:
        """(n, n_classes): each row's neighbours' labels, weighted by similarity, summing to 1."""
        memory = self.vectors.astype(np.float32, copy=False)
        k = min(self.k, len(memory))
        out = np.zeros((len(vectors), n_classes), dtype=np.float64)
        for start in range(0, len(vectors), self.CHUNK):
            similarity = vectors[start:start + self.CHUNK] @ memory.T
            nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
            # exp((s - 1) / T): the same weights as exp(s / T) up to a constant, without overflow
            weights = np.exp((np.take_along_axis(similarity, nearest, axis=1) - 1.0) / self.temperature)
            rows = np.repeat(np.arange(start, start + len(similarity)), k)
            np.add.at(out, (rows, self.labels[nearest].ravel()), weights.ravel())
        return out / np.maximum(out.sum(axis=1, keepdims=True), 1e-300)

    def mix(self, probs: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        if len(probs) == 0 or len(self.labels) == 0:
            return probs
        mixed = (1.0 - self.weight) * probs + self.weight * self.vote(vectors, probs.shape[1])
        return mixed.astype(probs.dtype, copy=False)

    def save(self, path) -> None:
        from safetensors.numpy import save_file

        save_file({"vectors": np.ascontiguousarray(self.vectors, dtype=np.float16),
                   "labels": np.ascontiguousarray(self.labels, dtype=np.int32)}, str(path),
                  metadata={"k": str(self.k), "temperature": str(self.temperature), "weight": str(self.weight)})

    @classmethod
    def load(cls, path) -> "NeighbourMemory | None":
        """The memory saved at `path`, or None for a version saved without one."""
        from pathlib import Path

        from safetensors import safe_open

        if not Path(path).exists():
            return None
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata()
            return cls(vectors=f.get_tensor("vectors").astype(np.float32), labels=f.get_tensor("labels").astype(np.int64),
                       k=int(meta["k"]), temperature=float(meta["temperature"]), weight=float(meta["weight"]))

    @classmethod
    def of(cls, vectors: np.ndarray, labels, hyperparameters: dict) -> "NeighbourMemory | None":
        """A memory with a version's knn_* settings, or None when its knn_weight is 0."""
        settings = {**KNN_DEFAULTS, **{k: v for k, v in hyperparameters.items() if k in KNN_DEFAULTS}}
        if not settings["knn_weight"] or len(vectors) == 0:
            return None
        vectors, labels = np.asarray(vectors, dtype=np.float32), np.asarray(labels, dtype=np.int64)
        if len(vectors) > KNN_MAX_EXAMPLES:
            keep = np.sort(np.random.default_rng(0).choice(len(vectors), KNN_MAX_EXAMPLES, replace=False))
            vectors, labels = vectors[keep], labels[keep]
        return cls(vectors=vectors, labels=labels,
                   k=int(settings["knn_k"]), temperature=float(settings["knn_temperature"]),
                   weight=float(settings["knn_weight"]))


@dataclass
class LinearHead:
    """A linear classifier over unit embeddings, kept as plain arrays (no pickle anywhere).

    Single-label heads give a softmax over classes, mixed with the neighbour vote of their
    `memory` when a registered version has one; multi-label heads an independent sigmoid each.
    """

    classes: list[str]
    coef: np.ndarray  # (n_classes, dim)
    intercept: np.ndarray  # (n_classes,)
    multi_label: bool = False
    memory: NeighbourMemory | None = None  # not in to_bytes: the refresh state keeps the linear part

    def logits(self, vectors: np.ndarray) -> np.ndarray:
        return vectors @ self.coef.T + self.intercept

    def predict_proba(self, vectors: np.ndarray) -> np.ndarray:
        z = self.logits(vectors)
        if self.multi_label:
            return 1.0 / (1.0 + np.exp(-z))
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        probs = e / e.sum(axis=1, keepdims=True)
        return self.memory.mix(probs, vectors) if self.memory is not None else probs

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


# Self-training for the fast refresh's head (cost-effective active learning, Wang et al. 2016):
# the head labels the unlabelled pool itself and is refitted on those pseudo-labels, down-weighted,
# beside the experts' labels. Margin sampling leaves the pool with the items the head is surest
# of, which tell it where each class's bulk lies. The weight matters little; 0.3 is a choice among
# equals on a dev split (see docs/benchmarks.md, section "Active learning", "With the self-trained
# head").
PSEUDO_LABEL_WEIGHT = 0.3
# Past this many unlabelled items a seeded random sample is pseudo-labelled: the refit's cost
# grows with its rows, and the refresh over a 100,000-item pool must stay within seconds.
PSEUDO_LABEL_MAX = 10_000


def _one_blas_thread(fit):
    """sklearn's lbfgs runs scipy's L-BFGS-B, whose many small BLAS calls are slower with OpenBLAS
    threads than without (scipy/scipy#22438; the timings: docs/benchmarks.md, section "Active
    learning", "With the self-trained head")."""
    import functools

    @functools.wraps(fit)
    def wrapper(*args, **kwargs):
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):
            return fit(*args, **kwargs)
    return wrapper


@_one_blas_thread
def fit_head(vectors: np.ndarray, label_sets: Sequence[Sequence[str]], *, classes: Sequence[str],
             multi_label: bool = False, c: float = 10.0, seed: int = 0) -> LinearHead:
    """Fit a logistic-regression head. Classes never labelled yet get a very negative bias, so
    they are predicted with probability ~0 instead of breaking the fit."""
    from sklearn.linear_model import LogisticRegression

    _silence_few_examples_warning()
    classes = list(classes)
    if multi_label:
        index = {label: i for i, label in enumerate(classes)}
        coef = np.zeros((len(classes), vectors.shape[1]), dtype=np.float32)
        intercept = np.full(len(classes), -20.0, dtype=np.float32)
        for label, i in index.items():
            y = np.array([label in labels for labels in label_sets])
            if y.all() or not y.any():
                intercept[i] = 20.0 if y.all() else -20.0
                continue
            model = LogisticRegression(C=c, max_iter=300, random_state=seed).fit(vectors, y)
            coef[i], intercept[i] = model.coef_[0], model.intercept_[0]
        return LinearHead(classes, coef, intercept, multi_label=True)
    y = np.array([labels[0] for labels in label_sets])
    if len(set(y)) == 1:  # one class known: always that class
        intercept = np.full(len(classes), -20.0, dtype=np.float32)
        intercept[classes.index(y[0])] = 20.0
        return LinearHead(classes, np.zeros((len(classes), vectors.shape[1]), dtype=np.float32), intercept)
    return _as_head(LogisticRegression(C=c, max_iter=300, random_state=seed).fit(vectors, y), classes)


@_one_blas_thread
def self_train(head: LinearHead, vectors: np.ndarray, label_sets: Sequence[Sequence[str]], unlabelled: np.ndarray,
               *, c: float = 10.0, seed: int = 0) -> LinearHead:
    """`head` (fitted by `fit_head` on these labels) refitted once on the labels plus its own
    predictions for `unlabelled`, each weighted PSEUDO_LABEL_WEIGHT, starting from its weights.
    Multi-label heads, and heads that know a single class, come back unchanged."""
    from sklearn.linear_model import LogisticRegression

    if head.multi_label or len(unlabelled) == 0:
        return head
    y = np.array([labels[0] for labels in label_sets])
    labelled_classes = set(y)
    if len(labelled_classes) < 2:
        return head
    _silence_few_examples_warning()
    if len(unlabelled) > PSEUDO_LABEL_MAX:
        keep = np.random.default_rng(seed).choice(len(unlabelled), PSEUDO_LABEL_MAX, replace=False)
        unlabelled = unlabelled[np.sort(keep)]
    seen = [i for i, label in enumerate(head.classes) if label in labelled_classes]
    pseudo = np.array(head.classes)[seen][head.logits(unlabelled)[:, seen].argmax(axis=1)]
    model = LogisticRegression(C=c, max_iter=300, random_state=seed, warm_start=len(seen) > 2)
    if len(seen) > 2:  # sklearn orders classes_ as sorted labels; start from the head's weights
        rows = [head.classes.index(label) for label in sorted(head.classes[i] for i in seen)]
        model.coef_, model.intercept_ = head.coef[rows].astype(np.float64), head.intercept[rows].astype(np.float64)
    weights = np.concatenate([np.ones(len(y)), np.full(len(pseudo), PSEUDO_LABEL_WEIGHT)])
    model.fit(np.vstack([vectors, unlabelled]), np.concatenate([y, pseudo]), sample_weight=weights)
    return _as_head(model, head.classes)


def _as_head(model, classes: list[str]) -> LinearHead:
    """A single-label LinearHead over all `classes` from a fitted sklearn model: classes it never
    saw get a very negative bias."""
    index = {label: i for i, label in enumerate(classes)}
    coef = np.zeros((len(classes), model.coef_.shape[1]), dtype=np.float32)
    intercept = np.full(len(classes), -20.0, dtype=np.float32)
    for row, label in enumerate(model.classes_):
        i = index[label]
        if len(model.classes_) == 2:  # sklearn keeps one row for two classes
            sign = 1.0 if row == 1 else -1.0
            coef[i], intercept[i] = sign * model.coef_[0] / 2, sign * model.intercept_[0] / 2
        else:
            coef[i], intercept[i] = model.coef_[row], model.intercept_[row]
    return LinearHead(classes, coef, intercept)


def _silence_few_examples_warning() -> None:
    # Early in a project most classes have one or two examples; sklearn warns that this "could be
    # regression". It is not: silence that one warning.
    import warnings

    warnings.filterwarnings("ignore", message="The number of unique classes is greater than 50%")
