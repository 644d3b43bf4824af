"""Training a span project's version (training.py hands span projects here): the word head over
the frozen base encoder, or the fine-tuned token-classification model; both are evaluated the
same way (SpanTask.evaluate: strict entity scores and span calibration) from the spans they
predict for the evaluation split.

- "head": a logistic regression over the base encoder's word vectors (ml.token_model.fit_word_head,
  the active-learning refresh's head), fitted on train + validation (nothing to tune on the
  validation split), stored as any head version is, over the tag names "O", "B-PER", ...
- "finetuned": ml.token_finetune's recipe (probe start, warm-up, the best epoch by validation
  entity F1, Viterbi decoding), its settings recorded on the version and overridable by the
  training policy's `finetune` dict; stored as safetensors with its tag names and a checksum.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np
from django.utils import timezone

from labeller.task_types import TaskType
from ml import token_finetune, token_model
from ml.encoder import ENCODE_CHUNK, clip_texts
from ml.encoder_cache import base_encoder

from . import artefacts
from .models import ModelKind, ModelVersion, TrainingPolicy
from .snapshots import EVALUATION, TRAIN, VALIDATION


def hyperparameters(policy: TrainingPolicy) -> dict[str, dict]:
    """Each kind's hyperparameters for a span project: the word head's regularisation and O
    weight, and the token fine-tune's config with the policy's overrides."""
    return {ModelKind.HEAD: {"c": token_model.HEAD_C, "o_weight": token_model.O_WEIGHT},
            ModelKind.FINETUNED: {**token_finetune.TokenFineTuneConfig().as_dict(), **policy.finetune}}


def span_train(version: ModelVersion, classes: list[str], parts: dict, task_type: TaskType, *,
               beat: Callable[[], None]) -> tuple[dict, dict]:
    """(metrics, fields of the version) for one claimed version of a span project; `parts` are
    training._split's (texts, gold spans, item ids) per split."""
    if version.kind == ModelKind.FINETUNED:
        return _train_finetuned(version, classes, parts, task_type, beat=beat)
    return _train_head(version, classes, parts, task_type, beat=beat)


def word_vectors(encoder, texts: list[str], *, beat: Callable[[], None]) -> token_model.WordVectors:
    """Frozen word vectors of `texts` (ml.token_model.encode_words), ENCODE_CHUNK texts at a time
    with a heartbeat after each: a large snapshot takes minutes."""
    parts = []
    for start in range(0, len(texts), ENCODE_CHUNK):
        parts.append(token_model.encode_words(encoder, texts[start:start + ENCODE_CHUNK]))
        beat()
    if not parts:
        return token_model.WordVectors(np.zeros((0, encoder.dim), np.float16), np.zeros(1, np.int64),
                                       np.zeros((0, encoder.dim), np.float32))
    offsets = np.cumsum([0] + [len(p.vectors) for p in parts[:-1]])
    starts = np.concatenate([p.starts[:-1] + offset for p, offset in zip(parts, offsets)] + [[offsets[-1] + len(parts[-1].vectors)]])
    return token_model.WordVectors(np.concatenate([p.vectors for p in parts]), starts.astype(np.int64),
                                   np.concatenate([p.sentences for p in parts]))


def _train_head(version: ModelVersion, classes: list[str], parts: dict, task_type: TaskType, *,
                beat: Callable[[], None]) -> tuple[dict, dict]:
    (train_texts, train_spans, _), (val_texts, val_spans, _), (eval_texts, eval_spans, _) = (
        parts[TRAIN], parts[VALIDATION], parts[EVALUATION])
    # Word rows follow the clipped text (what the encoder reads); gold tags must be made from it too.
    texts, spans = clip_texts(train_texts + val_texts), train_spans + val_spans
    encoder = base_encoder(version.project.base_model_path)
    tag_names = token_model.tag_set(classes)
    words = word_vectors(encoder, texts, beat=beat)
    hyper = version.hyperparameters
    head = token_model.fit_word_head(words.vectors, token_model.gold_word_tags(texts, spans), tag_names,
                                     casings=token_model.casing_features(texts), c=hyper.get("c", token_model.HEAD_C),
                                     o_weight=hyper.get("o_weight", token_model.O_WEIGHT))
    beat()
    eval_texts = clip_texts(eval_texts)
    eval_words = word_vectors(encoder, eval_texts, beat=beat)
    probs = token_model.head_probs(head, eval_words.vectors, token_model.casing_features(eval_texts))
    predicted = token_model.predict_spans(probs, eval_words.starts, eval_texts, tag_names)
    folder = artefacts.version_folder(version)
    checksum = artefacts.save_head(head, folder, {"version": version.number, "task_type": task_type.key})
    metrics = task_type.evaluate(predicted, eval_spans, classes)
    return metrics, {"artefact_path": artefacts.relative_path(folder), "checksum": checksum, "examples_per_second": None}


def _train_finetuned(version: ModelVersion, classes: list[str], parts: dict, task_type: TaskType, *,
                     beat: Callable[[], None]) -> tuple[dict, dict]:
    (train_texts, train_spans, _), (val_texts, val_spans, _), (eval_texts, eval_spans, _) = (
        parts[TRAIN], parts[VALIDATION], parts[EVALUATION])
    project = version.project
    config = token_finetune.TokenFineTuneConfig(**version.hyperparameters)
    beat()
    tagger = token_finetune.load_base(project.base_model_path or base_encoder(project.base_model_path).model_path,
                                      token_model.tag_set(classes), max_length=config.max_length, mode=config.mode)
    progress = {"epochs": config.epochs}
    last = {"at": 0.0}

    def on_progress(p: dict) -> None:
        progress.update({k: round(v, 4) if isinstance(v, float) else v for k, v in p.items()
                         if k in ("epoch", "step", "steps", "loss", "eta_s", "val_f1")})
        now = time.monotonic()
        if now - last["at"] < 1.0 and "val_f1" not in p:
            return
        last["at"] = now
        ModelVersion.objects.filter(id=version.id).update(heartbeat_at=timezone.now(), progress=dict(progress))

    def should_stop() -> bool:
        return ModelVersion.objects.filter(id=version.id, cancel_requested=True).exists()

    started = time.perf_counter()
    result = token_finetune.fine_tune(tagger, list(zip(train_texts, train_spans)), list(zip(val_texts, val_spans)),
                                      config=config, on_progress=on_progress, should_stop=should_stop)
    seconds = time.perf_counter() - started
    beat()
    predicted = tagger.predict(eval_texts)
    folder = artefacts.version_folder(version)
    checksum = token_finetune.save(tagger, folder, extra={"version": version.number, "task_type": task_type.key})
    metrics = task_type.evaluate(predicted, eval_spans, classes)
    metrics["training"] = {"history": result.history, "best_epoch": result.best_epoch, "stopped": result.stopped,
                           "epochs": config.epochs, "early_stopping": bool(val_texts), "device": "cpu",
                           "started_from": {"model": version.base_model, "head": "probe" if config.probe_start else "random"}}
    epochs_run = len(result.history) or 1
    return metrics, {"artefact_path": artefacts.relative_path(folder), "checksum": checksum,
                     "examples_per_second": round(len(train_texts) * epochs_run / max(seconds, 1e-9), 2)}
