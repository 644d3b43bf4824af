"""A project's likely label errors: `ml.label_errors` on its stored vectors and resolved labels.

The labels are each item's resolved majority (what the refresh trains on), evaluation items
included: a wrong label in the evaluation set misleads every gate that reads it. The vectors are
the stored ones of the project's current encoder (a fine-tuned champion's embeddings when one is
promoted), so the flags agree with the heads the project fits on them. No UI or API yet (issue 17
brings the data manager's filter and the re-review queue); docs/label-errors.md says how the
flags are computed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from labeller.models import Project
from labeller.task_types import task_type_for
from labeller.task_types.classification import Classification
from ml.label_errors import find_label_errors

from .refresh import project_vectors, training_labels
from .selectors import state_for


@dataclass(frozen=True)
class ItemLabelError:
    item_id: int
    flagged: bool
    given: tuple[str, ...]
    suggested: tuple[str, ...]
    self_confidence: float
    score: float  # lower: more likely mislabelled (the re-review order)


def label_errors_compute(*, project: Project, seed: int = 0) -> list[ItemLabelError]:
    """The verdict on every labelled item that has a stored vector, most suspect first. Empty
    while there is too little to cross-validate (fewer than two labelled items or classes)."""
    task_type = task_type_for(project)
    if not isinstance(task_type, Classification):
        raise ValueError(f"likely label errors are computed for classification projects, not {task_type.key}")
    ids, vectors = project_vectors(project, state_for(project.id).encoder_version)
    position = {item_id: row for row, item_id in enumerate(ids.tolist())}
    labelled = {item_id: labels for item_id, labels in training_labels(project, include_eval=True).items()
                if item_id in position}
    distinct = {label for labels in labelled.values() for label in labels}
    if len(labelled) < 2 or len(distinct) < 2:
        return []
    classes = list(project.labels.values_list("key", flat=True))
    item_ids = list(labelled)
    rows = np.array([position[i] for i in item_ids], dtype=np.int64)
    errors = find_label_errors([labelled[i] for i in item_ids], classes, vectors=vectors[rows],
                               multi_label=task_type.multi_label, seed=seed)
    found = [ItemLabelError(item_id=item_ids[e.index], flagged=e.flagged, given=e.given, suggested=e.suggested,
                            self_confidence=e.self_confidence, score=e.score) for e in errors]
    return sorted(found, key=lambda e: (e.score, e.item_id))
