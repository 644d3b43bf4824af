"""Agreement statistics on hand-made data."""
import pytest

from labeller.agreement import item_majority, krippendorff_alpha_nominal, project_alpha


def test_majority_of_a_single_label_item_and_its_agreement():
    assert item_majority([["a"], ["a"], ["b"]], multi_label=False) == (["a"], pytest.approx(2 / 3))


def test_ties_break_alphabetically_so_exports_are_stable():
    assert item_majority([["b"], ["a"]], multi_label=False) == (["a"], 0.5)


def test_multi_label_majority_keeps_labels_chosen_by_more_than_half():
    majority, agreement = item_majority([["a", "b"], ["a"], ["a", "b"]], multi_label=True)
    assert majority == ["a", "b"] and agreement == pytest.approx(2 / 3)


def test_an_item_nobody_labelled_has_no_majority():
    assert item_majority([], multi_label=False) == ([], None)


def test_alpha_matches_krippendorffs_worked_example():
    # Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", nominal example: 0.743.
    # Coders A-D over 12 units, missing values left out; the last unit has one value only.
    units = [
        ["1", "1", "1"], ["2", "2", "3", "2"], ["3", "3", "3", "3"], ["3", "3", "3", "3"], ["2", "2", "2", "2"],
        ["1", "2", "3", "4"], ["4", "4", "4", "4"], ["1", "1", "2", "1"], ["2", "2", "2", "2"],
        ["5", "5", "5"], ["1", "1"], ["3"],
    ]
    assert krippendorff_alpha_nominal(units) == pytest.approx(0.743, abs=0.001)


def test_alpha_is_one_for_perfect_agreement_and_below_zero_for_systematic_disagreement():
    assert krippendorff_alpha_nominal([["a", "a"], ["b", "b"]]) == 1.0
    assert krippendorff_alpha_nominal([["a", "b"], ["b", "a"]]) < 0


def test_alpha_is_undefined_without_pairs():
    assert krippendorff_alpha_nominal([["a"], ["b"]]) is None


def test_multi_label_alpha_averages_a_yes_no_alpha_per_label():
    items = [[["a"], ["a"]], [["b"], ["b"]], [["a", "b"], ["a", "b"]]]
    assert project_alpha(items, labels=["a", "b", "c"], multi_label=True) == 1.0


def _alpha_by_pairs(units):
    """Krippendorff's definition as written: every ordered pair of a unit's values, O(m^2) per unit."""
    from collections import Counter
    from itertools import permutations

    coincidences = Counter()
    for values in units:
        if len(values) < 2:
            continue
        for a, b in permutations(values, 2):
            coincidences[(a, b)] += 1.0 / (len(values) - 1)
    if not coincidences:
        return None
    totals = Counter()
    for (a, _), weight in coincidences.items():
        totals[a] += weight
    n = sum(totals.values())
    observed = sum(weight for (a, b), weight in coincidences.items() if a != b)
    expected = n * n - sum(t * t for t in totals.values())
    return None if expected == 0 else 1.0 - (n - 1) * observed / expected


@pytest.mark.parametrize("seed", range(20))
def test_alpha_equals_the_pairwise_definition_on_random_units(seed):
    import random

    rng = random.Random(seed)
    values = "abcde"[: rng.randint(1, 5)]
    units = [[rng.choice(values) for _ in range(rng.randint(0, 12))] for _ in range(rng.randint(1, 40))]
    expected = _alpha_by_pairs(units)
    assert krippendorff_alpha_nominal(units) == (None if expected is None else pytest.approx(expected, rel=1e-12, abs=1e-12))


@pytest.mark.parametrize("units", [
    [["a", "a"], ["b", "b"]],
    [["a", "b"], ["b", "a"]],
    [["a", "a", "b"], ["b", "b", "b", "a"], ["c"]],
    [["x"] * 7 + ["y"] * 3, ["y", "y"]],
    [["a", "a"], ["a", "a"]],
])
def test_alpha_equals_the_pairwise_definition_on_hand_examples(units):
    expected = _alpha_by_pairs(units)
    assert krippendorff_alpha_nominal(units) == (None if expected is None else pytest.approx(expected, rel=1e-12))


def test_multi_label_alpha_equals_the_pairwise_definition_label_by_label():
    items = [[["a"], ["a", "b"], ["b"]], [["b"], ["b"]], [["a", "c"], ["c"], ["a", "c"], []], [["a"]]]
    labels = ["a", "b", "c"]
    per_label = [_alpha_by_pairs([[str(label in s) for s in sets] for sets in items if len(sets) >= 2]) for label in labels]
    defined = [alpha for alpha in per_label if alpha is not None]
    assert project_alpha(items, labels=labels, multi_label=True) == pytest.approx(sum(defined) / len(defined), rel=1e-12)


def test_alpha_looks_at_each_label_of_an_item_a_bounded_number_of_times():
    # By the definition an item with m labels has m(m-1) ordered pairs; counting the values per
    # item touches each label a few times. Hashing is how either way looks a value up.
    hashed = 0

    class Value(str):
        def __hash__(self):
            nonlocal hashed
            hashed += 1
            return str.__hash__(self)

    m = 600
    units = [[Value("a")] * (m // 2) + [Value("b")] * (m // 2), [Value("a"), Value("a")]]
    alpha = krippendorff_alpha_nominal(units)
    assert hashed <= 10 * (m + 2)
    assert alpha == pytest.approx(_alpha_by_pairs([[str(v) for v in unit] for unit in units]), rel=1e-12)
