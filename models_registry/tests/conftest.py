import csv
from pathlib import Path

import pytest

from labeller.models import Item, Label
from labeller.services import annotation_submit

BANKING77 = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "banking77" / "train.csv"
INTENTS = ["card_arrival", "exchange_rate", "lost_or_stolen_card"]


def banking77(per_intent: int):
    rows, counts = [], {}
    with open(BANKING77, encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["category"] in INTENTS and counts.get(row["category"], 0) < per_intent:
                counts[row["category"]] = counts.get(row["category"], 0) + 1
                rows.append(row)
    return rows


@pytest.fixture
def labelled_project(make_project, expert):
    """Three Banking77 intents, 16 labelled queries each; every fourth item is in the evaluation set."""
    project = make_project(eval_share=0.25)
    Label.objects.filter(project=project).delete()
    Label.objects.bulk_create(Label(project=project, key=k, name=k.replace("_", " "), order=i) for i, k in enumerate(INTENTS))
    rows = banking77(16)
    items = Item.objects.bulk_create(
        Item(project=project, data={"text": row["text"]}, external_id=str(i), is_eval=i % 4 == 0) for i, row in enumerate(rows)
    )
    for item, row in zip(items, rows):
        item.project = project
        annotation_submit(item=item, user=expert, labels=[row["category"]])
    return project
