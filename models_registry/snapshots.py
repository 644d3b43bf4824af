"""Dataset snapshots: a project's labelled data frozen, split, hashed and written to the artefact store."""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from labeller.consensus import Resolver, answer_key
from labeller.models import Annotation, Item, Project
from ml.draws import stable_fraction
from labeller.task_types import task_type_for

from . import store
from .models import DatasetSnapshot, TrainingPolicy

TRAIN, VALIDATION, EVALUATION = "train", "validation", "evaluation"


@dataclass
class Example:
    item: int
    text: str
    labels: list[str]
    split: str
    sources: list[str]


def _in_validation(project_id: int, item_id: int, share: float) -> bool:
    return stable_fraction("val", project_id, item_id) < share


def snapshot_examples(*, project: Project) -> list[Example]:
    """Every labelled item with its resolved label and split, sorted by item id.

    The label is the item's consensus (labeller.consensus: Dawid–Skene over its answers once the
    project has a fitted estimate, the task type's majority rule before; experts' and imported
    labels alike). No weight is written: see docs/label-errors.md. Items labelled into
    the active-learning evaluation set form the evaluation split and are never trained on; the
    rest is split into train and validation by a stable hash of the item id.
    """
    policy = TrainingPolicy.for_project(project)
    by_item: dict[int, list[tuple[str, list[str], str]]] = {}
    rows = Annotation.objects.filter(project=project, skipped=False).order_by("item_id", "id")
    for item_id, who, labels, source in rows.values_list("item_id", "annotator_id", "labels", "source").iterator(chunk_size=5000):
        by_item.setdefault(item_id, []).append((answer_key(who, source), labels, source))
    items = Item.objects.filter(id__in=list(by_item)).values_list("id", "data", "is_eval")
    task_type = task_type_for(project)
    resolver = Resolver(project, preload=True)
    examples = []
    for item_id, data, is_eval in items.iterator(chunk_size=5000):
        majority = resolver.resolve([(key, labels) for key, labels, _ in by_item[item_id]], item_id=item_id).labels
        if not task_type.trains_on(majority):  # spans: a text with no entities is an answer
            continue
        if is_eval:
            split = EVALUATION
        else:
            split = VALIDATION if _in_validation(project.id, item_id, policy.validation_share) else TRAIN
        examples.append(Example(item_id, str(data.get(project.text_field, "")), majority, split,
                                sorted({source for _, _, source in by_item[item_id]})))
    examples.sort(key=lambda e: e.item)
    return examples


def content_hash(examples: list[Example]) -> str:
    """Same items, texts, labels and splits give the same hash, whatever order they came in."""
    digest = hashlib.sha256()
    for e in sorted(examples, key=lambda e: e.item):
        text_hash = hashlib.sha256(e.text.encode()).hexdigest()
        digest.update(json.dumps([e.item, text_hash, e.labels, e.split]).encode())
    return digest.hexdigest()


def snapshot_create(*, project: Project, user=None) -> DatasetSnapshot:
    """Freeze the project's labelled data; an identical snapshot is reused, not written twice."""
    examples = snapshot_examples(project=project)
    digest = content_hash(examples)
    existing = DatasetSnapshot.objects.filter(project=project, content_hash=digest).first()
    if existing:
        return existing
    folder = settings.LABELLOOP_ARTEFACT_DIR / "snapshots" / str(project.id)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{digest}.jsonl"
    partial = path.with_suffix(".part")
    with open(partial, "w", encoding="utf-8") as out:
        for e in examples:
            out.write(json.dumps({"item": e.item, "text": e.text, "labels": e.labels, "split": e.split, "sources": e.sources},
                                 ensure_ascii=False) + "\n")
    partial.replace(path)
    store.publish(str(path.relative_to(settings.LABELLOOP_ARTEFACT_DIR)))
    counts: dict[str, Counter] = {TRAIN: Counter(), VALIDATION: Counter(), EVALUATION: Counter()}
    sources: Counter = Counter()
    task_type = task_type_for(project)
    for e in examples:
        counts[e.split].update(task_type.label_keys(e.labels))  # items per label (a span is no key)
        sources.update(e.sources)
    try:
        with transaction.atomic():
            return DatasetSnapshot.objects.create(
                project=project, content_hash=digest, path=str(path.relative_to(settings.LABELLOOP_ARTEFACT_DIR)),
                n_train=sum(e.split == TRAIN for e in examples), n_validation=sum(e.split == VALIDATION for e in examples),
                n_evaluation=sum(e.split == EVALUATION for e in examples),
                label_counts={split: dict(sorted(c.items())) for split, c in counts.items()},
                source_counts=dict(sorted(sources.items())), created_by=user,
            )
    except IntegrityError:  # the same snapshot written concurrently
        return DatasetSnapshot.objects.get(project=project, content_hash=digest)


def snapshot_read(snapshot: DatasetSnapshot) -> list[Example]:
    """The snapshot's examples, fetched from the artefact store if needed and checked against its hash."""
    with open(store.fetch(snapshot.path), encoding="utf-8") as f:
        examples = [Example(**{k: row[k] for k in ("item", "text", "labels", "split", "sources")}) for row in map(json.loads, f)]
    if content_hash(examples) != snapshot.content_hash:
        raise ValueError(f"snapshot {snapshot.content_hash[:12]}: its file does not match its content hash")
    return examples


def snapshots_expire(*, now=None) -> int:
    """Delete the snapshots created more than LABELLOOP_SNAPSHOT_RETENTION_DAYS ago that no model
    version was trained on (a version's snapshot lives as long as the version: PROTECT), row
    first, then the file here and in the remote store; then sweep snapshot files no row names that
    are older than that, which finishes a run that died between the two. Returns the snapshots
    deleted. 0 days keeps them all.

    A training request that reuses an old snapshot (same data, same hash) in the moment it is
    deleted fails on the missing row and is asked again; it writes the snapshot anew."""
    days = settings.LABELLOOP_SNAPSHOT_RETENTION_DAYS
    if days <= 0:
        return 0
    cutoff = (now or timezone.now()) - timedelta(days=days)
    remote = store.remote()
    deleted = 0
    for snapshot in DatasetSnapshot.objects.filter(created_at__lt=cutoff, versions__isnull=True).only("id", "path").iterator():
        # Conditional, so a version that names it meanwhile keeps it.
        if DatasetSnapshot.objects.filter(id=snapshot.id, versions__isnull=True).delete()[0]:
            deleted += 1
            (settings.LABELLOOP_ARTEFACT_DIR / snapshot.path).unlink(missing_ok=True)
            if remote is not None and remote.exists(snapshot.path):
                remote.delete(snapshot.path)
    folder = settings.LABELLOOP_ARTEFACT_DIR / "snapshots"
    if folder.is_dir():
        known = set(DatasetSnapshot.objects.values_list("path", flat=True))
        for path in folder.glob("*/*"):
            relative = str(path.relative_to(settings.LABELLOOP_ARTEFACT_DIR))
            if path.is_file() and relative not in known and path.stat().st_mtime < cutoff.timestamp():
                path.unlink(missing_ok=True)
    return deleted
