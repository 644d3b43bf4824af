"""POST /api/projects/<id>/imports: all-or-nothing by default, every bad row reported."""
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from labeller.models import Annotation, Item

pytestmark = pytest.mark.django_db


def upload(client, project, name, content: bytes, **extra):
    return client.post(
        f"/api/projects/{project.id}/imports",
        {"file": SimpleUploadedFile(name, content), **extra},
        format="multipart",
    )


def test_it_imports_a_csv_file(client_for, owner, project):
    response = upload(client_for(owner), project, "items.csv", b"external_id,text,source\n1,hello,web\n2,bye,app\n")
    assert response.status_code == 201, response.json()
    assert response.json()["created"] == 2
    assert list(Item.objects.filter(project=project).values_list("external_id", "data")) == [
        ("1", {"text": "hello", "source": "web"}),
        ("2", {"text": "bye", "source": "app"}),
    ]


def test_it_imports_nothing_and_reports_every_bad_row_with_line_and_field(client_for, owner, project):
    content = b"text,source\nfine,web\n,web\nalso fine,app\n,app\n"
    response = upload(client_for(owner), project, "items.csv", content)
    assert response.status_code == 400
    body = response.json()
    assert body["committed"] is False and body["created"] == 0 and body["error_count"] == 2
    assert [(e["line"], e["field"]) for e in body["errors"]] == [(3, "text"), (5, "text")]
    assert "required field 'text'" in body["errors"][0]["message"]
    assert not Item.objects.filter(project=project).exists()


def test_it_checks_every_required_field_of_the_schema(client_for, owner, make_project):
    project = make_project(required_fields=["text", "locale"])
    response = upload(client_for(owner), project, "items.jsonl", b'{"text": "hi", "locale": "en"}\n{"text": "no locale"}\n')
    assert response.status_code == 400
    assert response.json()["errors"] == [{"row": 2, "line": 2, "field": "locale", "message": "required field 'locale' is missing or empty"}]


def test_partial_mode_keeps_good_rows_and_returns_the_rejected_ones(client_for, owner, project):
    content = b"text,source\ngood,web\n,app\nalso good,app\n"
    response = upload(client_for(owner), project, "items.csv", content, mode="partial")
    assert response.status_code == 201
    body = response.json()
    assert body["committed"] is True and body["created"] == 2 and body["error_count"] == 1
    assert body["errors"][0]["line"] == 3
    assert sorted(Item.objects.values_list("data__text", flat=True)) == ["also good", "good"]


def test_a_malformed_csv_imports_nothing(client_for, owner, project):
    response = upload(client_for(owner), project, "items.csv", b"text,source\nok,web\ntoo,many,columns\n")
    assert response.status_code == 400
    assert response.json()["errors"][0] == {"row": 2, "line": 3, "field": None, "message": "expected 2 columns, found 3"}
    assert not Item.objects.exists()


def test_it_refuses_a_file_in_the_wrong_encoding(client_for, owner, project):
    response = upload(client_for(owner), project, "items.csv", "text\nrésumé\n".encode("latin-1"))
    assert response.status_code == 400
    assert "not valid UTF-8" in response.json()["errors"][0]["message"]
    assert not Item.objects.exists()


def test_it_reports_duplicate_external_ids_and_never_imports_them_twice(client_for, owner, project):
    client = client_for(owner)
    first = upload(client, project, "a.csv", b"external_id,text\nx1,one\nx2,two\nx1,one again\n")
    assert first.status_code == 201
    assert first.json()["created"] == 2
    assert first.json()["duplicates"] == [{"row": 3, "line": 4, "external_id": "x1", "duplicate_of": "row 1"}]
    again = upload(client, project, "a.csv", b"external_id,text\nx1,one\nx3,three\n")
    assert again.json()["created"] == 1
    assert again.json()["duplicates"][0]["duplicate_of"] == "an item already in the project"
    assert Item.objects.filter(project=project).count() == 3


def test_it_lists_duplicates_up_to_the_reporting_cap_and_counts_them_all(client_for, owner, project, settings):
    settings.LABELLOOP_IMPORT_MAX_REPORTED_ERRORS = 3
    rows = "".join(f"same,copy {i}\n" for i in range(10))
    response = upload(client_for(owner), project, "a.csv", f"external_id,text\n{rows}".encode())
    assert response.status_code == 201
    report = response.json()
    assert report["created"] == 1 and report["duplicate_count"] == 9
    assert len(report["duplicates"]) == 3 and report["duplicates_truncated"] is True
    assert report["duplicates"][0] == {"row": 2, "line": 3, "external_id": "same", "duplicate_of": "row 1"}


def test_the_same_external_id_may_live_in_two_projects(client_for, owner, make_project):
    a, b = make_project(name="A"), make_project(name="B")
    for project in (a, b):
        assert upload(client_for(owner), project, "a.csv", b"external_id,text\nsame,hello\n").json()["created"] == 1


def test_it_imports_label_studio_tasks_with_their_annotations(client_for, owner, project):
    tasks = [
        {"data": {"text": "where is my card"}, "annotations": [{"result": [{"type": "choices", "value": {"choices": ["card_arrival"]}}]}]},
        {"data": {"text": "what rate do you use"}},
    ]
    response = upload(client_for(owner), project, "tasks.json", json.dumps(tasks).encode())
    assert response.status_code == 201, response.json()
    assert response.json()["annotations_created"] == 1
    labelled = Item.objects.get(data__text="where is my card")
    assert labelled.is_done and labelled.annotation_count == 1
    assert Annotation.objects.get(item=labelled).labels == ["card_arrival"]


def test_it_rejects_an_unknown_label_in_imported_annotations(client_for, owner, project):
    tasks = [{"data": {"text": "x"}, "annotations": [{"result": [{"value": {"choices": ["no_such_label"]}}]}]}]
    response = upload(client_for(owner), project, "tasks.json", json.dumps(tasks).encode())
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "annotations"
    assert "unknown label 'no_such_label'" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize("name, content", [
    ("drawing.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'),
    ("page.html", b"<html><body><script>alert(1)</script></body></html>"),
    ("sneaky.csv", b"<html><script>alert(1)</script></html>"),
])
def test_it_refuses_svg_and_html_uploaded_as_data(client_for, owner, project, name, content):
    response = upload(client_for(owner), project, name, content)
    assert response.status_code == 400
    assert "file" in response.json()
    assert not Item.objects.exists()


def test_it_refuses_an_oversized_upload(client_for, owner, project, settings):
    settings.LABELLOOP_MAX_UPLOAD_BYTES = 100
    response = upload(client_for(owner), project, "big.csv", b"text\n" + b"x" * 200 + b"\n")
    assert response.status_code == 400
    assert "limit is 100 bytes" in response.json()["file"][0]


def test_it_refuses_an_upload_whose_declared_size_is_over_the_limit_before_reading_it(client_for, owner, project, settings):
    settings.LABELLOOP_MAX_UPLOAD_BYTES = 100
    response = upload(client_for(owner), project, "big.csv", b"text\n" + b"x" * 100_000 + b"\n")
    assert response.status_code == 413
    assert "exceeds the limit" in response.json()["file"][0]


def test_the_uploaded_file_name_is_never_used_as_a_path(client_for, owner, project, tmp_path):
    response = upload(client_for(owner), project, "../../../../tmp/evil.csv", b"text\nhello\n")
    assert response.status_code == 201
    assert Item.objects.get().data == {"text": "hello"}


def test_html_in_item_text_is_stored_verbatim(client_for, owner, project):
    upload(client_for(owner), project, "items.csv", b'text\n"<script>alert(1)</script>"\n')
    assert Item.objects.get().data["text"] == "<script>alert(1)</script>"


def test_only_project_admins_import(client_for, expert, outsider, project):
    content = b"text\nhello\n"
    assert upload(client_for(expert), project, "a.csv", content).status_code == 403
    assert upload(client_for(outsider), project, "a.csv", content).status_code == 404
    assert not Item.objects.exists()
