"""Which items form a project's unbiased evaluation set: a uniform draw, fixed per item."""
from __future__ import annotations

import hashlib


def is_eval_draw(project_id: int, row_key: str, share: float) -> bool:
    """A uniform, reproducible draw: the same item of the same project always lands the same way."""
    digest = hashlib.blake2b(f"{project_id}:{row_key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < share
