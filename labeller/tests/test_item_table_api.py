"""GET items/table and POST items/bulk: the data manager's API."""
import pytest

from labeller.models import ExportJob, Item
from labeller.services import annotation_submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(make_project):
    return make_project()


@pytest.fixture
def items(project, add_items, expert):
    items = add_items(project, ["card never arrived", "exchange rate question", "lost my card", "hello there"])
    for item in items:
        item.project = project
    annotation_submit(item=items[0], user=expert, labels=["card_arrival"])
    return items


def table(client, project, **params):
    return client.get(f"/api/projects/{project.id}/items/table", params)


def bulk(client, project, body):
    return client.post(f"/api/projects/{project.id}/items/bulk", body, format="json")


def test_the_table_answers_rows_a_cursor_and_an_exact_count(client_for, viewer, project, items):
    response = table(client_for(viewer), project, limit=3, sort="-id")
    assert response.status_code == 200, response.content
    body = response.json()
    assert [row["id"] for row in body["results"]] == [items[3].id, items[2].id, items[1].id]
    assert body["count"] == {"value": 4, "exact": True, "text": "4"}
    following = table(client_for(viewer), project, limit=3, sort="-id", cursor=body["next_cursor"]).json()
    assert [row["id"] for row in following["results"]] == [items[0].id]
    assert following["next_cursor"] is None and following["count"] is None


def test_filters_and_search_combine_in_the_api(client_for, viewer, project, items):
    body = table(client_for(viewer), project, q="card", status="done").json()
    assert [row["id"] for row in body["results"]] == [items[0].id]
    assert body["results"][0]["majority"] == ["card_arrival"]
    assert body["results"][0]["annotations"] == [{"annotator": "expert", "source": "expert", "labels": ["card_arrival"]}]


@pytest.mark.parametrize("params, field", [
    ({"cursor": "not-a-cursor"}, "cursor"),
    ({"sort": "data"}, "sort"),
    ({"label": "no_such_label"}, "label"),
    ({"predicted": "no_such_label"}, "predicted"),
    ({"confidence_min": "nan"}, "confidence_min"),
    ({"agreement_max": "2"}, "agreement_max"),
    ({"limit": "1000"}, "limit"),
    ({"limit": "٣"}, "limit"),
    ({"annotator": "x"}, "annotator"),
    ({"disagrees": "perhaps"}, "disagrees"),
    ({"created_after": "yesterday"}, "created_after"),
    ({"source": "email"}, "source"),
    ({"data__text": "x"}, "data__text"),
])
def test_bad_parameters_answer_400_naming_the_parameter(client_for, viewer, project, items, params, field):
    response = table(client_for(viewer), project, **params)
    assert response.status_code == 400
    assert field in response.json()


def test_an_outsider_gets_404_from_the_table_and_the_bulk_actions(client_for, outsider, project, items):
    assert table(client_for(outsider), project).status_code == 404
    assert bulk(client_for(outsider), project, {"action": "requeue", "ids": [items[0].id]}).status_code == 404


def test_an_expert_marks_a_selection_for_review(client_for, expert, project, items):
    response = bulk(client_for(expert), project, {"action": "mark_review", "ids": [items[1].id, items[2].id]})
    assert response.json() == {"action": "mark_review", "affected": 2}
    assert set(Item.objects.filter(needs_review=True).values_list("id", flat=True)) == {items[1].id, items[2].id}


def test_an_expert_requeues_every_item_a_filter_keeps(client_for, expert, project, items):
    response = bulk(client_for(expert), project, {"action": "requeue", "filter": {"status": "done"}})
    assert response.json() == {"action": "requeue", "affected": 1}
    assert not Item.objects.get(id=items[0].id).is_done


def test_a_bulk_action_never_reaches_another_projects_items(client_for, owner, make_project, add_items, project, items):
    other = make_project(name="Other")
    (theirs,) = add_items(other, ["card from elsewhere"])
    response = bulk(client_for(owner), project, {"action": "delete", "ids": [theirs.id], "confirm": True})
    assert response.json()["affected"] == 0
    assert Item.objects.filter(id=theirs.id).exists()


def test_only_an_admin_deletes_and_only_with_confirm(client_for, owner, expert, viewer, project, items):
    body = {"action": "delete", "filter": {"q": "card"}, "confirm": True}
    assert bulk(client_for(viewer), project, body).status_code == 403
    assert bulk(client_for(expert), project, body).status_code == 403
    unconfirmed = bulk(client_for(owner), project, {**body, "confirm": False})
    assert unconfirmed.status_code == 400 and "confirm" in unconfirmed.json()
    assert bulk(client_for(owner), project, body).json() == {"action": "delete", "affected": 2}
    assert set(Item.objects.values_list("id", flat=True)) == {items[1].id, items[3].id}


def test_export_of_a_filter_is_an_export_job_of_those_items(client_for, expert, project, items, django_capture_on_commit_callbacks):
    from labeller.exporting import _filtered_items

    response = bulk(client_for(expert), project, {"action": "export", "format": "jsonl", "filter": {"q": "card"}})
    assert response.status_code == 202, response.content
    job = ExportJob.objects.get()
    assert job.filters["table"] == {"q": "card", "status": "all"}
    assert set(_filtered_items(project, job.filters).values_list("id", flat=True)) == {items[0].id, items[2].id}


@pytest.mark.parametrize("body, field", [
    ({"action": "explode", "ids": [1]}, "action"),
    ({"action": "requeue"}, "ids"),
    ({"action": "requeue", "ids": [1], "filter": {}}, "ids"),
    ({"action": "requeue", "filter": {"nope": 1}}, "filter"),
    ({"action": "requeue", "filter": {"label": "nope"}}, "filter"),
    ({"action": "export", "ids": [1]}, "format"),
    ({"action": "requeue", "ids": ["x"]}, "ids"),
])
def test_bad_bulk_requests_answer_400_naming_the_field(client_for, owner, project, items, body, field):
    response = bulk(client_for(owner), project, body)
    assert response.status_code == 400
    assert field in response.json()
