"""Query strategies: which unlabelled items an expert should see next.

Every function returns a score per pool item, higher = sooner. `rank_pool` turns one into the
full serving order, with an optional batch-aware diversity step and a cold start for a project
with no labels yet. Plain numpy and scikit-learn; no Django.
"""
from __future__ import annotations

import numpy as np

RANDOM = "random"
LEAST_CONFIDENCE = "least_confidence"
ENTROPY = "entropy"
MARGIN = "margin"
STRATEGIES = (RANDOM, LEAST_CONFIDENCE, ENTROPY, MARGIN)
_EPS = 1e-12
# Most clusters a diverse batch or a cold start asks k-means for. The batch is `refresh_every`
# labels (up to 10,000), and k-means costs O(pool x k x dim) per iteration with a pool of 10 x k
# candidates, so quadratic in k: at 10,000 a refresh would cluster 100,000 vectors into 10,000
# centres. Past the cap the queue follows by uncertainty score, as every item after the diverse
# batch always has; near-copies may then sit further down, which costs an expert a skip.
MAX_CLUSTERS = 256


def uncertainty(probs: np.ndarray, strategy: str, *, multi_label: bool = False,
                rng: np.random.Generator | None = None) -> np.ndarray:
    """How unsure the model is about each row of `probs` (n_items, n_classes); higher = more unsure.

    Single-label rows are a distribution over classes. Multi-label rows are independent per-label
    probabilities: each label is a yes/no question and the item's score averages them (least
    confidence, entropy) or takes the closest call (margin).
    """
    if strategy == RANDOM:
        return (rng or np.random.default_rng()).random(len(probs))
    if multi_label:
        p = np.clip(probs, _EPS, 1 - _EPS)
        if strategy == LEAST_CONFIDENCE:
            return 1.0 - np.maximum(p, 1 - p).mean(axis=1)
        if strategy == ENTROPY:
            return (-(p * np.log(p) + (1 - p) * np.log(1 - p))).mean(axis=1)
        if strategy == MARGIN:
            return 1.0 - np.abs(2 * p - 1).min(axis=1)
    else:
        if strategy == LEAST_CONFIDENCE:
            return 1.0 - probs.max(axis=1)
        if strategy == ENTROPY:
            p = np.clip(probs, _EPS, 1.0)
            return -(p * np.log(p)).sum(axis=1)
        if strategy == MARGIN:
            top2 = np.partition(probs, -2, axis=1)[:, -2:] if probs.shape[1] > 1 else np.hstack([np.zeros_like(probs), probs])
            return 1.0 - (top2[:, 1] - top2[:, 0])
    raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")


def diverse_batch(scores: np.ndarray, vectors: np.ndarray, *, batch_size: int, candidates_per_slot: int = 10,
                  seed: int = 0) -> np.ndarray:
    """Indices of one batch of at most MAX_CLUSTERS: cluster the most uncertain candidates on
    their embeddings and take the most uncertain item of each cluster, so a batch holds no
    near-copies."""
    from sklearn.cluster import KMeans

    n = len(scores)
    batch_size = min(batch_size, MAX_CLUSTERS)
    if n <= batch_size:
        return np.argsort(-scores, kind="stable")
    pool = np.argsort(-scores, kind="stable")[: min(n, batch_size * candidates_per_slot)]
    clusters = KMeans(n_clusters=batch_size, n_init=1, max_iter=50, random_state=seed).fit_predict(vectors[pool])
    chosen = []
    for cluster in range(batch_size):
        members = pool[clusters == cluster]
        if len(members):
            chosen.append(members[np.argmax(scores[members])])
    chosen = np.array(sorted(chosen, key=lambda i: -scores[i]), dtype=int)
    return chosen


def cold_start(vectors: np.ndarray, *, batch_size: int, seed: int = 0, sample: int = 20000) -> np.ndarray:
    """Scores for a project with no labels: the items nearest to k-means centres of the pool come
    first (diverse and representative), then every item by how typical it is of its cluster."""
    n = len(vectors)
    if n == 0:
        return np.zeros(0)
    rng = np.random.default_rng(seed)
    fit_on = vectors if n <= sample else vectors[rng.choice(n, sample, replace=False)]
    centres = cold_start_centres(fit_on, k=min(batch_size, n, MAX_CLUSTERS), seed=seed)
    return cold_start_scores(*typicality(vectors, centres), len(centres))


def cold_start_centres(fit_on: np.ndarray, *, k: int, seed: int = 0) -> np.ndarray:
    """k-means centres of a (sample of the) pool: what `cold_start` ranks by. A caller that streams
    the pool fits them on a sample and scores the pool a chunk at a time with `typicality`."""
    from sklearn.cluster import MiniBatchKMeans

    return MiniBatchKMeans(n_clusters=k, n_init=3, random_state=seed, batch_size=2048).fit(fit_on).cluster_centers_


def typicality(vectors: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's similarity to its nearest centre (unit vectors: cosine up to the centre's norm)
    and that centre's index."""
    similarity = vectors @ centres.T
    nearest = similarity.argmax(axis=1)
    return similarity[np.arange(len(vectors)), nearest], nearest


def cold_start_scores(typical: np.ndarray, nearest: np.ndarray, k: int) -> np.ndarray:
    """Typicality in [-1, 1], and the most typical member of each cluster lifted above every other
    item (2 + its typicality), so one representative per cluster comes first."""
    scores = np.array(typical)  # its dtype kept: the ranking stays bit-for-bit what it was
    for centre in range(k):
        members = np.flatnonzero(nearest == centre)
        if len(members):
            scores[members[np.argmax(scores[members])]] = 2.0 + scores[members].max()
    return scores


def warm_up_labels(n_classes: int) -> int:
    """How many labels a project is served cluster representatives (`cover_start`) for before
    uncertainty takes over: one cluster per label of the project, at most MAX_CLUSTERS. A head
    fitted on fewer labels than there are classes knows too few of them for its uncertainty to
    mean much: margin sampling then explores only among the classes it has seen."""
    return max(1, min(n_classes, MAX_CLUSTERS))


# Vectors the warm-up's k-means is fitted on: every stored vector of the project up to this many,
# else a seeded uniform draw of this many (`warm_up_sample`). The figures measured for the warm-up
# (docs/benchmarks.md) are with this sample and one k-means init.
WARM_UP_SAMPLE = 10_000


def cover_start(vectors: np.ndarray, labelled: np.ndarray, pool: np.ndarray, *, clusters: int, seed: int = 0,
                sample: int = WARM_UP_SAMPLE) -> np.ndarray:
    """Scores for `pool` (row indices into `vectors`) while a project has few labels: k-means of
    every vector (the pool and the labelled rows, `labelled`) into `clusters`, and the most typical
    item of each cluster that holds no label yet first, most typical cluster first; then every
    item by how typical it is. Refitted each refresh on the same vectors with the same seed, the
    clusters stay put, so the representatives served are of clusters not yet covered (a
    representative-first warm-up, as TypiClust: Hacohen et al. 2022, "Active learning on a budget")."""
    from sklearn.cluster import MiniBatchKMeans

    n = len(vectors)
    k = max(1, min(clusters, n, MAX_CLUSTERS))
    fit_on = vectors if n <= sample else vectors[np.random.default_rng(seed).choice(n, sample, replace=False)]
    # One init on at most `sample` vectors: it runs at every refresh of the warm-up.
    km = MiniBatchKMeans(n_clusters=k, n_init=1, random_state=seed, batch_size=2048).fit(fit_on)
    similarity = vectors[pool] @ km.cluster_centers_.T
    nearest = similarity.argmax(axis=1)
    scores = similarity[np.arange(len(pool)), nearest]  # typicality in [-1, 1]
    covered = set((vectors[labelled] @ km.cluster_centers_.T).argmax(axis=1).tolist()) if len(labelled) else set()
    for centre in set(range(k)) - covered:
        members = np.flatnonzero(nearest == centre)
        if len(members):
            best = members[np.argmax(similarity[members, centre])]
            scores[best] = 2.0 + similarity[best, centre]
    return scores


def warm_up_clusters(*, n_classes: int, batch_size: int, n_vectors: int) -> int:
    """The warm-up's k: a cluster per class (or a batch, if more), at most MAX_CLUSTERS and the vectors."""
    return max(1, min(max(warm_up_labels(n_classes), batch_size), n_vectors, MAX_CLUSTERS))


def warm_up_sample(n: int, *, sample: int = WARM_UP_SAMPLE, seed: int = 0) -> np.ndarray:
    """Positions (in the vectors' order) of the rows the warm-up's k-means is fitted on, in the
    order it is fitted on them: the draw `cover_start` makes, so that a caller streaming the
    vectors fits the same centres (`warm_up_centres`)."""
    return np.arange(n) if n <= sample else np.random.default_rng(seed).choice(n, sample, replace=False)


def warm_up_centres(fit_on: np.ndarray, *, k: int, seed: int = 0) -> np.ndarray:
    """The k-means centres `cover_start` fits (one init: it runs at every refresh of the warm-up)."""
    from sklearn.cluster import MiniBatchKMeans

    return MiniBatchKMeans(n_clusters=k, n_init=1, random_state=seed, batch_size=2048).fit(fit_on).cluster_centers_


class Representatives:
    """`cover_start` over a stream: feed each chunk of the pool, in order, its (typicality, nearest
    centre) (`typicality`); only the most typical member of each cluster so far is kept (the first
    on ties, as argmax), so the state is O(k) whatever the pool. `scores` then lifts those of the
    clusters no labelled vector falls into."""

    def __init__(self, k: int):
        self.k, self.seen = k, 0
        self.best = np.full(k, -np.inf)
        self.row = np.full(k, -1, dtype=np.int64)  # position in the pool, -1: no member yet

    def add(self, typical: np.ndarray, nearest: np.ndarray) -> None:
        if len(typical):
            order = np.lexsort((-typical, nearest))  # by cluster, most typical first, then position
            first = order[np.r_[True, nearest[order][1:] != nearest[order][:-1]]]
            clusters = nearest[first]
            better = typical[first] > self.best[clusters]  # strictly: an earlier chunk keeps a tie
            self.best[clusters[better]] = typical[first][better]
            self.row[clusters[better]] = self.seen + first[better]
        self.seen += len(typical)

    def scores(self, typical: np.ndarray, covered: np.ndarray) -> np.ndarray:
        """`typical` (the whole pool's, in the order fed) with each uncovered cluster's most typical
        member lifted to 2 + its typicality; `covered`: the labelled vectors' nearest centres."""
        scores = np.array(typical)
        for centre in sorted(set(range(self.k)) - set(np.asarray(covered).tolist())):
            if self.row[centre] >= 0:
                scores[self.row[centre]] = 2.0 + typical[self.row[centre]]
        return scores


def rank_pool(scores: np.ndarray, vectors: np.ndarray | None = None, *, batch_size: int = 10,
              diverse: bool = True, seed: int = 0) -> np.ndarray:
    """Pool indices in serving order: the diverse batch first (if asked), then by score."""
    order = np.argsort(-scores, kind="stable")
    if not diverse or vectors is None or len(scores) <= min(batch_size, MAX_CLUSTERS):
        return order
    head = diverse_batch(scores, vectors, batch_size=batch_size, seed=seed)
    rest = np.setdiff1d(order, head, assume_unique=True)
    rest = rest[np.argsort(-scores[rest], kind="stable")]
    return np.concatenate([head, rest])


def interleave_evaluation(strategy_order: np.ndarray, evaluation_order: np.ndarray, *, share: float) -> np.ndarray:
    """Merge two orders so that, at any point of the queue, `share` of the items served come from
    `evaluation_order` (drawn uniformly at random) and the rest from the strategy.

    Position p takes the next evaluation item when int((p + 1) * share) > int(p * share), until one
    order runs out; the rest is the other's. Computed for every position at once (a loop over a
    million positions cost a second of the refresh), the same float64 products as that rule."""
    if share <= 0 or len(evaluation_order) == 0:
        return np.concatenate([strategy_order, evaluation_order])
    n_strategy, n_eval = len(strategy_order), len(evaluation_order)
    total = n_strategy + n_eval
    position = np.arange(total, dtype=np.float64)
    take_eval = np.floor((position + 1) * share) > np.floor(position * share)
    # The first position where the rule asks for an order that has run out; from there on every
    # item comes from the other one.
    eval_out = np.flatnonzero(take_eval & (np.cumsum(take_eval) > n_eval))
    strategy_out = np.flatnonzero(~take_eval & (np.cumsum(~take_eval) > n_strategy))
    cut = min(eval_out[0] if len(eval_out) else total, strategy_out[0] if len(strategy_out) else total)
    take_eval[cut:] = cut < total and len(strategy_out) > 0 and strategy_out[0] == cut
    merged = np.empty(total, dtype=np.asarray(strategy_order).dtype if n_strategy else int)
    merged[take_eval] = evaluation_order
    merged[~take_eval] = strategy_order
    return merged
