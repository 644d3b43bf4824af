"""Every label on the labelling screen gets keys that choose it, however many labels there are."""
from labeller.shortcuts import ALPHABET, shortcuts_assign

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


def test_the_screen_commands_are_not_in_the_alphabet():
    assert not set(ALPHABET) & set("/\t\n ")
