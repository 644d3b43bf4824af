"""The model's spans as the labelling page showed them, recorded with the expert's annotation:
each suggested span with its confidence and whether the expert kept it, and the annotation's
`suggestion_accepted` true only when every suggested span was kept unchanged and none added."""
import pytest

from labeller.models import Annotation

pytestmark = pytest.mark.django_db

FAMILY = "👩\u200d👩\u200d👧"
TEXT = f"{FAMILY} lost_card at card_arrival"


def url(project, item):
    return f"/api/projects/{project.id}/items/{item.id}/annotations"


def at(piece, label, **extra):
    return {"start": TEXT.index(piece), "end": TEXT.index(piece) + len(piece), "label": label, **extra}


def submitted(client, item, labels, suggested) -> Annotation:
    response = client.post(url(item.project, item), {"labels": labels, "suggested_labels": suggested}, format="json")
    assert response.status_code == 201, response.content
    return Annotation.objects.get(id=response.json()["id"])


@pytest.fixture
def item(make_project, add_items):
    (item,) = add_items(make_project(task_type="spans"), [TEXT])
    return item


def test_every_suggested_span_kept_records_the_suggestion_accepted(client_for, expert, item):
    suggested = [at("card_arrival", "card_arrival", confidence=0.6, accepted=True),
                 at("lost_card", "lost_card", confidence=0.9, accepted=True)]
    labels = [at("lost_card", "lost_card"), at("card_arrival", "card_arrival")]
    annotation = submitted(client_for(expert), item, labels, suggested)
    assert annotation.suggestion_accepted is True
    assert annotation.suggested_labels == [suggested[1], suggested[0]]  # sorted by offsets, as spans are


def test_one_suggested_span_changed_records_it_and_the_suggestion_not_accepted(client_for, expert, item):
    suggested = [at("lost_card", "lost_card", confidence=0.9, accepted=True),
                 at("card_arrival", "lost_card", confidence=0.3, accepted=False)]
    labels = [at("lost_card", "lost_card"), at("card_arrival", "card_arrival")]
    annotation = submitted(client_for(expert), item, labels, suggested)
    assert annotation.suggestion_accepted is False
    assert [s["accepted"] for s in annotation.suggested_labels] == [True, False]


def test_a_bad_suggested_span_is_a_400_naming_suggested_labels(client_for, expert, item, project, add_items):
    for bad in ([at("lost_card", "lost_card", confidence=2)], [at("lost_card", "lost_card", accepted="yes")],
                [{"start": 0, "end": 999, "label": "lost_card"}], [{"start": 0, "end": 2, "colour": "red"}], ["lost_card"]):
        response = client_for(expert).post(url(item.project, item), {"labels": [], "suggested_labels": bad}, format="json")
        assert response.status_code == 400, (bad, response.content)
        assert list(response.json()) == ["suggested_labels"], response.content
    assert not Annotation.objects.exists()
    # A classification project takes label keys only, as before.
    (other,) = add_items(project, ["one"])
    response = client_for(expert).post(url(project, other), {"labels": ["lost_card"], "suggested_labels": [at("lost_card", "lost_card")]},
                                       format="json")
    assert response.status_code == 400 and response.json() == {"suggested_labels": ["must be a list of label keys"]}
