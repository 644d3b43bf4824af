"""The promotion gate: a version may replace the champion only if no guardrail fails.

Guardrails are plain dicts from the project's training policy:
  {"type": "min_recall", "label": "lost_card", "value": 0.9}   recall of a label at least value
  {"type": "max_recall_drop", "value": 0.02,                   no label's recall drops by more
   "min_support": 10}                                          than value against the champion
                                                               (min_support, optional: only labels
                                                               with that many evaluation items in
                                                               both versions are compared)
  {"type": "min_primary", "value": 0.8}                        the primary metric at least value
  {"type": "min_eval_items", "value": 30}                      evaluated on at least value items
  {"type": "no_primary_drop", "value": 0.95}                   the primary metric does not drop
                                                               against the champion beyond noise:
                                                               the value-level interval of the
                                                               difference lies wholly below zero
"""
from __future__ import annotations

import math
from statistics import NormalDist

from . import span_metrics

GUARDRAIL_TYPES = ("min_recall", "max_recall_drop", "min_primary", "min_eval_items", "no_primary_drop")
MAX_EVAL_ITEMS = 1_000_000

# What a new project's training policy starts with, so that a version measured on a handful of
# items cannot pass the gate by luck:
# - 30 evaluation items: below that the measurement is mostly noise. At 30 items an accuracy of
#   0.80 has a 95% Wilson interval of 0.63-0.90, already 27 points wide; at 12 items it is
#   0.52-0.94. At 30 items on both sides the interval of the difference below flags a drop from
#   0.80 of 0.25 or more; with fewer it can flag almost nothing, so the guardrail would be idle.
# - no drop of the primary metric beyond noise (95% interval of the difference) against the
#   champion: a version measured as worse, but within what two samples of that size can differ
#   by, is not refused; one that is clearly worse is.
# - no per-label recall collapse: a label with at least 10 evaluation items in both versions may
#   not lose more than 0.3 of recall (e.g. 0.9 -> 0.6). A large fall on a label that few items
#   carry says little, so those are left to an explicit min_recall guardrail.
DEFAULT_GUARDRAILS = [
    {"type": "min_eval_items", "value": 30},
    {"type": "no_primary_drop", "value": 0.95},
    {"type": "max_recall_drop", "value": 0.3, "min_support": 10},
]


def default_guardrails() -> list[dict]:
    """A fresh copy of DEFAULT_GUARDRAILS (a model field's default must not share one list)."""
    return [dict(g) for g in DEFAULT_GUARDRAILS]


def _whole_number(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


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
        if g["type"] == "min_eval_items":
            if not _whole_number(value) or not 1 <= value <= MAX_EVAL_ITEMS:
                problems.append(f"{where}.value: must be a whole number of items between 1 and {MAX_EVAL_ITEMS}")
        elif g["type"] == "no_primary_drop":
            if not _number(value) or not 0.5 <= value <= 0.999:
                problems.append(f"{where}.value: must be a confidence level between 0.5 and 0.999 (e.g. 0.95)")
        elif not _number(value) or not 0 <= value <= 1:
            problems.append(f"{where}.value: must be a number between 0 and 1")
        if g["type"] == "max_recall_drop" and "min_support" in g:
            if not _whole_number(g["min_support"]) or not 1 <= g["min_support"] <= MAX_EVAL_ITEMS:
                problems.append(f"{where}.min_support: must be a whole number of items between 1 and {MAX_EVAL_ITEMS}")
        if g["type"] == "min_recall":
            label = g.get("label")
            if not isinstance(label, str):
                problems.append(f"{where}.label: must be a label key (a string)")
            elif label not in labels:
                problems.append(f"{where}.label: unknown label {label!r}")
    return problems


def _wilson(p: float, n: int, z: float) -> tuple[float, float]:
    """Wilson score interval of a proportion `p` measured on `n` items (ml.drift.wilson_interval
    takes a count; macro-F1 is no count, so this takes the proportion)."""
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(max(p * (1 - p), 0.0) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def difference_interval(ours: float, n_ours: int, theirs: float, n_theirs: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Interval of `ours - theirs`, two proportions measured on n_ours and n_theirs items:
    Newcombe's hybrid score interval (method 10 of Newcombe 1998), built from each one's Wilson
    interval, so it stays honest for small samples and rates near 0 or 1.

    The registry stores each version's metrics, not its per-item predictions, so the interval
    treats the two evaluation sets as independent samples. Both versions are usually evaluated on
    largely the same items, where a paired interval would be narrower: this one errs towards
    calling a drop noise, never towards refusing a version for one. Macro-F1 is not a proportion of
    items; the same interval on it is an approximation (its noise is, if anything, larger)."""
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    low_ours, high_ours = _wilson(ours, n_ours, z)
    low_theirs, high_theirs = _wilson(theirs, n_theirs, z)
    d = ours - theirs
    return (d - math.sqrt((ours - low_ours) ** 2 + (high_theirs - theirs) ** 2),
            d + math.sqrt((high_ours - ours) ** 2 + (theirs - low_theirs) ** 2))


def signed(x: float) -> str:
    """+0.05 / −0.13 (a true minus sign, as in print)."""
    return f"{x:+.2f}".replace("-", "\u2212")


def primary_comparison(metrics: dict, champion: dict | None, *, primary_metric: str, confidence: float) -> dict | None:
    """The primary metric against the champion's, with the interval of the difference; None when
    either was measured on no items."""
    if not champion or not metrics.get("n") or not champion.get("n"):
        return None
    ours, theirs = metrics.get(primary_metric, 0.0), champion.get(primary_metric, 0.0)
    if primary_metric == span_metrics.PRIMARY and "f1_counts" in metrics and "f1_counts" in champion:
        # entity F1 is no proportion of items: a bootstrap over each version's items (ml.span_metrics)
        low, high = span_metrics.f1_difference_interval(metrics["f1_counts"], champion["f1_counts"], confidence=confidence)
        method = "bootstrap"
    else:
        low, high = difference_interval(ours, metrics["n"], theirs, champion["n"], confidence=confidence)
        method = "newcombe"
    return {"metric": primary_metric, "ours": ours, "theirs": theirs, "difference": ours - theirs,
            "interval": [low, high], "confidence": confidence, "n": metrics["n"], "champion_n": champion["n"],
            "method": method}


def check(metrics: dict, *, guardrails: list, primary_metric: str, champion: dict | None) -> dict:
    """{passed, failures, better_than_champion, primary_metric, versus_champion} for `metrics`
    against the guardrails and the champion's metrics; versus_champion is primary_comparison's
    answer (shown on the models page whether or not a guardrail uses it)."""
    failures = []
    n = metrics.get("n")
    if n == 0:
        failures.append("the evaluation set is empty: nothing was measured (set the project's evaluation share above 0)")
    per_label = metrics.get("per_label", {})
    confidence = next((g["value"] for g in guardrails if g["type"] == "no_primary_drop"), 0.95)
    versus = primary_comparison(metrics, champion, primary_metric=primary_metric, confidence=confidence)
    for g in guardrails:
        if g["type"] == "min_recall":
            recall = per_label.get(g["label"], {}).get("recall", 0.0)
            if recall < g["value"]:
                failures.append(f"recall of {g['label']} is {recall:.3f}, below {g['value']:.3f}")
        elif g["type"] == "min_primary":
            if metrics.get(primary_metric, 0.0) < g["value"]:
                failures.append(f"{primary_metric} is {metrics.get(primary_metric, 0.0):.3f}, below {g['value']:.3f}")
        elif g["type"] == "min_eval_items":
            if n and n < g["value"]:  # n == 0 has its own line above
                failures.append(f"evaluated on {n} item{'s' if n != 1 else ''}; the gate needs {g['value']}")
        elif g["type"] == "no_primary_drop" and versus:
            low, high = versus["interval"]
            if high < 0:
                failures.append(f"{primary_metric} {versus['ours']:.2f} vs champion {versus['theirs']:.2f}, "
                                f"drop {-versus['difference']:.2f} beyond noise "
                                f"({confidence:.0%} CI {signed(low)}\u2026{signed(high)})")
        elif g["type"] == "max_recall_drop" and champion:
            min_support = g.get("min_support", 1)
            for label, theirs in champion.get("per_label", {}).items():
                ours = per_label.get(label)
                if ours is None or theirs.get("support", 0) < min_support or ours.get("support", 0) < min_support:
                    continue
                drop = theirs["recall"] - ours["recall"]
                if drop > g["value"] + 1e-9:
                    failures.append(f"recall of {label} drops by {drop:.3f} (from {theirs['recall']:.3f} to {ours['recall']:.3f} "
                                    f"on {ours['support']} items), more than the allowed {g['value']:.3f}")
    better = champion is None or metrics.get(primary_metric, 0.0) >= champion.get(primary_metric, 0.0)
    return {"passed": not failures, "failures": failures, "better_than_champion": better, "primary_metric": primary_metric,
            "versus_champion": versus}


def versus_text(versus: dict | None) -> str:
    """One line for the models page: the primary metric against the champion, with its interval."""
    if not versus:
        return ""
    low, high = versus["interval"]
    champion = f"v{versus['champion_version']}" if versus.get("champion_version") else "the champion"
    return (f"{versus['metric']} {versus['ours']:.2f} vs {versus['theirs']:.2f} of {champion}: {signed(versus['difference'])} "
            f"({versus['confidence']:.0%} CI {signed(low)}\u2026{signed(high)})")


def guardrail_text(g: dict) -> str:
    """A guardrail in words, for the pages."""
    value = g.get("value")
    if g["type"] == "min_eval_items":
        return f"evaluated on at least {value} items"
    if g["type"] == "no_primary_drop":
        return f"no drop of the primary metric against the champion beyond noise ({value:.0%} interval)"
    if g["type"] == "max_recall_drop":
        support = g.get("min_support")
        return (f"no label's recall drops by more than {value} against the champion"
                + (f" (labels with at least {support} evaluation items)" if support else ""))
    if g["type"] == "min_recall":
        return f"recall of {g.get('label')} at least {value}"
    return f"primary metric at least {value}"
