"""Suggestions precomputed for the head of the queue, with the nearest labelled items as evidence."""
from __future__ import annotations

import numpy as np

from labeller.models import Item
from labeller.suggestions import suggestion_dict
from ml import explain
from ml.heads import LinearHead

SUGGESTED_TOP = 50  # items at the head of the queue that get a precomputed suggestion


def suggestions_for(project, head: LinearHead, item_ids, item_vectors, labelled, labelled_vectors,
                    head_version) -> list[dict]:
    """The suggestion shown beside each item (`item_vectors`, row for row): label(s), confidence,
    top 3, and the nearest labelled items (`labelled`: item id -> labels; `labelled_vectors` row for
    row in that order)."""
    if len(item_ids) == 0:
        return []
    labelled_ids = list(labelled)
    if not labelled_ids:
        labelled_vectors = np.zeros((0, item_vectors.shape[1]))
    texts = dict(Item.objects.filter(id__in=labelled_ids).values_list("id", f"data__{project.text_field}")) if labelled_ids else {}
    probs = head.predict_proba(item_vectors)
    out = []
    for p, nearest in zip(probs, explain.nearest(item_vectors, labelled_vectors, k=3)):
        neighbours = []
        for index, similarity in nearest:
            neighbour = labelled_ids[index]
            neighbours.append({"item": neighbour, "text": str(texts.get(neighbour, ""))[:300],
                               "labels": labelled[neighbour], "similarity": round(similarity, 3)})
        out.append(suggestion_dict(head, p, neighbours, head_version))
    return out
