"""Inter-annotator agreement: per-item majority, Krippendorff's alpha, pairwise span F1. Plain
Python, no Django."""
from __future__ import annotations

from collections import Counter
from itertools import combinations
from typing import Callable, Iterable, Sequence

from ml.spans import MATCH_MODES, match_count

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


class AnnotatorAgreement:
    """Per annotator, over the items they shared with others (two or more labels): agreement with
    each item's majority, with each other annotator, and what became of the model's suggestions
    they accepted. Fed one item at a time, so a project's annotations can stream through it.

    Definitions (docs/annotator-quality.md):
    - with the majority: the annotator's answer equals the item's majority over all its labels
      (theirs included, the one exports and training use);
    - with another annotator: both gave the same answer on an item they both labelled;
    - overturned: the annotator accepted the model's suggestion and the item's majority now
      differs from it (later experts, an expert's review, trusted feedback outvoted it);
    - overruled: the same for answers the annotator chose against the suggestion, for comparison.
    """

    def __init__(self, *, majority: Callable[[Sequence[LabelSet]], tuple[LabelSet, float | None]],
                 canonical: Callable[[LabelSet], object] = lambda value: sorted(set(value)),
                 pair_score: Callable[[LabelSet, LabelSet], float] | None = None):
        self.majority = majority  # the task type's rule: TaskType.majority
        self.canonical = canonical  # when two answers are the same: TaskType.canonical
        # How much two annotators' answers agree, 0 to 1 (TaskType.pair_agreement): spans score
        # partial agreement (span F1); by default, whether the answers are the same.
        self.pair_score = pair_score
        self.shared: Counter = Counter()  # annotator -> items shared with others
        self.with_majority: Counter = Counter()
        self.accepted_shared: Counter = Counter()  # accepted suggestions on shared items
        self.overturned: Counter = Counter()
        self.chosen_shared: Counter = Counter()  # answers against the suggestion on shared items
        self.overruled: Counter = Counter()
        self.pairs: Counter = Counter()  # (annotator, other) -> items both labelled
        self.pairs_agreeing: Counter = Counter()

    def add_item(self, labels: Sequence[tuple[object, LabelSet, bool | None]], *, majority: LabelSet | None = None) -> None:
        """One item's answers: (annotator or None for a label no user gave, labels, accepted?).
        `majority`: the item's resolved value when the caller has it (the consensus of
        labeller.consensus); otherwise the `majority` rule given at construction resolves it."""
        if len(labels) < 2:
            return
        if majority is None:
            majority = self.majority([answer for _, answer, _ in labels])[0]
        majority = self.canonical(majority)
        raw = {who: answer for who, answer, _ in labels if who is not None}
        answers = [(who, self.canonical(answer), accepted) for who, answer, accepted in labels if who is not None]
        for who, answer, accepted in answers:
            agrees = answer == majority
            self.shared[who] += 1
            self.with_majority[who] += agrees
            if accepted is True:
                self.accepted_shared[who] += 1
                self.overturned[who] += not agrees
            elif accepted is False:
                self.chosen_shared[who] += 1
                self.overruled[who] += not agrees
            for other, other_answer, _ in answers:
                if other != who:
                    self.pairs[who, other] += 1
                    self.pairs_agreeing[who, other] += (answer == other_answer if self.pair_score is None
                                                        else self.pair_score(raw[who], raw[other]))

    def with_others(self, who) -> tuple[int, int]:
        """(pairs of answers with other annotators, of which equal — or the sum of their pair
        scores) for one annotator."""
        pairs = [(n, self.pairs_agreeing[key]) for key, n in self.pairs.items() if key[0] == who]
        return sum(n for n, _ in pairs), sum(a for _, a in pairs)


def span_agreement(items: Iterable[Sequence[Sequence[dict]]], *, labels: Sequence[str]) -> dict:
    """Pairwise span F1 between annotators over items two or more labelled; each item is its
    annotators' span lists. Every pair of annotators on an item is compared, and the matches are
    summed over the project before dividing (micro F1 = 2 * matches / spans of both): an item
    with many entities weighs more than one with few. Two modes (ml.spans.match_count): "exact"
    (same start, end and label) and "overlap" (same label, sharing a character, one to one).
    Per label: the same over that label's spans only. An F1 is None where no span was given."""
    totals = {mode: [0, 0] for mode in MATCH_MODES}  # matches, spans of both
    per_label = {label: {mode: [0, 0] for mode in MATCH_MODES} for label in labels}
    pairs = 0
    for spans_sets in items:
        for a, b in combinations(spans_sets, 2):
            pairs += 1
            for label in {s["label"] for s in (*a, *b)}:
                la = [s for s in a if s["label"] == label]
                lb = [s for s in b if s["label"] == label]
                counts = per_label.setdefault(label, {mode: [0, 0] for mode in MATCH_MODES})
                for mode in MATCH_MODES:
                    matched = match_count(la, lb, mode=mode)
                    for target in (counts[mode], totals[mode]):
                        target[0] += matched
                        target[1] += len(la) + len(lb)

    def f1(matched_spans):
        matched, spans = matched_spans
        return round(2 * matched / spans, 4) if spans else None

    return {
        "f1": {mode: f1(totals[mode]) for mode in MATCH_MODES},
        "per_label": {label: {**{mode: f1(c[mode]) for mode in MATCH_MODES}, "spans": c["exact"][1]}
                      for label, c in per_label.items()},
        "pairs": pairs,
    }
