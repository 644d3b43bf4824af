"""What a model version's live traffic is compared with: a random sample of the project's own
imported items (the pool, the evaluation set and the labelled items at their natural rate) as
they stood when the version was trained, with the version's predictions on them.

Not the version's training snapshot: active learning chooses the labelled items because they are
unusual (near the boundary, in the hard classes), so their texts and labels are a skewed picture
of the traffic, and the texts the vocabulary came from have no unseen words. The imported items
are the domain the project was made to serve and are there before any traffic, so every version
is judged from its first prediction; items that came from live traffic (abstentions, feedback)
are left out, or drift would become its own reference. ml.drift builds and compares it; docs in
docs/serving.md ("What drift is measured against").
"""
from __future__ import annotations

import numpy as np

from labeller.models import Item, ItemSource
from labeller.task_types import task_type_for
from ml import drift

from . import serving
from .models import ModelVersion
from .snapshots import EVALUATION, snapshot_read
from .training import base_vectors

REFERENCE_SIZE = 1000  # items; the out-of-vocabulary baseline is read on about half of them


def drift_reference_items(*, version: ModelVersion, size: int = REFERENCE_SIZE) -> list[tuple[int, str]]:
    """(item id, text) of up to `size` imported items of the version's project created before it,
    drawn at random (the same draw every time for the same items), in id order."""
    project = version.project
    ids = np.array(Item.objects.filter(project=project, source=ItemSource.IMPORT, import_id__isnull=True,
                                       created_at__lte=version.created_at).order_by("id").values_list("id", flat=True))
    if len(ids) > size:
        ids = np.sort(np.random.default_rng(0).choice(ids, size, replace=False))
    data = dict(Item.objects.filter(id__in=ids.tolist()).values_list("id", "data"))
    return [(int(i), str(data[i].get(project.text_field) or "")) for i in ids.tolist() if i in data]


def drift_reference_build(*, version: ModelVersion) -> drift.Reference | None:
    """The version's drift reference, or None when it has no snapshot or the project no items."""
    if version.snapshot is None:
        return None
    sample = drift_reference_items(version=version)
    if not sample:
        return None
    project = version.project
    ids, texts = [i for i, _ in sample], [t for _, t in sample]
    trained_on = {e.item: e.text for e in snapshot_read(version.snapshot) if e.split != EVALUATION}
    task_type = task_type_for(project)
    decisions = serving.answers(serving.predictor_for(version), texts, 1)
    reference = drift.reference_build(
        texts=texts, trained=[i in trained_on for i in ids],
        labels=[task_type.drift_labels(d.labels, live=True) for d in decisions],
        embeddings=base_vectors(project, ids, texts), training_texts=trained_on.values())
    reference.described = {"items": len(ids), "held_out_texts": len(reference.held_out),
                           "oov_baseline": None if reference.oov_baseline is None else round(reference.oov_baseline, 4),
                           "drawn_from": "imported items", "until": version.created_at.isoformat()}
    return reference
