"""Checks a payload's item data against its project's item schema. Never guesses: a missing,
unknown (often renamed) or mistyped field is a violation that names the field."""
from __future__ import annotations

import difflib
from dataclasses import dataclass

# Unknown fields listed per item: a payload may carry any number of keys (100,000 fit in a few
# MiB of JSON), and each would otherwise be an error line and a counted violation. Past this many
# the rest are one violation that says how many there were.
MAX_UNKNOWN_REPORTED = 20

JSON_TYPES = {
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
}


@dataclass(frozen=True)
class Violation:
    field: str  # the path in the payload, e.g. "items[3].data.text"
    problem: str  # "missing" | "unknown" | "wrong_type" | "empty" | "not_an_object"
    message: str
    count: int = 1  # how many violations this one stands for (the unknown fields past the cap)


@dataclass(frozen=True)
class ItemSchema:
    text_field: str
    required: tuple[str, ...]
    types: dict[str, str]

    @classmethod
    def for_project(cls, project) -> "ItemSchema":
        types = {**project.field_types, project.text_field: "string"}
        return cls(project.text_field, tuple(project.schema_fields()), types)

    @property
    def known(self) -> set[str]:
        return set(self.required) | set(self.types)


def _type_ok(value, type_name: str) -> bool:
    if isinstance(value, bool) and type_name != "boolean":
        return False  # JSON true is not the number 1
    return isinstance(value, JSON_TYPES.get(type_name, (object,)))


def check_item_data(schema: ItemSchema, data, path: str) -> list[Violation]:
    """Every way `data` breaks the schema; empty when it conforms."""
    if not isinstance(data, dict):
        return [Violation(path, "not_an_object", "must be an object with the item's fields")]
    out = []
    unknown = sorted(set(data) - schema.known)
    missing = [f for f in schema.required if f not in data or data[f] is None]
    for name in missing:
        # A look-alike field, or the only unexpected one when only one is missing: likely a rename.
        hint = difflib.get_close_matches(name, unknown, n=1) or (unknown if len(unknown) == 1 and len(missing) == 1 else [])
        renamed = f" (was it renamed to '{hint[0]}'?)" if hint else ""
        out.append(Violation(f"{path}.{name}", "missing", f"required field is missing{renamed}"))
    for name in unknown[:MAX_UNKNOWN_REPORTED]:
        hint = difflib.get_close_matches(name, sorted(schema.known), n=1)
        did_you_mean = f"; did you mean '{hint[0]}'?" if hint else ""
        out.append(Violation(f"{path}.{name}", "unknown", f"field is not in the project's item schema{did_you_mean}"))
    if len(unknown) > MAX_UNKNOWN_REPORTED:
        rest = len(unknown) - MAX_UNKNOWN_REPORTED
        out.append(Violation(path, "unknown", f"and {rest:,} more fields not in the project's item schema",
                             count=rest))
    for name, type_name in schema.types.items():
        value = data.get(name)
        if value is None:
            continue
        if not _type_ok(value, type_name):
            out.append(Violation(f"{path}.{name}", "wrong_type", f"must be a {type_name}, got {type(value).__name__}"))
        elif name == schema.text_field and not value.strip():
            out.append(Violation(f"{path}.{name}", "empty", "must not be empty"))
    return out
