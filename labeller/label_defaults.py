"""What a new project's labels get unless the admin says otherwise: a key from the name, a
keyboard shortcut while free characters last, a colour from a palette. Plain Python: the new
project page hands these lists to its script, and services or commands may use them too."""
import re

# Keys the labelling screen binds without a modifier (frontend/static/frontend/label.js: "/" opens
# the label filter; Enter, Escape, Tab and the arrows are not characters). Its other keys hold Ctrl
# (Ctrl+Z, Ctrl+Space), so a plain letter is free. The screen matches shortcuts ignoring case.
SCREEN_KEYS = frozenset("/")
SHORTCUTS = [c for c in "1234567890abcdefghijklmnopqrstuvwxyz" if c not in SCREEN_KEYS]

# Distinct hues of similar weight that white text reads on (the screen fills a chosen label).
PALETTE = [
    "#4f46e5", "#059669", "#dc2626", "#d97706", "#0891b2", "#7c3aed", "#db2777", "#65a30d",
    "#2563eb", "#ea580c", "#0d9488", "#9333ea", "#be123c", "#4d7c0f", "#0369a1", "#a16207",
]

KEY_LENGTH = 100


def key_from_name(name: str) -> str:
    """A stable key for a label name: "Card lost?" -> "card_lost" (letters, digits, _ . : -)."""
    key = re.sub(r"[^a-z0-9_.:-]+", "_", name.strip().lower()).strip("_")
    return key[:KEY_LENGTH] or "label"


def labels_from_names(names: list[str]) -> list[dict]:
    """Label definitions for names in order: shortcuts while they last, the palette in turn."""
    return [
        {"key": key_from_name(name), "name": name, "color": PALETTE[i % len(PALETTE)],
         "shortcut": SHORTCUTS[i] if i < len(SHORTCUTS) else ""}
        for i, name in enumerate(names)
    ]
