"""Which items form a project's unbiased evaluation set: a uniform draw, fixed per item."""
from __future__ import annotations

from ml.draws import stable_fraction


def is_eval_draw(project_id: int, row_key: str, share: float) -> bool:
    """A uniform, reproducible draw: the same item of the same project always lands the same way."""
    return stable_fraction(project_id, row_key) < share
