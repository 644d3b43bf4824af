"""Spans inside a text (named entities): offsets, CoNLL/BIO, validation, matching and entity-level
metrics. Plain Python, no Django.

A span is a dict {"start": int, "end": int, "label": str} (an optional "text" on input and export),
its offsets in Unicode code points (Python str indices), `end` exclusive. Stored and exported
values are sorted by (start, end, label). Browsers and Label Studio count UTF-16 code units
instead (an emoji outside the Basic Multilingual Plane is 2 of them): `utf16_to_cp` and
`cp_to_utf16` convert at that edge and nowhere else.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

Span = dict


class SpanError(ValueError):
    """A span that is not acceptable: `message` says why, `field` names where (e.g. "spans[2].end")."""

    def __init__(self, message: str, *, field: str = "spans"):
        super().__init__(message)
        self.message = message
        self.field = field


# --- code points and UTF-16 ---------------------------------------------------------------------

def _utf16_units(char: str) -> int:
    return 2 if ord(char) > 0xFFFF else 1


def cp_to_utf16(text: str, offset: int) -> int:
    """A code-point offset into `text` as a UTF-16 code-unit offset (what JavaScript counts)."""
    if not 0 <= offset <= len(text):
        raise SpanError(f"offset {offset} is outside the text (0 to {len(text)})")
    return offset + sum(1 for char in text[:offset] if ord(char) > 0xFFFF)


def utf16_to_cp(text: str, offset: int) -> int:
    """A UTF-16 code-unit offset into `text` as a code-point offset. SpanError if it is outside the
    text or falls between the two halves of a surrogate pair (it points inside a character)."""
    units = 0
    for index, char in enumerate(text):
        if units == offset:
            return index
        units += _utf16_units(char)
        if units > offset:
            raise SpanError(f"UTF-16 offset {offset} falls inside the character at code point {index}")
    if units == offset:
        return len(text)
    raise SpanError(f"UTF-16 offset {offset} is outside the text (0 to {units})")


def spans_to_utf16(text: str, spans: Sequence[Span]) -> list[Span]:
    return [{**span, "start": cp_to_utf16(text, span["start"]), "end": cp_to_utf16(text, span["end"])} for span in spans]


def spans_from_utf16(text: str, spans: Sequence[Span]) -> list[Span]:
    return [{**span, "start": utf16_to_cp(text, span["start"]), "end": utf16_to_cp(text, span["end"])} for span in spans]


# --- validation -------------------------------------------------------------------------------

def span_key(span: Span) -> tuple[int, int, str]:
    return (span["start"], span["end"], span["label"])


def sort_spans(spans: Iterable[Span]) -> list[Span]:
    return sorted(spans, key=span_key)


def overlaps(a: Span, b: Span) -> bool:
    """Whether two spans share at least one character (touching ends do not)."""
    return a["start"] < b["end"] and b["start"] < a["end"]


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def check_spans(value, text: str, *, labels=None, overlap: bool = False, field: str = "spans") -> list[Span]:
    """`value` checked against `text` and normalised: a sorted list of {"start", "end", "label"},
    duplicates dropped, any given `text` checked against the slice and left out. SpanError names
    the first problem and its field (`field[i].start` ...). `labels`: the allowed labels, if any;
    `overlap`: whether two spans may share characters."""
    if not isinstance(value, list):
        raise SpanError("must be a list of spans", field=field)
    spans: dict[tuple, Span] = {}
    for i, span in enumerate(value):
        where = f"{field}[{i}]"
        if not isinstance(span, dict):
            raise SpanError("must be an object with start, end and label", field=where)
        for key in ("start", "end", "label"):
            if key not in span:
                raise SpanError(f"{key} is missing", field=f"{where}.{key}")
        start, end, label = span["start"], span["end"], span["label"]
        for key, x in (("start", start), ("end", end)):
            if not _is_int(x):
                raise SpanError(f"must be a whole number, got {x!r}", field=f"{where}.{key}")
        if not isinstance(label, str) or not label:
            raise SpanError(f"must be a label, got {label!r}", field=f"{where}.label")
        if labels is not None and label not in labels:
            raise SpanError(f"unknown label '{label}'", field=f"{where}.label")
        if start < 0 or end > len(text):
            raise SpanError(f"{start}..{end} is outside the text (0 to {len(text)} code points)", field=where)
        if start >= end:
            raise SpanError(f"start {start} must be before end {end}", field=where)
        if "text" in span and span["text"] != text[start:end]:
            raise SpanError(f"{span['text']!r} does not match the text at {start}..{end}, {text[start:end]!r}",
                            field=f"{where}.text")
        spans[(start, end, label)] = {"start": start, "end": end, "label": label}
    result = sort_spans(spans.values())
    if not overlap:
        for a, b in zip(result, result[1:]):
            if overlaps(a, b):
                raise SpanError(f"spans {a['start']}..{a['end']} ({a['label']}) and {b['start']}..{b['end']} "
                                f"({b['label']}) overlap, and this project does not allow overlapping spans", field=field)
    return result


def with_text(text: str, spans: Sequence[Span]) -> list[Span]:
    """Spans with their `text` (the slice of the original text), as exports write them."""
    return [{"start": s["start"], "end": s["end"], "label": s["label"], "text": text[s["start"]:s["end"]]} for s in spans]


# --- CoNLL / BIO -------------------------------------------------------------------------------

@dataclass
class Document:
    """A text rebuilt from its tokens (joined by single spaces), each token's code-point offsets,
    and its spans. `line`: the 1-based line of its first token in the file."""

    text: str
    tokens: list[tuple[int, int]]
    spans: list[Span]
    line: int = 1


def join_tokens(tokens: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """The text of `tokens` joined by single spaces, and each token's (start, end)."""
    offsets, at = [], 0
    for token in tokens:
        offsets.append((at, at + len(token)))
        at += len(token) + 1
    return " ".join(tokens), offsets


def bio_to_spans(offsets: Sequence[tuple[int, int]], tags: Sequence[str]) -> list[Span]:
    """Spans from BIO tags over tokens at `offsets`. As conlleval reads them, an I- that does not
    continue a span of its type starts one; `O` ends one."""
    spans: list[Span] = []
    current = None
    for (start, end), tag in zip(offsets, tags):
        prefix, _, label = tag.partition("-")
        if prefix == "I" and current is not None and current["label"] == label:
            current["end"] = end
            continue
        current = None
        if prefix in ("B", "I"):
            current = {"start": start, "end": end, "label": label}
            spans.append(current)
    return sort_spans(spans)


def _check_tag(tag: str) -> str | None:
    if tag == "O":
        return None
    prefix, dash, label = tag.partition("-")
    if prefix not in ("B", "I") or not dash or not label:
        return f"tag {tag!r} is not O, B-<label> or I-<label>"
    return None


def iter_conll(lines: Iterable[str]) -> Iterator[Document | SpanError]:
    """Documents from CoNLL lines, streamed: one token per line, its BIO tag in the last column
    (after the last tab, or the last whitespace-separated one), the token in the first; a blank
    (or whitespace-only) line between documents; -DOCSTART- lines skipped; empty tokens tagged O
    skipped (a document of nothing else yields nothing). A document with a bad line yields a
    SpanError naming that line (field "line N") instead, and reading goes on after it."""
    tokens: list[str] = []
    tags: list[str] = []
    first, error = 0, None
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            if error is not None:
                yield error
            elif tokens:
                text, offsets = join_tokens(tokens)
                yield Document(text, offsets, bio_to_spans(offsets, tags), first)
            tokens, tags, error = [], [], None
            continue
        if error is not None or line.startswith("-DOCSTART-"):
            continue
        # Tab-separated when there is a tab (the token itself may then hold spaces, as BTC's
        # "😘 " does), else by whitespace. Spaces around a token are not part of it: the text
        # puts exactly one space between tokens.
        columns = line.rsplit("\t", 1) if "\t" in line else line.split()
        if len(columns) < 2:
            error = SpanError("expected a token and its tag", field=f"line {number}")
            continue
        token, tag = columns[0].split("\t")[0].strip(), columns[-1].strip()
        problem = _check_tag(tag)
        if problem is None and not token and tag != "O":
            problem = f"an empty token is tagged {tag}"
        if problem:
            error = SpanError(problem, field=f"line {number}")
            continue
        if not token:
            continue  # an empty token outside any entity adds nothing to the text
        if not tokens:
            first = number
        tokens.append(token)
        tags.append(tag)
    if error is not None:
        yield error
    elif tokens:
        text, offsets = join_tokens(tokens)
        yield Document(text, offsets, bio_to_spans(offsets, tags), first)


def read_conll_file(path, *, limit: int = 0) -> list[tuple[str, list[Span]]]:
    """(text, spans) of each document of a CoNLL file, in file order; the first `limit` if > 0
    (what the span benchmark and ML tests read)."""
    examples = []
    with open(path, encoding="utf-8") as lines:
        for document in read_conll(lines):
            examples.append((document.text, document.spans))
            if limit and len(examples) >= limit:
                break
    return examples


def read_conll(lines: Iterable[str]) -> list[Document]:
    """Every document of CoNLL lines (iter_conll); SpanError at the first bad line."""
    documents = []
    for document in iter_conll(lines):
        if isinstance(document, SpanError):
            raise document
        documents.append(document)
    return documents


def whitespace_tokens(text: str) -> list[tuple[int, int]]:
    """The (start, end) of each whitespace-separated token of `text`."""
    offsets, start = [], None
    for i, char in enumerate(text):
        if char.isspace():
            if start is not None:
                offsets.append((start, i))
                start = None
        elif start is None:
            start = i
    if start is not None:
        offsets.append((start, len(text)))
    return offsets


def spans_to_bio(text: str, spans: Sequence[Span]) -> tuple[list[str], list[str], list[Span]]:
    """The whitespace tokens of `text`, their BIO tags, and the spans BIO cannot hold: those whose
    ends are not token boundaries, and those overlapping an earlier span. Those are reported and
    left out, never shifted to the nearest token (that would export text nobody labelled)."""
    offsets = whitespace_tokens(text)
    starts = {start: i for i, (start, _) in enumerate(offsets)}
    ends = {end: i for i, (_, end) in enumerate(offsets)}
    tags = ["O"] * len(offsets)
    left_out: list[Span] = []
    for span in sort_spans(spans):
        first, last = starts.get(span["start"]), ends.get(span["end"])
        if first is None or last is None or any(tag != "O" for tag in tags[first:last + 1]):
            left_out.append(span)
            continue
        tags[first] = f"B-{span['label']}"
        for i in range(first + 1, last + 1):
            tags[i] = f"I-{span['label']}"
    return [text[start:end] for start, end in offsets], tags, left_out


def write_conll(documents: Iterable[tuple[Sequence[str], Sequence[str]]]) -> str:
    """CoNLL text: a token and its tag per line, tab-separated, a blank line after each document."""
    return "".join("".join(f"{token}\t{tag}\n" for token, tag in zip(tokens, tags)) + "\n" for tokens, tags in documents)


# --- matching and metrics -------------------------------------------------------------------------

MATCH_MODES = ("exact", "overlap")


def match_count(a: Sequence[Span], b: Sequence[Span], *, mode: str = "exact") -> int:
    """How many spans of `a` match one of `b`, each span matched at most once. "exact": same start,
    end and label (seqeval's strict mode). "overlap": same label and at least one shared character,
    paired one to one, largest overlap first, so that one long span cannot match several short
    ones (overlapping spans counted twice inflate agreement)."""
    if mode == "exact":
        return len({span_key(s) for s in a} & {span_key(s) for s in b})
    if mode != "overlap":
        raise ValueError(f"unknown match mode {mode!r}; known: {', '.join(MATCH_MODES)}")
    pairs = sorted(
        ((min(x["end"], y["end"]) - max(x["start"], y["start"]), i, j)
         for i, x in enumerate(a) for j, y in enumerate(b) if x["label"] == y["label"] and overlaps(x, y)),
        key=lambda p: (-p[0], p[1], p[2]),
    )
    used_a, used_b = set(), set()
    for _, i, j in pairs:
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
    return len(used_a)


def _prf(tp: int, n_pred: int, n_gold: int) -> dict:
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    f1 = 2 * tp / (n_pred + n_gold) if n_pred + n_gold else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4), "support": n_gold}


def pair_f1(a: Sequence[Span], b: Sequence[Span], *, mode: str = "exact") -> float:
    """Span F1 between two annotators' spans on one text (symmetric). Two empty sets agree: 1.0."""
    if not a and not b:
        return 1.0
    return 2 * match_count(a, b, mode=mode) / (len(a) + len(b))


def entity_scores(gold: Sequence[Sequence[Span]], pred: Sequence[Sequence[Span]], *, mode: str = "exact") -> dict:
    """Entity-level precision, recall and F1 over documents (gold and predicted spans per
    document, in the same order): per label and micro-averaged over all ("micro"), plus the
    macro mean of the labels' F1. In "exact" mode this is seqeval's strict scheme."""
    if len(gold) != len(pred):
        raise ValueError("gold and predicted span lists differ in length")
    labels = sorted({s["label"] for doc in (*gold, *pred) for s in doc})
    per_label = {}
    for label in labels:
        tp = n_pred = n_gold = 0
        for g, p in zip(gold, pred):
            g = [s for s in g if s["label"] == label]
            p = [s for s in p if s["label"] == label]
            tp += match_count(p, g, mode=mode)
            n_pred += len(p)
            n_gold += len(g)
        per_label[label] = (tp, n_pred, n_gold)
    total = [sum(x[k] for x in per_label.values()) for k in range(3)]
    return {
        "per_label": {label: _prf(*counts) for label, counts in per_label.items()},
        "micro": _prf(*total),
        "macro_f1": round(sum(_prf(*c)["f1"] for c in per_label.values()) / len(per_label), 4) if per_label else 0.0,
    }


def entity_f1(gold: Sequence[Sequence[Span]], pred: Sequence[Sequence[Span]]) -> float:
    """The micro-averaged strict entity F1 (seqeval's default) over documents."""
    return entity_scores(gold, pred)["micro"]["f1"]


def from_js_offsets(text: str, span: Span) -> Span:
    """A span whose offsets may count UTF-16 code units, as JavaScript strings do (Label Studio),
    with code-point offsets. When the span carries its `text`, the reading that slices `text` to
    it wins: code points first (some Label Studio versions store them), then UTF-16. Without
    `text`, UTF-16. A span neither reading fits is returned unchanged, for check_spans to report
    the mismatch; malformed values too."""
    start, end = span.get("start"), span.get("end")
    if not (_is_int(start) and _is_int(end)):
        return span
    given = span.get("text")
    if isinstance(given, str) and 0 <= start <= end <= len(text) and text[start:end] == given:
        return span
    try:
        converted = {**span, "start": utf16_to_cp(text, start), "end": utf16_to_cp(text, end)}
    except SpanError:
        return span
    if isinstance(given, str) and text[converted["start"]:converted["end"]] != given:
        return span
    return converted
