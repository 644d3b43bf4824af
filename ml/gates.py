"""The promotion gate: a version may replace the champion only if no guardrail fails.

Guardrails are plain dicts from the project's training policy:
  {"type": "min_recall", "label": "lost_card", "value": 0.9}   recall of a label at least value
  {"type": "max_recall_drop", "value": 0.02}                   no label's recall drops by more
                                                               than value against the champion
  {"type": "min_primary", "value": 0.8}                        the primary metric at least value
"""
from __future__ import annotations

GUARDRAIL_TYPES = ("min_recall", "max_recall_drop", "min_primary")


def validate_guardrails(guardrails: list, labels: set[str]) -> list[str]:
    """Problems with a guardrail list, each naming the entry and field; empty when valid."""
    problems = []
    for i, g in enumerate(guardrails):
        where = f"guardrails[{i}]"
        if not isinstance(g, dict):
            problems.append(f"{where}: must be an object with type and value")
            continue
        # Each value's type is checked before it is compared or looked up: a list where a label
        # was expected is unhashable, and True is an int to Python but not a threshold.
        if not isinstance(g.get("type"), str) or g["type"] not in GUARDRAIL_TYPES:
            problems.append(f"{where}.type: must be one of {', '.join(GUARDRAIL_TYPES)}")
            continue
        value = g.get("value")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            problems.append(f"{where}.value: must be a number between 0 and 1")
        if g["type"] == "min_recall":
            label = g.get("label")
            if not isinstance(label, str):
                problems.append(f"{where}.label: must be a label key (a string)")
            elif label not in labels:
                problems.append(f"{where}.label: unknown label {label!r}")
    return problems


def check(metrics: dict, *, guardrails: list, primary_metric: str, champion: dict | None) -> dict:
    """{passed, failures, better_than_champion} for `metrics` against the guardrails and champion."""
    failures = []
    if metrics.get("n") == 0:
        failures.append("the evaluation set is empty: nothing was measured (set the project's evaluation share above 0)")
    per_label = metrics.get("per_label", {})
    for g in guardrails:
        if g["type"] == "min_recall":
            recall = per_label.get(g["label"], {}).get("recall", 0.0)
            if recall < g["value"]:
                failures.append(f"recall of {g['label']} is {recall:.3f}, below {g['value']:.3f}")
        elif g["type"] == "min_primary":
            if metrics.get(primary_metric, 0.0) < g["value"]:
                failures.append(f"{primary_metric} is {metrics.get(primary_metric, 0.0):.3f}, below {g['value']:.3f}")
        elif g["type"] == "max_recall_drop" and champion:
            for label, theirs in champion.get("per_label", {}).items():
                ours = per_label.get(label)
                if ours is None or theirs.get("support", 0) == 0 or ours.get("support", 0) == 0:
                    continue
                drop = theirs["recall"] - ours["recall"]
                if drop > g["value"] + 1e-9:
                    failures.append(f"recall of {label} drops by {drop:.3f} (from {theirs['recall']:.3f} to {ours['recall']:.3f})")
    better = champion is None or metrics.get(primary_metric, 0.0) >= champion.get(primary_metric, 0.0)
    return {"passed": not failures, "failures": failures, "better_than_champion": better, "primary_metric": primary_metric}
