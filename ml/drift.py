"""Drift checks: has a deployed classifier's live traffic moved away from its training data?

Each function compares a reference sample (training data) with a live sample (recent inputs or
predictions) and returns plain floats, dicts or tuples, so a monitoring job can store the result
as JSON. Plain numpy, scipy and scikit-learn; no Django.
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Iterable, Mapping, Sequence

import numpy as np

_TOKEN = re.compile(r"[a-z0-9']+")


def tokenize(text: str) -> list[str]:
    """Lowercase word tokens: crude on purpose, so vocabulary drift is cheap and language-agnostic."""
    return _TOKEN.findall(text.lower())


def vocabulary(texts: Iterable[str], min_count: int = 1) -> set[str]:
    """Tokens seen at least `min_count` times; a higher floor keeps one-off typos out of the vocabulary."""
    counts = Counter(token for text in texts for token in tokenize(text))
    return {token for token, count in counts.items() if count >= min_count}


def oov_rate(texts: Sequence[str], vocab: set[str]) -> float:
    """Share of live tokens, pooled over all texts, that training never saw: new words, new topics."""
    tokens = [token for text in texts for token in tokenize(text)]
    if not tokens:
        return 0.0
    return sum(token not in vocab for token in tokens) / len(tokens)


def length_shift(reference_lengths: Sequence[int], live_lengths: Sequence[int]) -> dict:
    """Means and the two-sample Kolmogorov–Smirnov test of input lengths; a length change often
    means a new channel or a truncation bug upstream. ks and p_value are None if a side is empty."""
    from scipy.stats import ks_2samp

    result = {
        "reference_mean": float(np.mean(reference_lengths)) if len(reference_lengths) else None,
        "live_mean": float(np.mean(live_lengths)) if len(live_lengths) else None,
        "ks": None,
        "p_value": None,
    }
    if len(reference_lengths) and len(live_lengths):
        test = ks_2samp(reference_lengths, live_lengths)
        result["ks"], result["p_value"] = float(test.statistic), float(test.pvalue)
    return result


def _rows(x: np.ndarray) -> np.ndarray:
    """A float matrix with one row per example; a 1-D array is one feature."""
    x = np.asarray(x, dtype=float)
    return x.reshape(-1, 1) if x.ndim == 1 else x


def _subsample(x: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    """At most `limit` rows, drawn without replacement, so the cost is bounded whatever the traffic."""
    return x if len(x) <= limit else x[rng.choice(len(x), limit, replace=False)]


def domain_classifier_auc(reference: np.ndarray, live: np.ndarray, *, seed: int = 0,
                          max_per_side: int = 1000, folds: int = 5) -> float | None:
    """Out-of-fold ROC AUC of a classifier told to separate reference rows from live rows.

    0.5 means it cannot tell them apart; 1.0 means live is an entirely different domain. Folds
    shrink to the smaller side's size; None when a side has fewer than two rows.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    rng = np.random.default_rng(seed)
    ref = _subsample(_rows(reference), max_per_side, rng)
    new = _subsample(_rows(live), max_per_side, rng)
    folds = min(folds, len(ref), len(new))
    if folds < 2:
        return None
    X = np.vstack([ref, new])
    y = np.concatenate([np.zeros(len(ref), dtype=int), np.ones(len(new), dtype=int)])
    probs = cross_val_predict(LogisticRegression(C=1.0, max_iter=1000), X, y,
                              cv=StratifiedKFold(folds, shuffle=True, random_state=seed), method="predict_proba")
    return float(roc_auc_score(y, probs[:, 1]))


def mmd_rbf(reference: np.ndarray, live: np.ndarray, *, max_per_side: int = 500, seed: int = 0) -> float | None:
    """Unbiased squared maximum mean discrepancy with an RBF kernel: a model-free distance between
    two samples that sees any difference in distribution, not only in the mean.

    The bandwidth is the median pairwise distance of the pooled sample, so the figure does not
    depend on the embedding's scale. Near 0 (it may dip just below) when both come from one
    distribution. None when a side has fewer than two rows.
    """
    from scipy.spatial.distance import pdist, squareform

    rng = np.random.default_rng(seed)
    ref = _subsample(_rows(reference), max_per_side, rng)
    new = _subsample(_rows(live), max_per_side, rng)
    m, n = len(ref), len(new)
    if m < 2 or n < 2:
        return None
    squared = pdist(np.vstack([ref, new]), "sqeuclidean")
    median = float(np.median(squared))
    kernel = squareform(np.exp(-squared / (2 * median if median > 0 else 2.0)))  # zero diagonal: i == j left out
    k_rr, k_nn, k_rn = kernel[:m, :m], kernel[m:, m:], kernel[:m, m:]
    return float(k_rr.sum() / (m * (m - 1)) + k_nn.sum() / (n * (n - 1)) - 2 * k_rn.mean())


def js_divergence(p: Mapping[str, float], q: Mapping[str, float]) -> float:
    """Jensen–Shannon divergence in bits, in [0, 1], between two label distributions (counts or
    probabilities; missing labels count 0). Symmetric and finite even when a label appears on one
    side only, which is exactly the case drift monitoring must handle. An empty side counts as
    entirely different from a non-empty one, and two empty sides as the same."""
    from scipy.spatial.distance import jensenshannon

    labels = sorted(set(p) | set(q))
    a = np.array([float(p.get(label, 0.0)) for label in labels])
    b = np.array([float(q.get(label, 0.0)) for label in labels])
    a_empty, b_empty = a.sum() <= 0, b.sum() <= 0
    if a_empty or b_empty:
        return 0.0 if a_empty and b_empty else 1.0
    return float(np.clip(jensenshannon(a / a.sum(), b / b.sum(), base=2) ** 2, 0.0, 1.0))


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """Wilson score interval for a proportion: unlike p ± z·se it stays within [0, 1] and is honest
    for small n and for rates near 0 or 1, which is what live error rates look like. None if n == 0."""
    if n == 0:
        return None
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be between 0 and n={n}, got {successes}")
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, float(centre - half)), min(1.0, float(centre + half))
