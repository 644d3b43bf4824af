"""Serving a span project's version: the spans of each text with their confidence.

A head version is a logistic regression over the frozen base encoder's word vectors (as the
active-learning refresh fits it, ml.token_model.fit_word_head), stored as any head version is;
answering runs the base encoder once per batch for its word vectors and decodes the tags into
spans (SpanTask.decide_text). A fine-tuned version is a token-classification model
(ml.token_finetune, loaded after its checksum is verified) whose per-word tag probabilities are
decoded by the same SpanTask.decide_text: both kinds answer the same shape. Both run their encoder
in ONNX Runtime by default (LABELLOOP_SERVE_RUNTIME), a fine-tuned version its classifier in numpy
over the exported encoder's hidden states, as fine-tuned classification versions do.
"""
from __future__ import annotations

import logging

from django.conf import settings

from labeller.task_types import Decision, task_type_for
from ml import token_finetune, token_model
from ml.encoder import clip_texts
from ml.encoder_cache import base_encoder

from . import artefacts
from .models import ModelKind, ModelVersion

log = logging.getLogger(__name__)

# Word vectors are taken 32 texts at a time: the forward pass is the cost, and tweets-length texts
# pad little against each other once length-sorted (encode_words sorts them).
SPAN_SERVE_BATCH = 32


class SpanPredictor:
    """A loaded span version: `decisions(texts)` gives each text's spans (code points, with text
    and confidence) and the text's confidence, in the order given."""

    def __init__(self, version: ModelVersion):
        self.version = version
        self.task_type = task_type_for(version.project)
        self.head = self.tagger = None
        if version.kind == ModelKind.HEAD:
            self.head = artefacts.load_head(version)
            self.tag_names = self.head.classes
            self.encoder = base_encoder(version.project.base_model_path)
            self.hidden_states = _onnx_hidden_states(self.encoder.model, self.encoder.tokenizer, self.encoder.max_length)
            self.runtime = "torch" if self.hidden_states is None else "onnx"
        else:
            self.tagger = token_finetune.load(artefacts.version_path(version), version.checksum)
            self.tag_names = self.tagger.tag_names
            # As fine-tuned classification versions serve: the encoder in ONNX Runtime, the
            # classifier in numpy (torch if the setting says so or the export fails).
            hidden_states = _onnx_hidden_states(self.tagger.model.base_model, self.tagger.tokenizer, self.tagger.max_length)
            if hidden_states is not None:
                self.tagger.serve_with(hidden_states)
            self.runtime = "torch" if hidden_states is None else "onnx"

    def word_probabilities(self, texts: list[str]) -> list:
        """Per (clipped) text, its words' tag probabilities, from either kind of version."""
        if self.tagger is not None:
            return self.tagger.word_probabilities(texts, batch_size=SPAN_SERVE_BATCH)
        words = token_model.encode_words(self.encoder, texts, batch_size=SPAN_SERVE_BATCH, hidden_states=self.hidden_states)
        probs = token_model.head_probs(self.head, words.vectors, token_model.casing_features(texts))
        return [probs[words.starts[i]:words.starts[i + 1]] for i in range(len(texts))]

    def decisions(self, texts: list[str], top_k: int = 3) -> list[Decision]:
        texts = clip_texts(texts)
        return [self.task_type.decide_text(self.tag_names, probs, text)
                for probs, text in zip(self.word_probabilities(texts), texts)]

    def judged(self, texts: list[str], top_k: int = 3) -> tuple[list[Decision], list[bool]]:
        """The answers; span versions judge no text out of scope (an untagged text is an answer)."""
        return self.decisions(texts, top_k), [False] * len(texts)


def _onnx_hidden_states(model, tokenizer, max_length: int):
    """An encoder's forward pass (its last hidden state) in ONNX Runtime, as classification
    versions serve (LABELLOOP_SERVE_RUNTIME; in torch a batch of tweets took about three times as
    long), or None (torch) when the setting says so or the encoder cannot be exported. `model`:
    the base encoder's, or a fine-tuned tagger's `base_model`."""
    if settings.LABELLOOP_SERVE_RUNTIME != "onnx":
        return None
    from ml.onnx_serving import OnnxEncoder

    try:
        return OnnxEncoder(model, tokenizer, max_length=max_length,
                           int8=settings.LABELLOOP_SERVE_INT8, hidden=True).hidden_states
    except Exception:  # an architecture the exporter cannot trace: serve with torch instead
        log.warning("serving span versions with torch: the encoder could not be exported to ONNX", exc_info=True)
        return None
