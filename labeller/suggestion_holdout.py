"""The suggestion holdout: a random share of served items is shown without the model's suggestion,
so that what experts answer with and without one can be compared (automation bias, issue 17).

Which items are withheld is a hash of (project, item, expert), not a stored draw: the queue that
serves the item and the submit that records the answer decide the same without a round trip, and
another expert on the same item draws afresh. What the model would have suggested is recorded on
the annotation (`withheld_suggestion`), so agreement with the model can be measured for both.
"""
from __future__ import annotations

from ml.draws import stable_hash

from .models import Item, Project
from .task_types import task_type_for


def is_withheld(*, project: Project, item: Item, user) -> bool:
    """Whether this expert is shown this item without its suggestion."""
    share = project.suggestion_holdout
    return share > 0 and not item.is_eval and stable_hash("holdout", project.id, item.id, user.pk) % 10_000 < share * 10_000


def suggested_value(*, project: Project, suggestion: dict | None):
    """A suggestion (as suggestion_for_item gives it) as the value the expert would have been shown,
    in the task's stored form (label keys; spans without their text and confidence), or None."""
    if not suggestion:
        return None
    if task_type_for(project).key == "spans":
        spans = suggestion.get("spans")
        return None if spans is None else [{k: s[k] for k in ("start", "end", "label")} for s in spans]
    return list(suggestion.get("labels") or []) or None
