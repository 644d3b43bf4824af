"""Keyboard shortcuts for the labelling screen: every label gets one, however many there are.

A label keeps the one-character shortcut an admin gave it. The others get the digits 1-9, 0 and
then the letters that are still free, in the project's label order; when there are more labels
than free keys, the last free letters become prefixes of two-key codes (z then 1, z then 2, ...).
The codes are prefix-free, so a single key never has to wait to learn whether a second follows.
The screen's own commands are Enter, Escape, /, Tab and Ctrl+keys, none of them in this alphabet.
"""
from __future__ import annotations

ALPHABET = "1234567890abcdefghijklmnopqrstuvwxyz"


def shortcuts_assign(stored: list[str]) -> list[str]:
    """One code per label, in order: the stored shortcut where there is one, else a free one
    (one key, or a prefix and a second key). "" only beyond len(free) * 36 labels."""
    taken = {s.lower() for s in stored if s}
    free = [c for c in ALPHABET if c not in taken]
    wanted = sum(1 for s in stored if not s)
    # As many single keys as possible; each prefix given up buys len(ALPHABET) two-key codes.
    singles = len(free)
    while singles > 0 and singles + (len(free) - singles) * len(ALPHABET) < wanted:
        singles -= 1
    codes = free[:singles] + [prefix + second for prefix in free[singles:] for second in ALPHABET]
    codes.reverse()
    return [s or (codes.pop() if codes else "") for s in stored]
