"""CoNLL BIO files (one `token<TAB>tag` per line, a blank line between texts) read into the span
contract: a text and its spans [{"start", "end", "label"}] in Unicode code points (Python str
offsets), end exclusive. The text is the tokens joined by single spaces.

Plain Python, no Django. (ml/spans.py, written in parallel, has its own reader; the lead keeps
one at merge.)
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable


def bio_to_spans(tags: Iterable[str], offsets: Iterable[tuple[int, int]]) -> list[dict]:
    """Spans from one tag per word and the words' (start, end) offsets. conlleval's reading: an
    I- tag after O or after another type starts an entity, as a B- would."""
    spans: list[dict] = []
    current = None
    for tag, (start, end) in zip(tags, offsets):
        kind, _, label = tag.partition("-")
        if kind == "I" and current is not None and current["label"] == label:
            current["end"] = end
            continue
        if current is not None:
            spans.append(current)
            current = None
        if kind in ("B", "I") and label:
            current = {"start": start, "end": end, "label": label}
    if current is not None:
        spans.append(current)
    return spans


def join_tokens(tokens: list[str]) -> tuple[str, list[tuple[int, int]]]:
    """The text (tokens joined by single spaces) and each token's code-point offsets in it."""
    offsets, position = [], 0
    for token in tokens:
        offsets.append((position, position + len(token)))
        position += len(token) + 1
    return " ".join(tokens), offsets


def read_conll(path: str | Path, *, limit: int = 0) -> list[tuple[str, list[dict]]]:
    """(text, spans) for each text of a CoNLL BIO file, in file order; the first `limit` if > 0."""
    examples: list[tuple[str, list[dict]]] = []
    tokens: list[str] = []
    tags: list[str] = []

    def flush():
        if tokens:
            text, offsets = join_tokens(tokens)
            examples.append((text, bio_to_spans(tags, offsets)))
        tokens.clear()
        tags.clear()

    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                flush()
                if limit and len(examples) >= limit:
                    return examples
                continue
            token, _, tag = line.rpartition("\t")
            tokens.append(token)
            tags.append(tag.strip() or "O")
    flush()
    return examples[:limit] if limit else examples
