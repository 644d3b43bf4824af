"""The out-of-scope label setting (Project.out_of_scope_label): one of the project's labels, in a
single-label project; refused otherwise with 400 naming the field; only its admins change it."""
import pytest

from conftest import LABELS

pytestmark = pytest.mark.django_db


def test_a_project_is_created_with_an_out_of_scope_label_among_its_labels_and_refused_one_it_does_not_have(client_for, owner):
    client = client_for(owner)
    labels = LABELS + [{"key": "none", "name": "None of these"}]
    created = client.post("/api/projects/", {"name": "Bank", "labels": labels, "out_of_scope_label": "none"}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["out_of_scope_label"] == "none"
    refused = client.post("/api/projects/", {"name": "Bank", "labels": LABELS, "out_of_scope_label": "none"}, format="json")
    assert refused.status_code == 400 and "out_of_scope_label" in refused.json(), refused.content
    assert "not a label of this project" in refused.json()["out_of_scope_label"][0]
    spans = client.post("/api/projects/", {"name": "Tweets", "task_type": "spans", "labels": labels,
                                           "out_of_scope_label": "none"}, format="json")
    assert spans.status_code == 400 and "single-label" in spans.json()["out_of_scope_label"][0]


def test_an_admin_sets_and_clears_it_an_unknown_key_is_refused_and_an_outsider_cannot_touch_it(
        client_for, owner, expert, outsider, project):
    url = f"/api/projects/{project.id}/"
    admin = client_for(owner)
    assert admin.patch(url, {"out_of_scope_label": "exchange_rate"}, format="json").json()["out_of_scope_label"] == "exchange_rate"
    refused = admin.patch(url, {"out_of_scope_label": "weather"}, format="json")
    assert refused.status_code == 400 and "out_of_scope_label" in refused.json()
    project.refresh_from_db()
    assert project.out_of_scope_label == "exchange_rate"  # nothing half-written
    assert admin.patch(url, {"out_of_scope_label": ""}, format="json").status_code == 200
    assert client_for(expert).patch(url, {"out_of_scope_label": "lost_card"}, format="json").status_code == 403
    assert client_for(outsider).patch(url, {"out_of_scope_label": "lost_card"}, format="json").status_code == 404
    project.refresh_from_db()
    assert project.out_of_scope_label == ""
