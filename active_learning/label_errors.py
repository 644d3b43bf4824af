"""A project's likely label errors: `ml.label_errors` on its stored vectors and resolved labels.

The labels are each item's resolved majority (what the refresh trains on), evaluation items
included: a wrong label in the evaluation set misleads every gate that reads it. The vectors are
the stored ones of the project's current encoder (a fine-tuned champion's embeddings when one is
promoted), so the flags agree with the heads the project fits on them. label_errors_refresh
stores the verdict on the items (Item.likely_mislabelled, the data manager's filter); an expert's
new label on a flagged item settles it (labeller.services.annotation_submit). docs/label-errors.md
says how the flags are computed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.db import transaction
from django.utils import timezone

from core.errors import Conflict, DomainError
from labeller.models import Item, Project
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


@dataclass(frozen=True)
class LabelErrorsRefreshed:
    flagged: int
    checked: int


class NotClassification(Conflict):
    """Likely label errors are computed for classification projects only."""


def label_errors_compute(*, project: Project, seed: int = 0) -> list[ItemLabelError]:
    """The verdict on every labelled item that has a stored vector, most suspect first. Empty
    while there is too little to cross-validate (fewer than two labelled items or classes)."""
    task_type = task_type_for(project)
    if not isinstance(task_type, Classification):
        raise NotClassification(f"likely label errors are computed for classification projects, not {task_type.key}")
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


def label_errors_refresh(*, project: Project, seed: int = 0) -> LabelErrorsRefreshed:
    """Compute the project's likely label errors and store them on its items: the old flags are
    cleared and the new ones written in one transaction, so the filter never shows a mix of two
    runs. DomainError (400) while there is too little to cross-validate."""
    errors = label_errors_compute(project=project, seed=seed)
    if not errors:
        raise DomainError("too few labels to look for label errors: it needs labelled, encoded items "
                          "of at least two different labels", field="project")
    now = timezone.now().isoformat()
    flagged = [Item(id=e.item_id, likely_mislabelled=True,
                    label_error={"given": list(e.given), "suggested": list(e.suggested),
                                 "self_confidence": round(e.self_confidence, 4), "score": round(e.score, 4),
                                 "computed_at": now})
               for e in errors if e.flagged]
    with transaction.atomic():
        Item.objects.filter(project=project, likely_mislabelled=True).update(likely_mislabelled=False, label_error=None)
        Item.objects.bulk_update(flagged, ["likely_mislabelled", "label_error"], batch_size=1000)
    return LabelErrorsRefreshed(flagged=len(flagged), checked=len(errors))
