"""The item page: every member sees the item's whole history (annotations with who, when, lead time
and the suggestion; predictions with their versions; feedback and its review); an expert relabels
it through the same service as the labelling screen and labels its nearest unlabelled neighbours in
one step; a viewer cannot label; outsiders get 404. The similar page finds items near typed text."""
import re

import numpy as np
import pytest
from django.utils import timezone

from active_learning import similar
from feedback.models import FeedbackEvent, FeedbackStatus, Prediction
from labeller.models import Annotation, AnnotationSource, Item
from labeller.services import annotation_submit
from labeller.tests.test_active_learning import store_vectors
from ml.encoder_cache import base_encoder
from models_registry.models import ModelVersion, VersionStatus

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_cache():
    similar.vector_cache_clear()
    yield
    similar.vector_cache_clear()


def shown_messages(response) -> list[str]:
    return re.findall(r'<p class="message [a-z ]*">(.*?)</p>', response.content.decode())


def item_url(project, item, suffix=""):
    return f"/projects/{project.id}/items/{item.id}{suffix}"


@pytest.fixture
def items(project, add_items):
    """Ten items on a fan: item i is the i-th nearest to item 0."""
    items = add_items(project, [f"text number {i}" for i in range(10)])
    angles = np.linspace(0, np.pi / 2, 10)
    store_vectors(project, items, np.stack([np.cos(angles), np.sin(angles), *np.zeros((6, 10))], axis=1))
    return items


def as_user(client, user):
    client.force_login(user)
    return client


def test_the_page_shows_the_annotations_predictions_feedback_and_review(client, project, items, expert, viewer):
    item = items[0]
    annotation_submit(item=item, user=expert, labels=["lost_card"], lead_time=4.2, suggested_labels=["card_arrival"])
    version = ModelVersion.objects.create(project=project, number=3, kind="head", status=VersionStatus.READY,
                                          base_model="test")
    prediction = Prediction.objects.create(project=project, version=version, served_as="champion", data={"text": "x"},
                                           labels=["card_arrival"], confidence=0.61, top=[], item=item)
    FeedbackEvent.objects.create(project=project, prediction=prediction, version=version, kind="correction",
                                 label="lost_card", predicted_labels=["card_arrival"], end_user="u1",
                                 occurred_at=timezone.now(), status=FeedbackStatus.REVIEWED, item=item, expert_agrees=True)
    page = as_user(client, viewer).get(item_url(project, item)).content.decode()
    assert "text number 0" in page
    row = re.search(r'<tr data-annotation="\d+">(.*?)</tr>', page, re.S).group(1)
    assert [cell.strip() for cell in re.findall(r"<td>(.*?)</td>", row, re.S)][2:] == [
        "lost_card", "expert", "4.2 s", "card_arrival", "no"]
    assert re.search(r"<td>v3</td>\s*<td>champion</td>\s*<td>card_arrival</td>\s*<td>0.61</td>", page)
    assert re.search(r"<td>correction: lost_card</td>.*?<td>reviewed</td>\s*<td>yes</td>", page, re.S)
    assert "1 event settled by an expert&#x27;s label." in page or "1 event settled by an expert's label." in page
    assert 'id="relabel"' not in page and 'id="label-similar"' not in page  # a viewer only reads


def test_an_expert_relabels_an_open_item_and_the_counts_follow(client, project, items, expert):
    response = as_user(client, expert).post(item_url(project, items[0], "/relabel"), {"labels": "exchange_rate"}, follow=True)
    assert shown_messages(response) == ["Your label for this item is now exchange_rate."]
    item = Item.objects.get(id=items[0].id)
    assert (item.annotation_count, item.is_done) == (1, True)
    assert Annotation.objects.get(item=item, annotator=expert).labels == ["exchange_rate"]


def test_an_expert_changes_their_own_label_on_a_done_item(client, project, items, expert):
    annotation_submit(item=items[0], user=expert, labels=["lost_card"])
    as_user(client, expert).post(item_url(project, items[0], "/relabel"), {"labels": "card_arrival"})
    assert Annotation.objects.get(item=items[0], annotator=expert).labels == ["card_arrival"]
    assert Item.objects.get(id=items[0].id).annotation_count == 1


def test_a_done_item_labelled_by_someone_else_refuses_a_new_label_and_says_why(client, project, items, expert, expert2):
    annotation_submit(item=items[0], user=expert2, labels=["lost_card"])
    response = as_user(client, expert).post(item_url(project, items[0], "/relabel"), {"labels": "card_arrival"}, follow=True)
    assert shown_messages(response) == ["already has all the labels it needs"]
    assert not Annotation.objects.filter(annotator=expert).exists()


def test_a_relabel_with_an_unknown_or_no_label_names_the_field(client, project, items, expert):
    response = as_user(client, expert).post(item_url(project, items[0], "/relabel"), {"labels": "nope"}, follow=True)
    assert shown_messages(response) == ['labels: &quot;nope&quot; is not a valid choice.']
    response = client.post(item_url(project, items[0], "/relabel"), {}, follow=True)
    assert shown_messages(response) == ["labels: This list may not be empty."]
    assert not Annotation.objects.exists()


def test_a_viewer_cannot_relabel_nor_label_similar(client, project, items, viewer):
    as_user(client, viewer)
    assert client.post(item_url(project, items[0], "/relabel"), {"labels": "lost_card"}).status_code == 403
    assert client.post(item_url(project, items[0], "/label-similar"),
                       {"labels": "lost_card", "items": [items[1].id]}).status_code == 403
    assert not Annotation.objects.exists()


def test_outsiders_get_404_everywhere(client, project, items, outsider):
    as_user(client, outsider)
    assert client.get(item_url(project, items[0])).status_code == 404
    assert client.post(item_url(project, items[0], "/relabel"), {"labels": "lost_card"}).status_code == 404
    assert client.get(f"/projects/{project.id}/similar?text=card").status_code == 404


def test_another_projects_item_is_not_found_through_this_project(client, project, items, make_project, add_items, expert):
    (foreign,) = add_items(make_project(name="Other"), ["foreign"])
    assert as_user(client, expert).get(item_url(project, foreign)).status_code == 404


def test_the_expert_sees_the_nearest_unlabelled_neighbours_ticked_above_the_threshold(client, project, items, expert, expert2):
    annotation_submit(item=items[1], user=expert2, labels=["lost_card"])
    Item.objects.filter(id=items[2].id).update(is_eval=True)
    page = as_user(client, expert).get(item_url(project, items[0], "?threshold=0.85&k=4")).content.decode()
    rows = re.findall(r'<tr data-item="(\d+)">\s*<td><input type="checkbox" name="items" value="\d+" '
                      r'aria-label="[^"]+"( checked)?>', page)
    assert rows == [(str(items[3].id), " checked"), (str(items[4].id), ""), (str(items[5].id), ""), (str(items[6].id), "")]
    # The label preselected is the item's own label once it has one.
    annotation_submit(item=items[0], user=expert2, labels=["exchange_rate"])
    page = client.get(item_url(project, items[0])).content.decode()
    assert '<option value="exchange_rate" selected>' in page


def test_label_similar_records_the_experts_labels_with_provenance_and_skips_the_rest(client, project, items, expert, expert2):
    annotation_submit(item=items[2], user=expert2, labels=["card_arrival"])  # labelled meanwhile
    response = as_user(client, expert).post(item_url(project, items[0], "/label-similar"),
                                            {"labels": "lost_card", "items": [items[1].id, items[2].id, items[3].id]},
                                            follow=True)
    assert shown_messages(response) == ["Labelled 2 items as lost_card.",
                                        "Skipped 1: labelled, held or sent to review meanwhile."]
    labelled = Annotation.objects.filter(source=AnnotationSource.SIMILAR)
    assert sorted(labelled.values_list("item_id", "labelled_from_id", "annotator__username")) == [
        (items[1].id, items[0].id, "expert"), (items[3].id, items[0].id, "expert")]
    page = response.content.decode()  # back on the item page; the labelled ones left the list
    assert f'value="{items[1].id}"' not in page
    history = client.get(item_url(project, items[1])).content.decode()
    assert f'similar from <a href="/projects/{project.id}/items/{items[0].id}">item {items[0].id}</a>' in history


def test_bad_similar_settings_are_named_and_the_defaults_used(client, project, items, expert):
    response = as_user(client, expert).get(item_url(project, items[0], "?k=many&threshold=2"))
    assert response.status_code == 200
    assert shown_messages(response) == ["k: A valid integer is required.",
                                        "threshold: Ensure this value is less than or equal to 1."]
    response = client.post(item_url(project, items[0], "/label-similar"), {"labels": "lost_card", "items": ["x"]}, follow=True)
    assert shown_messages(response) == ["items: A valid integer is required."]


def test_an_item_not_encoded_yet_says_so_instead_of_neighbours(client, project, expert):
    item = Item.objects.create(project=project, data={"text": "fresh"})
    page = as_user(client, expert).get(item_url(project, item)).content.decode()
    assert "not been encoded yet" in page


def test_the_similar_page_finds_the_items_nearest_to_typed_text(client, project, add_items, viewer):
    texts = ["My card has not arrived yet", "What exchange rate do you use?", "Someone stole my wallet"]
    found = add_items(project, texts)
    encoder = base_encoder(project.base_model_path)
    store_vectors(project, found, encoder.encode(texts), version=encoder.version)
    page = as_user(client, viewer).get(f"/projects/{project.id}/similar",
                                       {"text": "the rate for converting euros", "k": 2}).content.decode()
    assert re.findall(r'<tr data-item="(\d+)">', page)[0] == str(found[1].id)
    assert len(re.findall(r'<tr data-item="', page)) == 2
    too_long = client.get(f"/projects/{project.id}/similar", {"text": "x" * 2001})
    assert shown_messages(too_long) == ["text: Ensure this field has no more than 2000 characters."]
