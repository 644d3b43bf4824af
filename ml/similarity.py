"""Cosine search over unit vectors: plain numpy, no Django.

Scores are computed in float32 on purpose: numpy multiplies float32 with BLAS (1M x 384 against one
query in about 60 ms on an idle core), while float16 has no BLAS path and is 25 times slower. The
float16 rows the database stores are therefore widened once, or projected once (VectorMatrix).
"""
from __future__ import annotations

import numpy as np


def unit(vector: np.ndarray) -> np.ndarray:
    """`vector` as float32 of length one (a zero vector stays zero)."""
    vector = np.asarray(vector, dtype=np.float32).ravel()
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def nearest(matrix: np.ndarray, query: np.ndarray, *, top: int, min_similarity: float = -1.0,
            skip: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of the `top` rows most similar to `query` (cosine, rows and query unit length)
    with similarity >= `min_similarity`, best first, and their similarities. `skip`: a row index
    left out (the query's own row)."""
    if len(matrix) == 0 or top <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    scores = matrix @ unit(query)
    if skip is not None:
        scores[skip] = -np.inf
    top = min(top, len(scores))
    # argpartition is linear; only the `top` winners are sorted.
    picked = np.argpartition(-scores, top - 1)[:top] if top < len(scores) else np.arange(len(scores))
    picked = picked[np.argsort(-scores[picked], kind="stable")]
    picked = picked[scores[picked] >= min_similarity]
    return picked.astype(np.int64), scores[picked].astype(np.float32)


class VectorMatrix:
    """A project's stored vectors, searchable by cosine.

    Below `exact_below` rows it holds them as float32 and every search is exact. From there on, a
    full float32 pass would read 4 x dim bytes a row per search (1.5 GB at 1M x 384: 60 ms on an
    idle core, 220 ms on our shared, oversubscribed machine), so it keeps the float16 rows (2 x dim
    bytes) plus their projection on the top `reduce_to` principal directions of a sample (float32,
    4 x reduce_to bytes): a search scores the projections, then re-scores exactly the best
    `candidates` (at least 2,000, or 10 x top) from the float16 rows. Memory at 1M x 384 with
    reduce_to=96: 768 + 384 MB, against 1,536 MB for the exact matrix. What it may miss is measured
    by benchmarks/find_similar.py (recall against the exact search)."""

    def __init__(self, rows: np.ndarray, *, exact_below: int = 200_000, reduce_to: int = 96, seed: int = 0):
        self.n, self.dim = rows.shape
        if self.n < exact_below or self.dim <= reduce_to:
            self.exact, self.half, self.basis, self.reduced = rows.astype(np.float32), None, None, None
            return
        self.exact = None
        self.half = rows.astype(np.float16, copy=False)
        sample = self.half[np.random.default_rng(seed).choice(self.n, min(self.n, 20_000), replace=False)].astype(np.float32)
        # Uncentred: the directions that carry most of the dot products, which is what cosine reads.
        self.basis = np.linalg.svd(sample, full_matrices=False)[2][:reduce_to].T.copy()
        self.reduced = self._project(self.half)

    def _project(self, half: np.ndarray) -> np.ndarray:
        out = np.empty((len(half), self.basis.shape[1]), dtype=np.float32)
        for start in range(0, len(half), 65_536):
            out[start:start + 65_536] = half[start:start + 65_536].astype(np.float32) @ self.basis
        return out

    def appended(self, rows: np.ndarray) -> VectorMatrix:
        """A new matrix with `rows` after these (same mode and basis: the sample is not redrawn)."""
        new = object.__new__(VectorMatrix)
        new.n, new.dim, new.basis = self.n + len(rows), self.dim, self.basis
        if self.exact is not None:
            new.exact, new.half, new.reduced = np.concatenate([self.exact, rows.astype(np.float32)]), None, None
        else:
            half = rows.astype(np.float16)
            new.exact, new.half = None, np.concatenate([self.half, half])
            new.reduced = np.concatenate([self.reduced, self._project(half)])
        return new

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.exact, self.half, self.basis, self.reduced) if a is not None)

    def row(self, i: int) -> np.ndarray:
        return (self.exact if self.exact is not None else self.half)[i].astype(np.float32)

    def nearest(self, query: np.ndarray, *, top: int, min_similarity: float = -1.0,
                skip: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """As `nearest` over the rows (exact below `exact_below` rows; see the class)."""
        if self.exact is not None:
            return nearest(self.exact, query, top=top, min_similarity=min_similarity, skip=skip)
        query = unit(query)
        first = self.reduced @ (query @ self.basis)
        if skip is not None:
            first[skip] = -np.inf
        wanted = min(self.n, max(2_000, 10 * top))
        candidates = np.argpartition(-first, wanted - 1)[:wanted] if wanted < self.n else np.arange(self.n)
        if skip is not None:
            candidates = candidates[candidates != skip]
        rows, sims = nearest(self.half[candidates].astype(np.float32), query, top=top, min_similarity=min_similarity)
        return candidates[rows].astype(np.int64), sims
