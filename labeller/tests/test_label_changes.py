"""Changing a project's labels: rename, recolour, new shortcut, reorder, archive, delete. What
annotations hold (the key) never changes under them, and an archived label is refused for new
labels while its old annotations keep it."""
import pytest

from core.errors import Conflict, DomainError
from labeller import selectors, services
from labeller.label_defaults import SHORTCUTS, key_from_name, labels_from_names
from labeller.models import Annotation, Label
from labeller.services import InvalidLabels, annotation_submit

pytestmark = pytest.mark.django_db


def label(project, key):
    return Label.objects.get(project=project, key=key)


@pytest.fixture
def labelled(project, add_items, expert):
    """The project with one item labelled lost_card."""
    item, _ = add_items(project, ["stolen wallet", "card never came"])
    annotation_submit(item=item, user=expert, labels=["lost_card"])
    return project


def test_an_unused_label_takes_a_new_key_name_colour_and_shortcut(project):
    services.label_update(label=label(project, "card_arrival"), key="arrival", name="Arrival", color="#000000", shortcut="z")
    assert Label.objects.filter(project=project, key="arrival").values("name", "color", "shortcut").get() == {
        "name": "Arrival", "color": "#000000", "shortcut": "z"}


def test_a_used_label_keeps_its_key_but_may_be_renamed(labelled):
    with pytest.raises(Conflict) as refused:
        services.label_update(label=label(labelled, "lost_card"), key="stolen")
    assert refused.value.field == "key" and "used by annotations" in refused.value.message
    services.label_update(label=label(labelled, "lost_card"), key="lost_card", name="Stolen")
    assert label(labelled, "lost_card").name == "Stolen"


def test_a_key_or_shortcut_another_label_has_is_refused_naming_the_field(project):
    with pytest.raises(DomainError) as refused:
        services.label_update(label=label(project, "card_arrival"), key="lost_card")
    assert refused.value.field == "key"
    with pytest.raises(DomainError) as refused:
        services.label_update(label=label(project, "card_arrival"), shortcut="B")  # the screen ignores case
    assert refused.value.field == "shortcut" and refused.value.message == "shortcut 'B' is already used"


def test_a_label_keeps_its_own_shortcut_when_saved_again(project):
    services.label_update(label=label(project, "card_arrival"), name="Arrived?", shortcut="a")
    assert label(project, "card_arrival").shortcut == "a"


def test_an_archived_label_is_refused_for_new_labels_and_kept_by_old_ones(labelled, expert2):
    item = labelled.items.get(data__text="card never came")
    services.label_archive(label=label(labelled, "lost_card"))
    with pytest.raises(InvalidLabels) as refused:
        annotation_submit(item=item, user=expert2, labels=["lost_card"])
    assert refused.value.field == "labels" and "archived" in refused.value.message
    assert Annotation.objects.filter(project=labelled, labels=["lost_card"]).count() == 1
    assert "lost_card" not in [l["key"] for l in selectors.labels_for_screen(project=labelled)]


def test_an_unarchived_label_is_offered_again(labelled, expert2):
    item = labelled.items.get(data__text="card never came")
    services.label_archive(label=label(labelled, "lost_card"))
    services.label_archive(label=label(labelled, "lost_card"), archived=False)
    annotation_submit(item=item, user=expert2, labels=["lost_card"])
    assert selectors.label_usage(project=labelled) == {"lost_card": 2}


def test_a_used_label_cannot_be_deleted_an_unused_one_can(labelled):
    with pytest.raises(Conflict) as refused:
        services.label_delete(label=label(labelled, "lost_card"))
    assert "archive it instead" in refused.value.message
    services.label_delete(label=label(labelled, "exchange_rate"))
    assert list(labelled.labels.values_list("key", flat=True)) == ["card_arrival", "lost_card"]


def test_a_key_inside_another_key_is_not_taken_for_it(project, add_items, expert):
    services.label_create(project=project, key="card", name="Card")
    item, = add_items(project, ["x"])
    annotation_submit(item=item, user=expert, labels=["card_arrival"])
    assert not selectors.label_in_use(project=project, key="card")
    assert selectors.label_in_use(project=project, key="card_arrival")


def test_labels_are_reordered_only_as_a_whole(project):
    services.labels_reorder(project=project, keys=["lost_card", "card_arrival", "exchange_rate"])
    assert list(project.labels.values_list("key", flat=True)) == ["lost_card", "card_arrival", "exchange_rate"]
    with pytest.raises(DomainError) as refused:
        services.labels_reorder(project=project, keys=["lost_card"])
    assert refused.value.field == "keys"


def test_new_labels_get_shortcuts_while_free_characters_last_and_never_the_screens_keys():
    labels = labels_from_names([f"Intent {i}" for i in range(40)])
    shortcuts = [l["shortcut"] for l in labels]
    assert shortcuts[:11] == list("1234567890a") and shortcuts[35] == "z" and shortcuts[36:] == [""] * 4
    assert "/" not in SHORTCUTS and len(set(shortcuts[:36])) == 36
    assert key_from_name("  Card lost? (EU) ") == "card_lost_eu" and key_from_name("???") == "label"


def test_the_api_lists_whether_each_label_is_archived(project, client_for, viewer):
    services.label_archive(label=label(project, "lost_card"))
    answer = client_for(viewer).get(f"/api/projects/{project.id}/labels/").json()
    assert [(l["key"], l["archived"]) for l in answer] == [
        ("card_arrival", False), ("exchange_rate", False), ("lost_card", True)]


def test_the_api_creates_a_project_with_field_types_and_refuses_a_non_string_text_field(client_for, outsider):
    body = {"name": "Tickets", "labels": [{"key": "a", "name": "A"}], "field_types": {"channel": "string"}}
    created = client_for(outsider).post("/api/projects/", body, format="json")
    assert created.status_code == 201 and created.json()["field_types"] == {"channel": "string"}
    refused = client_for(outsider).post("/api/projects/", {**body, "field_types": {"text": "number"}}, format="json")
    assert refused.status_code == 400 and refused.json() == {"field_types": ["the text field 'text' is always a string"]}
    refused = client_for(outsider).post("/api/projects/", {**body, "field_types": {"channel": "date"}}, format="json")
    assert refused.status_code == 400 and list(refused.json()) == ["field_types"]


def test_the_api_refuses_two_labels_with_one_shortcut_in_different_case(client_for, outsider):
    labels = [{"key": "a", "name": "A", "shortcut": "a"}, {"key": "b", "name": "B", "shortcut": "A"}]
    refused = client_for(outsider).post("/api/projects/", {"name": "P", "labels": labels}, format="json")
    assert refused.status_code == 400 and refused.json() == {"labels": ["label shortcuts must be unique"]}
