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
