"""The refresh's reads and writes around the ML, shared by every task type's refresh
(active_learning.refresh for classification, active_learning.span_refresh for spans): the stored
vectors, the resolved labels, the open pool, the serving order, the priority writes and the head
stored with its suggestions.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from threadpoolctl import threadpool_limits

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
    seconds_read: float = 0.0  # of seconds_score: reading the pool's vectors from the database
    seconds_fit: float = 0.0  # with the self-training, which runs during the write: the phases overlap
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


# Stored vectors read and scored per step: 20,000 rows are 15 MiB of float16 and 29 MiB once widened
# to float32 at 384 dimensions, so a refresh over 1,000,000 items never holds more than that of the
# pool (docs/active-learning.md, "A million items").
STREAM_ROWS = 20_000
IDS_PER_QUERY = 5000  # item ids per `IN (...)` lookup (SQLite allows 32,766 parameters)


@dataclass
class VectorChunk:
    """Stored vectors of a run of items, in item id order, with the items' open/evaluation flags."""

    ids: np.ndarray  # int64
    rows: np.ndarray  # float16 (n, dim)
    is_done: np.ndarray  # bool
    is_eval: np.ndarray  # bool


def vector_chunks(project: Project, encoder_version: str, *, chunk_rows: int = STREAM_ROWS) -> Iterator[VectorChunk]:
    """Every stored vector of the project under the encoder, at most `chunk_rows` at a time, in
    item id order, as float16 (widening is the caller's, a chunk at a time). One query joined with
    the items, so the open pool needs no second read of a million ids."""
    vectors, items = ItemVector._meta.db_table, Item._meta.db_table
    sql = (f"SELECT v.item_id, v.vector, i.is_done, i.is_eval FROM {vectors} v JOIN {items} i ON i.id = v.item_id "
           "WHERE v.project_id = %s AND v.encoder_version = %s ORDER BY v.item_id")
    if connection.vendor == "postgresql":
        yield from _copy_chunks(sql, [project.id, encoder_version], chunk_rows)
        return
    # SQLite steps through the result lazily on a plain cursor, outside a transaction (one would
    # take the write lock in IMMEDIATE mode and hold every submit for the read's duration).
    with connection.cursor() as cursor:
        cursor.execute(sql, [project.id, encoder_version])
        while rows := cursor.fetchmany(chunk_rows):
            ids, blobs, done, evaluation = zip(*rows)
            dim = len(blobs[0]) // 2
            yield VectorChunk(ids=np.array(ids, dtype=np.int64),
                              rows=np.frombuffer(b"".join(blobs), dtype=np.float16).reshape(len(blobs), dim),
                              is_done=np.array(done, dtype=bool), is_eval=np.array(evaluation, dtype=bool))


_COPY_HEADER = 19  # PGCOPY signature (11 bytes), flags (4), header extension length (4)


def _copy_chunks(sql: str, params: list, chunk_rows: int) -> Iterator[VectorChunk]:
    """PostgreSQL: the rows of `sql` by COPY … TO STDOUT in the binary format, cut into chunks and
    parsed by numpy as fixed-width records (every vector of one encoder has the same length), so a
    million rows cost no Python object each and the bytea never goes through hex text. Measured in
    docs/benchmarks.md ("Refresh at a million")."""
    buffer, record = bytearray(), None
    connection.ensure_connection()
    with connection.connection.cursor() as cursor, cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT binary)", params) as copy:
        header = True
        for block in copy:
            buffer += block
            if header:
                if len(buffer) < _COPY_HEADER:
                    continue
                extension = int.from_bytes(buffer[15:19], "big")
                if len(buffer) < _COPY_HEADER + extension:
                    continue
                del buffer[:_COPY_HEADER + extension]
                header = False
            if record is None:
                if len(buffer) < 18:
                    continue
                record = _copy_record(int.from_bytes(buffer[14:18], "big", signed=True))
            size = chunk_rows * record.itemsize
            while len(buffer) >= size:
                yield _copy_chunk(bytes(buffer[:size]), record)
                del buffer[:size]
    if record is not None and len(buffer) > 2:
        yield _copy_chunk(bytes(buffer[:-2]), record)  # the trailer: a field count of -1


def _copy_record(vector_bytes: int) -> np.dtype:
    """One binary COPY row of (bigint, bytea of `vector_bytes`, bool, bool): each field is its
    length (big-endian int32) then its value."""
    return np.dtype([("fields", ">i2"), ("id_len", ">i4"), ("id", ">i8"), ("vector_len", ">i4"),
                     ("vector", "<f2", (vector_bytes // 2,)), ("done_len", ">i4"), ("done", "?"),
                     ("eval_len", ">i4"), ("eval", "?")])


def _copy_chunk(data: bytes, record: np.dtype) -> VectorChunk:
    rows = np.frombuffer(data, dtype=record)
    if not ((rows["fields"] == 4).all() and (rows["vector_len"] == record["vector"].itemsize).all()):
        raise ValueError("stored vectors of one encoder version differ in length")
    return VectorChunk(ids=rows["id"].astype(np.int64), rows=np.ascontiguousarray(rows["vector"]),
                       is_done=rows["done"].copy(), is_eval=rows["eval"].copy())


def stored_rows_at(project: Project, encoder_version: str, positions: np.ndarray, *,
                   chunk_rows: int = STREAM_ROWS) -> np.ndarray:
    """float32 rows of the stored vectors at `positions` (indices into every stored vector of the
    project under the encoder, in item id order), in the order of `positions`: one streamed pass
    that keeps only those rows. Positions past the stream's end (vectors deleted since they were
    counted) are left out."""
    positions = np.asarray(positions, dtype=np.int64)
    order = np.argsort(positions, kind="stable")
    at = positions[order]
    out, found, start = None, np.zeros(len(positions), dtype=bool), 0
    for chunk in vector_chunks(project, encoder_version, chunk_rows=chunk_rows):
        if out is None:
            out = np.empty((len(positions), chunk.rows.shape[1]), dtype=np.float32)
        end = start + len(chunk.ids)
        lo, hi = np.searchsorted(at, [start, end])
        out[order[lo:hi]] = chunk.rows[at[lo:hi] - start]
        found[order[lo:hi]] = True
        start = end
    return out[found] if out is not None else np.zeros((0, 0), dtype=np.float32)


def stored_vectors(project: Project, encoder_version: str, item_ids) -> tuple[np.ndarray, np.ndarray]:
    """(ids, float32 rows) of the given items that have a stored vector, in the order given."""
    item_ids = [int(i) for i in item_ids]
    found: dict[int, bytes] = {}
    for start in range(0, len(item_ids), IDS_PER_QUERY):
        rows = ItemVector.objects.filter(project=project, encoder_version=encoder_version,
                                         item_id__in=item_ids[start:start + IDS_PER_QUERY])
        found.update((item_id, bytes(blob)) for item_id, blob in rows.values_list("item_id", "vector"))
    ids = [i for i in item_ids if i in found]
    dim = len(next(iter(found.values()))) // 2 if found else 0
    return np.array(ids, dtype=np.int64), from_float16_bytes([found[i] for i in ids], dim)


class PoolVectors:
    """The pool's vectors read on demand: `pool_vectors[rows]` reads the rows (indices into
    `pool_ids`) from the database as float32, which is all the diversity step asks of them (its
    few thousand candidates), so the pool is never held whole."""

    def __init__(self, project: Project, encoder_version: str, pool_ids: np.ndarray, dim: int):
        self.project, self.encoder_version, self.pool_ids, self.dim = project, encoder_version, pool_ids, dim

    def __len__(self) -> int:
        return len(self.pool_ids)

    def __getitem__(self, rows) -> np.ndarray:
        wanted = self.pool_ids[rows]
        ids, vectors = stored_vectors(self.project, self.encoder_version, wanted)
        out = np.zeros((len(wanted), self.dim), dtype=np.float32)  # a vector deleted since the scan: zeros
        where = {item_id: r for r, item_id in enumerate(ids.tolist())}
        for r, item_id in enumerate(wanted.tolist()):
            if item_id in where:
                out[r] = vectors[where[item_id]]
        return out


@dataclass
class PoolScan:
    """What one pass over the stored vectors keeps: the pool's ids (open, not evaluation) and
    their scores, the open evaluation items' ids, and a uniform sample of the pool's vectors."""

    pool_ids: np.ndarray
    scores: np.ndarray
    eval_ids: np.ndarray
    sample_ids: np.ndarray
    sample: np.ndarray  # float16 rows of sample_ids, in id order
    dim: int = 0
    seconds_read: float = 0.0
    extra: list = field(default_factory=list)  # whatever `score` returns beside the scores, per chunk


# One BLAS thread while the pool streams in: on PostgreSQL the server process producing the COPY
# needs a core of the two, and OpenBLAS's second thread, spinning between the chunks' products,
# took it. Measured over 200,000 items (docs/benchmarks.md, "Refresh at a million"): the scan's
# wall time 1.26 s against 2.12 s, its read 0.75 s against 1.14 s, the scores bit for bit the same.
@threadpool_limits.wrap(limits=1, user_api="blas")
def pool_scan(project: Project, encoder_version: str, *, score: Callable | None = None, sample: int = 0, seed: int = 0,
              chunk_rows: int = STREAM_ROWS) -> PoolScan:
    """Stream the stored vectors once: `score(float32 rows)` for each chunk of the open pool (the
    scores, or (scores, extra)), and keep `sample` pool rows drawn uniformly (each row gets a seeded
    random key; the lowest keys are kept, so the sample is the same whatever the chunk size). Only
    ids, scores and the sample outlive a chunk."""
    import time

    rng = np.random.default_rng(seed)
    pool_ids, scores, eval_ids, extra = [], [], [], []
    keep_ids, keep_keys, keep_rows = np.zeros(0, np.int64), np.zeros(0), None
    dim, read = 0, 0.0
    chunks = vector_chunks(project, encoder_version, chunk_rows=chunk_rows)
    while True:
        t = time.perf_counter()
        chunk = next(chunks, None)
        read += time.perf_counter() - t
        if chunk is None:
            break
        dim = chunk.rows.shape[1]
        open_rows = ~chunk.is_done
        eval_ids.append(chunk.ids[open_rows & chunk.is_eval])
        in_pool = open_rows & ~chunk.is_eval
        ids, rows = chunk.ids[in_pool], chunk.rows[in_pool]
        pool_ids.append(ids)
        if score is not None and len(ids):
            result = score(rows.astype(np.float32))
            if isinstance(result, tuple):
                result, more = result
                extra.append(more)
            scores.append(np.asarray(result))
        if sample and len(ids):
            keys = rng.random(len(ids))
            if len(keep_keys) >= sample:  # a full sample: only keys up to its highest can enter it
                enter = keys <= keep_keys.max()
                ids, keys, rows = ids[enter], keys[enter], rows[enter]
            keep_ids, keep_keys = np.concatenate([keep_ids, ids]), np.concatenate([keep_keys, keys])
            keep_rows = rows.copy() if keep_rows is None else np.concatenate([keep_rows, rows])
            if len(keep_ids) > sample:
                lowest = np.argpartition(keep_keys, sample - 1)[:sample]
                keep_ids, keep_keys, keep_rows = keep_ids[lowest], keep_keys[lowest], keep_rows[lowest]
    in_order = np.argsort(keep_ids, kind="stable")
    return PoolScan(pool_ids=np.concatenate(pool_ids) if pool_ids else np.zeros(0, np.int64),
                    scores=np.concatenate(scores) if scores else np.zeros(0),
                    eval_ids=np.concatenate(eval_ids) if eval_ids else np.zeros(0, np.int64),
                    sample_ids=keep_ids[in_order],
                    sample=keep_rows[in_order] if keep_rows is not None else np.zeros((0, dim), np.float16),
                    dim=dim, seconds_read=read, extra=extra)


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


# Every refresh writes the priorities of this many items at the head of the queue exactly (at least
# 20 refreshes' worth of labels): the order experts are served in. Below it an item keeps the
# priority its last refresh wrote, unless that would put it into the head, so a refresh over
# 1,000,000 items writes tens of thousands of rows, not a million (each a non-HOT update of every
# index on the items table; docs/active-learning.md, "A million items").
EXACT_HEAD = 20_000


def write_queue(project: Project, final: np.ndarray) -> int:
    """Priorities from 1 down, in `final`'s order (a heartbeat between write batches): every item of
    the head (EXACT_HEAD, or 20 refreshes' labels if more), and every other item of `final` whose
    stored priority is not below the head's last. Those below keep theirs, so the queue serves the
    head in exactly `final`'s order and the rest after it. A row whose stored priority is already
    the one it would get is not written (a refresh that leaves the order where it was, as one over
    an unchanged pool does, rewrote 18,000 of its 22,000 rows to the same values). Returns the
    rows written."""
    n = len(final)
    priorities = 1.0 - np.arange(n, dtype=np.float64) / max(n, 1)
    head = max(EXACT_HEAD, 20 * project.refresh_every)
    floor = priorities[min(head, n) - 1] if n else 1.0
    stored = list(Item.objects.filter(project=project, is_done=False, priority__gte=floor).values_list("id", "priority"))
    stored_ids = np.array([item_id for item_id, _ in stored], dtype=np.int64)
    by_id = np.argsort(stored_ids)
    stored_ids, stored_priorities = stored_ids[by_id], np.array([p for _, p in stored], dtype=np.float64)[by_id]
    at = np.minimum(np.searchsorted(stored_ids, final), max(len(stored_ids) - 1, 0))
    found = (stored_ids[at] == final) if len(stored_ids) else np.zeros(n, dtype=bool)
    keep = found.copy()
    keep[:head] = True  # the head, and of the rest the rows that would cut into it
    keep[found] &= stored_priorities[at[found]] != priorities[found]
    write_priorities(final[keep], priorities[keep], on_batch=lambda: refresh_beat(project_id=project.id))
    return int(keep.sum())


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


def queue_from_scores(project: Project, *, scores: np.ndarray, vectors, pool_ids, eval_ids, rng: np.random.Generator,
                      seed: int, cold_start: bool = False) -> np.ndarray:
    """Item ids in serving order from the pool's scores (higher = sooner): the diverse batch first
    when the project asks for one (never in a cold start, whose scores already put one
    representative per cluster first), then by score, the evaluation items interleaved.
    `vectors[rows]` gives the pool rows' vectors (an array, or PoolVectors)."""
    diverse = not cold_start and project.diversity and project.strategy != strategies.RANDOM
    order = strategies.rank_pool(scores, vectors, batch_size=refresh_batch(project), diverse=diverse, seed=seed)
    return queue_order(project, pool_ids, order, eval_ids, rng)


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
