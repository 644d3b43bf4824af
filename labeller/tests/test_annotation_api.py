"""The queue and annotation endpoints the labelling screen uses."""
import pytest

from labeller.models import Annotation, Item

pytestmark = pytest.mark.django_db


def next_item(client, project, exclude=()):
    return client.post(f"/api/projects/{project.id}/queue/next", {"exclude": list(exclude)}, format="json")


def test_next_returns_the_item_with_its_text_and_hold(client_for, expert, project, add_items):
    add_items(project, ["where is my card"])
    response = next_item(client_for(expert), project)
    assert response.status_code == 200
    assert response.json()["text"] == "where is my card" and response.json()["held_until"]


def test_next_answers_204_when_nothing_is_left(client_for, expert, project):
    assert next_item(client_for(expert), project).status_code == 204


def test_next_refuses_an_excluded_id_beyond_64_bits_naming_the_field(client_for, expert, project, add_items):
    add_items(project, ["one"])
    response = next_item(client_for(expert), project, exclude=[2**63])
    assert response.status_code == 400 and "exclude" in response.json()


def test_submitting_labels_records_them_with_the_time_spent(client_for, expert, project, add_items):
    (item,) = add_items(project, ["one"])
    client = client_for(expert)
    next_item(client, project)
    response = client.post(
        f"/api/projects/{project.id}/items/{item.id}/annotations", {"labels": ["card_arrival"], "lead_time": 4.2}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["item_done"] is True
    annotation = Annotation.objects.get()
    assert (annotation.annotator, annotation.labels, annotation.lead_time) == (expert, ["card_arrival"], 4.2)


def test_it_rejects_an_unknown_label_key(client_for, expert, project, add_items):
    (item,) = add_items(project, ["one"])
    response = client_for(expert).post(
        f"/api/projects/{project.id}/items/{item.id}/annotations", {"labels": ["nope"]}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {"labels": ["unknown label key 'nope'"]}
    assert not Annotation.objects.exists()


def test_a_single_label_project_takes_exactly_one_label(client_for, expert, project, add_items):
    (item,) = add_items(project, ["one"])
    url = f"/api/projects/{project.id}/items/{item.id}/annotations"
    response = client_for(expert).post(url, {"labels": ["card_arrival", "lost_card"]}, format="json")
    assert response.status_code == 400 and "exactly 1 label" in response.json()["labels"][0]


def test_a_multi_label_project_takes_several(client_for, expert, make_project, add_items):
    project = make_project(task_type="multi_label")
    (item,) = add_items(project, ["one"])
    url = f"/api/projects/{project.id}/items/{item.id}/annotations"
    response = client_for(expert).post(url, {"labels": ["lost_card", "card_arrival"]}, format="json")
    assert response.status_code == 201 and response.json()["labels"] == ["card_arrival", "lost_card"]


def test_labelling_an_item_another_expert_holds_is_a_conflict(client_for, expert, expert2, project, add_items):
    (item,) = add_items(project, ["one"])
    next_item(client_for(expert), project)
    response = client_for(expert2).post(
        f"/api/projects/{project.id}/items/{item.id}/annotations", {"labels": ["card_arrival"]}, format="json"
    )
    assert response.status_code == 409 and response.json() == {"item": ["held by another expert"]}


def test_skip_is_recorded_and_moves_on(client_for, expert, project, add_items):
    first, second = add_items(project, ["one", "two"])
    client = client_for(expert)
    next_item(client, project)
    assert client.post(f"/api/projects/{project.id}/items/{first.id}/skip", {}, format="json").status_code == 201
    assert Annotation.objects.get().skipped is True
    assert Item.objects.get(id=first.id).annotation_count == 0
    assert next_item(client, project).json()["id"] == second.id


def test_an_expert_edits_their_last_label_from_the_history(client_for, expert, project, add_items):
    (item,) = add_items(project, ["one"])
    client = client_for(expert)
    client.post(f"/api/projects/{project.id}/items/{item.id}/annotations", {"labels": ["card_arrival"]}, format="json")
    history = client.get(f"/api/projects/{project.id}/annotations/?mine=true").json()["results"]
    assert [(h["item"], h["labels"], h["item_text"]) for h in history] == [(item.id, ["card_arrival"], "one")]
    response = client.patch(
        f"/api/projects/{project.id}/annotations/{history[0]['id']}/", {"labels": ["lost_card"], "lead_time": 1.0}, format="json"
    )
    assert response.status_code == 200 and response.json()["labels"] == ["lost_card"]
    assert Annotation.objects.get().labels == ["lost_card"]


def test_an_expert_cannot_edit_another_experts_annotation(client_for, expert, expert2, project, add_items):
    (item,) = add_items(project, ["one"])
    client_for(expert).post(f"/api/projects/{project.id}/items/{item.id}/annotations", {"labels": ["card_arrival"]}, format="json")
    annotation = Annotation.objects.get()
    response = client_for(expert2).patch(
        f"/api/projects/{project.id}/annotations/{annotation.id}/", {"labels": ["lost_card"]}, format="json"
    )
    assert response.status_code == 404
    assert Annotation.objects.get().labels == ["card_arrival"]


def test_viewers_read_but_do_not_label(client_for, viewer, project, add_items):
    (item,) = add_items(project, ["one"])
    client = client_for(viewer)
    assert client.get(f"/api/projects/{project.id}/items/").status_code == 200
    assert next_item(client, project).status_code == 403
    response = client.post(f"/api/projects/{project.id}/items/{item.id}/annotations", {"labels": ["card_arrival"]}, format="json")
    assert response.status_code == 403


def test_agreement_is_reported_for_items_with_overlap(client_for, owner, expert, expert2, make_project, add_items):
    project = make_project(labels_per_item=2)
    items = add_items(project, ["a", "b", "c"])
    for item, (first, second) in zip(items, [("card_arrival", "card_arrival"), ("lost_card", "lost_card"), ("exchange_rate", "lost_card")]):
        for user, label in ((expert, first), (expert2, second)):
            client_for(user).post(f"/api/projects/{project.id}/items/{item.id}/annotations", {"labels": [label]}, format="json")
    body = client_for(owner).get(f"/api/projects/{project.id}/agreement").json()
    assert body["items_with_overlap"] == 3
    assert body["statistic"] == "krippendorff_alpha_nominal"
    assert 0 < body["alpha"] < 1
