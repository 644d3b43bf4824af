"""Exports: formats, filters and a round trip through Label Studio JSON."""
import csv
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from labeller.models import Annotation, ExportJob
from labeller.services import annotation_submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def labelled(make_project, add_items, expert, expert2):
    project = make_project(labels_per_item=2)
    agreed, split, open_ = add_items(project, ["where is my card", "rate?", "untouched"])
    for user in (expert, expert2):
        annotation_submit(item=agreed, user=user, labels=["card_arrival"], lead_time=2.0)
    annotation_submit(item=split, user=expert, labels=["exchange_rate"], lead_time=1.0)
    annotation_submit(item=split, user=expert2, labels=["lost_card"], lead_time=3.0)
    return project


def export(client, project, django_capture_on_commit_callbacks, **body):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/projects/{project.id}/exports/", body, format="json")
    assert response.status_code == 202, response.json()
    job = client.get(f"/api/projects/{project.id}/exports/{response.json()['id']}/").json()
    assert job["status"] == "done", job
    download = client.get(job["download_url"])
    assert download.status_code == 200
    return b"".join(download.streaming_content).decode()


def test_jsonl_export_carries_annotators_timestamps_lead_times_and_majority(
        eager_celery, client_for, owner, labelled, django_capture_on_commit_callbacks):
    rows = [json.loads(line) for line in export(client_for(owner), labelled, django_capture_on_commit_callbacks, format="jsonl").splitlines()]
    assert [r["data"]["text"] for r in rows] == ["where is my card", "rate?", "untouched"]
    first = rows[0]
    assert first["majority"] == ["card_arrival"] and first["agreement"] == 1.0 and first["done"] is True
    assert [(a["annotator"], a["labels"], a["lead_time"]) for a in first["annotations"]] == [
        ("expert", ["card_arrival"], 2.0), ("expert2", ["card_arrival"], 2.0)]
    assert first["annotations"][0]["created_at"] and first["annotations"][0]["updated_at"]
    assert rows[1]["agreement"] == 0.5 and rows[2]["annotations"] == []


def test_export_filters_by_status_and_agreement(eager_celery, client_for, owner, labelled, django_capture_on_commit_callbacks):
    client = client_for(owner)
    done = export(client, labelled, django_capture_on_commit_callbacks, format="jsonl", status="done")
    assert [json.loads(line)["data"]["text"] for line in done.splitlines()] == ["where is my card", "rate?"]
    agreed = export(client, labelled, django_capture_on_commit_callbacks, format="jsonl", min_agreement=0.9)
    assert [json.loads(line)["data"]["text"] for line in agreed.splitlines()] == ["where is my card"]


def test_csv_export_has_one_row_per_annotation(eager_celery, client_for, owner, labelled, django_capture_on_commit_callbacks):
    rows = list(csv.DictReader(io.StringIO(export(client_for(owner), labelled, django_capture_on_commit_callbacks, format="csv"))))
    assert [(r["text"], r["annotator"], r["labels"]) for r in rows] == [
        ("where is my card", "expert", "card_arrival"), ("where is my card", "expert2", "card_arrival"),
        ("rate?", "expert", "exchange_rate"), ("rate?", "expert2", "lost_card"), ("untouched", "", "")]
    assert rows[0]["lead_time"] == "2.0" and rows[0]["majority"] == "card_arrival"


def test_label_studio_export_imports_back_with_its_annotations(
        eager_celery, client_for, owner, labelled, make_project, django_capture_on_commit_callbacks):
    client = client_for(owner)
    content = export(client, labelled, django_capture_on_commit_callbacks, format="label_studio")
    tasks = json.loads(content)
    assert tasks[0]["annotations"][0]["result"][0]["value"]["choices"] == ["card_arrival"]
    copy = make_project(name="Copy", labels_per_item=2)
    response = client.post(f"/api/projects/{copy.id}/imports", {"file": SimpleUploadedFile("export.json", content.encode())}, format="multipart")
    assert response.status_code == 201, response.json()
    assert response.json()["created"] == 3 and response.json()["annotations_created"] == 4
    assert Annotation.objects.filter(project=copy).count() == 4


def test_an_unknown_export_format_is_refused(client_for, owner, project):
    response = client_for(owner).post(f"/api/projects/{project.id}/exports/", {"format": "xml"}, format="json")
    assert response.status_code == 400 and "format" in response.json()
    response = client_for(owner).post(f"/api/projects/{project.id}/exports/", {"format": "csv", "min_agreement": 2}, format="json")
    assert response.status_code == 400 and "min_agreement" in response.json()


def test_a_delivered_twice_export_runs_once(eager_celery, project, owner):
    from labeller.exporting import export_run

    job = ExportJob.objects.create(project=project, created_by=owner, format="jsonl")
    export_run(str(job.id))
    job.refresh_from_db()
    finished = job.finished_at
    export_run(str(job.id))  # a redelivery after acks_late, say
    job.refresh_from_db()
    assert job.status == "done" and job.finished_at == finished


FORMULA_STARTS = ["=", "+", "-", "@", "\t", "\r"]


@pytest.fixture
def formulas(project, add_items, expert):
    """Items whose text, external id and annotator could be read as a spreadsheet formula."""
    texts = [f"{start}HYPERLINK(\"http://evil.example\",\"click\")" for start in FORMULA_STARTS]
    items = add_items(project, texts)
    for item, start in zip(items, FORMULA_STARTS):
        item.external_id = f"{start}1+1"
        item.save(update_fields=["external_id"])
    expert.username = "@expert"
    expert.save()
    annotation_submit(item=items[0], user=expert, labels=["card_arrival"])
    return project, texts


def test_csv_export_neutralises_cells_a_spreadsheet_would_run_as_formulas(
        eager_celery, client_for, owner, formulas, django_capture_on_commit_callbacks):
    project, texts = formulas
    content = export(client_for(owner), project, django_capture_on_commit_callbacks, format="csv")
    rows = list(csv.DictReader(io.StringIO(content, newline="")))
    assert [r["text"] for r in rows] == ["'" + text for text in texts]
    assert [r["external_id"] for r in rows] == [f"'{start}1+1" for start in FORMULA_STARTS]
    assert rows[0]["annotator"] == "'@expert"
    # The item's data column is JSON (it starts with "{"), the original text inside it.
    assert [json.loads(r["data"])["text"] for r in rows] == texts


def test_csv_export_leaves_ordinary_text_and_numbers_alone(eager_celery, client_for, owner, labelled,
                                                           django_capture_on_commit_callbacks):
    rows = list(csv.DictReader(io.StringIO(export(client_for(owner), labelled, django_capture_on_commit_callbacks, format="csv"))))
    assert rows[0]["text"] == "where is my card" and rows[0]["agreement"] == "1.000" and rows[0]["lead_time"] == "2.0"


@pytest.mark.parametrize("format", ["jsonl", "label_studio"])
def test_json_exports_keep_formula_like_text_byte_for_byte(
        eager_celery, client_for, owner, formulas, format, django_capture_on_commit_callbacks):
    project, texts = formulas
    content = export(client_for(owner), project, django_capture_on_commit_callbacks, format=format)
    records = [json.loads(line) for line in content.splitlines()] if format == "jsonl" else json.loads(content)
    assert [r["data"]["text"] for r in records] == texts
    assert [r["external_id"] for r in records] == [f"{start}1+1" for start in FORMULA_STARTS]
    for text in texts:
        assert json.dumps(text, ensure_ascii=False) in content


@pytest.fixture
def with_skips(make_project, add_items, expert, expert2):
    """One item labelled by one expert and skipped by the other, one only skipped, one untouched."""
    project = make_project(labels_per_item=1)
    mixed, skipped_only, _ = add_items(project, ["where is my card", "no idea", "untouched"])
    annotation_submit(item=mixed, user=expert, labels=[], skipped=True, lead_time=4.0)
    annotation_submit(item=mixed, user=expert2, labels=["card_arrival"], lead_time=2.0)
    annotation_submit(item=skipped_only, user=expert, labels=[], skipped=True, lead_time=1.0)
    return project


def finished_job(client, project):
    return client.get(f"/api/projects/{project.id}/exports/").json()["results"][0]


def test_skipped_annotations_are_exported_flagged_and_never_count_towards_the_majority(
        eager_celery, client_for, owner, expert, with_skips, django_capture_on_commit_callbacks):
    client = client_for(owner)
    rows = [json.loads(line) for line in export(client, with_skips, django_capture_on_commit_callbacks, format="jsonl").splitlines()]
    assert [(a["annotator"], a["skipped"], a["labels"]) for a in rows[0]["annotations"]] == [
        ("expert", True, []), ("expert2", False, ["card_arrival"])]
    assert rows[0]["majority"] == ["card_arrival"] and rows[0]["agreement"] == 1.0
    assert [(a["annotator"], a["skipped"]) for a in rows[1]["annotations"]] == [("expert", True)]
    assert rows[1]["majority"] == [] and rows[1]["agreement"] is None

    table = list(csv.DictReader(io.StringIO(export(client, with_skips, django_capture_on_commit_callbacks, format="csv"))))
    assert [(r["text"], r["annotator"], r["skipped"]) for r in table] == [
        ("where is my card", "expert", "True"), ("where is my card", "expert2", "False"),
        ("no idea", "expert", "True"), ("untouched", "", "")]

    tasks = json.loads(export(client, with_skips, django_capture_on_commit_callbacks, format="label_studio"))
    cancelled = tasks[0]["annotations"][0]
    assert cancelled["was_cancelled"] is True and cancelled["result"] == [] and cancelled["completed_by"] == expert.id
    assert tasks[0]["annotations"][1]["was_cancelled"] is False
    assert [a["was_cancelled"] for a in tasks[1]["annotations"]] == [True]


def test_the_job_says_how_many_items_it_left_out_and_why(
        eager_celery, client_for, owner, with_skips, django_capture_on_commit_callbacks):
    client = client_for(owner)
    export(client, with_skips, django_capture_on_commit_callbacks, format="jsonl", status="labelled")
    job = finished_job(client, with_skips)
    assert job["summary"] == {"items_written": 1, "not_matching_status": 2, "below_min_agreement": 0,
                              "skipped_annotations": 1, "skipped_only_items_written": 0, "skipped_only_items_left_out": 1}
    assert job["summary_text"] == (
        "1 item written. Left out: 2 items not labelled. 1 skipped annotation included, marked as skipped. "
        "1 item only ever skipped was left out.")

    export(client, with_skips, django_capture_on_commit_callbacks, format="label_studio", min_agreement=0.5)
    job = finished_job(client, with_skips)
    assert job["summary"]["items_written"] == 1 and job["summary"]["below_min_agreement"] == 2
    assert job["summary"]["skipped_only_items_left_out"] == 1
    assert "2 items with agreement below 0.5 (or none)" in job["summary_text"]


def test_label_studio_export_names_the_annotator_by_numeric_id_with_the_username_beside_it(
        eager_celery, client_for, owner, expert, expert2, labelled, django_capture_on_commit_callbacks):
    tasks = json.loads(export(client_for(owner), labelled, django_capture_on_commit_callbacks, format="label_studio"))
    assert [(a["completed_by"], a["completed_by_username"]) for a in tasks[0]["annotations"]] == [
        (expert.id, "expert"), (expert2.id, "expert2")]


def test_label_studio_export_takes_its_control_and_object_names_from_the_project(
        eager_celery, client_for, owner, expert, make_project, django_capture_on_commit_callbacks):
    from labeller.models import Item

    for task_type, from_name in (("single_label", "label"), ("multi_label", "labels")):
        project = make_project(name=task_type, task_type=task_type, text_field="utterance")
        item = Item.objects.create(project=project, data={"utterance": "card?"})
        annotation_submit(item=item, user=expert, labels=["card_arrival"])
        tasks = json.loads(export(client_for(owner), project, django_capture_on_commit_callbacks, format="label_studio"))
        (result,) = tasks[0]["annotations"][0]["result"]
        assert (result["from_name"], result["to_name"], result["type"]) == (from_name, "utterance", "choices")


def test_an_annotation_without_an_annotator_exports_to_label_studio_without_completed_by(
        eager_celery, client_for, owner, labelled, django_capture_on_commit_callbacks):
    Annotation.objects.filter(project=labelled).update(annotator=None)
    tasks = json.loads(export(client_for(owner), labelled, django_capture_on_commit_callbacks, format="label_studio"))
    assert "completed_by" not in tasks[0]["annotations"][0] and tasks[0]["annotations"][0]["completed_by_username"] is None


def test_a_label_studio_export_with_skips_imports_back_without_them(
        eager_celery, client_for, owner, with_skips, make_project, django_capture_on_commit_callbacks):
    client = client_for(owner)
    content = export(client, with_skips, django_capture_on_commit_callbacks, format="label_studio")
    copy = make_project(name="Copy")
    response = client.post(f"/api/projects/{copy.id}/imports", {"file": SimpleUploadedFile("export.json", content.encode())},
                           format="multipart")
    assert response.status_code == 201, response.json()
    assert response.json()["created"] == 3 and response.json()["annotations_created"] == 1
    assert list(Annotation.objects.filter(project=copy).values_list("labels", flat=True)) == [["card_arrival"]]
