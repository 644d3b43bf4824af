"""A text with its spans marked, for pages that draw spans server-side (the item page).

Offsets are Unicode code points, so they index a Python str directly: `text[start:end]` is the
span's text, whatever emoji, combining marks or astral characters precede it. The text is cut at
every span boundary into pieces; each piece knows the spans covering it, and the template draws
each span as an underline at its own level (so overlapping spans stack, as on the labelling
screen), the first one tinting the background. A suggested or predicted span is a dashed
underline with its confidence. Everything is data for the template, which escapes the text; the
only values that reach a style attribute are colours matched against #rrggbb.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping, Sequence

GREY = "#6b7280"
COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


@dataclass
class Mark:
    start: int
    end: int
    label: str
    name: str
    colour: str
    text: str
    confidence: float | None = None
    accepted: bool | None = None
    dashed: bool = False  # the model's span, not an expert's

    @property
    def tag(self) -> str:
        """What follows the span's last piece: its label's name, the model's confidence and verdict."""
        if self.confidence is None:
            return self.name
        verdict = "" if self.accepted is None else (" ✓" if self.accepted else " ✗")
        return f"{self.name} {round(self.confidence * 100)}%{verdict}"


@dataclass
class Piece:
    text: str
    marks: list[Mark] = field(default_factory=list)
    style: str = ""
    tag: str = ""
    dashed: bool = False


@dataclass
class MarkedText:
    pieces: list[Piece]
    marks: list[Mark]  # the spans drawn, in text order
    left_out: int  # entries that were not spans inside this text (malformed data): not drawn


def _as_mark(value, text: str, labels: Mapping[str, tuple[str, str]], dashed: bool) -> Mark | None:
    if not isinstance(value, Mapping):
        return None
    start, end, label = value.get("start"), value.get("end"), value.get("label")
    if (not isinstance(start, int) or not isinstance(end, int) or isinstance(start, bool) or isinstance(end, bool)
            or not isinstance(label, str) or not 0 <= start < end <= len(text)):
        return None
    name, colour = labels.get(label, (label, GREY))
    confidence = value.get("confidence")
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)):
        confidence = None
    accepted = value.get("accepted")
    return Mark(start=start, end=end, label=label, name=name, colour=colour if COLOUR.fullmatch(colour or "") else GREY,
                text=text[start:end], confidence=confidence, accepted=accepted if isinstance(accepted, bool) else None,
                dashed=dashed)


def _levels(marks: Sequence[Mark]) -> dict[int, int]:
    """Each mark's underline level (by index): the lowest not taken by an overlapping mark."""
    levels: dict[int, int] = {}
    for i in sorted(range(len(marks)), key=lambda i: (marks[i].start, -marks[i].end)):
        taken = {levels[j] for j in levels if marks[j].start < marks[i].end and marks[i].start < marks[j].end}
        levels[i] = next(level for level in range(len(marks) + 1) if level not in taken)
    return levels


def spans_marked(text: str, spans, *, labels: Mapping[str, tuple[str, str]], dashed: bool = False) -> MarkedText:
    """`text` cut into pieces at the boundaries of `spans` (dicts {start, end, label} in code
    points, optionally `confidence` and `accepted`). `labels`: key -> (name, colour). Entries that
    are not spans inside the text are counted in `left_out`, never drawn elsewhere."""
    values = spans if isinstance(spans, list) else []
    marks = [m for m in (_as_mark(v, text, labels, dashed) for v in values) if m is not None]
    marks.sort(key=lambda m: (m.start, m.end, m.label))
    levels = _levels(marks)
    cuts = sorted({0, len(text), *(m.start for m in marks), *(m.end for m in marks)})
    pieces = []
    for a, b in zip(cuts, cuts[1:]):
        covering = sorted((i for i, m in enumerate(marks) if m.start <= a and m.end >= b), key=lambda i: levels[i])
        piece = Piece(text=text[a:b], marks=[marks[i] for i in covering])
        if covering:
            first = marks[covering[0]]
            top = max(levels[i] for i in covering)
            shadows = ", ".join(f"inset 0 -{3 * (levels[i] + 1)}px 0 {marks[i].colour}" for i in covering)
            piece.style = (f"background: {first.colour}2e; box-shadow: {shadows}; padding-bottom: {3 * (top + 1)}px"
                           if not dashed else f"border-bottom-color: {first.colour}")
            piece.dashed = dashed
            piece.tag = " · ".join(marks[i].tag for i in covering if marks[i].end == b)
        pieces.append(piece)
    return MarkedText(pieces=pieces, marks=marks, left_out=len(values) - len(marks) if isinstance(spans, list) else 0)
