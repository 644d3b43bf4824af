"""Every API answer is scoped to the caller's projects: outsiders get 404, never data."""
import pytest
from rest_framework.test import APIClient

from labeller.models import Annotation, ExportJob
from labeller.services import annotation_submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def other(make_project, add_items, owner):
    """Another team's project, with an item, an annotation and an export the outsider must not reach."""
    project = make_project(name="Other team")
    (item,) = add_items(project, ["secret text"])
    annotation = annotation_submit(item=item, user=owner, labels=["card_arrival"])
    export = ExportJob.objects.create(project=project, created_by=owner, format="jsonl")
    return project, item, annotation, export


def test_the_project_list_shows_only_the_callers_projects(client_for, outsider, other):
    assert client_for(outsider).get("/api/projects/").json()["results"] == []


def test_an_outsider_gets_404_on_every_project_url(client_for, outsider, other):
    project, item, annotation, export = other
    client = client_for(outsider)
    base = f"/api/projects/{project.id}"
    for url in [f"{base}/", f"{base}/labels/", f"{base}/items/", f"{base}/items/{item.id}/", f"{base}/annotations/",
                f"{base}/annotations/{annotation.id}/", f"{base}/agreement", f"{base}/exports/",
                f"{base}/exports/{export.id}/", f"{base}/exports/{export.id}/download"]:
        response = client.get(url)
        assert response.status_code == 404, url
        assert b"secret text" not in response.content
    for url, body in [(f"{base}/queue/next", {}), (f"{base}/items/{item.id}/annotations", {"labels": ["card_arrival"]}),
                      (f"{base}/items/{item.id}/skip", {}), (f"{base}/exports/", {"format": "jsonl"})]:
        assert client.post(url, body, format="json").status_code == 404, url
    assert client.patch(f"{base}/annotations/{annotation.id}/", {"labels": ["lost_card"]}, format="json").status_code == 404


def test_ids_guessed_in_sequence_from_ones_own_project_do_not_reach_another(client_for, owner, make_project, add_items, other):
    """A member of project A walks item and annotation ids: those of project B are 404 under A."""
    _, item, annotation, export = other
    mine = make_project(name="Mine")
    (my_item,) = add_items(mine, ["mine"])
    client = client_for(owner)  # a member of both, asking through project A's URLs
    base = f"/api/projects/{mine.id}"
    for item_id in range(1, my_item.id + 5):
        response = client.get(f"{base}/items/{item_id}/")
        assert response.status_code == (200 if item_id == my_item.id else 404)
    assert client.get(f"{base}/annotations/{annotation.id}/").status_code == 404
    assert client.post(f"{base}/items/{item.id}/annotations", {"labels": ["card_arrival"]}, format="json").status_code == 404
    assert client.get(f"{base}/exports/{export.id}/").status_code == 404
    assert Annotation.objects.filter(item=item).count() == 1


@pytest.mark.parametrize("query", [
    "ordering=project__created_by__password",
    "ordering=-data__text",
    "project__created_by__username=owner",
    "data__text__startswith=s",
])
def test_relation_lookups_in_filter_or_ordering_parameters_are_refused(client_for, owner, project, query):
    response = client_for(owner).get(f"/api/projects/{project.id}/items/?{query}")
    assert response.status_code == 400
    field = query.split("=")[0]
    assert field in response.json()


def test_allowed_filters_and_orderings_work(client_for, owner, project, add_items):
    first, second = add_items(project, ["a", "b"])
    response = client_for(owner).get(f"/api/projects/{project.id}/items/?ordering=-id&status=unlabelled")
    assert [item["id"] for item in response.json()["results"]] == [second.id, first.id]


def test_path_traversal_in_an_export_id_finds_nothing(client_for, owner, project):
    client = client_for(owner)
    for path in ["../../etc/passwd", "..%2F..%2Fsecret_key", "%2e%2e/%2e%2e/secret_key"]:
        assert client.get(f"/api/projects/{project.id}/exports/{path}/download").status_code == 404


def test_token_authentication_sees_the_same_scope(owner, outsider, project):
    client = APIClient()
    response = client.post("/api/auth/token", {"username": "outsider", "password": "outsider-password"})
    token = response.json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/projects/").json()["results"] == []
    assert client.get(f"/api/projects/{project.id}/").status_code == 404


def test_anonymous_callers_are_refused(project):
    assert APIClient().get("/api/projects/").status_code in (401, 403)


def test_only_admins_change_the_project_and_its_members(client_for, expert, owner, outsider, project):
    assert client_for(expert).patch(f"/api/projects/{project.id}/", {"name": "x"}, format="json").status_code == 403
    response = client_for(owner).post(f"/api/projects/{project.id}/members/", {"username": "outsider", "role": "viewer"}, format="json")
    assert response.status_code == 200
    assert client_for(outsider).get(f"/api/projects/{project.id}/").status_code == 200


def test_creating_a_project_makes_the_caller_its_admin(client_for, outsider):
    response = client_for(outsider).post("/api/projects/", {
        "name": "New", "labels": [{"key": "yes", "name": "Yes", "shortcut": "y"}, {"key": "no", "name": "No", "shortcut": "n"}],
    }, format="json")
    assert response.status_code == 201
    assert response.json()["role"] == "admin" and [l["key"] for l in response.json()["labels"]] == ["yes", "no"]


def test_a_project_with_bad_labels_is_refused_with_the_field_named(client_for, outsider):
    response = client_for(outsider).post("/api/projects/", {
        "name": "New", "labels": [{"key": "a b", "name": "A"}],
    }, format="json")
    assert response.status_code == 400 and "labels" in response.json()


def test_the_openapi_schema_and_docs_are_served(client_for, owner):
    client = client_for(owner)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert "/api/projects/{project_id}/queue/next" in schema.json()["paths"]
    assert client.get("/api/docs/").status_code == 200


@pytest.mark.parametrize("path", [
    "/api/projects/{huge}/", "/api/projects/{project}/items/{huge}/skip", "/api/projects/{project}/training-policy",
    "/api/projects/{project}/models/{huge}/", "/api/projects/{huge}/predict",
])
def test_ids_beyond_64_bits_in_a_url_are_404_not_a_server_error(client_for, owner, project, path):
    huge = 2**63  # one past the largest id the database can hold
    url = path.format(huge=huge, project=project.id if "{huge}" in path else huge)
    response = client_for(owner).post(url, {}, format="json") if url.endswith(("skip", "predict")) else client_for(owner).get(url)
    assert response.status_code == 404, url
