"""Serving: which version answers a caller, and the loaded models that answer.

Each process loads a version once and keeps it while it is the champion or the challenger; a
promotion is seen within ALIAS_TTL seconds and the new version loads on its first request, with
no restart. A request's items are scored together, in length-sorted batches.
"""
from __future__ import annotations

import logging
import threading
import time

import numpy as np
from django.conf import settings

from core.errors import Conflict
from labeller.models import Project
from labeller.task_types import Decision, classification_of, task_type_for
from labeller.task_types.spans import SPANS
from ml.encoder_cache import base_encoder
from ml.draws import stable_hash
from ml.heads import LinearHead
from ml.out_of_scope import ScopeRule

from . import artefacts
from .models import ModelKind, ModelVersion
from .span_serving import SpanPredictor
from .selectors import aliased_versions

log = logging.getLogger(__name__)
ALIAS_TTL = 2.0  # seconds a process trusts its cached view of the champion and challenger
KEEP_LOADED = 3  # versions kept in memory per process: champion, challenger and one spare
# A request's texts are length-sorted and run 8 at a time: padding a request's 64 random texts to
# its longest costs more than the extra forward calls (see docs/benchmarks.md, section "Predict API").
SERVE_BATCH = 8

_lock = threading.Lock()
_loaded: dict[tuple[int, str], "Predictor"] = {}
_aliases: dict[int, tuple[float, dict[str, ModelVersion]]] = {}
_serving_encoders: dict[tuple, object] = {}


class NoModel(Conflict):
    """The project has no champion to serve yet."""


class Predictor:
    """A loaded version: `probabilities(texts)` in the version's class order, and the task type
    that turns them into answers (the one it was trained for, as stored with its weights)."""

    def __init__(self, version: ModelVersion):
        self.version = version
        self._model = self._onnx = None
        self.scope = None
        if version.kind == ModelKind.HEAD:
            self.head = artefacts.load_head(version)
            self.encoder = serving_encoder(version.project)
            self.classes = self.head.classes
            self.task_type = classification_of(self.head)
            self.scope = _scope_of(version, self.head.memory)
            return
        from ml import finetune

        model, self.classes = finetune.load(artefacts.version_path(version), version.checksum)
        self.task_type = classification_of(model)
        self.scope = _scope_of(version, model.memory)
        if settings.LABELLOOP_SERVE_RUNTIME == "onnx":
            self._onnx = _onnx_encoder(model.encoder, model.tokenizer, model.max_length)
            # its classifier (and neighbour vote) over the ONNX embeddings, as head versions do
            self.head = LinearHead(self.classes, model.head.weight.detach().numpy(), model.head.bias.detach().numpy(),
                                   multi_label=model.multi_label, memory=model.memory)
        if self._onnx is None:
            if settings.LABELLOOP_SERVE_INT8:
                from ml.encoder import quantize_int8

                model.encoder = quantize_int8(model.encoder)
            self._model = model

    def decisions(self, texts: list[str], top_k: int = 3) -> list[Decision]:
        """The answer for each text, in the order given (span versions answer the same way)."""
        return [self.task_type.decide(self.classes, p, top_k=top_k) for p in self.probabilities(texts)]

    def judged(self, texts: list[str], top_k: int = 3) -> tuple[list[Decision], list[bool]]:
        """The answers, and whether each text is out of scope (a version trained with an
        out-of-scope rule; the others judge none so)."""
        if self.scope is None:
            return self.decisions(texts, top_k), [False] * len(texts)
        if self._model is not None:  # a fine-tuned version served in torch
            probs, vectors = self._model.predict(texts, batch_size=SERVE_BATCH)
            memory = self._model.memory
        else:
            vectors = (self._onnx or self.encoder).encode(texts, batch_size=SERVE_BATCH)
            probs, memory = self.head.predict_proba(vectors), self.head.memory
        outside = self.scope.out_of_scope(probs, vectors, self.scope.in_scope_memory(memory.vectors, memory.labels))
        return [self.task_type.decide(self.classes, p, top_k=top_k) for p in probs], outside.tolist()

    def probabilities(self, texts: list[str], batch_size: int = SERVE_BATCH) -> np.ndarray:
        if self._onnx is not None:  # a fine-tuned version: its encoder in ONNX Runtime, its head here
            return self.head.predict_proba(self._onnx.encode(texts, batch_size=batch_size))
        if self._model is not None:
            return self._model.predict(texts, batch_size=batch_size)[0]
        return self.head.predict_proba(self.encoder.encode(texts, batch_size=batch_size))


def _scope_of(version: ModelVersion, memory) -> ScopeRule | None:
    """The version's out-of-scope rule, when it was trained with one and serves its neighbour memory
    (the rule reads the distance to it)."""
    rule = (version.metrics or {}).get("out_of_scope")
    return ScopeRule(**rule) if rule and memory is not None else None


def _onnx_encoder(encoder, tokenizer, max_length: int):
    """An ONNX Runtime copy of a loaded torch encoder, or None (and a warning) if it cannot be made."""
    from ml.onnx_serving import OnnxEncoder

    try:
        return OnnxEncoder(encoder, tokenizer, max_length=max_length, int8=settings.LABELLOOP_SERVE_INT8)
    except Exception:  # an architecture the exporter cannot trace: serve with torch instead
        log.warning("serving with torch: the encoder could not be exported to ONNX", exc_info=True)
        return None


def serving_encoder(project: Project):
    """The encoder head versions serve with. The shared base encoder (which also makes the
    stored vectors, so it is never changed) is exported to ONNX Runtime by default
    (LABELLOOP_SERVE_RUNTIME); LABELLOOP_SERVE_INT8 quantises the serving copy."""
    key = (project.base_model_path or "", settings.LABELLOOP_SERVE_RUNTIME, settings.LABELLOOP_SERVE_INT8)
    if key not in _serving_encoders:
        base = base_encoder(project.base_model_path)
        encoder = None
        if settings.LABELLOOP_SERVE_RUNTIME == "onnx":
            encoder = _onnx_encoder(base.model, base.tokenizer, base.max_length)
        if encoder is None and settings.LABELLOOP_SERVE_INT8:
            from ml.encoder import Encoder

            encoder = Encoder(base.model_path, int8=True)
        _serving_encoders[key] = encoder or base
    return _serving_encoders[key]


def serving_versions(project: Project) -> dict[str, ModelVersion]:
    """{"champion": v, "challenger": v} as this process last saw them (at most ALIAS_TTL old)."""
    now = time.monotonic()
    cached = _aliases.get(project.id)
    if cached and now - cached[0] < ALIAS_TTL:
        return cached[1]
    versions = aliased_versions(project=project)
    _aliases[project.id] = (now, versions)
    return versions


def forget_aliases(project_id: int | None = None) -> None:
    """Drop the cached view (tests, and a process that just moved an alias itself)."""
    if project_id is None:
        _aliases.clear()
    else:
        _aliases.pop(project_id, None)


def _load(version: ModelVersion):
    if task_type_for(version.project).key == SPANS.key:
        return SpanPredictor(version)
    return Predictor(version)


def predictor_for(version: ModelVersion) -> Predictor | SpanPredictor:
    key = (version.id, version.checksum)
    predictor = _loaded.get(key)
    if predictor is not None:
        return predictor
    with _lock:  # one load per version, even with threaded workers
        predictor = _loaded.get(key)
        if predictor is None:
            predictor = _load(version)
            while len(_loaded) >= KEEP_LOADED:
                _loaded.pop(next(iter(_loaded)))
            _loaded[key] = predictor
    return predictor


def goes_to_challenger(project_id: int, caller_key: str, percent: int) -> bool:
    """Sticky split: the same caller key always lands on the same side (for a given percent)."""
    if percent <= 0:
        return False
    return stable_hash("split", project_id, caller_key) % 100 < percent


def answers(predictor: Predictor | SpanPredictor, texts: list[str], top_k: int) -> list[Decision]:
    return predictor.decisions(texts, top_k)


def judged_answers(predictor: Predictor | SpanPredictor, texts: list[str], top_k: int) -> tuple[list[Decision], list[bool]]:
    """The answers and, for each, whether the version judges the text out of scope."""
    return predictor.judged(texts, top_k)



def serving_warm() -> int:
    """Load every project's champion and challenger in this process and run one text through
    each, so the first prediction a gunicorn worker answers does not pay for loading (6-8 s).
    Called when a worker starts (config/gunicorn.conf.py); nothing to do before a first
    promotion. A version that fails to load is logged and left to load on demand, as before:
    a broken artefact must not stop the web server from starting."""
    warmed = 0
    for project in Project.objects.filter(aliases__isnull=False).distinct():
        for version in serving_versions(project).values():
            try:
                predictor_for(version).decisions(["warm up"])
                warmed += 1
            except Exception:
                log.warning("could not preload version %s of project %s", version.number, project.id, exc_info=True)
    return warmed
