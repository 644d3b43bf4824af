"""Cheap, honest explanations of a suggestion: the nearest labelled items and word occlusion."""
from __future__ import annotations

import re
from itertools import islice
from typing import Callable, Sequence

import numpy as np

from .encoder import model_max_chars

WORD = re.compile(r"\w+(?:'\w+)?", re.UNICODE)


def nearest(vector: np.ndarray, labelled: np.ndarray, *, k: int = 3) -> list[tuple[int, float]]:
    """Indices into `labelled` of the k most similar unit vectors, with their cosine similarity."""
    if len(labelled) == 0:
        return []
    similarity = labelled @ vector
    k = min(k, len(similarity))
    top = np.argpartition(-similarity, k - 1)[:k]
    top = top[np.argsort(-similarity[top])]
    return [(int(i), float(similarity[i])) for i in top]


def word_occlusion(text: str, class_index: int, *, encode: Callable[[Sequence[str]], np.ndarray],
                   predict_proba: Callable[[np.ndarray], np.ndarray], max_words: int = 40, top: int = 5) -> list[dict]:
    """Which words pushed the prediction: drop each word in turn and measure how much the
    probability of the suggested class falls. One batched forward for all variants.
    Reads the characters the model reads, and finds no more words than it occludes."""
    text = text[:model_max_chars()]
    words = list(islice(WORD.finditer(text), max_words))
    if not words:
        return []
    variants = [text] + [text[: w.start()] + text[w.end():] for w in words]
    probs = predict_proba(encode(variants))[:, class_index]
    base = probs[0]
    effects = [(w.group(0), float(base - p)) for w, p in zip(words, probs[1:])]
    effects.sort(key=lambda pair: -pair[1])
    return [{"word": word, "weight": round(weight, 4)} for word, weight in effects[:top] if weight > 0]
