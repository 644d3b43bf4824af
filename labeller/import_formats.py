"""Streaming readers for import files: CSV, JSON Lines and Label Studio JSON.

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

from core.json_values import DECODE_HOOKS, MAX_DEPTH, NUL, NUL_MESSAGE, refused_paths

SUPPORTED_EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}
EXTERNAL_ID = "external_id"
# csv's default field limit is 128 KiB; a long document is a legitimate item.
csv.field_size_limit(16 * 1024 * 1024)


class UnsupportedFile(ValueError):
    """The file as a whole cannot be read as an import (wrong type, not text)."""


@dataclass
class ParsedRow:
    row: int  # 1-based record number
    line: int | None  # physical line where the record ends; None for JSON arrays
    data: dict
    external_id: str | None = None
    # Label sets from annotations already on the item (Label Studio JSON), as given in the file.
    annotations: list[list[str]] = field(default_factory=list)


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
    raise UnsupportedFile(f"file: unsupported file type '.{shown}'; upload a .csv, .jsonl or .json file")


def sniff(stream: BinaryIO) -> None:
    """Refuse markup (HTML, SVG, XML) and binary files early, whatever their extension says."""
    head = stream.read(4096)
    stream.seek(0)
    stripped = head.lstrip(codecs.BOM_UTF8).lstrip()
    if stripped.startswith(b"<"):
        raise UnsupportedFile("file: looks like HTML, SVG or XML markup, not CSV or JSON")
    if b"\x00" in head:
        raise UnsupportedFile("file: contains NUL bytes; it looks binary or UTF-16, upload UTF-8 text")


def read_rows(stream: BinaryIO, fmt: str) -> Iterator[ParsedRow | RowError]:
    sniff(stream)
    readers = {"csv": _read_csv, "jsonl": _read_jsonl, "json": _read_label_studio_json}
    yield from readers[fmt](stream)


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
            annotations = list(_label_studio_choices(record.get("annotations") or []))
        except ValueError as exc:
            return RowError(row, line, "annotations", str(exc))
        external_id = record.get(EXTERNAL_ID)
        return ParsedRow(
            row=row,
            line=line,
            data=dict(record["data"]),
            external_id=None if external_id in (None, "") else str(external_id),
            annotations=annotations,
        )
    data, external_id = _split_external_id(dict(record))
    return ParsedRow(row=row, line=line, data=data, external_id=external_id)


def _label_studio_choices(annotations) -> Iterator[list[str]]:
    """The chosen values of each non-cancelled Label Studio annotation (its `choices` results)."""
    if not isinstance(annotations, list):
        raise ValueError("must be a list of annotations")
    for annotation in annotations:
        if not isinstance(annotation, dict):
            raise ValueError("each annotation must be an object")
        if annotation.get("was_cancelled"):
            continue
        results = annotation.get("result") or []
        if not isinstance(results, list):  # a number here was a TypeError, the whole import a 500
            raise ValueError(f"an annotation's result must be a list of results, found {type(results).__name__}")
        chosen: list[str] = []
        for result in results:
            value = result.get("value") if isinstance(result, dict) else None
            choices = value.get("choices") if isinstance(value, dict) else None
            if isinstance(choices, list):
                chosen.extend(str(choice) for choice in choices)
        if chosen:
            yield chosen
