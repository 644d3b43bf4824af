"""Each item's consensus label and each annotator's estimated accuracy (issue 17, part 2).

Where items carry two or more labels, plain majority treats every annotator alike. Single-label
projects resolve them with one-coin Dawid–Skene instead (`ml.reliability`): each annotator is right
with an estimated probability, and an item's consensus is the label with the highest posterior
given who said what. Where the loop can give the model's out-of-sample probabilities
(active_learning.label_errors.labels_audit), they are each item's prior; before a model exists the
prior is the class frequencies. Why Dawid–Skene and not CROWDLAB: docs/label-errors.md.

The cache/refresh point is one service, `consensus_refresh`: it fits the estimate over the
project's items with two or more labels and stores it (LabelReliability: the accuracies; an
ItemConsensus per fitted item). Nothing refits on a read. Every reader resolves an item through a
`Resolver`, which uses the stored consensus while the item's answers are still those it was
computed from, and otherwise one E step with the stored accuracies (`ml.reliability.item_posterior`:
a new label on an item is weighed by its annotator's estimated accuracy at once, without a refit).
Before the first fit, and for multi-label and span projects, the task type's majority rule applies
unchanged.

Answers are keyed by who gave them: "user:<id>" for a person, the annotation's source ("import",
"feedback") for labels no user gave. One key answers once per item (several trusted feedback labels
on one item are one source, not independent votes): its most frequent value.
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np
from django.db import transaction
from django.utils import timezone

from ml.reliability import MISSING, dawid_skene, item_posterior

from .models import Annotation, Item, ItemConsensus, LabelReliability, Project, label_keys_cell
from .task_types import task_type_for

METHOD_LABELS = "dawid_skene"
METHOD_MODEL_PRIOR = "dawid_skene_model_prior"
DEFAULT_ACCURACY = 0.7  # an annotator the fit never saw on a shared item: the EM's own starting value


def answer_key(annotator_id: int | None, source: str) -> str:
    return f"user:{annotator_id}" if annotator_id is not None else str(source)


@dataclass(frozen=True)
class Resolved:
    labels: list  # the consensus value (single-label: [key])
    agreement: float | None  # share of the item's answers equal to it; None without answers
    confidence: float | None  # its posterior under the estimate; None where the majority rule applied


def _one_per_key(answers: Sequence[tuple[str, list]]) -> list[tuple[str, list]]:
    by_key: dict[str, list] = defaultdict(list)
    for key, value in answers:
        by_key[key].append(value)
    out = []
    for key in sorted(by_key):
        counts = Counter(json.dumps(sorted(v)) for v in by_key[key])
        out.append((key, json.loads(counts.most_common(1)[0][0])))
    return out


def _signature(answers: Sequence[tuple[str, list]]) -> str:
    return hashlib.sha256(json.dumps([[k, sorted(v)] for k, v in answers]).encode()).hexdigest()


class Resolver:
    """Resolves items of one project with its stored estimate. `preload`: read every stored
    ItemConsensus of the project at once (exports, training); otherwise each is read when asked."""

    def __init__(self, project: Project, *, preload: bool = False):
        self.project = project
        self.task_type = task_type_for(project)
        estimate = None
        if project.task_type == "single_label":
            estimate = LabelReliability.objects.filter(project=project).first()
        self.estimate = estimate if estimate is not None and estimate.fitted and estimate.annotators else None
        self.stored: dict[int, tuple[str, list, float]] | None = None
        if self.estimate is not None:
            self.index = {c: i for i, c in enumerate(self.estimate.classes)}
            self.accuracy = {k: v["accuracy"] for k, v in self.estimate.annotators.items()}
            self.default_accuracy = float(np.median(list(self.accuracy.values()))) if self.accuracy else DEFAULT_ACCURACY
            self.prior = np.array(self.estimate.class_prior, dtype=np.float64)
            if preload:
                self.stored = {item_id: (signature, labels, confidence) for item_id, signature, labels, confidence in
                               ItemConsensus.objects.filter(project=project)
                               .values_list("item_id", "signature", "labels", "confidence").iterator(chunk_size=5000)}

    @property
    def method(self) -> str:
        return self.estimate.method if self.estimate is not None else "majority"

    def _stored_for(self, item_id: int):
        if self.stored is not None:
            return self.stored.get(item_id)
        return ItemConsensus.objects.filter(item_id=item_id).values_list("signature", "labels", "confidence").first()

    def resolve(self, answers: Sequence[tuple[str, list]], *, item_id: int | None = None) -> Resolved:
        """One item's consensus from its submitted answers, (answer key, value) each."""
        values = [value for _, value in answers]
        if not values:
            return Resolved([], None, None)
        known = self.estimate is not None and all(len(v) == 1 and v[0] in self.index for v in values)
        if not known:
            majority, agreement = self.task_type.majority(values)
            return Resolved(majority, agreement, None)
        distinct = _one_per_key(answers)
        stored = self._stored_for(item_id) if item_id is not None and len(distinct) >= 2 else None
        if stored is not None and stored[0] == _signature(distinct):
            labels, confidence = list(stored[1]), float(stored[2])
        else:
            posterior = item_posterior([self.index[v[0]] for _, v in distinct],
                                       [self.accuracy.get(k, self.default_accuracy) for k, _ in distinct], self.prior)
            if len(distinct) == 1:  # one answer is the answer; the estimate says how far to trust it
                chosen = self.index[distinct[0][1][0]]
            else:
                chosen = int(posterior.argmax())
            labels, confidence = [self.estimate.classes[chosen]], float(posterior[chosen])
        agreement = sum(v == labels for v in values) / len(values)
        return Resolved(labels, agreement, round(confidence, 4))


def items_resolved(*, project: Project, rows: Iterable[tuple[int, int | None, str, list]],
                   resolver: Resolver | None = None) -> Iterable[tuple[int, Resolved]]:
    """(item id, Resolved) for (item id, annotator id, source, labels) rows ordered by item id."""
    resolver = resolver or Resolver(project, preload=True)
    current, answers = None, []
    for item_id, annotator_id, source, labels in rows:
        if item_id != current:
            if answers:
                yield current, resolver.resolve(answers, item_id=current)
            current, answers = item_id, []
        answers.append((answer_key(annotator_id, source), labels))
    if answers:
        yield current, resolver.resolve(answers, item_id=current)


def labels_resolved(*, project: Project, include_eval: bool = False) -> dict[int, list]:
    """The resolved value of every labelled item that teaches the head something (what the
    refresh and the label-error search fit on): the consensus, or the task type's majority."""
    annotations = Annotation.objects.filter(project=project, skipped=False)
    if not include_eval:
        annotations = annotations.filter(item__is_eval=False)
    rows = (annotations.order_by("item_id", "id").values_list("item_id", "annotator_id", "source", "labels")
            .iterator(chunk_size=5000))
    task_type = task_type_for(project)
    return {item_id: r.labels for item_id, r in items_resolved(project=project, rows=rows) if task_type.trains_on(r.labels)}


def consensus_summary(*, project: Project, item_id: int, rows: Sequence[tuple[int | None, str, list]],
                      resolver: Resolver | None = None) -> dict:
    """The data manager's majority and agreement columns for one item from its submitted
    (annotator id, source, labels) rows: what annotation_submit stores after each label."""
    answers = [(answer_key(who, source), labels) for who, source, labels in rows]
    resolved = (resolver or Resolver(project)).resolve(answers, item_id=item_id)
    task_type = task_type_for(project)
    return {"majority": label_keys_cell(task_type.label_keys(resolved.labels)) if answers else "",
            "agreement": resolved.agreement}


def consensus_refresh(*, project: Project, prior: Mapping[int, np.ndarray] | None = None,
                      prior_classes: Sequence[str] | None = None) -> LabelReliability | None:
    """Fit the consensus estimate over the project's items with two or more answers and store it
    (the accuracies, the class prior, each fitted item's consensus), and bring the data manager's
    majority and agreement of those items in line. `prior`: {item id: the model's out-of-sample
    probabilities over `prior_classes`} for the items it knows. Single-label projects only (None
    otherwise): the one-coin model is over one label per answer."""
    if project.task_type != "single_label":
        return None
    classes = list(project.labels.order_by("order", "id").values_list("key", flat=True))
    index = {c: i for i, c in enumerate(classes)}
    by_item: dict[int, list[tuple[str, list]]] = defaultdict(list)
    total = 0
    rows = (Annotation.objects.filter(project=project, skipped=False).order_by("item_id", "id")
            .values_list("item_id", "annotator_id", "source", "labels"))
    for item_id, who, source, labels in rows.iterator(chunk_size=5000):
        total += 1
        if len(labels) == 1 and labels[0] in index:
            by_item[item_id].append((answer_key(who, source), labels))
    shared = {item_id: _one_per_key(answers) for item_id, answers in by_item.items()}
    shared = {item_id: answers for item_id, answers in shared.items() if len(answers) >= 2}
    estimate = LabelReliability.for_project(project)
    keys = sorted({key for answers in shared.values() for key, _ in answers})
    item_ids = sorted(shared)
    now = timezone.now()
    if not item_ids or len(classes) < 2:
        with transaction.atomic():
            ItemConsensus.objects.filter(project=project).delete()
            LabelReliability.objects.filter(project=project).update(
                method=METHOD_LABELS, computed_at=now, labels_at=total, items_fitted=0, classes=[], class_prior=[],
                annotators={})
        estimate.refresh_from_db()
        return estimate
    column = {key: j for j, key in enumerate(keys)}
    matrix = np.full((len(item_ids), len(keys)), MISSING, dtype=np.int64)
    for row, item_id in enumerate(item_ids):
        for key, labels in shared[item_id]:
            matrix[row, column[key]] = index[labels[0]]
    prior_matrix, method = None, METHOD_LABELS
    if prior:
        prior_matrix = np.full((len(item_ids), len(classes)), np.nan)  # NaN: no model view, the fit's frequencies
        remap = [index.get(c) for c in (prior_classes or classes)]
        for row, item_id in enumerate(item_ids):
            p = prior.get(item_id)
            if p is not None:
                full = np.full(len(classes), 1e-6)
                for j, target in enumerate(remap):
                    if target is not None:
                        full[target] = p[j]
                prior_matrix[row] = full / full.sum()
                method = METHOD_MODEL_PRIOR
    fit = dawid_skene(matrix, len(classes), prior=prior_matrix)
    # The class prior a later item is resolved with: the fitted consensus of the shared items and
    # the label of every item with one answer, smoothed (not the raw label counts, which lean
    # towards whatever the least careful annotators say most).
    counts = np.bincount(fit.labels, minlength=len(classes)).astype(np.float64) + 1.0
    for item_id, answers in by_item.items():
        if item_id not in shared:
            counts[index[answers[0][1][0]]] += 1
    class_prior = counts / counts.sum()
    annotators = {key: {"accuracy": round(float(fit.annotator_accuracy[j]), 4),
                        "shared": int((matrix[:, j] != MISSING).sum())}
                  for j, key in enumerate(keys) if not np.isnan(fit.annotator_accuracy[j])}
    consensus, summaries = [], []
    # Only the items whose column changes are written: most keep their majority from one fit to
    # the next, and an UPDATE per item was most of the fit's time (benchmarks/annotator_quality.py).
    current = {item_id: (majority, agreement) for item_id, majority, agreement in
               Item.objects.filter(project=project, annotation_count__gte=2)
               .values_list("id", "majority", "agreement").iterator(chunk_size=5000)}
    for row, item_id in enumerate(item_ids):
        label = classes[int(fit.labels[row])]
        consensus.append(ItemConsensus(item_id=item_id, project=project, labels=[label],
                                       confidence=round(float(fit.confidence[row]), 4),
                                       signature=_signature(shared[item_id])))
        values = [labels for _, labels in by_item[item_id]]
        agreement = sum(v == [label] for v in values) / len(values)
        before = current.get(item_id)
        if before is None or before[0] != label or before[1] is None or abs(before[1] - agreement) > 1e-9:
            summaries.append(Item(id=item_id, majority=label, agreement=agreement))
    with transaction.atomic():
        ItemConsensus.objects.filter(project=project).delete()
        ItemConsensus.objects.bulk_create(consensus, batch_size=2000)
        Item.objects.bulk_update(summaries, ["majority", "agreement"], batch_size=1000)
        LabelReliability.objects.filter(project=project).update(
            method=method, computed_at=now, labels_at=total, items_fitted=len(item_ids), classes=classes,
            class_prior=[round(float(x), 6) for x in class_prior], annotators=annotators)
    estimate.refresh_from_db()
    return estimate


def submitted_label_count(*, project: Project) -> int:
    return Annotation.objects.filter(project=project, skipped=False).count()


def consensus_refresh_claim(*, project: Project, every: int) -> bool:
    """Whether enough labels arrived since the last fit (at least `every`, and a tenth more than
    then) to fit again; claims the fit by moving `labels_at`, so two callers never both fit."""
    estimate = LabelReliability.for_project(project)
    now_count = submitted_label_count(project=project)
    if now_count - estimate.labels_at < max(every, estimate.labels_at // 10):
        return False
    return LabelReliability.objects.filter(project=project, labels_at=estimate.labels_at).update(
        labels_at=now_count) == 1
