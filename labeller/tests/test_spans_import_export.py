"""Span projects: importing Label Studio JSON (`labels` results), JSON Lines with `spans` and CoNLL;
exporting all three (and CSV); round trips that give back identical spans whose exported text is
the original text's slice; refusals by row and field; span formats refused by classification."""
import csv
import io
import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from labeller.models import Annotation, ExportJob, Item
from labeller.services import annotation_submit
from labeller.tests.test_export import export as export_file
from ml.spans import cp_to_utf16, read_conll

pytestmark = pytest.mark.django_db

LABELS = [{"key": "PER", "name": "Person"}, {"key": "LOC", "name": "Location"}, {"key": "ORG", "name": "Organisation"}]
FAMILY = "👩\u200d👩\u200d👧"
TEXTS = [
    f"{FAMILY} Ana 😀 visits #Lisboa",
    "田中さんは東京タワーへ行った",
    "Jose\u0301 met Zoe\u0308 in Ko\u0308ln",
    "زار محمد القاهرة أمس",
    "דוד גר בירושלים 🇮🇱",
]
PIECES = [[("Ana", "PER"), ("#Lisboa", "LOC")], [("田中", "PER"), ("東京タワー", "LOC")],
          [("Jose\u0301", "PER"), ("Ko\u0308ln", "LOC")], [("محمد", "PER"), ("القاهرة", "LOC")],
          [("דוד", "PER"), ("בירושלים", "LOC")]]
BTC = Path(__file__).resolve().parents[2] / "datasets" / "btc" / "btc.dev.conll"


def spans_of(text, pieces):
    return [{"start": text.index(p), "end": text.index(p) + len(p), "label": label} for p, label in pieces]


@pytest.fixture
def make_spans_project(owner, expert, expert2):
    from labeller.models import Role
    from labeller.services import membership_set, project_create

    def make(**fields):
        project = project_create(user=owner, labels=LABELS, name="Tweets", task_type="spans", **fields)
        for user in (expert, expert2):
            membership_set(project=project, user=user, role=Role.EXPERT)
        return project

    return make


def upload(client, project, name, content, **extra):
    content = content.encode() if isinstance(content, str) else content
    return client.post(f"/api/projects/{project.id}/imports", {"file": SimpleUploadedFile(name, content), **extra},
                       format="multipart")


def export(client, project, capture, **body):
    """The exported file's text and the job's summary."""
    content = export_file(client, project, capture, **body)
    return content, ExportJob.objects.filter(project=project).latest("created_at").summary


def stored(project):
    """Each item's text and its annotations' spans, in import order."""
    return [(item.data["text"], [a.labels for a in item.annotations.order_by("id")])
            for item in Item.objects.filter(project=project).order_by("id")]


def label_studio_task(text, spans, *, offsets="utf16", with_text=True):
    def value(span):
        start, end = span["start"], span["end"]
        if offsets == "utf16":
            start, end = cp_to_utf16(text, start), cp_to_utf16(text, end)
        out = {"start": start, "end": end, "labels": [span["label"]]}
        return {**out, "text": text[span["start"]:span["end"]]} if with_text else out

    return {"data": {"text": text}, "annotations": [{"result": [
        {"from_name": "label", "to_name": "text", "type": "labels", "value": value(s)} for s in spans]}]}


# --- import ------------------------------------------------------------------------------------

def test_label_studio_utf16_offsets_import_as_code_points(client_for, owner, make_spans_project):
    project = make_spans_project()
    tasks = [label_studio_task(text, spans_of(text, pieces)) for text, pieces in zip(TEXTS, PIECES)]
    # Without their text, offsets are read as UTF-16 (as JavaScript counts).
    tasks.append(label_studio_task(TEXTS[0], spans_of(TEXTS[0], PIECES[0]), with_text=False))
    response = upload(client_for(owner), project, "tasks.json", json.dumps(tasks, ensure_ascii=False))
    assert response.status_code == 201, response.json()
    assert response.json()["annotations_created"] == 6
    assert stored(project) == [(text, [spans_of(text, pieces)]) for text, pieces in zip(TEXTS + TEXTS[:1], PIECES + PIECES[:1])]


def test_label_studio_code_point_offsets_are_recognised_by_their_text(client_for, owner, make_spans_project):
    project = make_spans_project()
    task = label_studio_task(TEXTS[0], spans_of(TEXTS[0], PIECES[0]), offsets="cp")
    assert upload(client_for(owner), project, "tasks.json", json.dumps([task])).status_code == 201
    assert stored(project) == [(TEXTS[0], [spans_of(TEXTS[0], PIECES[0])])]


def test_jsonl_spans_import_with_label_names_or_keys(client_for, owner, make_spans_project):
    project = make_spans_project()
    rows = [{"text": TEXTS[1], "external_id": "t1", "spans": [
        {"start": 0, "end": 2, "label": "Person", "text": "田中"}, {"start": 5, "end": 10, "label": "LOC"}]},
        {"text": "nothing here", "spans": []}, {"text": "not labelled"}]
    response = upload(client_for(owner), project, "rows.jsonl", "\n".join(json.dumps(r, ensure_ascii=False) for r in rows))
    assert response.status_code == 201, response.json()
    assert stored(project) == [(TEXTS[1], [spans_of(TEXTS[1], PIECES[1])]), ("nothing here", [[]]), ("not labelled", [])]
    assert "spans" not in Item.objects.first().data


def test_conll_imports_each_text_rebuilt_with_its_spans(client_for, owner, make_spans_project):
    project = make_spans_project()
    content = "Ana\tB-PER\nvisits\tO\n#Lisboa\tB-LOC\n\n<3\tO\nNew\tB-LOC\nYork\tI-LOC\n"
    response = upload(client_for(owner), project, "tweets.conll", content)
    assert response.status_code == 201, response.json()
    assert stored(project) == [("Ana visits #Lisboa", [[{"start": 0, "end": 3, "label": "PER"}, {"start": 11, "end": 18, "label": "LOC"}]]),
                               ("<3 New York", [[{"start": 3, "end": 11, "label": "LOC"}]])]


def test_the_btc_dev_split_imports_whole(client_for, owner, make_spans_project):
    project = make_spans_project()
    response = upload(client_for(owner), project, "btc.dev.conll", BTC.read_bytes())
    assert response.status_code == 201, response.json()
    assert response.json()["created"] == 1000 and response.json()["annotations_created"] == 1000
    assert sum(len(labels) for labels in Annotation.objects.values_list("labels", flat=True)) == 1730


def test_bad_spans_are_reported_by_row_and_field_and_nothing_is_written(client_for, owner, make_spans_project):
    project = make_spans_project()
    text = TEXTS[0]
    ana = spans_of(text, PIECES[0])[0]
    rows = [
        {"text": text, "spans": [ana]},  # fine
        {"text": text, "spans": [{**ana, "label": "City"}]},
        {"text": text, "spans": [{**ana, "end": 999}]},
        {"text": text, "spans": [{**ana, "start": ana["end"]}]},
        {"text": text, "spans": [{**ana, "text": "Bob"}]},
        {"text": text, "spans": [ana, {**ana, "label": "ORG", "end": ana["end"] + 2}]},
        {"text": text, "spans": [{"start": "0", "end": 3, "label": "PER"}]},
    ]
    response = upload(client_for(owner), project, "rows.jsonl", "\n".join(json.dumps(r, ensure_ascii=False) for r in rows))
    assert response.status_code == 400
    body = response.json()
    assert body["committed"] is False and body["error_count"] == 6
    assert [(e["row"], e["line"], e["field"]) for e in body["errors"]] == [(n, n, "spans") for n in range(2, 8)]
    messages = [e["message"] for e in body["errors"]]
    assert messages[0] == "spans[0].label: unknown label 'City'"
    assert "outside the text" in messages[1] and "must be before end" in messages[2]
    assert messages[3] == f"spans[0].text: 'Bob' does not match the text at {ana['start']}..{ana['end']}, 'Ana'"
    assert "overlap, and this project does not allow overlapping spans" in messages[4]
    assert messages[5] == "spans[0].start: must be a whole number, got '0'"
    assert not Item.objects.filter(project=project).exists()


def test_overlapping_spans_import_when_the_project_allows_them(client_for, owner, make_spans_project):
    project = make_spans_project(spans_overlap=True)
    row = {"text": "Bank of New York", "spans": [{"start": 0, "end": 16, "label": "ORG"}, {"start": 8, "end": 16, "label": "LOC"}]}
    assert upload(client_for(owner), project, "rows.jsonl", json.dumps(row)).status_code == 201
    assert stored(project) == [(row["text"], [row["spans"]])]


def test_a_bad_conll_line_is_reported_with_its_line_and_the_rest_is_checked(client_for, owner, make_spans_project):
    project = make_spans_project()
    response = upload(client_for(owner), project, "t.conll", "Ana\tB-PER\n\nLisboa\tLOC\n\nPorto\tX-LOC\n")
    assert response.status_code == 400
    assert [(e["row"], e["line"], e["field"]) for e in response.json()["errors"]] == [(2, 3, "tags"), (3, 5, "tags")]
    assert "'LOC' is not O, B-<label> or I-<label>" in response.json()["errors"][0]["message"]
    response = upload(client_for(owner), project, "t.conll", "Ana\tB-PERSON\n")
    assert response.json()["errors"][0]["message"] == "spans[0].label: unknown label 'PERSON'"


def test_span_files_are_refused_by_a_classification_project(client_for, owner, project):
    response = upload(client_for(owner), project, "t.conll", "Ana\tB-PER\n")
    assert response.status_code == 400
    assert "CoNLL file holds spans, and this is a single-label classification project" in json.dumps(response.json())
    row = {"text": "Ana", "spans": [{"start": 0, "end": 3, "label": "card_arrival"}]}
    response = upload(client_for(owner), project, "rows.jsonl", json.dumps(row))
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["field"] == "spans" and error["message"].startswith("holds spans, and this is a single-label classification project")
    task = label_studio_task("Ana", [{"start": 0, "end": 3, "label": "card_arrival"}])
    assert upload(client_for(owner), project, "t.json", json.dumps([task])).json()["errors"][0]["field"] == "annotations"
    assert not Item.objects.filter(project=project).exists()


def test_classification_answers_are_refused_by_a_spans_project(client_for, owner, make_spans_project):
    project = make_spans_project()
    task = {"data": {"text": "Ana"}, "annotations": [{"result": [{"type": "choices", "value": {"choices": ["PER"]}}]}]}
    response = upload(client_for(owner), project, "t.json", json.dumps([task]))
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "annotations"
    assert "holds `choices` (classification), and this is a span labelling project" in response.json()["errors"][0]["message"]


def test_an_outsider_cannot_import_into_a_spans_project(client_for, outsider, make_spans_project):
    project = make_spans_project()
    assert upload(client_for(outsider), project, "t.conll", "Ana\tB-PER\n").status_code == 404


# --- export and round trips -------------------------------------------------------------------

@pytest.fixture
def labelled(make_spans_project, expert, expert2):
    """Every text labelled by two experts: the first agree, the second leave out the last span."""
    project = make_spans_project(labels_per_item=2)
    for text, pieces in zip(TEXTS, PIECES):
        item = Item.objects.create(project=project, data={"text": text})
        annotation_submit(item=item, user=expert, labels=spans_of(text, pieces))
        annotation_submit(item=item, user=expert2, labels=spans_of(text, pieces[:1]))
    return project


def test_exports_slice_the_original_text_to_each_spans_text(
        eager_celery, client_for, owner, labelled, django_capture_on_commit_callbacks):
    client = client_for(owner)
    jsonl, _ = export(client, labelled, django_capture_on_commit_callbacks, format="jsonl")
    for row, pieces in zip(map(json.loads, jsonl.splitlines()), PIECES):
        text = row["data"]["text"]
        assert [(s["text"], s["label"]) for s in row["annotations"][0]["labels"]] == pieces
        assert all(text[s["start"]:s["end"]] == s["text"] for s in row["annotations"][0]["labels"])
        assert [(s["text"], s["label"]) for s in row["majority"]] == pieces[:1]  # only the span both gave
        assert row["agreement"] == pytest.approx(2 / 3, abs=1e-4)
    label_studio, _ = export(client, labelled, django_capture_on_commit_callbacks, format="label_studio")
    for task, pieces in zip(json.loads(label_studio), PIECES):
        units = task["data"]["text"].encode("utf-16-le")
        values = [r["value"] for r in task["annotations"][0]["result"]]
        assert [(v["text"], v["labels"]) for v in values] == [(p, [label]) for p, label in pieces]
        # UTF-16 offsets, as JavaScript (and Label Studio) slices the text.
        assert all(units[v["start"] * 2:v["end"] * 2].decode("utf-16-le") == v["text"] for v in values)
        assert task["annotations"][0]["result"][0]["type"] == "labels"
        assert [s["text"] for s in task["meta"]["majority"]] == [pieces[0][0]]
    csv_text, _ = export(client, labelled, django_capture_on_commit_callbacks, format="csv")
    rows = [r for r in csv.DictReader(io.StringIO(csv_text)) if r["text"] == TEXTS[2]]
    # "Jose\u0301" is 5 code points, "Ko\u0308ln" 18..23: offsets count code points, not glyphs.
    assert [(r["annotator"], r["labels"], r["majority"]) for r in rows] == [
        ("expert", "0:5:PER|18:23:LOC", "0:5:PER"), ("expert2", "0:5:PER", "0:5:PER")]
    conll, summary = export(client, labelled, django_capture_on_commit_callbacks, format="conll")
    documents = read_conll(conll.splitlines())
    assert [d.text for d in documents] == TEXTS
    assert [[d.text[s["start"]:s["end"]] for s in d.spans] for d in documents] == [["Ana"], [], ["Jose\u0301"], ["محمد"], ["דוד"]]
    # 田中 is not a whitespace token of "田中さんは…": reported, not shifted.
    assert summary["spans_left_out"] == 1 and len(summary["spans_left_out_items"]) == 1
    assert summary["texts_without_tokens"] == 0


@pytest.mark.parametrize("fmt, name", [("jsonl", "x.jsonl"), ("label_studio", "x.json"), ("conll", "x.conll")])
def test_import_export_reimport_gives_identical_spans(
        eager_celery, client_for, owner, make_spans_project, django_capture_on_commit_callbacks, fmt, name):
    client = client_for(owner)
    first = make_spans_project()
    # CoNLL needs token-aligned spans; the JSON formats take the hard texts.
    if fmt == "conll":
        source = (BTC.read_text(encoding="utf-8").split("\n\n", 200)[:200])
        assert upload(client, first, "in.conll", "\n\n".join(source) + "\n").status_code == 201
    else:
        rows = [{"text": text, "spans": [{**s, "text": text[s["start"]:s["end"]]} for s in spans_of(text, pieces)]}
                for text, pieces in zip(TEXTS, PIECES)]
        assert upload(client, first, "in.jsonl", "\n".join(json.dumps(r, ensure_ascii=False) for r in rows)).status_code == 201
    exported, summary = export(client, first, django_capture_on_commit_callbacks, format=fmt)
    if fmt == "conll":
        assert summary["spans_left_out"] == 0
    second = make_spans_project()
    response = upload(client, second, name, exported)
    assert response.status_code == 201, response.json()
    assert stored(second) == stored(first) and stored(first)


def test_conll_export_is_offered_and_taken_only_for_span_projects(client, client_for, owner, project, make_spans_project):
    spans = make_spans_project()
    refused = client_for(owner).post(f"/api/projects/{project.id}/exports/", {"format": "conll"}, format="json")
    assert refused.status_code == 400 and "format" in refused.json()
    assert "CoNLL holds spans, and this is a single-label classification project" in json.dumps(refused.json())
    client.force_login(owner)
    assert 'value="conll"' in client.get(f"/projects/{spans.id}/").content.decode()
    page = client.get(f"/projects/{project.id}/").content.decode()
    assert 'value="conll"' not in page and 'value="label_studio"' in page
    shown = client.post(f"/projects/{project.id}/export", {"format": "conll"}, follow=True).content.decode()
    assert "CoNLL holds spans" in shown
