"""A project's likely label errors: `ml.label_errors` on its stored vectors and resolved labels.

The labels are each item's resolved majority (what the refresh trains on), evaluation items
included: a wrong label in the evaluation set misleads every gate that reads it. The vectors are
the stored ones of the project's current encoder (a fine-tuned champion's embeddings when one is
promoted), so the flags agree with the heads the project fits on them. label_errors_refresh
stores the verdict on the items (Item.likely_mislabelled, the data manager's filter); an expert's
new label on a flagged item settles it (labeller.services.annotation_submit). Single-label
projects also get a second opinion: what a head fitted on the settled items alone confidently
disagrees with. docs/label-errors.md says how the flags are computed.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
from django.db import transaction
from django.utils import timezone

from celery import shared_task
from django.conf import settings

from core.enqueue import enqueue_on_commit
from core.errors import Conflict, DomainError
from labeller.consensus import consensus_refresh, consensus_refresh_claim
from labeller.models import Item, Project
from labeller.task_types import task_type_for
from labeller.task_types.classification import Classification
from ml.label_errors import find_label_errors, out_of_sample_probabilities, second_opinion

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
    by: str = "confident_learning"  # what flagged it: CONFIDENT_LEARNING or SECOND_OPINION
    second_opinion: float | None = None  # that head's probability for its suggestion


CONFIDENT_LEARNING, SECOND_OPINION = "confident_learning", "second_opinion"


@dataclass(frozen=True)
class LabelErrorsRefreshed:
    flagged: int
    checked: int


SIMILAR_SHOWN = 3  # most similar labelled items kept as a flag's evidence


class NotClassification(Conflict):
    """Likely label errors are computed for classification projects only."""


@dataclass(frozen=True)
class _Inputs:
    item_ids: list[int]
    label_sets: list
    vectors: np.ndarray
    classes: list[str]
    multi_label: bool

    @cached_property
    def row_of(self) -> dict[int, int]:
        """Each item id's row in item_ids, label_sets and vectors."""
        return {item_id: row for row, item_id in enumerate(self.item_ids)}


def _inputs(project: Project, stored: tuple[dict, np.ndarray] | None = None) -> _Inputs | None:
    """The labelled, encoded items with their resolved labels; None while there is too little to
    cross-validate (fewer than two labelled items or labels). `stored`: the (position, vectors)
    of an earlier call, to read the labels again without reading every vector again."""
    task_type = task_type_for(project)
    if not isinstance(task_type, Classification):
        raise NotClassification(f"likely label errors are computed for classification projects, not {task_type.key}")
    position, vectors = stored or _stored_vectors(project)
    labelled = {item_id: labels for item_id, labels in training_labels(project, include_eval=True).items()
                if item_id in position}
    distinct = {label for labels in labelled.values() for label in labels}
    if len(labelled) < 2 or len(distinct) < 2:
        return None
    item_ids = list(labelled)
    rows = np.array([position[i] for i in item_ids], dtype=np.int64)
    return _Inputs(item_ids, [labelled[i] for i in item_ids], vectors[rows],
                   list(project.labels.values_list("key", flat=True)), task_type.multi_label)


def _stored_vectors(project: Project) -> tuple[dict, np.ndarray]:
    ids, vectors = project_vectors(project, state_for(project.id).encoder_version)
    return {item_id: row for row, item_id in enumerate(ids.tolist())}, vectors


def _verdicts(inputs: _Inputs, probs: np.ndarray) -> list[ItemLabelError]:
    errors = find_label_errors(inputs.label_sets, inputs.classes, probs=probs, multi_label=inputs.multi_label)
    found = [ItemLabelError(item_id=inputs.item_ids[e.index], flagged=e.flagged, given=e.given, suggested=e.suggested,
                            self_confidence=e.self_confidence, score=e.score) for e in errors]
    return sorted(found, key=lambda e: (e.score, e.item_id))


def _probabilities(inputs: _Inputs, seed: int) -> np.ndarray:
    return out_of_sample_probabilities(inputs.vectors, inputs.label_sets, inputs.classes,
                                       multi_label=inputs.multi_label, seed=seed)


def label_errors_compute(*, project: Project, seed: int = 0) -> list[ItemLabelError]:
    """The verdict on every labelled item that has a stored vector, most suspect first. Empty
    while there is too little to cross-validate (fewer than two labelled items or classes)."""
    inputs = _inputs(project)
    return [] if inputs is None else _verdicts(inputs, _probabilities(inputs, seed))


def similar_labelled(inputs: _Inputs, rows: list[int], *, k: int = SIMILAR_SHOWN) -> list[list[dict]]:
    """For each of `rows` (indices into the inputs), its k most similar other labelled items by
    cosine of the stored vectors, with their resolved labels: the evidence shown beside a flag."""
    if not rows:
        return []
    unit = inputs.vectors / np.maximum(np.linalg.norm(inputs.vectors, axis=1, keepdims=True), 1e-12)
    out = []
    for start in range(0, len(rows), 256):  # bounded memory: 256 x labelled similarities at a time
        chunk = np.array(rows[start:start + 256])
        sims = unit[chunk] @ unit.T
        sims[np.arange(len(chunk)), chunk] = -np.inf  # not itself
        take = min(k, sims.shape[1] - 1)
        top = np.argsort(-sims, axis=1)[:, :take]
        for r, best in enumerate(top):
            out.append([{"item": inputs.item_ids[j], "labels": list(inputs.label_sets[j]),
                         "similarity": round(float(sims[r, j]), 3)} for j in best])
    return out


def labels_audit(*, project: Project, seed: int = 0) -> LabelErrorsRefreshed:
    """The trustworthy-labels pass, from one set of out-of-sample probabilities: refit the
    consensus estimate (single-label: Dawid–Skene with the model's probabilities as each item's
    prior, labeller.consensus), then look for likely label errors against the labels it resolves,
    and store the flags with their evidence. Too little to cross-validate: the consensus is
    refitted on the labels alone and no flag changes (checked = 0)."""
    stored = _stored_vectors(project) if isinstance(task_type_for(project), Classification) else None
    inputs = _inputs(project, stored)
    if inputs is None:
        consensus_refresh(project=project)
        return LabelErrorsRefreshed(flagged=0, checked=0)
    probs = _probabilities(inputs, seed)
    consensus_refresh(project=project, prior=dict(zip(inputs.item_ids, probs)), prior_classes=inputs.classes)
    resolved = _inputs(project, stored)  # the consensus may have moved some labels; the probabilities stay out-of-sample
    if resolved is None:
        return LabelErrorsRefreshed(flagged=0, checked=0)
    uniform = np.full(len(inputs.classes), 1.0 / len(inputs.classes))
    probs = np.array([probs[inputs.row_of[i]] if i in inputs.row_of else uniform for i in resolved.item_ids])
    settled = set(Item.objects.filter(project=project, label_error__has_key="re_reviewed").values_list("id", flat=True))
    errors = _with_second_opinion(resolved, _unsettled(_verdicts(resolved, probs), settled), settled, seed)
    _store_flags(project, resolved, errors)
    return LabelErrorsRefreshed(flagged=sum(e.flagged for e in errors), checked=len(errors))


def _unsettled(errors: list[ItemLabelError], settled: set[int]) -> list[ItemLabelError]:
    """The verdicts with no flag on an item a second expert already re-reviewed: that opinion
    settled it (issue 17: "the second label settles it"), and a flag would serve it to a third
    expert and overwrite the record of the first re-review. The audit still reads its labels."""
    return [replace(e, flagged=False) if e.flagged and e.item_id in settled else e for e in errors]


def _with_second_opinion(inputs: _Inputs, errors: list[ItemLabelError], settled: set[int],
                         seed: int) -> list[ItemLabelError]:
    """Single-label: also flag the unsettled items whose label a head fitted on the settled items
    alone confidently disagrees with (ml.label_errors.second_opinion), suggesting its answer.
    Confident learning's heads learn a mistake made often enough (a class given its most
    confusable neighbour); the settled items were decided by a second expert where those heads
    were unsure. Measured: docs/benchmarks.md, "A second opinion from the settled items"."""
    if inputs.multi_label or not settled:
        return errors
    index = {key: i for i, key in enumerate(inputs.classes)}
    labels = np.array([index[labels[0]] for labels in inputs.label_sets])
    is_settled = np.array([item_id in settled for item_id in inputs.item_ids])
    flags, answers, sure = second_opinion(inputs.vectors, labels, is_settled, inputs.classes, seed=seed)
    out = []
    for e in errors:
        row = inputs.row_of[e.item_id]
        if flags[row] and not e.flagged:
            e = replace(e, flagged=True, suggested=(inputs.classes[answers[row]],), by=SECOND_OPINION,
                        second_opinion=float(sure[row]))
        out.append(e)
    return out


def _store_flags(project: Project, inputs: _Inputs, errors: list[ItemLabelError]) -> None:
    """The old flags cleared and the new ones written in one transaction, so the filter never
    shows a mix of two runs."""
    now = timezone.now().isoformat()
    flagged = [e for e in errors if e.flagged]
    similar = similar_labelled(inputs, [inputs.row_of[e.item_id] for e in flagged])
    items = [Item(id=e.item_id, likely_mislabelled=True,
                  label_error={"given": list(e.given), "suggested": list(e.suggested),
                               "self_confidence": round(e.self_confidence, 4), "score": round(e.score, 4),
                               "by": e.by, "similar": near, "computed_at": now,
                               **({"second_opinion": round(e.second_opinion, 4)} if e.second_opinion is not None else {})})
             for e, near in zip(flagged, similar)]
    with transaction.atomic():
        Item.objects.filter(project=project, likely_mislabelled=True).update(likely_mislabelled=False, label_error=None)
        Item.objects.bulk_update(items, ["likely_mislabelled", "label_error"], batch_size=1000)


def label_errors_refresh(*, project: Project, seed: int = 0) -> LabelErrorsRefreshed:
    """The "Find likely label errors" button and API: the audit now, in the request.
    DomainError (400) while there is too little to cross-validate."""
    audited = labels_audit(project=project, seed=seed)
    if not audited.checked:
        raise DomainError("too few labels to look for label errors: it needs labelled, encoded items "
                          "of at least two different labels", field="project")
    return audited


def labels_audit_if_due(*, project: Project) -> bool:
    """After a refresh: ask for an audit once LABELLOOP_LABEL_AUDIT_EVERY labels (and a tenth more
    than at the last fit) arrived since the last one. Claimed by a conditional update, so two
    refreshes finishing at once ask once; the audit runs in a worker."""
    if not isinstance(task_type_for(project), Classification):
        return False
    if not consensus_refresh_claim(project=project, every=settings.LABELLOOP_LABEL_AUDIT_EVERY):
        return False
    enqueue_on_commit(labels_audit_run, project.id)
    return True


# Beside the service it runs (docs/architecture.md, "Tasks"); on the training queue's side of the
# house: five head fits over the labelled items, not the pool.
@shared_task(name="active_learning.labels_audit", acks_late=True)
def labels_audit_run(project_id: int) -> None:
    project = Project.objects.filter(id=project_id).first()
    if project is not None:
        labels_audit(project=project)
