"""Inter-annotator agreement: per-item majority and Krippendorff's alpha. Plain Python, no Django."""
from __future__ import annotations

from collections import Counter
from typing import Iterable, Sequence

LabelSet = Sequence[str]


def item_majority(label_sets: Sequence[LabelSet], *, multi_label: bool) -> tuple[list[str], float | None]:
    """The majority label(s) of one item and the share of annotators who agree with it.

    Single-label: the most frequent label (ties broken alphabetically, so exports are stable).
    Multi-label: every label chosen by more than half of the annotators. Agreement is the share of
    annotators whose answer equals the majority; None when nobody labelled the item.
    """
    if not label_sets:
        return [], None
    if multi_label:
        counts = Counter(label for labels in label_sets for label in set(labels))
        majority = sorted(label for label, n in counts.items() if n * 2 > len(label_sets))
        agreeing = sum(sorted(set(labels)) == majority for labels in label_sets)
    else:
        counts = Counter(labels[0] for labels in label_sets if labels)
        if not counts:
            return [], None
        top = max(counts.values())
        majority = [min(label for label, n in counts.items() if n == top)]
        agreeing = top
    return majority, agreeing / len(label_sets)


def krippendorff_alpha_nominal(units: Iterable[Sequence[str]]) -> float | None:
    """Krippendorff's alpha for nominal data; each unit is the values its coders gave.

    Units with fewer than two values carry no information about agreement and are left out.
    Returns None when it is undefined: nothing to compare, or only one value ever used.
    """
    # By the definition every ordered pair (a, b) of a unit's m values adds 1/(m-1) to the
    # coincidence o(a, b): quadratic in m. Only sums of o are needed, and from the unit's value
    # counts c they are, per unit: n_a = sum_b o(a, b) = c_a, and the unequal pairs
    # sum_{a != b} o(a, b) = (m^2 - sum_a c_a^2) / (m - 1). Same alpha, linear in m.
    totals: Counter[str] = Counter()
    observed = 0.0
    for values in units:
        m = len(values)
        if m < 2:
            continue
        counts = Counter(values)
        totals.update(counts)
        observed += (m * m - sum(c * c for c in counts.values())) / (m - 1)
    if not totals:
        return None
    n = sum(totals.values())
    # Pairs of unequal values expected by chance, scaled as in alpha = 1 - (n-1) D_o / D_e.
    expected = n * n - sum(t * t for t in totals.values())
    if expected == 0:
        return None
    return 1.0 - (n - 1) * observed / expected


def project_alpha(items: Iterable[Sequence[LabelSet]], *, labels: Sequence[str], multi_label: bool) -> float | None:
    """Alpha over a project's items. Multi-label: the mean of a yes/no alpha per label."""
    items = [label_sets for label_sets in items if len(label_sets) >= 2]
    if not multi_label:
        return krippendorff_alpha_nominal([labels_[0] for labels_ in label_sets if labels_] for label_sets in items)
    alphas = []
    for label in labels:
        alpha = krippendorff_alpha_nominal(
            [str(label in labels_) for labels_ in label_sets] for label_sets in items
        )
        if alpha is not None:
            alphas.append(alpha)
    return sum(alphas) / len(alphas) if alphas else None
