"""Drift checks: has a deployed classifier's live traffic moved away from the domain it serves?

Each function compares a reference sample with a live sample (recent inputs or predictions) and
returns plain floats, dicts or tuples, so a monitoring job can store the result as JSON.
`Reference` holds what a version's live traffic is compared with, and `Reference.compare` gives
each alerting figure with the value it would reach by chance alone on a window of that size (its
critical value): an alarm needs both, so a small window does not cry wolf. Plain numpy, scipy and
scikit-learn; no Django.

The reference must be a sample of the domain, not the training set: with active learning the
labelled set is deliberately unrepresentative (skewed towards hard classes), and the training
texts made the vocabulary, so their own out-of-vocabulary rate is 0. See docs/serving.md.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
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


# Chance of an alarm per figure and check on traffic from the reference's own domain. Three
# figures alert (prediction JS, OOV increase, domain AUC): at most about 3 % of in-domain checks
# raise any of them. benchmarks/drift_alarms.py measures it.
ALPHA = 0.01
# How much drift matters, whatever the window: an alert needs a figure over its threshold as well
# as over its critical value (feedback.monitoring's defaults; a project's serving policy may
# override them). Chosen on held-out training queries with benchmarks/drift_alarms.py --split tune.
THRESHOLDS = {"prediction_js": 0.1, "domain_auc": 0.8, "oov_rate_increase": 0.1}
NULL_DRAWS = 400  # bootstrap draws per critical value: the 99th percentile from 400 is within a few %


def _quantile(values: np.ndarray, alpha: float) -> float:
    return float(np.quantile(values, 1 - alpha))


def auc_critical(n_reference: int, n_live: int, alpha: float = ALPHA) -> float:
    """The AUC a classifier reaches by chance between two samples of one distribution, at
    one-sided level `alpha`: the Mann–Whitney null, 0.5 + z·sqrt((m + n + 1) / (12·m·n)). Out-of-fold
    scores are close enough to independent of the side for this to hold (the classifier two-sample
    test of Lopez-Paz and Oquab, 2017)."""
    from scipy.stats import norm

    m, n = max(n_reference, 1), max(n_live, 1)
    return float(0.5 + norm.ppf(1 - alpha) * np.sqrt((m + n + 1) / (12 * m * n)))


@dataclass
class Reference:
    """What live traffic is compared with: a random sample of the domain the model serves.

    - `vocab`: the words of the training texts and of half of the sample;
    - `held_out`: (tokens, unseen tokens) of each sample text outside that half and never trained
      on; their pooled rate is the honest out-of-vocabulary baseline;
    - `labels`: what the version predicts for each sample text (what prediction drift counts of it,
      as for a live prediction), not the labels it was trained on;
    - `embeddings`: base-encoder vectors of the sample; `lengths`: its texts' lengths.
    """

    vocab: set[str]
    held_out: np.ndarray  # (texts, 2) ints
    labels: list[list[str]]
    embeddings: np.ndarray | None
    lengths: list[int]
    described: dict = field(default_factory=dict)

    @property
    def oov_baseline(self) -> float | None:
        tokens = int(self.held_out[:, 0].sum()) if len(self.held_out) else 0
        return float(self.held_out[:, 1].sum() / tokens) if tokens else None

    def compare(self, texts: Sequence[str], embeddings: np.ndarray | None, labels: Sequence[Sequence[str]], *,
                alpha: float = ALPHA, draws: int = NULL_DRAWS, seed: int = 0) -> dict:
        """Each drift figure of a live window against this reference, with the critical values
        (`critical`: the value chance alone exceeds with probability `alpha` on a window of this
        size from the reference's own domain). Figures that cannot be computed are None."""
        rng = np.random.default_rng(seed)
        out: dict = {"critical": {}}
        live = Counter(label for row in labels for label in row)
        reference = Counter(label for row in self.labels for label in row)
        out["prediction_js"] = js_divergence(live, reference) if self.labels else None
        if self.labels and labels:
            out["critical"]["prediction_js"] = _js_critical(self.labels, len(labels), alpha, draws, rng)
        counts = _oov_counts(texts, self.vocab)
        tokens = int(counts[:, 0].sum()) if len(counts) else 0
        out["oov_rate"] = float(counts[:, 1].sum() / tokens) if tokens else 0.0
        baseline = self.oov_baseline
        out["oov_baseline"] = baseline
        out["oov_rate_increase"] = None if baseline is None else out["oov_rate"] - baseline
        if baseline is not None and len(texts):
            out["critical"]["oov_rate_increase"] = _oov_critical(self.held_out, len(texts), alpha, draws, rng)
        out["length"] = length_shift(self.lengths, [len(t) for t in texts])
        out["domain_auc"] = out["mmd"] = None
        if self.embeddings is not None and embeddings is not None and len(embeddings):
            out["domain_auc"] = domain_classifier_auc(self.embeddings, embeddings, seed=seed)
            out["mmd"] = mmd_rbf(self.embeddings, embeddings, seed=seed)
            out["critical"]["domain_auc"] = auc_critical(min(len(self.embeddings), 1000), min(len(embeddings), 1000), alpha)
        return out


def reference_build(*, texts: Sequence[str], trained: Sequence[bool], labels: Sequence[Sequence[str]],
                    embeddings: np.ndarray | None, training_texts: Iterable[str], seed: int = 0) -> Reference:
    """A Reference from a random sample of the domain: `texts` with, for each, whether the version
    was trained on it and what it predicts for it; `training_texts` are all the texts it was
    trained on. The vocabulary is the training texts' and half the sample's; the other half, less
    any text trained on, is held out for the out-of-vocabulary baseline."""
    order = np.random.default_rng(seed).permutation(len(texts))
    half = set(order[: len(texts) // 2].tolist())
    vocab = vocabulary([*training_texts, *(texts[i] for i in half)])
    held_out = [texts[i] for i in range(len(texts)) if i not in half and not trained[i]]
    return Reference(vocab=vocab, held_out=_oov_counts(held_out, vocab), labels=[list(row) for row in labels],
                     embeddings=embeddings, lengths=[len(t) for t in texts])


def _oov_counts(texts: Sequence[str], vocab: set[str]) -> np.ndarray:
    rows = [(len(tokens), sum(t not in vocab for t in tokens)) for tokens in map(tokenize, texts)]
    return np.array(rows, dtype=np.int64).reshape(-1, 2)


def _resampled(rows: np.ndarray, n: int, draws: int, rng: np.random.Generator) -> np.ndarray:
    """Column sums of `n` rows drawn with replacement, `draws` times: (draws, columns). Whole rows
    (texts) are drawn, since the words or spans of one text are not independent."""
    weights = rng.multinomial(n, np.full(len(rows), 1 / len(rows)), size=draws)
    return weights @ rows


def _oov_critical(held_out: np.ndarray, n: int, alpha: float, draws: int, rng: np.random.Generator) -> float:
    """The OOV-rate increase chance gives a window of `n` texts of the domain over the baseline:
    a window and a held-out set of the same sizes are drawn from the held-out texts and their
    pooled rates compared."""
    def rate(sums):
        return sums[:, 1] / np.maximum(sums[:, 0], 1)
    k = len(held_out)
    return _quantile(rate(_resampled(held_out, n, draws, rng)) - rate(_resampled(held_out, k, draws, rng)), alpha)


def _js_critical(reference: list[list[str]], n: int, alpha: float, draws: int, rng: np.random.Generator) -> float:
    """The JS divergence chance gives between a window of `n` predictions and the reference's,
    both drawn (whole texts) from the reference's own predictions."""
    names = sorted({label for row in reference for label in row})
    index = {name: i for i, name in enumerate(names)}
    counts = np.zeros((len(reference), max(len(names), 1)))
    for r, row in enumerate(reference):
        for label in row:
            counts[r, index[label]] += 1
    return _quantile(_js_rows(_resampled(counts, n, draws, rng), _resampled(counts, len(reference), draws, rng)), alpha)


def _js_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """JS divergence in bits between matching rows of two count matrices."""
    a = a / np.maximum(a.sum(axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(b.sum(axis=1, keepdims=True), 1e-12)
    mid = (a + b) / 2
    def kl(p, q):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(p > 0, p * np.log2(p / np.where(q > 0, q, 1)), 0.0).sum(axis=1)
    return np.clip((kl(a, mid) + kl(b, mid)) / 2, 0.0, 1.0)
