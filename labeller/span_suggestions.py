"""What the expert sees on a span project's item: the spans the refresh's word head tags in it,
each with its confidence, from the stored head and the item's stored word vectors. Reads only.

A suggestion is {"spans": [{start, end, label, text, confidence}], "confidence", "head_version"}:
offsets in code points (the item's words, ml.token_model.words_of), BIO repaired by Viterbi
(ml.token_model.decode). "confidence" is the text's: 1 - its mean word margin uncertainty. The
refresh ranks the pool by the same margins' sum over the root of the words (QUEUE_REDUCE), so
of two texts equally unsure per word the longer is served first, but not in proportion to length.
The head reads each word's casing beside its stored vector (ml.token_model.head_probs).
"""
from __future__ import annotations

import numpy as np

from ml import token_model
from ml.encoder import clip_texts
from ml.heads import LinearHead

from .models import ActiveLearningState, Item, ItemWordVectors


def word_matrix(blob: bytes, n_words: int) -> np.ndarray:
    """An ItemWordVectors row's float16 (n_words x dim) matrix (not widened: head_probs does)."""
    return np.frombuffer(bytes(blob), dtype=np.float16).reshape(n_words, -1) if n_words else np.zeros((0, 0), np.float16)


def text_confidence(probs: np.ndarray) -> float:
    """1 - the text's mean word margin uncertainty (1.0 for a text without words)."""
    score = token_model.sequence_uncertainty(probs, np.array([0, len(probs)]), reduce=token_model.MEAN)
    return round(1.0 - float(score[0]), 4)


def span_suggestion(head: LinearHead, matrix: np.ndarray, text: str, head_version: int) -> dict:
    """The head's spans in `text` from its stored word matrix (its first len(matrix) words: the
    words past what the model read are O)."""
    clipped = clip_texts([text])[0]
    words = token_model.words_of(clipped)[:len(matrix)]
    probs = token_model.head_probs(head, matrix, token_model.stored_casings([(clipped, len(matrix))]))
    spans = token_model.decode(probs, words, head.classes, text=text)
    for span in spans:
        span["confidence"] = round(span["confidence"], 4)
    return {"spans": spans, "confidence": text_confidence(probs), "head_version": head_version}


def span_suggestion_for_item(*, item: Item, state: ActiveLearningState) -> dict | None:
    """The suggestion computed now from the stored head and the item's word vectors, or None if
    the item has none under the current encoder (not encoded yet)."""
    row = ItemWordVectors.objects.filter(item=item, encoder_version=state.encoder_version).values_list(
        "n_words", "vectors").first()
    if row is None:
        return None
    n_words, blob = row
    return span_suggestion(LinearHead.from_bytes(bytes(state.head)), word_matrix(blob, n_words), item.text(),
                           state.head_version)
