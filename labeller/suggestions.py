"""What the expert sees beside an item: the model's label(s), confidence and top 3, from the head
and vectors the active-learning refresh stored. Reads only: the refresh writes them."""
from __future__ import annotations

import numpy as np

from ml.encoder import from_float16_bytes
from ml.heads import LinearHead

from .models import ActiveLearningState, Item, ItemVector, SuggestionMode


def suggestion_dict(head: LinearHead, p: np.ndarray, neighbours: list[dict], head_version: int) -> dict:
    order = np.argsort(-p)
    if head.multi_label:
        labels = [head.classes[i] for i in order if p[i] >= 0.5] or [head.classes[order[0]]]
        confidence = float(np.min([max(p[i], 1 - p[i]) for i in range(len(p))]))
    else:
        labels = [head.classes[order[0]]]
        confidence = float(p[order[0]])
    return {
        "labels": labels,
        "confidence": round(confidence, 4),
        "top": [{"label": head.classes[i], "p": round(float(p[i]), 4)} for i in order[:3]],
        "neighbours": neighbours,
        "words": [],
        "head_version": head_version,
    }


def suggestion_for_item(*, item: Item) -> dict | None:
    """What to show beside `item`: the precomputed suggestion if current, else one computed now
    from the stored head and the item's vector (without word attributions)."""
    project = item.project
    if project.suggestion_mode == SuggestionMode.OFF:
        return None
    state = ActiveLearningState.objects.filter(project=project).first()
    if state is None or not state.head:
        return None
    if item.suggestion and item.suggestion.get("head_version") == state.head_version:
        return item.suggestion
    stored = ItemVector.objects.filter(item=item, encoder_version=state.encoder_version).values_list("vector", flat=True).first()
    if stored is None:
        return None
    head = LinearHead.from_bytes(bytes(state.head))
    vector = from_float16_bytes([bytes(stored)], len(stored) // 2)
    return suggestion_dict(head, head.predict_proba(vector)[0], [], state.head_version)
