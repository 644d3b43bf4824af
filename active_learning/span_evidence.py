"""Why the model suggests a span: the labelled spans nearest to it, of the label it suggests.

A span's vector is the mean of its words' stored vectors (the word head reads the same rows),
normalised; a suggested span's evidence is the EVIDENCE_K labelled spans of its label with the
highest cosine similarity, each with its text, label, a short context and its item. The bank of
labelled spans is built from the word rows the refresh reads anyway to fit the head
(span_refresh.training_words), and evidence is attached only to the suggestions precomputed for
the head of the queue: the pool is never compared with it (docs/active-learning.md, "Span
projects"). Plain numpy, no database.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ml import explain

EVIDENCE_K = 3  # labelled spans shown per suggested span
CONTEXT_CHARS = 40  # characters of the labelled text kept either side of a span
CANDIDATES = 10  # nearest spans read per span shown, to find distinct texts among


def span_rows(words: list[tuple[int, int]], span: dict) -> list[int]:
    """Indices of the words a span covers (any overlap, as ml.token_model.word_tags counts it)."""
    return [i for i, (start, end) in enumerate(words) if start < span["end"] and end > span["start"]]


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


@dataclass
class SpanBank:
    """The labelled spans: a unit vector each, and what is shown of it."""
    vectors: list[np.ndarray] = field(default_factory=list)
    shown: list[dict] = field(default_factory=list)
    _by_label: dict[str, tuple[np.ndarray, list[int]]] | None = None

    def add(self, *, item_id: int, text: str, words: list[tuple[int, int]], matrix: np.ndarray, spans: list[dict]) -> None:
        """The spans of one labelled item (`matrix`: its word rows, `words` their offsets in `text`)."""
        for span in spans:
            rows = [i for i in span_rows(words, span) if i < len(matrix)]
            if not rows:  # past the words the model read
                continue
            start, end = int(span["start"]), int(span["end"])
            self.vectors.append(_unit(matrix[rows].astype(np.float32).mean(axis=0)))
            self.shown.append({
                "item": item_id, "label": span["label"], "text": text[start:end],
                "before": ("…" if start > CONTEXT_CHARS else "") + text[max(0, start - CONTEXT_CHARS):start],
                "after": text[end:end + CONTEXT_CHARS] + ("…" if len(text) > end + CONTEXT_CHARS else ""),
            })
        self._by_label = None

    def __len__(self) -> int:
        return len(self.shown)

    def _label(self, label: str) -> tuple[np.ndarray, list[int]]:
        if self._by_label is None:
            grouped: dict[str, list[int]] = {}
            for i, shown in enumerate(self.shown):
                grouped.setdefault(shown["label"], []).append(i)
            self._by_label = {key: (np.stack([self.vectors[i] for i in indices]), indices)
                              for key, indices in grouped.items()}
        return self._by_label.get(label, (np.zeros((0, 0), np.float32), []))

    def nearest(self, vector: np.ndarray, label: str, *, k: int = EVIDENCE_K) -> list[dict]:
        """The k labelled spans of `label` nearest to `vector`; one per distinct text (the same
        name labelled in ten tweets is one piece of evidence), nearest first."""
        matrix, indices = self._label(label)
        out, seen = [], set()
        candidates = min(len(indices), CANDIDATES * k)  # enough to skip repeats without sorting them all
        for index, similarity in explain.nearest(_unit(vector.astype(np.float32))[None, :], matrix, k=candidates)[0]:
            shown = self.shown[indices[index]]
            if shown["text"].casefold() in seen:
                continue
            seen.add(shown["text"].casefold())
            out.append({**shown, "similarity": round(similarity, 3)})
            if len(out) == k:
                break
        return out


def attach_evidence(suggestion: dict, *, matrix: np.ndarray, words: list[tuple[int, int]], bank: SpanBank) -> dict:
    """`suggestion` (labeller.span_suggestions' payload) with each span's `evidence`."""
    for span in suggestion["spans"]:
        rows = [i for i in span_rows(words, span) if i < len(matrix)]
        span["evidence"] = bank.nearest(matrix[rows].astype(np.float32).mean(axis=0), span["label"]) if rows and len(bank) else []
    return suggestion
