"""Exact cosine search over a matrix of unit vectors: plain numpy, no Django.

The matrix is float32 on purpose: numpy multiplies float32 with BLAS (1M x 384 against one query in
about 60 ms on one core), while float16 has no BLAS path and is 25 times slower, so the float16 bytes
the database stores are widened once, when the matrix is loaded.
"""
from __future__ import annotations

import numpy as np


def unit(vector: np.ndarray) -> np.ndarray:
    """`vector` as float32 of length one (a zero vector stays zero)."""
    vector = np.asarray(vector, dtype=np.float32).ravel()
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def widen_float16(blobs: list[bytes], dim: int, out: np.ndarray, start: int) -> None:
    """Write float16 rows (bytes) into `out[start:]` as float32, without a second full-size copy."""
    if blobs:
        out[start:start + len(blobs)] = np.frombuffer(b"".join(blobs), dtype=np.float16).reshape(len(blobs), dim)


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
