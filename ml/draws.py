"""Stable draws: a number derived from a few values by hashing, so that the same values land the
same way in every process and every release (Python's hash() is salted per process)."""
from __future__ import annotations

import hashlib


def stable_hash(*parts: object) -> int:
    """A uniform 64-bit integer from `parts` joined with ":" (blake2b, 8 bytes, big-endian)."""
    key = ":".join(str(part) for part in parts)
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")


def stable_fraction(*parts: object) -> float:
    """A uniform draw in [0, 1) from `parts`: `stable_fraction(...) < share` keeps `share` of them."""
    return stable_hash(*parts) / 2**64
