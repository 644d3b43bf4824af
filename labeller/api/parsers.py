"""The JSON and forms every API endpoint reads: refused with a 400 naming the path, before any
view or the database sees them, when they hold what Python accepts but nothing downstream can
keep (core.json_values: deep nesting, NaN, Infinity, 1e999, huge integers, NUL). Deep
nesting was a RecursionError, a 500; NaN and NUL were 500s from PostgreSQL.
"""
from __future__ import annotations

import codecs
import json

from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser

from core.json_values import DECODE_HOOKS, MAX_DEPTH, NUL, NUL_MESSAGE, refused_paths


def loads(text: str):
    """Decode JSON text, raising ParseError or a ValidationError that names each bad path."""
    try:
        document = json.loads(text, **DECODE_HOOKS)
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
