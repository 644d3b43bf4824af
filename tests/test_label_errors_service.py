"""A project's likely label errors, from its stored vectors (the real encoder's, of Banking77
queries) and the majority of its experts' labels."""
import numpy as np
import pytest

from active_learning.label_errors import NotClassification, label_errors_compute
from labeller.models import ActiveLearningState, Item, ItemVector, Label
from labeller.services import annotation_submit
from ml.encoder import to_float16_bytes
from tests.banking77 import banking77

pytestmark = pytest.mark.django_db
INTENTS = ["card_arrival", "exchange_rate", "lost_or_stolen_card", "pin_blocked"]


@pytest.fixture(scope="module")
def rows_and_vectors():
    from ml.encoder import Encoder

    rows = banking77(30, INTENTS)
    return rows, Encoder(threads=1).encode([row["text"] for row in rows])


def intents_project(make_project, rows, vectors, **fields):
    project = make_project(**fields)
    Label.objects.filter(project=project).delete()
    Label.objects.bulk_create(Label(project=project, key=k, name=k, order=i) for i, k in enumerate(INTENTS))
    items = Item.objects.bulk_create(Item(project=project, data={"text": row["text"]}, is_eval=i % 5 == 0)
                                     for i, row in enumerate(rows))
    ActiveLearningState.objects.filter(project=project).update(encoder_version="test-encoder")
    ItemVector.objects.bulk_create(ItemVector(item=item, project=project, encoder_version="test-encoder", vector=blob)
                                   for item, blob in zip(items, to_float16_bytes(vectors)))
    return project, items


def test_the_wrong_labels_are_flagged_first_with_the_right_intent_suggested(make_project, expert, rows_and_vectors):
    rows, vectors = rows_and_vectors
    project, items = intents_project(make_project, rows, vectors)
    wrong = set(range(5, len(rows), 7))  # 17 of 120, evaluation items (every fifth) among them
    for i, (item, row) in enumerate(zip(items, rows)):
        item.project = project
        # Wrong labels spread over the other intents, as a tired expert's slips are.
        label = INTENTS[(INTENTS.index(row["category"]) + 1 + i % 3) % 4] if i in wrong else row["category"]
        annotation_submit(item=item, user=expert, labels=[label])
    errors = label_errors_compute(project=project)
    assert len(errors) == len(rows) and [e.score for e in errors] == sorted(e.score for e in errors)
    wrong_ids = {items[i].id: rows[i]["category"] for i in wrong}
    flagged = [e for e in errors if e.flagged]
    hits = [e for e in flagged if e.item_id in wrong_ids]
    assert len(hits) >= 0.8 * len(wrong) and len(hits) >= 0.75 * len(flagged)
    assert all(e.given != e.suggested for e in hits)
    assert np.mean([e.suggested == (wrong_ids[e.item_id],) for e in hits]) >= 0.8
    assert {e.item_id for e in errors[:len(wrong)]} & set(wrong_ids)
    assert any(Item.objects.get(id=e.item_id).is_eval for e in hits)  # evaluation items are checked too


def test_too_few_labels_give_no_verdict_and_span_projects_are_refused(make_project, expert, rows_and_vectors):
    rows, vectors = rows_and_vectors
    project, items = intents_project(make_project, rows, vectors)
    assert label_errors_compute(project=project) == []
    items[0].project = project
    annotation_submit(item=items[0], user=expert, labels=[rows[0]["category"]])
    assert label_errors_compute(project=project) == []
    spans = make_project(name="Spans", task_type="spans")
    with pytest.raises(NotClassification, match="classification projects, not spans"):
        label_errors_compute(project=spans)
