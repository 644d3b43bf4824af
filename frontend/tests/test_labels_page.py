"""The labels page: project admins add, rename, recolour, re-key (while unused), reorder, archive
and unarchive, and delete (while unused) the project's labels; a refusal names the field; experts
and viewers get 403 and outsiders 404 on every labels route."""
import pytest

from labeller.models import Label
from labeller.services import annotation_submit

from .test_new_project_page import shown_messages

pytestmark = pytest.mark.django_db


def labels_url(project, suffix=""):
    return f"/projects/{project.id}/labels{suffix}"


def label(project, key):
    return Label.objects.get(project=project, key=key)


def row(label, **change):
    return {"key": label.key, "name": label.name, "shortcut": label.shortcut, "color": label.color, **change}


@pytest.fixture
def admin_client(client, owner):
    client.force_login(owner)
    return client


@pytest.fixture
def used(project, add_items, expert):
    """lost_card is used by one annotation."""
    item, = add_items(project, ["my wallet was stolen"])
    annotation_submit(item=item, user=expert, labels=["lost_card"])
    return label(project, "lost_card")


def test_the_admin_sees_each_label_with_its_use_and_a_link_from_the_project_page(admin_client, project, used):
    page = admin_client.get(labels_url(project)).content.decode()
    assert page.index('data-key="card_arrival"') < page.index('data-key="exchange_rate"') < page.index('data-key="lost_card"')
    assert "1 annotation" in page and 'aria-label="Delete lost_card"' not in page and 'aria-label="Delete card_arrival"' in page
    assert labels_url(project) in admin_client.get(f"/projects/{project.id}/").content.decode()


def test_the_admin_adds_a_label(admin_client, project):
    response = admin_client.post(labels_url(project, "/add"),
                                 {"key": "refund", "name": "Refund", "shortcut": "r", "color": "#123456"}, follow=True)
    assert shown_messages(response) == ["Label “Refund” added."]
    assert label(project, "refund").order == 3


def test_the_admin_renames_recolours_and_gives_a_new_shortcut_to_a_used_label(admin_client, project, used):
    admin_client.post(labels_url(project, f"/{used.id}/update"), row(used, name="Stolen", color="#000000", shortcut="s"))
    assert Label.objects.filter(id=used.id).values("key", "name", "color", "shortcut").get() == {
        "key": "lost_card", "name": "Stolen", "color": "#000000", "shortcut": "s"}


@pytest.mark.parametrize("change, problem", [
    ({"key": "stolen"}, "label 'lost_card' is used by annotations: its key cannot change (rename it instead)"),
    ({"shortcut": "A"}, "shortcut 'A' is already used"),
    ({"name": ""}, "name: This field may not be blank."),
    ({"color": "red"}, "color: use #rrggbb"),
    ({"shortcut": "ab"}, "shortcut: Ensure this field has no more than 1 characters."),
])
def test_a_change_that_would_corrupt_data_or_is_malformed_is_refused_with_why(admin_client, project, used, change, problem):
    response = admin_client.post(labels_url(project, f"/{used.id}/update"), row(used, **change), follow=True)
    assert shown_messages(response) == [problem]
    assert Label.objects.filter(id=used.id).values("key", "name", "color", "shortcut").get() == {
        "key": "lost_card", "name": "Lost or stolen card", "color": "#dc2626", "shortcut": "c"}


def test_an_unused_label_takes_a_new_key_and_a_taken_one_is_refused(admin_client, project):
    arrival = label(project, "card_arrival")
    response = admin_client.post(labels_url(project, f"/{arrival.id}/update"), row(arrival, key="exchange_rate"), follow=True)
    assert shown_messages(response) == ["label 'exchange_rate' already exists in this project"]
    admin_client.post(labels_url(project, f"/{arrival.id}/update"), row(arrival, key="arrival"))
    assert Label.objects.get(id=arrival.id).key == "arrival"


def test_the_admin_archives_a_label_experts_stop_seeing_it_and_unarchives_it(client, owner, expert, project, used):
    client.force_login(owner)
    response = client.post(labels_url(project, f"/{used.id}/archive"), follow=True)
    assert shown_messages(response) == ["Label “Lost or stolen card” archived: it is no longer offered for new labels."]
    assert 'class="archived"' in response.content.decode()
    client.force_login(expert)
    assert '"lost_card"' not in client.get(f"/projects/{project.id}/label").content.decode()
    client.force_login(owner)
    client.post(labels_url(project, f"/{used.id}/archive"), {"archived": "false"})
    assert not label(project, "lost_card").archived
    client.force_login(expert)
    assert '"lost_card"' in client.get(f"/projects/{project.id}/label").content.decode()


def test_a_used_label_cannot_be_deleted_and_an_unused_one_can(admin_client, project, used):
    response = admin_client.post(labels_url(project, f"/{used.id}/delete"), follow=True)
    assert shown_messages(response) == ["label 'lost_card' is used by annotations: archive it instead of deleting it"]
    admin_client.post(labels_url(project, f"/{label(project, 'exchange_rate').id}/delete"))
    assert list(project.labels.values_list("key", flat=True)) == ["card_arrival", "lost_card"]


def test_the_admin_moves_a_label_up_and_down(admin_client, project):
    admin_client.post(labels_url(project, f"/{label(project, 'lost_card').id}/move"), {"direction": "up"})
    assert list(project.labels.values_list("key", flat=True)) == ["card_arrival", "lost_card", "exchange_rate"]
    admin_client.post(labels_url(project, f"/{label(project, 'card_arrival').id}/move"), {"direction": "down"})
    admin_client.post(labels_url(project, f"/{label(project, 'exchange_rate').id}/move"), {"direction": "down"})  # last already
    assert list(project.labels.values_list("key", flat=True)) == ["lost_card", "card_arrival", "exchange_rate"]


def test_a_label_of_another_project_is_not_found(admin_client, project, make_project):
    other = make_project(name="Other")
    assert admin_client.post(labels_url(project, f"/{label(other, 'lost_card').id}/archive")).status_code == 404
    assert not label(other, "lost_card").archived


@pytest.mark.parametrize("who, status", [("expert", 403), ("viewer", 403), ("outsider", 404)])
def test_only_admins_reach_any_labels_route(client, project, request, who, status):
    client.force_login(request.getfixturevalue(who))
    some = label(project, "card_arrival")
    assert client.get(labels_url(project)).status_code == status
    for suffix in ("/add", f"/{some.id}/update", f"/{some.id}/archive", f"/{some.id}/move", f"/{some.id}/delete"):
        assert client.post(labels_url(project, suffix), row(some, name="Hacked")).status_code == status, suffix
    assert Label.objects.get(id=some.id).name == "Card arrival" and not Label.objects.get(id=some.id).archived


def test_the_project_page_links_to_labels_for_admins_only(client, expert, project):
    client.force_login(expert)
    assert labels_url(project) not in client.get(f"/projects/{project.id}/").content.decode()
