"""The refresh: refit a light head on the stored vectors every few labels, re-rank the expert
queue by the project's query strategy, and precompute suggestions for the head of the queue.

The ML itself lives in `ml/` (no Django); this module reads and writes the database around it.
Under a fine-tuned champion the stored vectors are its embeddings and the head is refitted on
those (see docs/active-learning.md).
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import numpy as np
from celery import shared_task
from django.conf import settings
from django.db import connection
from django.db.models import Case, F, Q, When
from django.utils import timezone

from core import jobs
from core.enqueue import enqueue, enqueue_on_commit
from labeller.models import ActiveLearningState, ItemVector, Project, SuggestionMode, TaskType
from labeller.task_types import task_type_for
from ml import strategies
from ml.heads import PSEUDO_LABEL_MAX, LinearHead, self_train
from models_registry.artefacts import load_head
from models_registry.models import ModelKind
from models_registry.selectors import champion_for

# The shared reads and writes; project_vectors, training_labels and write_priorities are also
# read from this module by the benchmarks and the tests' helpers.
from .pool import (  # noqa: F401
    STREAM_ROWS, WRITE_BATCH, PoolVectors, RefreshReport, open_pool, pool_scan, project_vectors, queue_from_scores,
    queue_order, refresh_batch, refresh_beat, store_head, stored_rows_at, stored_vectors, suggested_top,
    training_labels,
    write_priorities, write_queue,
)
from .selectors import state_for
from .signals import refresh_finished
from .span_refresh import span_refresh_run
from .suggestions import SUGGESTED_TOP, suggestions_for

log = logging.getLogger(__name__)


def champion_head(project: Project, encoder_version: str) -> LinearHead | None:
    """The fine-tuned champion's classifier, if the stored vectors are its embeddings: the
    refresh's fallback while the project has too few labels to fit a head on them."""
    champion = champion_for(project=project, kind=ModelKind.FINETUNED)
    if champion is None or not encoder_version.startswith(f"model-v{champion.number}@"):
        return None
    return load_head(champion)


def refresh_request(*, project_id: int) -> bool:
    """Ask for a refresh. Requests that pile up while one is pending collapse into one."""
    state_for(project_id)
    requested = ActiveLearningState.objects.filter(project_id=project_id, refresh_requested=False).update(
        refresh_requested=True,
        # A request is a queued job's sign of life; a running refresh keeps its own heartbeat, so a
        # dead run is not kept alive by the labels that keep asking for the next one.
        refresh_heartbeat_at=Case(When(refresh_running=True, then=F("refresh_heartbeat_at")), default=timezone.now()),
    )
    if requested:
        enqueue_on_commit(refresh_priorities, project_id)
    return bool(requested)


def refresh_after_label(*, project: Project) -> None:
    """Called after each new label (outside its transaction, so experts never queue on this row):
    count it, and request a refresh every `refresh_every` labels. One statement: count and read."""
    table = ActiveLearningState._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET labels_since_refresh = labels_since_refresh + 1 WHERE project_id = %s "
            "RETURNING labels_since_refresh, refresh_requested",
            [project.id],
        )
        row = cursor.fetchone()
    if row is None:
        state_for(project.id)
        return
    since, requested = row
    if since >= project.refresh_every and not requested and task_type_for(project).has_model:
        refresh_request(project_id=project.id)


def refresh_claim(*, project_id: int) -> bool:
    """Take the requested refresh; a running one is taken over only once its heartbeat stopped."""
    now = timezone.now()
    dead = now - timedelta(seconds=settings.LABELLOOP_JOB_HEARTBEAT_TIMEOUT)
    claimed = ActiveLearningState.objects.filter(
        Q(refresh_running=False) | Q(refresh_heartbeat_at__lt=dead) | Q(refresh_heartbeat_at__isnull=True),
        project_id=project_id, refresh_requested=True,
    ).update(refresh_requested=False, refresh_running=True, refresh_started_at=now, refresh_heartbeat_at=now,
             labels_since_refresh=0)
    return claimed == 1


def refresh_release(*, project_id: int, report: RefreshReport | None, error: str = "") -> None:
    changes = {"refresh_running": False, "refresh_error": error[:2000], "refresh_attempts": 0}
    if report is not None:
        changes.update(last_refresh_at=timezone.now(), last_refresh_seconds=report.seconds_total)
    ActiveLearningState.objects.filter(project_id=project_id).update(**changes)
    if ActiveLearningState.objects.filter(project_id=project_id, refresh_requested=True).exists():
            enqueue(refresh_priorities, project_id)


def refresh_reap(*, timeout_s: int | None = None) -> jobs.Reaped:
    """Refreshes with no heartbeat for `timeout_s`, running (the worker died) or requested (the
    message was lost): requested again, or given up with the reason after the last attempt (the
    next labels ask for a new one)."""
    timeout_s = jobs.job_timeout(timeout_s)
    now = timezone.now()
    silent = Q(refresh_heartbeat_at__lt=now - timedelta(seconds=timeout_s)) | Q(refresh_heartbeat_at__isnull=True)
    stuck = ActiveLearningState.objects.filter(silent, Q(refresh_running=True) | Q(refresh_requested=True)).values_list(
        "project_id", "refresh_running", "refresh_requested", "refresh_heartbeat_at", "refresh_attempts")
    out = jobs.Reaped()
    for project_id, running, requested, heartbeat, attempts in stuck:
        row = ActiveLearningState.objects.filter(project_id=project_id, refresh_running=running,
                                                 refresh_requested=requested, refresh_heartbeat_at=heartbeat)
        if jobs.may_retry(attempts):
            if row.update(refresh_running=False, refresh_requested=True, refresh_heartbeat_at=now,
                          refresh_attempts=attempts + 1):
                jobs.send_after_commit(lambda p=project_id: refresh_priorities.delay(p))
                out.requeued += 1
        elif row.update(refresh_running=False, refresh_requested=False, refresh_attempts=0,
                        refresh_error=jobs.stuck_reason(timeout_s=timeout_s, attempts=attempts, queue="refresh")):
            out.failed += 1
    return out


def refresh_run(*, project: Project, seed: int = 0, chunk_rows: int = STREAM_ROWS) -> RefreshReport:
    """Fit the head on the labelled vectors, score the unlabelled pool and write priorities.

    The pool is never held whole: its stored vectors are streamed `chunk_rows` at a time (float16,
    widened to float32 one chunk at a time) and scored as they come; what outlives a chunk is the
    pool's ids and scores and a bounded sample for self-training. The diversity step reads back
    only its candidates (docs/active-learning.md, "A million items")."""
    if task_type_for(project).word_level:
        return span_refresh_run(project=project, seed=seed)
    started = time.perf_counter()
    report = RefreshReport()
    state = state_for(project.id)
    version = state.encoder_version
    if not ItemVector.objects.filter(project=project, encoder_version=version).exists():
        return report
    resolved = training_labels(project)
    label_ids, label_vectors = stored_vectors(project, version, list(resolved))
    labelled = {item_id: resolved[item_id] for item_id in label_ids.tolist()}
    report.labelled = len(labelled)
    classes = list(project.labels.values_list("key", flat=True))
    task_type = task_type_for(project)

    # `head` suggests labels and is stored; `ranking` orders the pool. The pool is ranked by the
    # uncertainty of the head fitted on the labels alone (a self-trained head is surer, so it
    # explores less), and the head is refitted on the stored vectors whoever made them: under a
    # fine-tuned champion that ranks better than the champion's own classifier, frozen at its
    # snapshot, which is only the fallback while there is too little to fit. Measured in
    # docs/benchmarks.md ("With a fine-tuned champion in the loop", "With the self-trained head").
    ranking, fitted = None, False
    distinct = {label for labels in labelled.values() for label in labels}
    t = time.perf_counter()
    if len(labelled) >= 2 and len(distinct) >= 2:
        ranking, fitted = task_type.fit_head(label_vectors, list(labelled.values()), classes=classes, seed=seed), True
    else:
        ranking = champion_head(project, version)
    report.seconds_fit = time.perf_counter() - t
    refresh_beat(project_id=project.id)

    t = time.perf_counter()
    rng = np.random.default_rng(seed + state.head_version)
    warm_up = warming_up(project, labelled=len(labelled), n_classes=len(classes))
    if warm_up:
        # Fewer labels than classes: a head knows too few classes for its uncertainty to mean much,
        # so the most typical item of each cluster no label covers yet comes first
        # (docs/active-learning.md, "Warm-up"; measured in docs/benchmarks.md).
        report.cold_start = True
        scan, scores = warm_up_scan(project, version, label_vectors=label_vectors, n_classes=len(classes),
                                    batch_size=refresh_batch(project), sample=PSEUDO_LABEL_MAX if fitted else 0,
                                    seed=seed, chunk_rows=chunk_rows)
    elif ranking is None:
        report.cold_start = True
        scan, scores = cold_start_scan(project, version, batch_size=refresh_batch(project), seed=seed,
                                       chunk_rows=chunk_rows)
    else:
        def score(rows):
            return task_type.uncertainty(ranking.predict_proba(rows), project.strategy, rng=rng)

        # Random order needs no head over the pool; its draw is the one the whole pool got at once.
        by_head = project.strategy != strategies.RANDOM
        scan = pool_scan(project, version, score=score if by_head else None, sample=PSEUDO_LABEL_MAX if fitted else 0,
                         seed=seed, chunk_rows=chunk_rows)
        scores = scan.scores if by_head else rng.random(len(scan.pool_ids))
    report.pool = len(scan.pool_ids) + len(scan.eval_ids)
    report.seconds_read = scan.seconds_read
    vectors = PoolVectors(project, version, scan.pool_ids, scan.dim)
    final = queue_from_scores(project, scores=scores, vectors=vectors, pool_ids=scan.pool_ids, eval_ids=scan.eval_ids,
                              rng=rng, seed=seed, cold_start=warm_up or ranking is None)
    report.seconds_score = time.perf_counter() - t
    refresh_beat(project_id=project.id)

    # The self-training (numpy and scipy, no database) runs in a thread while the priorities are
    # written (the database's work, this thread waiting on it): on two cores each has one.
    def trained():
        started = time.perf_counter()
        # self-trained on a uniform sample of at most PSEUDO_LABEL_MAX pool items (ml.heads)
        head = self_train(ranking, label_vectors, list(labelled.values()), scan.sample.astype(np.float32), seed=seed)
        return head, time.perf_counter() - started

    t = time.perf_counter()
    with ThreadPoolExecutor(max_workers=1) as training:
        self_training = training.submit(trained) if fitted else None
        write_queue(project, final)
        head, seconds = self_training.result() if self_training is not None else (ranking, 0.0)
    report.seconds_fit += seconds
    top, suggestions = [], []
    if head is not None and project.suggestion_mode != SuggestionMode.OFF:
        top = suggested_top(final, scan.eval_ids.tolist(), SUGGESTED_TOP)
        top_ids, top_vectors = stored_vectors(project, version, top)
        top = top_ids.tolist()
        suggestions = suggestions_for(project, head, top, top_vectors, labelled, label_vectors, state.head_version + 1)
    store_head(project, head, trained_on=len(labelled), top=top, suggestions=suggestions)
    report.seconds_write = time.perf_counter() - t
    report.seconds_total = time.perf_counter() - started
    return report


def warming_up(project: Project, *, labelled: int, n_classes: int) -> bool:
    """Whether the refresh serves the warm-up: a single-label project that keeps it on (the
    default), not in random order, with fewer labels than `ml.strategies.warm_up_labels` (one per
    class). Measured on single-label intents only (docs/benchmarks.md): a multi-label item covers
    several classes at once, so "a label per class" is not the same count there, and span projects
    have their own refresh (span_refresh); both keep the cold start and then their strategy."""
    return (project.warm_up and task_type_for(project).key == TaskType.SINGLE_LABEL
            and project.strategy != strategies.RANDOM and labelled < strategies.warm_up_labels(n_classes))


def warm_up_scan(project: Project, encoder_version: str, *, label_vectors: np.ndarray, n_classes: int,
                 batch_size: int, sample: int, seed: int, chunk_rows: int):
    """`ml.strategies.cover_start` over the streamed vectors, in two passes: k-means centres fitted on
    the rows `cover_start` would fit them on (every stored vector up to WARM_UP_SAMPLE, else its
    seeded draw of them), then each pool item's typicality, a chunk at a time, keeping only the most
    typical member of each cluster; the labelled vectors' clusters are covered. The same seed at
    every refresh, so the clusters stay put. Returns the second pass's scan (with `sample` pool rows
    for self-training) and the scores: equal to `cover_start`'s on the same vectors."""
    total = ItemVector.objects.filter(project=project, encoder_version=encoder_version).count()
    k = strategies.warm_up_clusters(n_classes=n_classes, batch_size=batch_size, n_vectors=total)
    drawn = strategies.warm_up_sample(total, sample=strategies.WARM_UP_SAMPLE, seed=seed)
    fit_on = stored_rows_at(project, encoder_version, drawn, chunk_rows=chunk_rows)
    centres = strategies.warm_up_centres(fit_on, k=min(k, len(fit_on)), seed=seed)
    best = strategies.Representatives(len(centres))

    def score(rows):
        typical, nearest = strategies.typicality(rows, centres)
        best.add(typical, nearest)
        return typical

    scan = pool_scan(project, encoder_version, score=score, sample=sample, seed=seed, chunk_rows=chunk_rows)
    covered = strategies.typicality(label_vectors, centres)[1] if len(label_vectors) else np.zeros(0, np.int64)
    return scan, best.scores(scan.scores, covered)


COLD_START_SAMPLE = 20_000  # pool items the cold start's k-means is fitted on (ml.strategies.cold_start)


def cold_start_scan(project: Project, encoder_version: str, *, batch_size: int, seed: int, chunk_rows: int):
    """The cold start over the streamed pool, in two passes: k-means centres fitted on a uniform
    sample of COLD_START_SAMPLE pool items, then every item's typicality, a chunk at a time.
    Returns the second pass's scan and the scores (ml.strategies.cold_start_scores)."""
    first = pool_scan(project, encoder_version, sample=COLD_START_SAMPLE, seed=seed, chunk_rows=chunk_rows)
    if len(first.pool_ids) == 0:
        return first, np.zeros(0)
    k = min(batch_size, len(first.pool_ids), strategies.MAX_CLUSTERS)
    centres = strategies.cold_start_centres(first.sample.astype(np.float32), k=k, seed=seed)
    scan = pool_scan(project, encoder_version, score=lambda rows: strategies.typicality(rows, centres),
                     chunk_rows=chunk_rows)
    scan.seconds_read += first.seconds_read
    if not scan.extra:
        return scan, np.zeros(0)
    return scan, strategies.cold_start_scores(scan.scores, np.concatenate(scan.extra), k)


# Beside the service it runs, so the service enqueues it without a tasks module importing it back;
# the name predates this module and is kept for the routes and for messages already queued.
@shared_task(name="labeller.tasks.refresh_priorities", acks_late=True)
def refresh_priorities(project_id: int) -> None:
    """Refit the head and re-rank the queue; at most one per project runs at a time."""
    if not refresh_claim(project_id=project_id):
        return
    report = None
    try:
        report = refresh_run(project=Project.objects.get(id=project_id))
    except Exception as exc:
        refresh_release(project_id=project_id, report=None, error=f"{type(exc).__name__}: {exc}")
        raise
    refresh_release(project_id=project_id, report=report)
    refresh_finished.send(sender=ActiveLearningState, project_id=project_id)
