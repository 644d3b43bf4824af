"""Exact cosine search: best first, a threshold, the query's own row left out."""
import numpy as np

from ml.similarity import VectorMatrix, nearest, unit


def unit_rows(rows):
    rows = np.asarray(rows, dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


MATRIX = unit_rows([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0.5, 0.5, 0], [-1, 0, 0]])


def test_it_returns_the_most_similar_rows_best_first_with_their_cosines():
    rows, sims = nearest(MATRIX, np.array([2.0, 0, 0]), top=3)
    assert rows.tolist() == [0, 1, 3]
    assert np.allclose(sims, [1.0, MATRIX[1, 0], MATRIX[3, 0]])


def test_it_drops_rows_below_the_threshold_and_the_skipped_row():
    rows, _ = nearest(MATRIX, MATRIX[0], top=5, min_similarity=0.6, skip=0)
    assert rows.tolist() == [1, 3]


def test_it_asks_for_no_more_than_there_are_rows_and_answers_empty_on_an_empty_matrix():
    assert nearest(MATRIX, MATRIX[2], top=50)[0].tolist() == [2, 3, 1, 0, 4]
    rows, sims = nearest(np.zeros((0, 3), dtype=np.float32), MATRIX[0], top=5)
    assert len(rows) == len(sims) == 0


def test_it_agrees_with_a_full_sort_on_random_vectors():
    rng = np.random.default_rng(1)
    matrix = unit_rows(rng.standard_normal((2000, 16)))
    query = rng.standard_normal(16)
    rows, sims = nearest(matrix, query, top=10)
    expected = np.argsort(-(matrix @ unit(query)))[:10]
    assert rows.tolist() == expected.tolist()
    assert np.all(np.diff(sims) <= 0)


def test_a_small_matrix_is_searched_exactly_in_float32():
    matrix = VectorMatrix(MATRIX.astype(np.float16))
    assert matrix.exact is not None and matrix.exact.dtype == np.float32
    assert matrix.nearest(MATRIX[0], top=2, skip=0)[0].tolist() == [1, 3]


def clustered(n, dim, clusters, seed):
    rng = np.random.default_rng(seed)
    centres = unit_rows(rng.standard_normal((clusters, dim)))
    return unit_rows(centres[rng.integers(0, clusters, n)] + rng.standard_normal((n, dim)) * 0.05)


def test_a_large_matrix_finds_what_the_exact_search_finds_on_clustered_vectors():
    rows = clustered(30_000, 64, 100, seed=2)
    compact = VectorMatrix(rows.astype(np.float16), exact_below=10_000, reduce_to=16)
    assert compact.exact is None and compact.reduced.shape == (30_000, 16)
    hits = total = 0
    for q in range(0, 30_000, 1500):
        got, sims = compact.nearest(rows[q], top=20, skip=q)
        want, _ = nearest(rows.astype(np.float16).astype(np.float32), rows[q], top=20, skip=q)
        hits, total = hits + len(set(got.tolist()) & set(want.tolist())), total + 20
        assert q not in got.tolist() and np.all(np.diff(sims) <= 0)
    assert hits / total >= 0.95


def test_appended_rows_are_found_with_the_same_basis():
    rows = clustered(12_000, 32, 50, seed=3)
    compact = VectorMatrix(rows[:10_000].astype(np.float16), exact_below=5_000, reduce_to=8)
    grown = compact.appended(rows[10_000:].astype(np.float16))
    assert grown.n == 12_000 and grown.basis is compact.basis
    assert grown.nearest(rows[11_000], top=1)[0].tolist() == [11_000]
    assert grown.nbytes == 12_000 * 32 * 2 + 12_000 * 8 * 4 + 32 * 8 * 4
