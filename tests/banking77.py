"""Banking77 rows for tests, from the copy in the repository (datasets/banking77, CC BY 4.0)."""
import csv
from pathlib import Path

FOLDER = Path(__file__).resolve().parents[1] / "datasets" / "banking77"
INTENTS = ["card_arrival", "exchange_rate", "lost_or_stolen_card"]


def banking77(per_intent: int, intents=None, split: str = "train") -> list[dict]:
    """The first `per_intent` rows of each intent, in file order."""
    intents = INTENTS if intents is None else intents
    rows, counts = [], {}
    with open(FOLDER / f"{split}.csv", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["category"] in intents and counts.get(row["category"], 0) < per_intent:
                counts[row["category"]] = counts.get(row["category"], 0) + 1
                rows.append(row)
    return rows
