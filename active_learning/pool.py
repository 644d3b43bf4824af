"""The refresh's reads and writes around the ML, shared by every task type's refresh
(active_learning.refresh for classification, active_learning.span_refresh for spans): the stored
vectors, the resolved labels, the open pool, the serving order, the priority writes and the head
stored with its suggestions.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from labeller.consensus import labels_resolved
from labeller.models import ActiveLearningState, Item, ItemVector, Project
from ml import strategies
from ml.encoder import from_float16_bytes
from ml.heads import LinearHead


@dataclass
class RefreshReport:
    pool: int = 0
    labelled: int = 0
    cold_start: bool = False
    seconds_fit: float = 0.0
    seconds_score: float = 0.0
    seconds_write: float = 0.0
    seconds_total: float = 0.0


def refresh_beat(*, project_id: int) -> None:
    """A running refresh's sign of life, between its phases and its write batches."""
    ActiveLearningState.objects.filter(project_id=project_id, refresh_running=True).update(refresh_heartbeat_at=timezone.now())


def project_vectors(project: Project, encoder_version: str) -> tuple[np.ndarray, np.ndarray]:
    """(item ids, float32 matrix) of every stored vector of the project under the encoder."""
    rows = ItemVector.objects.filter(project=project, encoder_version=encoder_version).order_by("item_id").values_list(
        "item_id", "vector"
    )
    ids, blobs = [], []
    for item_id, blob in rows.iterator(chunk_size=5000):
        ids.append(item_id)
        blobs.append(bytes(blob))
    dim = len(blobs[0]) // 2 if blobs else 0
    return np.array(ids, dtype=np.int64), from_float16_bytes(blobs, dim)


def training_labels(project: Project, *, include_eval: bool = False) -> dict[int, list[str]]:
    """The resolved label set of every labelled item: its consensus (labeller.consensus)."""
    return labels_resolved(project=project, include_eval=include_eval)


def open_pool(project: Project, position: dict[int, int]) -> tuple[list[int], list[int]]:
    """The open items that have stored vectors (`position`): (pool ids, evaluation ids)."""
    pool_ids, eval_ids = [], []
    for item_id, is_eval in Item.objects.filter(project=project, is_done=False).values_list("id", "is_eval").iterator(chunk_size=10000):
        if item_id in position:
            (eval_ids if is_eval else pool_ids).append(item_id)
    return pool_ids, eval_ids


def queue_order(project: Project, pool_ids: list[int], order: np.ndarray, eval_ids: list[int],
                rng: np.random.Generator) -> np.ndarray:
    """Item ids in serving order: the pool in `order` (indices into pool_ids), with the evaluation
    items drawn at random interleaved at the project's share."""
    strategy_order = np.array(pool_ids, dtype=np.int64)[order] if len(pool_ids) else np.zeros(0, np.int64)
    eval_order = rng.permutation(np.array(eval_ids, dtype=np.int64))
    return strategies.interleave_evaluation(strategy_order, eval_order, share=project.eval_share)


def suggested_top(final: np.ndarray, eval_ids: list[int], count: int) -> list[int]:
    """The first `count` items of the queue that get a precomputed suggestion: evaluation items
    never do, so that experts label them unswayed by the model (docs/active-learning.md)."""
    evaluation = set(eval_ids)
    return [int(item_id) for item_id in final[:count + len(evaluation)] if item_id not in evaluation][:count]


def write_queue(project: Project, final: np.ndarray) -> None:
    """Priorities from 1 down, in `final`'s order (a heartbeat between write batches)."""
    n = len(final)
    priorities = 1.0 - np.arange(n, dtype=np.float64) / max(n, 1)
    write_priorities(final, priorities, on_batch=lambda: refresh_beat(project_id=project.id))


def store_head(project: Project, head: LinearHead | None, *, trained_on: int, top=(), suggestions=()) -> None:
    """The refresh's head (its next version) and the suggestions made with it for `top`, at once."""
    with transaction.atomic():
        if len(top):
            Item.objects.bulk_update(
                [Item(id=int(item_id), suggestion=s) for item_id, s in zip(top, suggestions)], ["suggestion"], batch_size=500
            )
        ActiveLearningState.objects.filter(project=project).update(
            head=head.to_bytes() if head is not None else None,
            head_version=F("head_version") + 1,
            head_trained_on=trained_on,
        )


def refresh_batch(project: Project) -> int:
    """Items per diverse batch: the labels between refreshes, at least 10."""
    return max(project.refresh_every, 10)


def cold_start_order(pool_vectors: np.ndarray, *, batch_size: int, seed: int) -> np.ndarray:
    """The pool's order for a project with nothing to fit on yet (ml.strategies.cold_start)."""
    scores = strategies.cold_start(pool_vectors, batch_size=batch_size, seed=seed)
    return np.argsort(-scores, kind="stable")


WRITE_BATCH = 5000


def write_priorities(item_ids: np.ndarray, priorities: np.ndarray, on_batch=None) -> None:
    """Write new priorities, head of the queue first, in short transactions of WRITE_BATCH rows.

    One transaction over the whole pool would hold its row locks for as long as the write takes
    (1M rows: minutes), and every submit on those rows would wait behind it (seen in
    benchmarks/queue.py). Short batches bound any wait to one batch; a submit or claim locks one
    row, so there is no lock cycle to deadlock on.
    """
    table = Item._meta.db_table
    for start in range(0, len(item_ids), WRITE_BATCH):
        ids = item_ids[start:start + WRITE_BATCH].tolist()
        values = priorities[start:start + WRITE_BATCH].tolist()
        with transaction.atomic(), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(
                    f"UPDATE {table} AS i SET priority = d.p FROM unnest(%s::bigint[], %s::float8[]) AS d(id, p) "
                    "WHERE i.id = d.id",
                    [ids, values],
                )
            else:
                cursor.executemany(f"UPDATE {table} SET priority = %s WHERE id = %s", list(zip(values, ids)))
        if on_batch is not None:
            on_batch()
