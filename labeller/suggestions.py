"""What the expert sees beside an item: the model's label(s), confidence and top 3, from the head
and vectors the active-learning refresh stored. Reads only: the refresh writes them."""
from __future__ import annotations

import numpy as np

from ml.encoder import from_float16_bytes
from ml.heads import LinearHead

from .models import ActiveLearningState, Item, ItemVector, SuggestionMode
from .span_suggestions import span_suggestion_for_item
from .suggestion_holdout import is_withheld
from .task_types import classification_of, task_type_for


def suggestion_dict(head: LinearHead, p: np.ndarray, neighbours: list[dict], head_version: int) -> dict:
    """The head's decision for one item (by the task it was fitted for), with its evidence."""
    decision = classification_of(head).decide(head.classes, p, top_k=3)
    return {**decision.as_dict(), "neighbours": neighbours, "words": [], "head_version": head_version}


def suggestion_for_item(*, item: Item, user=None) -> dict | None:
    """What to show beside `item`: the precomputed suggestion if current, else one computed now
    from the stored head and the item's vector (without word attributions); for a span project, its
    spans from the word vectors (labeller.span_suggestions). With `user` (the expert it is shown
    to), None when the project's suggestion holdout withholds it from them."""
    project = item.project
    # The evaluation set is labelled without the model's suggestion, so that it measures versions
    # against experts the model did not sway (docs/active-learning.md, "The evaluation set").
    if project.suggestion_mode == SuggestionMode.OFF or item.is_eval:
        return None
    if user is not None and is_withheld(project=project, item=item, user=user):
        return None
    state = ActiveLearningState.objects.filter(project=project).first()
    if state is None or not state.head:
        return None
    if item.suggestion and item.suggestion.get("head_version") == state.head_version:
        return item.suggestion
    if task_type_for(project).word_level:
        return span_suggestion_for_item(item=item, state=state)
    stored = ItemVector.objects.filter(item=item, encoder_version=state.encoder_version).values_list("vector", flat=True).first()
    if stored is None:
        return None
    head = LinearHead.from_bytes(bytes(state.head))
    vector = from_float16_bytes([bytes(stored)], len(stored) // 2)
    return suggestion_dict(head, head.predict_proba(vector)[0], [], state.head_version)
