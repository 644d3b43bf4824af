"""Span labelling through the API: submitting spans (code points), refusals naming the field, and
the project's agreement as pairwise span F1."""
import pytest

from labeller.models import Annotation
from labeller.services import annotation_submit

pytestmark = pytest.mark.django_db

FAMILY = "👩\u200d👩\u200d👧"
TEXT = f"{FAMILY} lost_card at card_arrival"  # label keys of the shared fixtures, as words


def url(project, item):
    return f"/api/projects/{project.id}/items/{item.id}/annotations"


@pytest.fixture
def spans_project(make_project):
    return make_project(task_type="spans", labels_per_item=2)


def at(piece, label, text=TEXT):
    return {"start": text.index(piece), "end": text.index(piece) + len(piece), "label": label}


def test_an_expert_submits_spans_with_code_point_offsets(client_for, expert, spans_project, add_items):
    (item,) = add_items(spans_project, [TEXT])
    span = {**at("lost_card", "lost_card"), "text": "lost_card"}
    assert span["start"] == 6  # 5 code points of the family emoji and a space; 9 in UTF-16
    response = client_for(expert).post(url(spans_project, item), {"labels": [span]}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["labels"] == [at("lost_card", "lost_card")]
    assert Annotation.objects.get().labels == [{"start": 6, "end": 15, "label": "lost_card"}]


def test_a_span_off_by_the_emojis_utf16_units_is_refused_naming_the_span(client_for, expert, spans_project, add_items):
    (item,) = add_items(spans_project, [TEXT])
    shifted = {"start": 9, "end": 18, "label": "lost_card", "text": "lost_card"}
    response = client_for(expert).post(url(spans_project, item), {"labels": [shifted]}, format="json")
    assert response.status_code == 400
    assert response.json() == {"labels": ["spans[0].text: 'lost_card' does not match the text at 9..18, 't_card at'"]}
    assert not Annotation.objects.exists()


def test_malformed_spans_are_a_400_not_a_500(client_for, expert, spans_project, project, add_items):
    (item,) = add_items(spans_project, [TEXT])
    for labels in ([{"start": 0, "end": 2, "colour": "red"}], [["a"]], [{"start": "x", "end": 2, "label": "lost_card"}],
                   ["lost_card"]):
        response = client_for(expert).post(url(spans_project, item), {"labels": labels}, format="json")
        assert response.status_code == 400, (labels, response.content)
        assert "labels" in response.json()
    (other,) = add_items(project, ["one"])
    response = client_for(expert).post(url(project, other), {"labels": [at("lost_card", "lost_card")]}, format="json")
    assert response.status_code == 400 and response.json() == {"labels": ["must be a list of label keys"]}


def test_an_outsider_cannot_submit_spans(client_for, outsider, spans_project, add_items):
    (item,) = add_items(spans_project, [TEXT])
    response = client_for(outsider).post(url(spans_project, item), {"labels": []}, format="json")
    assert response.status_code == 404


def test_the_agreement_of_a_spans_project_is_pairwise_span_f1(client_for, viewer, expert, expert2, spans_project, add_items):
    one, two = add_items(spans_project, [TEXT, "card_arrival"])
    lost, card = at("lost_card", "lost_card"), at("card_arrival", "card_arrival")
    annotation_submit(item=one, user=expert, labels=[lost, card])
    annotation_submit(item=one, user=expert2, labels=[{**lost, "end": lost["end"] - 1}, card])
    annotation_submit(item=two, user=expert, labels=[{"start": 0, "end": 12, "label": "card_arrival"}])
    annotation_submit(item=two, user=expert2, labels=[{"start": 0, "end": 12, "label": "card_arrival"}])
    response = client_for(viewer).get(f"/api/projects/{spans_project.id}/agreement")
    assert response.status_code == 200
    body = response.json()
    # Exact: card_arrival matches twice, lost_card differs by one character; 6 spans in pairs.
    assert body["statistic"] == "pairwise_span_f1" and body["items_with_overlap"] == 2 and body["pairs"] == 2
    assert body["f1"] == {"exact": round(2 * 2 / 6, 4), "overlap": 1.0}
    assert body["per_label"]["lost_card"] == {"exact": 0.0, "overlap": 1.0, "spans": 2}
    assert body["per_label"]["card_arrival"] == {"exact": 1.0, "overlap": 1.0, "spans": 4}
    assert body["per_label"]["exchange_rate"] == {"exact": None, "overlap": None, "spans": 0}
    one.refresh_from_db()
    assert one.majority == "card_arrival" and one.agreement == 0.5


def test_annotator_quality_compares_span_answers_as_whole_answers(expert, expert2, spans_project, add_items):
    from labeller.selectors import annotator_quality

    one, two = add_items(spans_project, [TEXT, TEXT])
    lost, card = at("lost_card", "lost_card"), at("card_arrival", "card_arrival")
    annotation_submit(item=one, user=expert, labels=[card, lost])
    annotation_submit(item=one, user=expert2, labels=[lost, card])
    annotation_submit(item=two, user=expert, labels=[lost])
    annotation_submit(item=two, user=expert2, labels=[card])
    rows = {row["username"]: row for row in annotator_quality(project=spans_project)["annotators"]}
    assert rows["expert"]["labelled"] == 2 and rows["expert"]["shared_items"] == 2
    assert rows["expert"]["agreement_with_majority"] == 0.5  # the same answer as the majority on one of two
    # With the other annotator: span F1 per item, 1.0 and 0.0, averaged.
    assert rows["expert"]["agreement_with_others"] == 0.5


def test_agreement_with_others_scores_partly_matching_spans_by_span_f1(expert, expert2, spans_project, add_items):
    from labeller.selectors import annotator_quality

    (item,) = add_items(spans_project, [TEXT])
    lost, card = at("lost_card", "lost_card"), at("card_arrival", "card_arrival")
    annotation_submit(item=item, user=expert, labels=[card, lost])
    annotation_submit(item=item, user=expert2, labels=[lost])
    quality = annotator_quality(project=spans_project)
    assert [row["agreement_with_others"] for row in quality["annotators"]] == [0.667, 0.667]
    assert quality["pairwise"][0]["agreement"] == 0.667


def test_the_pages_and_the_item_table_show_a_spans_project(client, client_for, owner, expert, expert2, spans_project, add_items):
    one, two = add_items(spans_project, [TEXT, "lost_card only"])
    lost, card = at("lost_card", "lost_card"), at("card_arrival", "card_arrival")
    for user in (expert, expert2):
        annotation_submit(item=one, user=user, labels=[lost, card])
    annotation_submit(item=two, user=expert, labels=[{"start": 0, "end": 9, "label": "lost_card"}])
    # The majority column holds both keys: the label filter finds the item by either.
    table = client_for(owner).get(f"/api/projects/{spans_project.id}/items/table", {"label": "card_arrival"})
    assert table.status_code == 200 and [row["id"] for row in table.json()["results"]] == [one.id]
    assert table.json()["results"][0]["annotations"][0]["labels"] == [lost, card]
    client.force_login(owner)
    for url in (f"/projects/{spans_project.id}/", f"/projects/{spans_project.id}/items",
                f"/projects/{spans_project.id}/items/{one.id}", f"/projects/{spans_project.id}/annotators"):
        assert client.get(url).status_code == 200, url
    assert "pairwise span F1" in client.get(f"/projects/{spans_project.id}/").content.decode()


def test_a_suggestion_of_spans_is_recorded_with_whether_it_was_taken_as_is(client_for, expert, expert2, spans_project, add_items):
    one, two = add_items(spans_project, [TEXT, TEXT])
    lost, card = at("lost_card", "lost_card"), at("card_arrival", "card_arrival")
    client = client_for(expert)
    taken = client.post(url(spans_project, one), {"labels": [card, lost], "suggested_labels": [lost, card]}, format="json")
    assert taken.status_code == 201 and taken.json()["suggestion_accepted"] is True
    assert taken.json()["suggested_labels"] == [lost, card]
    changed = client.post(url(spans_project, two), {"labels": [lost], "suggested_labels": [lost, card]}, format="json")
    assert changed.json()["suggestion_accepted"] is False
    bad = client_for(expert2).post(url(spans_project, one), {"labels": [lost], "suggested_labels": [{**lost, "end": 99}]},
                                   format="json")
    assert bad.status_code == 400 and "outside the text" in bad.json()["suggested_labels"][0]
