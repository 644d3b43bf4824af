"""Every label on the labelling screen gets keys that choose it, however many labels there are."""
from labeller.label_defaults import SCREEN_KEYS, SHORTCUTS, labels_from_names
from labeller.shortcuts import shortcuts_assign

BANKING77_DEMO = list("1234567890") + [""] * 67  # seed_demo stores shortcuts for the first ten only


def test_each_of_77_labels_gets_a_distinct_code_and_the_first_ten_keep_theirs():
    codes = shortcuts_assign(BANKING77_DEMO)
    assert codes[:10] == list("1234567890")
    assert all(codes) and len(set(codes)) == 77


def test_the_codes_are_prefix_free_so_no_key_waits_for_a_second():
    codes = shortcuts_assign(BANKING77_DEMO)
    singles = {c for c in codes if len(c) == 1}
    assert all(len(c) in (1, 2) for c in codes)
    assert not any(c[0] in singles for c in codes if len(c) == 2)


def test_as_many_labels_as_possible_get_one_key():
    codes = shortcuts_assign(BANKING77_DEMO)
    assert sum(len(c) == 1 for c in codes) == 34  # 36 keys, two of them (y, z) become prefixes


def test_a_stored_shortcut_is_kept_and_never_given_to_another_label():
    assert shortcuts_assign(["", "a", "", "1"]) == ["2", "a", "3", "1"]
    assert shortcuts_assign(["", "A"]) == ["1", "A"]  # the screen reads keys case-insensitively


def test_few_labels_get_single_keys_in_order():
    assert shortcuts_assign(["", "", ""]) == ["1", "2", "3"]


def test_a_new_project_of_77_labels_stores_36_shortcuts_and_the_other_41_get_two_key_codes():
    stored = [label["shortcut"] for label in labels_from_names([f"Intent {i}" for i in range(77)])]
    codes = shortcuts_assign(stored)
    assert codes[:36] == stored[:36] == SHORTCUTS
    assert all(codes) and len(set(codes)) == 77
    assert {c[0] for c in codes[36:]} == {".", ","}  # no letter or digit is free to be a prefix
    assert not {c[0] for c in codes if len(c) == 2} & set(codes)  # still prefix-free


def test_no_code_uses_a_key_the_screen_binds():
    codes = shortcuts_assign([""] * 500)
    assert not {ch for code in codes for ch in code} & (SCREEN_KEYS | set("\t\n "))
