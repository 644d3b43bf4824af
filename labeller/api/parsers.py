"""The JSON (and forms) every API endpoint reads: refused with a 400 naming the path, before any view or
database sees it, when it holds what Python's json module accepts but nothing downstream can keep.

- Nesting deeper than MAX_DEPTH (the C decoder recurses; 100,000 `[` was a RecursionError, a 500).
- NaN, Infinity, -Infinity, and numbers beyond a double's range (1e999 decodes to inf, a
  5,000-digit integer raised ValueError): not JSON by RFC 8259, refused by PostgreSQL's jsonb, and
  no field here needs them.
- NUL (\\u0000) in any string or key: PostgreSQL refuses it in text and jsonb columns.
"""
from __future__ import annotations

import codecs
import json
import math

from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser

MAX_DEPTH = 64  # the deepest body here is events[i].data.<field>; 64 leaves room for any item data
NUL = "\x00"
NUL_MESSAGE = "must not contain NUL characters (\\u0000)"
NUMBER_MESSAGE = "must be a finite number within ±1.8e308 (NaN, Infinity and larger numbers are not accepted)"


class _Refused:
    """Stands in for a number that JSON cannot carry, so the walk below can name its path."""

    __slots__ = ()


REFUSED = _Refused()


def _float(text: str):
    value = float(text)
    return value if math.isfinite(value) else REFUSED


def _int(text: str):
    # A double holds at most 309 digits; longer literals would overflow any float field (and past
    # 4,300 digits int() itself refuses).
    if len(text.lstrip("-")) > 309:
        return REFUSED
    value = int(text)
    if len(text) > 300:
        try:
            float(value)
        except OverflowError:
            return REFUSED
    return value


def _constant(name: str):
    return REFUSED


def join(path: str, key) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def refused_paths(document) -> dict[str, list[str]]:
    """Every refused value in a decoded document, by path (`events[3].label`); empty when fine.
    Iterative, so a document at MAX_DEPTH costs no recursion."""
    problems: dict[str, list[str]] = {}
    stack = [("", document, 0)]
    while stack:
        path, value, depth = stack.pop()
        if isinstance(value, str):
            if NUL in value:
                problems.setdefault(path or "detail", []).append(NUL_MESSAGE)
        elif value is REFUSED:
            problems.setdefault(path or "detail", []).append(NUMBER_MESSAGE)
        elif isinstance(value, (dict, list)):
            if depth >= MAX_DEPTH:
                problems.setdefault(path or "detail", []).append(f"is nested more than {MAX_DEPTH} levels deep")
                continue
            pairs = value.items() if isinstance(value, dict) else enumerate(value)
            for key, child in pairs:
                if isinstance(key, str) and NUL in key:
                    problems.setdefault(path or "detail", []).append(f"a key {NUL_MESSAGE}")
                    continue
                stack.append((join(path, key), child, depth + 1))
    return dict(sorted(problems.items()))


def loads(text: str):
    """Decode JSON text, raising ParseError or a ValidationError that names each bad path."""
    try:
        document = json.loads(text, parse_float=_float, parse_int=_int, parse_constant=_constant)
    except RecursionError:
        raise ParseError(f"JSON parse error - nested more than {MAX_DEPTH} levels deep")
    except ValueError as exc:
        raise ParseError(f"JSON parse error - {exc}")
    problems = refused_paths(document)
    if problems:
        raise ValidationError(problems)
    return document


class StrictJSONParser(JSONParser):
    """DRF's JSON parser with the refusals above; set as DEFAULT_PARSER_CLASSES."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", "utf-8")
        try:
            text = codecs.getreader(encoding)(stream).read()
        except (UnicodeDecodeError, LookupError) as exc:
            raise ParseError(f"JSON parse error - {exc}")
        return loads(text)



def first_nul(query_dict) -> str | None:
    """The name of the first form or query field holding a NUL, or None."""
    for name, values in query_dict.lists():
        if NUL in name or any(NUL in value for value in values if isinstance(value, str)):
            return name.replace(NUL, "\\u0000")
    return None


def _refuse_nul_fields(query_dict):
    where = first_nul(query_dict)
    if where is not None:
        raise ValidationError({where: [NUL_MESSAGE]})
    return query_dict


class StrictFormParser(FormParser):
    def parse(self, stream, media_type=None, parser_context=None):
        return _refuse_nul_fields(super().parse(stream, media_type, parser_context))


class StrictMultiPartParser(MultiPartParser):
    """Checks the text fields; the files are the import's to check (it refuses NUL bytes)."""

    def parse(self, stream, media_type=None, parser_context=None):
        parsed = super().parse(stream, media_type, parser_context)
        _refuse_nul_fields(parsed.data)
        return parsed
