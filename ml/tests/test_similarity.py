"""Exact cosine search: best first, a threshold, the query's own row left out."""
import numpy as np

from ml.similarity import nearest, unit, widen_float16


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


def test_float16_rows_are_widened_in_place():
    out = np.zeros((3, 2), dtype=np.float32)
    widen_float16([np.array([1, 0.5], dtype=np.float16).tobytes()], 2, out, 1)
    assert out.tolist() == [[0, 0], [1, 0.5], [0, 0]]
