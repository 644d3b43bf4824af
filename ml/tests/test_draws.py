"""The stable draws give, bit for bit, what the three formulas they replaced gave."""
import hashlib

from ml.draws import stable_fraction, stable_hash

KEYS = ["", "a", "caller-42", "ext:with:colons", "ünïcödé", "x" * 300, "17"]


def _digest(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")


def test_it_matches_the_evaluation_set_draw():
    for project_id in (1, 7, 123456):
        for key in KEYS:
            assert stable_fraction(project_id, key) == _digest(f"{project_id}:{key}") / 2**64


def test_it_matches_the_validation_split_draw():
    for project_id in (1, 7, 123456):
        for item_id in (1, 2, 99, 10**9):
            assert stable_fraction("val", project_id, item_id) == _digest(f"val:{project_id}:{item_id}") / 2**64


def test_it_matches_the_traffic_split_bucket():
    for project_id in (1, 7, 123456):
        for key in KEYS:
            assert stable_hash("split", project_id, key) % 100 == _digest(f"split:{project_id}:{key}") % 100


def test_it_is_a_fraction_spread_over_zero_to_one():
    draws = [stable_fraction("spread", i) for i in range(10_000)]
    assert all(0 <= d < 1 for d in draws)
    assert 0.47 < sum(d < 0.5 for d in draws) / len(draws) < 0.53
