"""Encode a project's items once per encoder, in chunks, into stored float16 vectors.

The encoder is the champion's own when the champion is a fine-tuned version (the pool is then
ranked in its embedding space), else the project's frozen base encoder (docs/active-learning.md).
"""
from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.db.models import F, Q
from django.utils import timezone

from core import jobs
from core.enqueue import enqueue_on_commit
from labeller.models import ActiveLearningState, Item, ItemVector, JobStatus, Project
from labeller.task_types import task_type_for
from labeller.task_types.spans import SPANS
from ml.encoder import ENCODE_CHUNK, to_float16_bytes
from ml.encoder_cache import base_encoder, cached_encoder
from models_registry.artefacts import FineTunedEncoder
from models_registry.models import ModelKind
from models_registry.selectors import champion_for

from .refresh import refresh_request
from .selectors import state_for

log = logging.getLogger(__name__)


def encoder_for(project: Project):
    """The encoder the pool is ranked with: the champion's own embeddings when the champion is a
    fine-tuned version, else the project's base encoder. One instance per model per process."""
    champion = champion_for(project=project, kind=ModelKind.FINETUNED)
    # A span project's champion is a token tagger, not a sentence encoder; its pool stays encoded
    # by the base encoder, whose word vectors the span head reads (ml.token_model).
    if champion is not None and task_type_for(project).key != SPANS.key:
        return cached_encoder(f"version:{champion.id}:{champion.checksum}", lambda: FineTunedEncoder(champion))
    return base_encoder(project.base_model_path)


def encode_request(*, project_id: int) -> bool:
    """Ask a worker to encode the project's new items; a request while one is queued is a no-op."""
    state_for(project_id)
    queued = ActiveLearningState.objects.filter(
        project_id=project_id, encode_status__in=[JobStatus.IDLE, JobStatus.FAILED]
    ).update(encode_status=JobStatus.QUEUED, encode_error="", encode_heartbeat_at=timezone.now(), encode_attempts=0)
    if queued:
        enqueue_on_commit(encode_items, project_id)
    return bool(queued)


def encode_pending(*, project_id: int) -> int:
    """Encode every item of the project without a vector under the current encoder. Returns the
    number encoded. Vectors of an older encoder are dropped first, so a new encoder re-encodes all."""
    claimed = ActiveLearningState.objects.filter(project_id=project_id, encode_status=JobStatus.QUEUED).update(
        encode_status=JobStatus.RUNNING, encode_heartbeat_at=timezone.now()
    )
    if not claimed:
        return 0
    try:
        project = Project.objects.get(id=project_id)
        encoder = encoder_for(project)
        ItemVector.objects.filter(project=project).exclude(encoder_version=encoder.version).delete()
        total = Item.objects.filter(project=project).count()
        done = ItemVector.objects.filter(project=project).count()
        ActiveLearningState.objects.filter(project=project).update(
            encoder_version=encoder.version, encode_total=total, encode_done=done, encode_heartbeat_at=timezone.now()
        )
        encoded = 0
        while True:
            rows = list(
                Item.objects.filter(project=project, vector__isnull=True).order_by("id").values_list("id", "data")[:ENCODE_CHUNK]
            )
            if not rows:
                break
            texts = [str(data.get(project.text_field, "")) for _, data in rows]
            blobs = to_float16_bytes(encoder.encode(texts))
            ItemVector.objects.bulk_create(
                [ItemVector(item_id=item_id, project=project, encoder_version=encoder.version, vector=blob)
                 for (item_id, _), blob in zip(rows, blobs)],
                ignore_conflicts=True,
            )
            encoded += len(rows)
            ActiveLearningState.objects.filter(project=project).update(
                encode_done=F("encode_done") + len(rows), encode_heartbeat_at=timezone.now()
            )
    except Exception as exc:
        ActiveLearningState.objects.filter(project_id=project_id).update(
            encode_status=JobStatus.FAILED, encode_error=f"{type(exc).__name__}: {exc}"[:2000]
        )
        raise
    ActiveLearningState.objects.filter(project_id=project_id).update(encode_status=JobStatus.IDLE, encode_attempts=0)
    # Items imported while this ran asked for a run that found the job busy: pick them up now.
    if Item.objects.filter(project_id=project_id, vector__isnull=True).exists():
        encode_request(project_id=project_id)
    refresh_request(project_id=project_id)
    return encoded


def encode_reap(*, timeout_s: int | None = None) -> jobs.Reaped:
    """Encode jobs with no heartbeat for `timeout_s`: queued again (encoding skips the items that
    already have a vector), or failed with the reason after the last attempt."""
    timeout_s = jobs.job_timeout(timeout_s)
    now = timezone.now()
    out = jobs.Reaped()
    stuck = ActiveLearningState.objects.filter(
        Q(encode_heartbeat_at__lt=now - timedelta(seconds=timeout_s)) | Q(encode_heartbeat_at__isnull=True),
        encode_status__in=[JobStatus.QUEUED, JobStatus.RUNNING],
    ).values_list("project_id", "encode_status", "encode_heartbeat_at", "encode_attempts")
    for project_id, status, heartbeat, attempts in stuck:
        # Conditional on what was read: a worker that beat or finished meanwhile keeps its job.
        row = ActiveLearningState.objects.filter(project_id=project_id, encode_status=status, encode_heartbeat_at=heartbeat)
        if jobs.may_retry(attempts):
            if row.update(encode_status=JobStatus.QUEUED, encode_heartbeat_at=now, encode_attempts=attempts + 1):
                jobs.send_after_commit(lambda p=project_id: encode_items.delay(p))
                out.requeued += 1
        elif row.update(encode_status=JobStatus.FAILED, encode_attempts=0,
                        encode_error=jobs.stuck_reason(timeout_s=timeout_s, attempts=attempts, queue="encode")):
            out.failed += 1
    return out


# The task lives beside the service it runs, so the service can enqueue it without importing a
# tasks module that imports the service back. Its name predates this module and is kept: it is
# what the routes in settings and the messages already in a broker refer to.
@shared_task(name="labeller.tasks.encode_items", acks_late=True)
def encode_items(project_id: int) -> int:
    """Encode the project's new items (own queue: it is the slow part of active learning)."""
    return encode_pending(project_id=project_id)
