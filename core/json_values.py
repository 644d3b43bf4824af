"""Values that Python's json module decodes but nothing downstream can keep, found by path.

Plain Python, no Django: the API's parser (labeller.api.parsers) and the import readers
(labeller.import_formats) refuse the same things.

- Nesting deeper than MAX_DEPTH: later json.dumps, deepcopy and the database recurse too.
- NaN, Infinity and numbers beyond a double's range (1e999 decodes to inf): not JSON by RFC 8259,
  refused by PostgreSQL's jsonb and by SQLite's JSON check; no field here needs them.
- NUL (\\u0000) in any string or key: PostgreSQL refuses it in text and jsonb.
"""
from __future__ import annotations

import math

MAX_DEPTH = 64  # the deepest body here is events[i].data.<field>; 64 leaves room for any item data
NUL = "\x00"
NUL_MESSAGE = "must not contain NUL characters (\\u0000)"
NUMBER_MESSAGE = "must be a finite number within ±1.8e308 (NaN, Infinity and larger numbers are not accepted)"
DEPTH_MESSAGE = f"is nested more than {MAX_DEPTH} levels deep"


class _Refused:
    """Stands in for a number JSON cannot carry while decoding, so the walk can name its path."""

    __slots__ = ()


REFUSED = _Refused()


def parse_float(text: str):
    value = float(text)
    return value if math.isfinite(value) else REFUSED


def parse_int(text: str):
    # A double holds at most 309 digits; a longer literal would overflow any float field, and past
    # 4,300 digits int() itself raises ValueError.
    if len(text.lstrip("-")) > 309:
        return REFUSED
    return int(text)


def parse_constant(name: str):
    return REFUSED


DECODE_HOOKS = {"parse_float": parse_float, "parse_int": parse_int, "parse_constant": parse_constant}


def join(path: str, key) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def _bad_number(value) -> bool:
    if value is REFUSED:
        return True
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 1024:
        return True
    return False


def refused_paths(document, path: str = "") -> dict[str, list[str]]:
    """Every refused value in a decoded document, by path (`events[3].label`); empty when fine.
    Iterative, so a deep document costs no recursion; a key with a NUL is named by its parent."""
    problems: dict[str, list[str]] = {}
    stack = [(path, document, 0)]
    while stack:
        where, value, depth = stack.pop()
        named = where or "detail"
        if isinstance(value, str):
            if NUL in value:
                problems.setdefault(named, []).append(NUL_MESSAGE)
        elif _bad_number(value):
            problems.setdefault(named, []).append(NUMBER_MESSAGE)
        elif isinstance(value, (dict, list)):
            if depth >= MAX_DEPTH:
                problems.setdefault(named, []).append(DEPTH_MESSAGE)
                continue
            pairs = value.items() if isinstance(value, dict) else enumerate(value)
            for key, child in pairs:
                if isinstance(key, str) and NUL in key:
                    problems.setdefault(named, []).append(f"a key {NUL_MESSAGE}")
                    continue
                stack.append((join(where, key), child, depth + 1))
    return dict(sorted(problems.items()))
