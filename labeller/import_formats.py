"""Streaming readers for import files: CSV, JSON Lines, Label Studio JSON and CoNLL (BIO).

Plain Python, no Django: each reader yields one `ParsedRow` or `RowError` per record, reading the
file incrementally so memory stays flat whatever the file size. Checking rows against a project's
schema and labels happens in `labeller.importing`.
"""
from __future__ import annotations

import codecs
import csv
import io
import json
from dataclasses import dataclass, field
from typing import BinaryIO, Iterator

import ijson

from core.errors import DomainError
from core.json_values import DECODE_HOOKS, MAX_DEPTH, NUL, NUL_MESSAGE, refused_paths
from ml.spans import SpanError, iter_conll

SUPPORTED_EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".conll": "conll",
                        ".bio": "conll"}
# Formats whose rows are spans in a text: only span labelling projects take them.
SPAN_FORMATS = {"conll"}
EXTERNAL_ID = "external_id"
# csv's default field limit is 128 KiB; a long document is a legitimate item.
csv.field_size_limit(16 * 1024 * 1024)


class UnsupportedFile(DomainError):
    """The file as a whole cannot be read as an import (wrong type, not text)."""


@dataclass
class ParsedRow:
    row: int  # 1-based record number
    line: int | None  # physical line where the record ends; None for JSON arrays
    data: dict
    external_id: str | None = None
    # Label sets from annotations already on the item (Label Studio JSON), as given in the file.
    annotations: list[list[str]] = field(default_factory=list)
    # Span annotations already on the item, as given: (field to name in a report, offsets, spans).
    # Offsets "cp": code points (JSON Lines `spans`, CoNLL, this app's exports); "js": Label
    # Studio's `labels` results, UTF-16 code units unless a span's text says code points
    # (ml.spans.from_js_offsets). Each span: {"start", "end", "label", "text"?}.
    spans: list[tuple[str, str, list]] = field(default_factory=list)


@dataclass
class RowError:
    row: int | None
    line: int | None
    field: str | None
    message: str

    def as_dict(self) -> dict:
        return {"row": self.row, "line": self.line, "field": self.field, "message": self.message}


def format_for(filename: str) -> str:
    """The import format named by a file's extension, or UnsupportedFile."""
    name = (filename or "").lower()
    for extension, fmt in SUPPORTED_EXTENSIONS.items():
        if name.endswith(extension):
            return fmt
    shown = name.rsplit(".", 1)[-1] if "." in name else "(none)"
    raise UnsupportedFile(f"unsupported file type '.{shown}'; upload a .csv, .jsonl, .json or .conll file", field="file")


def sniff(stream: BinaryIO, fmt: str = "") -> None:
    """Refuse markup (HTML, SVG, XML) and binary files early, whatever their extension says. A
    CoNLL file may well start with a "<3" token, so only the binary check applies to it."""
    head = stream.read(4096)
    stream.seek(0)
    stripped = head.lstrip(codecs.BOM_UTF8).lstrip()
    if stripped.startswith(b"<") and fmt not in SPAN_FORMATS:
        raise UnsupportedFile("looks like HTML, SVG or XML markup, not CSV or JSON", field="file")
    if b"\x00" in head:
        raise UnsupportedFile("contains NUL bytes; it looks binary or UTF-16, upload UTF-8 text", field="file")


def read_rows(stream: BinaryIO, fmt: str, *, text_field: str = "text") -> Iterator[ParsedRow | RowError]:
    """The file's rows; `text_field`: where a CoNLL document's rebuilt text goes."""
    sniff(stream, fmt)
    if fmt == "conll":
        yield from _read_conll(stream, text_field)
        return
    readers = {"csv": _read_csv, "jsonl": _read_jsonl, "json": _read_label_studio_json}
    yield from readers[fmt](stream)


class _NotUtf8(Exception):
    def __init__(self, line: int):
        self.line = line


def _decoded_lines(stream: BinaryIO) -> Iterator[str]:
    for number, raw in enumerate(stream, start=1):
        try:
            yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError:
            raise _NotUtf8(number) from None


def _read_conll(stream: BinaryIO, text_field: str) -> Iterator[ParsedRow | RowError]:
    """One row per document: its tokens joined by single spaces as the text field, its BIO tags
    as one annotation of spans (ml.spans.iter_conll). A bad line rejects its document."""
    row = 0
    try:
        for document in iter_conll(_decoded_lines(stream)):
            row += 1
            if isinstance(document, SpanError):
                line = int(document.field.split()[-1])
                yield RowError(row, line, "tags", document.message)
                continue
            if NUL in document.text:
                yield RowError(row, document.line, text_field, NUL_MESSAGE)
                continue
            yield ParsedRow(row=row, line=document.line, data={text_field: document.text},
                            spans=[("tags", "cp", document.spans)])
    except _NotUtf8 as exc:
        yield RowError(row + 1, exc.line, None, "file: not valid UTF-8 text; save the file as UTF-8")


def _split_external_id(record: dict) -> tuple[dict, str | None]:
    external_id = record.pop(EXTERNAL_ID, None)
    if external_id is not None and external_id != "":
        return record, str(external_id)
    return record, None


def _read_csv(stream: BinaryIO) -> Iterator[ParsedRow | RowError]:
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="strict", newline="")
    reader = csv.reader(text)
    try:
        header = next(reader)
    except StopIteration:
        return
    except UnicodeDecodeError:
        yield RowError(None, 1, None, "file: not valid UTF-8 text (line 1); save the file as UTF-8")
        return
    header = [name.strip() for name in header]
    if len(set(header)) != len(header) or "" in header:
        yield RowError(None, 1, None, "header: column names must be unique and non-empty")
        return
    row = 0
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except UnicodeDecodeError:
            yield RowError(row + 1, reader.line_num + 1, None, "file: not valid UTF-8 text; save the file as UTF-8")
            return
        except csv.Error as exc:
            yield RowError(row + 1, reader.line_num, None, f"malformed CSV: {exc}")
            return
        row += 1
        if not values:  # a blank line
            continue
        if len(values) != len(header):
            yield RowError(row, reader.line_num, None, f"expected {len(header)} columns, found {len(values)}")
            continue
        with_nul = next((name for name, value in zip(header, values) if NUL in value), None)
        if with_nul is not None:  # sniff() sees only the first 4 KiB; PostgreSQL refuses NUL in text
            yield RowError(row, reader.line_num, with_nul, NUL_MESSAGE)
            continue
        data, external_id = _split_external_id(dict(zip(header, values)))
        yield ParsedRow(row=row, line=reader.line_num, data=data, external_id=external_id)


def _read_jsonl(stream: BinaryIO) -> Iterator[ParsedRow | RowError]:
    row = 0
    for line_no, raw in enumerate(stream, start=1):
        try:
            line = raw.decode("utf-8-sig" if line_no == 1 else "utf-8")
        except UnicodeDecodeError:
            yield RowError(row + 1, line_no, None, "file: not valid UTF-8 text; save the file as UTF-8")
            return
        if not line.strip():
            continue
        row += 1
        try:
            record = json.loads(line, **DECODE_HOOKS)
        except json.JSONDecodeError as exc:
            yield RowError(row, line_no, None, f"malformed JSON: {exc.msg} (column {exc.colno})")
            continue
        except RecursionError:
            yield RowError(row, line_no, None, f"malformed JSON: nested more than {MAX_DEPTH} levels deep")
            continue
        yield _from_record(record, row=row, line=line_no)


def _read_label_studio_json(stream: BinaryIO) -> Iterator[ParsedRow | RowError]:
    row = 0
    try:
        for record in _top_level_items(stream):
            row += 1
            yield _from_record(record, row=row, line=None)
    except _NestedTooDeep:
        yield RowError(row + 1, None, None, f"malformed JSON: nested more than {MAX_DEPTH} levels deep")
    except ijson.JSONError as exc:
        yield RowError(row + 1, None, None, f"malformed JSON: {exc}; expected a list of tasks [{{\"data\": {{...}}}}, ...]")
    except UnicodeDecodeError:
        yield RowError(row + 1, None, None, "file: not valid UTF-8 text; save the file as UTF-8")


class _NestedTooDeep(ValueError):
    pass


def _top_level_items(stream: BinaryIO) -> Iterator:
    """The elements of the file's top-level array, as ijson.items(stream, "item") gives them, but
    built from ijson's prefix-free events with the depth bounded: ijson.items keeps a prefix string
    per level, quadratic in the depth (100,000 nested `[`, a 200 KB file, took over 4 GB)."""
    depth, in_array, builder = 0, False, None
    for event, value in ijson.basic_parse(stream, use_float=True):
        opening, closing = event in ("start_map", "start_array"), event in ("end_map", "end_array")
        if opening:
            depth += 1
            if depth > MAX_DEPTH + 1:
                raise _NestedTooDeep
        if depth == 1 and opening:
            in_array = event == "start_array"
        elif in_array and depth == 1 and not closing:
            yield value  # a scalar element: the caller reports it
        elif in_array and depth > 1:
            builder = builder or ijson.ObjectBuilder()
            builder.event(event, value)
            if closing and depth == 2:
                yield builder.value
                builder = None
        if closing:
            depth -= 1


def _from_record(record, *, row: int, line: int | None) -> ParsedRow | RowError:
    """A JSON object is either a flat item or a Label Studio task with `data` and `annotations`."""
    if not isinstance(record, dict):
        return RowError(row, line, None, f"expected a JSON object, found {type(record).__name__}")
    problems = refused_paths(record)
    if problems:  # NaN, 1e999, NUL or deep nesting: the database would refuse the whole import
        path, messages = next(iter(problems.items()))
        return RowError(row, line, path, messages[0])
    if isinstance(record.get("data"), dict):
        try:
            annotations, spans = _label_studio_annotations(record.get("annotations") or [])
        except ValueError as exc:
            return RowError(row, line, "annotations", str(exc))
        external_id = record.get(EXTERNAL_ID)
        return ParsedRow(
            row=row,
            line=line,
            data=dict(record["data"]),
            external_id=None if external_id in (None, "") else str(external_id),
            annotations=annotations,
            spans=spans,
        )
    data, external_id = _split_external_id(dict(record))
    # JSON Lines with spans: {"text": ..., "spans": [{"start", "end", "label", "text"?}]}, one
    # annotation in code points. Only a list is taken as spans (anything else stays a field).
    spans = [("spans", "cp", data.pop("spans"))] if isinstance(data.get("spans"), list) else []
    return ParsedRow(row=row, line=line, data=data, external_id=external_id, spans=spans)


def _label_studio_annotations(annotations) -> tuple[list[list[str]], list[tuple[str, str, list]]]:
    """Each non-cancelled annotation's answer, read both ways; which a project takes is the
    importer's business (importing._RowChecker):
    - its chosen values (`choices` results), when it has any;
    - its spans: `labels` results, one span per label, offsets as Label Studio counts them ("js");
      or, in this app's own JSON Lines export, `labels` given as span objects (code points). An
      annotation with no result at all is an empty set of spans: "no entity here" is an answer.
      One with only `choices` has no spans."""
    if not isinstance(annotations, list):
        raise ValueError("must be a list of annotations")
    choices, spans = [], []
    for annotation in annotations:
        if not isinstance(annotation, dict):
            raise ValueError("each annotation must be an object")
        if annotation.get("was_cancelled") or annotation.get("skipped") is True:
            continue
        own = annotation.get("labels")
        if "result" not in annotation and isinstance(own, list) and all(isinstance(span, dict) for span in own):
            spans.append(("annotations", "cp", own))
            continue
        results = annotation.get("result") or []
        if not isinstance(results, list):  # a number here was a TypeError, the whole import a 500
            raise ValueError(f"an annotation's result must be a list of results, found {type(results).__name__}")
        chosen: list[str] = []
        found: list[dict] = []
        for result in results:
            value = result.get("value") if isinstance(result, dict) else None
            if not isinstance(value, dict):
                continue
            if isinstance(value.get("choices"), list):
                chosen.extend(str(choice) for choice in value["choices"])
            elif "labels" in value and ("start" in value or "end" in value):
                if not isinstance(value["labels"], list) or not value["labels"]:
                    raise ValueError("a `labels` result's value.labels must be a non-empty list of labels")
                span = {key: value[key] for key in ("start", "end", "text") if key in value}
                found.extend({**span, "label": str(label)} for label in value["labels"])
        if chosen:
            choices.append(chosen)
        if found or not chosen:
            spans.append(("annotations", "js", found))
    return choices, spans
