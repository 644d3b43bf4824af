"""Encode a project's items once per encoder into stored float16 vectors, in chunks that any
number of worker processes take in parallel.

A run: `encode_request` queues it (one per project at a time); `encode_items` (the planner) drops
the vectors of another encoder, splits the items still without a vector into EncodeChunk rows of
LABELLOOP_ENCODE_CHUNK_ITEMS ids each and sends one `encode_chunk` task per chunk. Each chunk is
claimed by a conditional update, beats its heart as it stores its vectors, and skips the items
that already hold one, so a chunk run twice stores nothing twice. The chunk that finds no other
chunk left ends the run (one conditional update, so exactly once), asks for another run if items
arrived or the champion changed meanwhile, and requests the refresh. See docs/active-learning.md,
"Encoding in chunks".

The encoder is the champion's own when the champion is a fine-tuned version (the pool is then
ranked in its embedding space), else the project's frozen base encoder (docs/active-learning.md).
"""
from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.db.models.functions import Least
from django.utils import timezone

from core import jobs
from core.enqueue import enqueue_on_commit
from labeller.models import ActiveLearningState, ChunkStatus, EncodeChunk, Item, ItemVector, JobStatus, Project
from labeller.task_types import task_type_for
from ml.encoder import ENCODE_CHUNK, to_float16_bytes
from ml.encoder_cache import base_encoder, cached_encoder
from models_registry.artefacts import FineTunedEncoder
from models_registry.models import ModelKind
from models_registry.selectors import champion_for

from . import span_encoding
from .refresh import refresh_request
from .selectors import state_for

log = logging.getLogger(__name__)
UNFINISHED = [ChunkStatus.QUEUED, ChunkStatus.RUNNING]


def encoder_for(project: Project):
    """The encoder the pool is ranked with: the champion's own embeddings when the champion is a
    fine-tuned version, else the project's base encoder. One instance per model per process.
    Word-level task types (spans) always use the frozen base encoder: their refresh's word head is
    fitted over its word vectors, whatever version is champion."""
    if task_type_for(project).word_level:
        return base_encoder(project.base_model_path)
    champion = champion_for(project=project, kind=ModelKind.FINETUNED)
    if champion is not None:
        return cached_encoder(f"version:{champion.id}:{champion.checksum}", lambda: FineTunedEncoder(champion))
    return base_encoder(project.base_model_path)


def encode_request(*, project_id: int) -> bool:
    """Ask a worker to encode the project's new items; a request while a run is queued or running
    is a no-op (the run's last chunk asks again if items arrived meanwhile)."""
    state_for(project_id)
    queued = ActiveLearningState.objects.filter(
        project_id=project_id, encode_status__in=[JobStatus.IDLE, JobStatus.FAILED]
    ).update(encode_status=JobStatus.QUEUED, encode_error="", encode_heartbeat_at=timezone.now(), encode_attempts=0)
    if queued:
        enqueue_on_commit(encode_items, project_id)
    return bool(queued)


def pending_items(project: Project) -> QuerySet:
    """The project's items still to encode under the current encoder."""
    if task_type_for(project).word_level:
        return span_encoding.pending_items(project)
    return Item.objects.filter(project=project, vector__isnull=True)


def chunk_bounds(ids, size: int) -> list[tuple[int, int]]:
    """(first, last) of each run of `size` consecutive ids from an ascending iterable."""
    bounds: list[list[int]] = []
    for n, item_id in enumerate(ids):
        if n % size == 0:
            bounds.append([item_id, item_id])
        else:
            bounds[-1][1] = item_id
    return [(first, last) for first, last in bounds]


def encode_plan(*, project_id: int, send: bool = True) -> list[int] | None:
    """Start the project's queued run: drop the vectors of another encoder (so a new encoder
    re-encodes everything), split the items still to encode into chunks by id and, with `send`,
    queue one `encode_chunk` task for each once committed. Returns the chunk ids; None if no run
    was queued (a second delivery of the message). A run with nothing to encode ends here."""
    now = timezone.now()
    claimed = ActiveLearningState.objects.filter(project_id=project_id, encode_status=JobStatus.QUEUED).update(
        encode_status=JobStatus.RUNNING, encode_heartbeat_at=now, encode_started_at=now)
    if not claimed:
        return None
    try:
        project = Project.objects.get(id=project_id)
        encoder = encoder_for(project)
        with transaction.atomic():
            # The last run's chunks go first: one of them still running (a worker the reaper gave up
            # on) finds its row gone before its next write and stops, so no vector of an older
            # encoder is stored after the drop below.
            EncodeChunk.objects.filter(project=project).delete()
            ItemVector.objects.filter(project=project).exclude(encoder_version=encoder.version).delete()
            if task_type_for(project).word_level:
                span_encoding.drop_other_versions(project, encoder.version)
            total = Item.objects.filter(project=project).count()
            pending = pending_items(project).order_by("id").values_list("id", flat=True)
            chunks = EncodeChunk.objects.bulk_create(
                EncodeChunk(project=project, first_id=first, last_id=last, encoder_version=encoder.version, heartbeat_at=now)
                for first, last in chunk_bounds(pending.iterator(chunk_size=10_000), settings.LABELLOOP_ENCODE_CHUNK_ITEMS))
            done = total - pending.count()
            ActiveLearningState.objects.filter(project=project).update(
                encoder_version=encoder.version, encode_total=total, encode_done=done, encode_heartbeat_at=timezone.now())
            if send:
                for chunk in chunks:
                    enqueue_on_commit(encode_chunk, chunk.id)
    except Exception as exc:
        _run_failed(project_id, exc)
        raise
    if not chunks:
        _run_finish(project_id)
    return [chunk.id for chunk in chunks]


def encode_chunk_run(*, chunk_id: int, worker: str = "") -> int:
    """Claim a queued chunk and store a vector for each of its items that has none yet, a step of
    ENCODE_CHUNK items at a time, each step one transaction that first checks the chunk is still
    this worker's (the reaper may have given it to another, a new run may have dropped it). The
    chunk that leaves none unfinished ends the run. Returns the vectors stored."""
    chunk = EncodeChunk.objects.select_related("project").filter(id=chunk_id, status=ChunkStatus.QUEUED).first()
    if chunk is None:
        return 0  # done, running elsewhere, or dropped by a newer run: a second delivery is a no-op
    mine = EncodeChunk.objects.filter(id=chunk.id, attempts=chunk.attempts)
    now = timezone.now()
    if not mine.filter(status=ChunkStatus.QUEUED).update(status=ChunkStatus.RUNNING, heartbeat_at=now, worker=worker[:200]):
        return 0
    mine = mine.filter(status=ChunkStatus.RUNNING)
    project = chunk.project
    ActiveLearningState.objects.filter(project=project, encode_status=JobStatus.RUNNING).update(encode_heartbeat_at=now)
    encoded = 0
    try:
        encoder = encoder_for(project)
        # A champion promoted since the run was planned: these items are left to the run that
        # follows (its planner drops this run's vectors), rather than stored under two encoders.
        while encoder.version == chunk.encoder_version:
            rows = list(pending_items(project).filter(id__gte=chunk.first_id, id__lte=chunk.last_id)
                        .order_by("id").values_list("id", "data")[:ENCODE_CHUNK])
            if not rows:
                break
            if not _store_step(project, encoder, mine, rows):
                return encoded  # no longer ours: whoever holds it now finishes it
            encoded += len(rows)
    except Exception as exc:
        if mine.update(status=ChunkStatus.FAILED, heartbeat_at=timezone.now()):
            _run_failed(project.id, exc)
        raise
    if mine.update(status=ChunkStatus.DONE, heartbeat_at=timezone.now()):
        if not EncodeChunk.objects.filter(project=project, status__in=UNFINISHED).exists():
            _run_finish(project.id)
    return encoded


def _store_step(project: Project, encoder, mine: QuerySet, rows: list[tuple[int, dict]]) -> bool:
    """Encode `rows` and store their vectors with the chunk's and the run's progress, in one
    transaction that holds the chunk's row; False (nothing stored) if the chunk is no longer ours."""
    texts = [str(data.get(project.text_field, "")) for _, data in rows]
    item_ids = [item_id for item_id, _ in rows]
    word_level = task_type_for(project).word_level
    encoded = span_encoding.encode(encoder, texts) if word_level else to_float16_bytes(encoder.encode(texts))
    with transaction.atomic():
        if not mine.update(heartbeat_at=timezone.now(), encoded=F("encoded") + len(rows)):
            return False
        if word_level:
            span_encoding.store_chunk(project, encoder.version, item_ids, encoded)
        else:
            ItemVector.objects.bulk_create(
                [ItemVector(item_id=item_id, project=project, encoder_version=encoder.version, vector=blob)
                 for item_id, blob in zip(item_ids, encoded)],
                ignore_conflicts=True,
            )
        ActiveLearningState.objects.filter(project=project).update(
            encode_done=Least(F("encode_done") + len(rows), F("encode_total")), encode_heartbeat_at=timezone.now())
    return True


def _run_finish(project_id: int) -> None:
    """End the project's run (exactly once: a conditional update), then ask for another run if
    items arrived or the champion changed while it ran, and request the refresh."""
    if not ActiveLearningState.objects.filter(project_id=project_id, encode_status=JobStatus.RUNNING).update(
            encode_status=JobStatus.IDLE, encode_attempts=0, encode_heartbeat_at=timezone.now()):
        return
    # Items imported or a champion promoted while this ran asked for a run that found the job
    # busy: pick them up now (checked after going idle, so a request from now on is not lost).
    project = Project.objects.get(id=project_id)
    if pending_items(project).exists() or encoder_for(project).version != state_for(project_id).encoder_version:
        encode_request(project_id=project_id)
    refresh_request(project_id=project_id)


def _run_failed(project_id: int, exc: Exception) -> None:
    ActiveLearningState.objects.filter(project_id=project_id).update(
        encode_status=JobStatus.FAILED, encode_error=f"{type(exc).__name__}: {exc}"[:2000])


def encode_pending(*, project_id: int) -> int:
    """Run the project's queued encode here, every chunk in this process, through the same plan
    and chunk services as the workers (tests, benchmarks, a single process). Returns the number
    of vectors stored."""
    chunk_ids = encode_plan(project_id=project_id, send=False)
    return sum(encode_chunk_run(chunk_id=chunk_id) for chunk_id in chunk_ids or [])


def encode_reap(*, timeout_s: int | None = None) -> jobs.Reaped:
    """Encode jobs with no heartbeat for `timeout_s`. A running chunk (its worker died) is queued
    again, or failed with the run after its last attempt. A run queued but never planned, or
    stopped between its chunks, is planned again; a planned run none of whose chunks started is
    sent its chunks again; either is failed with the reason after the last attempt. Encoding skips
    the items that already have a vector, and a second delivery of a claimed job is a no-op."""
    timeout_s = jobs.job_timeout(timeout_s)
    now = timezone.now()
    stale_before = now - timedelta(seconds=timeout_s)
    out = jobs.Reaped()
    dead = EncodeChunk.objects.filter(status=ChunkStatus.RUNNING, heartbeat_at__lt=stale_before).values_list(
        "id", "project_id", "attempts")
    for chunk_id, project_id, attempts in dead:
        # Conditional on what was read: a worker that beat or finished meanwhile keeps its chunk.
        row = EncodeChunk.objects.filter(id=chunk_id, status=ChunkStatus.RUNNING, attempts=attempts,
                                         heartbeat_at__lt=stale_before)
        run = ActiveLearningState.objects.filter(project_id=project_id, encode_status=JobStatus.RUNNING)
        if jobs.may_retry(attempts):
            if row.update(status=ChunkStatus.QUEUED, attempts=attempts + 1, heartbeat_at=now):
                run.update(encode_heartbeat_at=now)  # the run is alive again: not reaped as a whole below
                jobs.send_after_commit(lambda c=chunk_id: encode_chunk.delay(c))
                out.requeued += 1
        elif row.update(status=ChunkStatus.FAILED):
            run.update(encode_status=JobStatus.FAILED,
                       encode_error=jobs.stuck_reason(timeout_s=timeout_s, attempts=attempts, queue="encode"))
            out.failed += 1

    stuck = ActiveLearningState.objects.filter(
        Q(encode_heartbeat_at__lt=stale_before) | Q(encode_heartbeat_at__isnull=True),
        encode_status__in=[JobStatus.QUEUED, JobStatus.RUNNING],
    ).values_list("project_id", "encode_status", "encode_heartbeat_at", "encode_attempts")
    for project_id, status, heartbeat, attempts in stuck:
        chunks = EncodeChunk.objects.filter(project_id=project_id)
        if status == JobStatus.RUNNING and chunks.filter(status=ChunkStatus.RUNNING).exists():
            continue  # its running chunks are reaped above, each on its own heartbeat
        waiting = list(chunks.filter(status=ChunkStatus.QUEUED).values_list("id", flat=True)) \
            if status == JobStatus.RUNNING else []
        # Conditional on what was read: a worker that beat or finished meanwhile keeps its job.
        row = ActiveLearningState.objects.filter(project_id=project_id, encode_status=status, encode_heartbeat_at=heartbeat)
        if jobs.may_retry(attempts):
            if row.update(encode_status=JobStatus.RUNNING if waiting else JobStatus.QUEUED, encode_heartbeat_at=now,
                          encode_attempts=attempts + 1):
                if waiting:  # their messages were lost (or wait behind other work: a chunk runs once anyway)
                    jobs.send_after_commit(lambda ids=waiting: [encode_chunk.delay(c) for c in ids])
                else:
                    jobs.send_after_commit(lambda p=project_id: encode_items.delay(p))
                out.requeued += 1
        elif row.update(encode_status=JobStatus.FAILED, encode_attempts=0,
                        encode_error=jobs.stuck_reason(timeout_s=timeout_s, attempts=attempts, queue="encode")):
            out.failed += 1
    return out


# The tasks live beside the service they run, so the service can enqueue them without importing a
# tasks module that imports the service back. The planner's name predates this module and is kept:
# it is what the routes in settings and the messages already in a broker refer to.
@shared_task(name="labeller.tasks.encode_items", acks_late=True)
def encode_items(project_id: int) -> int:
    """Plan the project's queued encode run into chunks and send them (queue "encode")."""
    return len(encode_plan(project_id=project_id) or [])


@shared_task(acks_late=True)
def encode_chunk(chunk_id: int) -> int:
    """Encode one chunk of a project's items (queue "encode": any number of workers take them)."""
    return encode_chunk_run(chunk_id=chunk_id, worker=encode_chunk.request.hostname or "")
