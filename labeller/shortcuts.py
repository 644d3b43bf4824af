"""Keyboard shortcuts for the labelling screen: every label gets one, however many there are.

A label keeps the one-character shortcut an admin gave it (a new project stores one per label
while label_defaults.SHORTCUTS last). The others get the characters of that list still free, in
the project's label order; when there are more labels than free keys, the last free ones become
prefixes of two-key codes (z then 1, z then 2, ...), and when none is free, unshifted punctuation
does (. then 1, ...). The codes are prefix-free, so a single key never waits for a second, and
none is a key the screen binds itself (label_defaults.SCREEN_KEYS; Enter, Escape and Tab are not
characters).
"""
from __future__ import annotations

from .label_defaults import SCREEN_KEYS, SHORTCUTS

SECOND_KEYS = SHORTCUTS
SPARE_PREFIXES = [c for c in ".,;'=-[]\\`" if c not in SCREEN_KEYS]


def shortcuts_assign(stored: list[str]) -> list[str]:
    """One code per label, in order: the stored shortcut where there is one, else a free one
    (one key, or a prefix and a second key); "" only past some 500 labels."""
    taken = {s.lower() for s in stored if s}
    free = [c for c in SHORTCUTS if c not in taken]
    wanted = sum(1 for s in stored if not s)

    def room(singles: int) -> int:  # codes when the free keys past `singles` are prefixes
        return singles + (len(free) - singles) * len(SECOND_KEYS)

    # As many single keys as possible; each free key given up as a prefix buys a row of codes.
    singles = len(free)
    while singles > 0 and room(singles) < wanted:
        singles -= 1
    prefixes = free[singles:]
    if room(singles) < wanted:
        prefixes += [c for c in SPARE_PREFIXES if c not in taken]
    codes = free[:singles] + [prefix + second for prefix in prefixes for second in SECOND_KEYS]
    codes.reverse()
    return [s or (codes.pop() if codes else "") for s in stored]
