"""Active learning services: encode items once per encoder, refit a light head on the stored
vectors every few labels, and re-rank the expert queue by the project's query strategy.

The ML itself lives in `ml/` (no Django); this module reads and writes the database around it.
A fine-tuned champion plugs in as the encoder: the pool is re-encoded with its embeddings, and
the refresh refits its light head on those (see docs/active-learning.md).
"""
from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, F, Q, When
from django.utils import timezone

from ml import explain, strategies
from ml.encoder import Encoder, from_float16_bytes, to_float16_bytes
from ml.heads import LinearHead, fit_head, self_train

from . import jobs
from .agreement import item_majority
from .enqueue import enqueue, enqueue_on_commit
from .models import ActiveLearningState, Annotation, Item, ItemVector, JobStatus, Project, SuggestionMode

log = logging.getLogger(__name__)
ENCODE_CHUNK = 1024
SUGGESTED_TOP = 50  # items at the head of the queue that get a precomputed suggestion
_encoders: dict[str, Encoder] = {}


def encoder_for(project: Project):
    """The encoder the pool is ranked with: the champion's own embeddings when the champion is a
    fine-tuned version, else the project's base encoder. One instance per model per process:
    loading costs seconds, encoding milliseconds."""
    champion = _fine_tuned_champion(project)
    if champion is not None:
        key = f"version:{champion.id}:{champion.checksum}"
        if key not in _encoders:
            from models_registry.artefacts import FineTunedEncoder

            _encoders[key] = FineTunedEncoder(champion)
        return _encoders[key]
    return base_encoder(project)


def base_encoder(project: Project) -> Encoder:
    """The project's frozen base encoder (its configured path, else all-MiniLM-L6-v2)."""
    path = project.base_model_path or ""
    if path not in _encoders:
        _encoders[path] = Encoder(path or None)
    return _encoders[path]


def _fine_tuned_champion(project: Project):
    from models_registry.models import Alias

    alias = Alias.objects.filter(project=project, name="champion", version__kind="finetuned",
                                 version__status="ready").select_related("version").first()
    return alias.version if alias else None


def champion_head(project: Project, encoder_version: str) -> LinearHead | None:
    """The fine-tuned champion's classifier, if the stored vectors are its embeddings: the
    refresh's fallback while the project has too few labels to fit a head on them."""
    champion = _fine_tuned_champion(project)
    if champion is None or not encoder_version.startswith(f"model-v{champion.number}@"):
        return None
    from models_registry.artefacts import load_head

    return load_head(champion)


def state_for(project_id: int) -> ActiveLearningState:
    state, _ = ActiveLearningState.objects.get_or_create(project_id=project_id)
    return state


def is_eval_draw(project_id: int, row_key: str, share: float) -> bool:
    """A uniform, reproducible draw: the same item of the same project always lands the same way."""
    digest = hashlib.blake2b(f"{project_id}:{row_key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < share


# --- encoding -------------------------------------------------------------------------------------

def encode_request(*, project_id: int) -> bool:
    """Ask a worker to encode the project's new items; a request while one is queued is a no-op."""
    from .tasks import encode_items

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
    from .tasks import encode_items

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


# --- refresh --------------------------------------------------------------------------------------

def refresh_request(*, project_id: int) -> bool:
    """Ask for a refresh. Requests that pile up while one is pending collapse into one."""
    from .tasks import refresh_priorities

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
    if since >= project.refresh_every and not requested:
        refresh_request(project_id=project.id)


@dataclass
class RefreshReport:
    pool: int = 0
    labelled: int = 0
    cold_start: bool = False
    seconds_fit: float = 0.0
    seconds_score: float = 0.0
    seconds_write: float = 0.0
    seconds_total: float = 0.0


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


def refresh_beat(*, project_id: int) -> None:
    """A running refresh's sign of life, between its phases and its write batches."""
    ActiveLearningState.objects.filter(project_id=project_id, refresh_running=True).update(refresh_heartbeat_at=timezone.now())


def refresh_release(*, project_id: int, report: RefreshReport | None, error: str = "") -> None:
    changes = {"refresh_running": False, "refresh_error": error[:2000], "refresh_attempts": 0}
    if report is not None:
        changes.update(last_refresh_at=timezone.now(), last_refresh_seconds=report.seconds_total)
    ActiveLearningState.objects.filter(project_id=project_id).update(**changes)
    if ActiveLearningState.objects.filter(project_id=project_id, refresh_requested=True).exists():
        from .tasks import refresh_priorities

        enqueue(refresh_priorities, project_id)


def refresh_reap(*, timeout_s: int | None = None) -> jobs.Reaped:
    """Refreshes with no heartbeat for `timeout_s`, running (the worker died) or requested (the
    message was lost): requested again, or given up with the reason after the last attempt (the
    next labels ask for a new one)."""
    from .tasks import refresh_priorities

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
    """The resolved label set of every labelled item (majority of expert labels)."""
    by_item: dict[int, list[list[str]]] = {}
    annotations = Annotation.objects.filter(project=project, skipped=False)
    if not include_eval:
        annotations = annotations.filter(item__is_eval=False)
    for item_id, labels in annotations.order_by("id").values_list("item_id", "labels").iterator(chunk_size=5000):
        by_item.setdefault(item_id, []).append(labels)
    resolved = {}
    for item_id, label_sets in by_item.items():
        majority, _ = item_majority(label_sets, multi_label=project.is_multi_label)
        if majority or project.is_multi_label:
            resolved[item_id] = majority
    return resolved


def refresh_run(*, project: Project, seed: int = 0) -> RefreshReport:
    """Fit the head on the labelled vectors, score the unlabelled pool and write priorities."""
    started = time.perf_counter()
    report = RefreshReport()
    state = state_for(project.id)
    ids, vectors = project_vectors(project, state.encoder_version)
    if len(ids) == 0:
        return report
    position = {item_id: i for i, item_id in enumerate(ids.tolist())}
    labelled = {item_id: labels for item_id, labels in training_labels(project).items() if item_id in position}
    open_rows = Item.objects.filter(project=project, is_done=False).values_list("id", "is_eval")
    pool_ids, eval_ids = [], []
    for item_id, is_eval in open_rows.iterator(chunk_size=10000):
        if item_id in position:
            (eval_ids if is_eval else pool_ids).append(item_id)
    report.pool, report.labelled = len(pool_ids) + len(eval_ids), len(labelled)
    classes = list(project.labels.values_list("key", flat=True))
    pool_rows = np.array([position[i] for i in pool_ids], dtype=np.int64)
    pool_vectors = vectors[pool_rows] if len(pool_rows) else np.zeros((0, vectors.shape[1]), np.float32)
    batch_size = max(project.refresh_every, 10)

    # `head` suggests labels and is stored; `ranking` orders the pool. A fitted head is then
    # self-trained on the open pool (evaluation items excluded), but the pool is ranked by the
    # uncertainty of the head fitted on the labels alone: on Banking77 that explores better
    # (offline replay, 4 seeds: margin at 800 labels 0.892, against 0.881 when the self-trained head
    # ranks; docs/benchmarks.md).
    # The head is refitted on the stored vectors whoever made them: under a fine-tuned champion
    # they are its embeddings, and a head refitted there on every label since ranks better than the
    # champion's own classifier, frozen at its snapshot (offline replay, 3 seeds, Banking77: 0.926
    # against 0.922 at 1,600 labels; docs/benchmarks.md). That classifier is only the fallback
    # while there is too little to fit.
    head = ranking = None
    distinct = {label for labels in labelled.values() for label in labels}
    t = time.perf_counter()
    if len(labelled) >= 2 and len(distinct) >= 2:
        label_rows = np.array([position[i] for i in labelled], dtype=np.int64)
        label_sets = list(labelled.values())
        ranking = fit_head(vectors[label_rows], label_sets, classes=classes, multi_label=project.is_multi_label, seed=seed)
        head = self_train(ranking, vectors[label_rows], label_sets, pool_vectors, seed=seed)
    else:
        head = ranking = champion_head(project, state.encoder_version)
    report.seconds_fit = time.perf_counter() - t
    refresh_beat(project_id=project.id)

    t = time.perf_counter()
    rng = np.random.default_rng(seed + state.head_version)
    if head is None:
        report.cold_start = True
        scores = strategies.cold_start(pool_vectors, batch_size=batch_size, seed=seed)
        order = np.argsort(-scores, kind="stable")
    else:
        probs = ranking.predict_proba(pool_vectors)
        scores = strategies.uncertainty(probs, project.strategy, multi_label=project.is_multi_label, rng=rng)
        diverse = project.diversity and project.strategy != strategies.RANDOM
        order = strategies.rank_pool(scores, pool_vectors, batch_size=batch_size, diverse=diverse, seed=seed)
    strategy_order = np.array(pool_ids, dtype=np.int64)[order] if len(pool_ids) else np.zeros(0, np.int64)
    eval_order = rng.permutation(np.array(eval_ids, dtype=np.int64))
    final = strategies.interleave_evaluation(strategy_order, eval_order, share=project.eval_share)
    report.seconds_score = time.perf_counter() - t
    refresh_beat(project_id=project.id)

    t = time.perf_counter()
    n = len(final)
    priorities = 1.0 - np.arange(n, dtype=np.float64) / max(n, 1)
    write_priorities(final, priorities, on_batch=lambda: refresh_beat(project_id=project.id))
    with transaction.atomic():
        if head is not None and project.suggestion_mode != SuggestionMode.OFF:
            top = final[:SUGGESTED_TOP]
            suggestions = suggestions_for(project, head, top, ids, vectors, labelled, position, state.head_version + 1)
            Item.objects.bulk_update(
                [Item(id=int(item_id), suggestion=s) for item_id, s in zip(top, suggestions)], ["suggestion"], batch_size=500
            )
        ActiveLearningState.objects.filter(project=project).update(
            head=head.to_bytes() if head is not None else None,
            head_version=F("head_version") + 1,
            head_trained_on=len(labelled),
        )
    report.seconds_write = time.perf_counter() - t
    report.seconds_total = time.perf_counter() - started
    return report


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


# --- suggestions and explanations -----------------------------------------------------------------

def suggestions_for(project, head: LinearHead, item_ids, ids, vectors, labelled, position, head_version) -> list[dict]:
    """The suggestion shown beside each item: label(s), confidence, top 3, nearest labelled items."""
    if len(item_ids) == 0:
        return []
    labelled_ids = list(labelled)
    labelled_vectors = vectors[[position[i] for i in labelled_ids]] if labelled_ids else np.zeros((0, vectors.shape[1]))
    texts = dict(Item.objects.filter(id__in=labelled_ids).values_list("id", f"data__{project.text_field}")) if labelled_ids else {}
    item_vectors = vectors[[position[int(i)] for i in item_ids]]
    probs = head.predict_proba(item_vectors)
    out = []
    for row, p in enumerate(probs):
        neighbours = []
        for index, similarity in explain.nearest(item_vectors[row], labelled_vectors, k=3):
            neighbour = labelled_ids[index]
            neighbours.append({"item": neighbour, "text": str(texts.get(neighbour, ""))[:300],
                               "labels": labelled[neighbour], "similarity": round(similarity, 3)})
        out.append(suggestion_dict(head, p, neighbours, head_version))
    return out


def suggestion_dict(head: LinearHead, p: np.ndarray, neighbours: list[dict], head_version: int) -> dict:
    order = np.argsort(-p)
    if head.multi_label:
        labels = [head.classes[i] for i in order if p[i] >= 0.5] or [head.classes[order[0]]]
        confidence = float(np.min([max(p[i], 1 - p[i]) for i in range(len(p))]))
    else:
        labels = [head.classes[order[0]]]
        confidence = float(p[order[0]])
    return {
        "labels": labels,
        "confidence": round(confidence, 4),
        "top": [{"label": head.classes[i], "p": round(float(p[i]), 4)} for i in order[:3]],
        "neighbours": neighbours,
        "words": [],
        "head_version": head_version,
    }


def explain_top(*, project_id: int, limit: int = 20) -> int:
    """Add word attributions (occlusion through the encoder and head) to the suggestions at the
    head of the queue. Runs after a refresh on the encode queue, where the encoder is loaded."""
    project = Project.objects.get(id=project_id)
    state = state_for(project_id)
    if not state.head or project.suggestion_mode == SuggestionMode.OFF:
        return 0
    head = LinearHead.from_bytes(bytes(state.head))
    encoder = encoder_for(project)
    items = list(
        Item.objects.filter(project=project, is_done=False, suggestion__isnull=False)
        .order_by("-priority", "id")[:limit]
    )
    updated = []
    for item in items:
        suggestion = item.suggestion
        if suggestion.get("words") or suggestion.get("head_version") != state.head_version:
            continue
        class_index = head.classes.index(suggestion["labels"][0])
        suggestion["words"] = explain.word_occlusion(
            item.text(), class_index, encode=encoder.encode, predict_proba=head.predict_proba
        )
        updated.append(item)
    Item.objects.bulk_update(updated, ["suggestion"])
    return len(updated)


def suggestion_for_item(*, item: Item) -> dict | None:
    """What to show beside `item`: the precomputed suggestion if current, else one computed now
    from the stored head and the item's vector (without word attributions)."""
    project = item.project
    if project.suggestion_mode == SuggestionMode.OFF:
        return None
    state = ActiveLearningState.objects.filter(project=project).first()
    if state is None or not state.head:
        return None
    if item.suggestion and item.suggestion.get("head_version") == state.head_version:
        return item.suggestion
    stored = ItemVector.objects.filter(item=item, encoder_version=state.encoder_version).values_list("vector", flat=True).first()
    if stored is None:
        return None
    head = LinearHead.from_bytes(bytes(state.head))
    vector = from_float16_bytes([bytes(stored)], len(stored) // 2)
    return suggestion_dict(head, head.predict_proba(vector)[0], [], state.head_version)
