"""The span labelling task type: validation against the item's text, span voting, exports that
slice the original text to exactly each span's text (emoji, ZWJ sequences, CJK, combining marks,
right-to-left scripts), and the service checking a submission through it."""
import pytest

from labeller.models import TaskType as TaskTypeChoice
from labeller.task_types import InvalidValue, task_type_for
from labeller.task_types.spans import SPANS, SpanTask
from ml.spans import utf16_to_cp

LABELS = {"PER", "LOC", "ORG"}
FAMILY = "👩\u200d👩\u200d👧"
TEXTS = [
    (f"{FAMILY} Ana 😀 visits #Lisboa", ["Ana", "#Lisboa"]),
    ("田中さんは東京タワーへ行った", ["田中", "東京タワー"]),
    ("Jose\u0301 met Zoe\u0308 in Ko\u0308ln", ["Jose\u0301", "Ko\u0308ln"]),
    ("زار محمد القاهرة أمس", ["محمد", "القاهرة"]),
    ("דוד גר בירושלים 🇮🇱", ["דוד", "בירושלים"]),
]


def spans_of(text, pieces, labels=("PER", "LOC")):
    return [{"start": text.index(p), "end": text.index(p) + len(p), "label": label} for p, label in zip(pieces, labels)]


def test_spans_is_a_registered_project_task_type():
    assert TaskTypeChoice.SPANS == "spans" and TaskTypeChoice.SPANS.label == "Span labelling (named entities)"
    assert isinstance(task_type_for("spans"), SpanTask)
    assert SPANS.label_template == "frontend/label_spans.html"


def test_the_page_is_told_it_labels_spans_and_whether_they_may_overlap():
    class Project:
        spans_overlap = True

    assert SPANS.page_config(Project()) == {"spans": True, "overlap": True}
    assert SPANS.page_config() == {"spans": True, "overlap": False}


@pytest.mark.parametrize("text, pieces", TEXTS)
def test_a_submission_is_checked_against_the_text_and_comes_back_sorted(text, pieces):
    wanted = spans_of(text, pieces)
    given = [{**span, "text": text[span["start"]:span["end"]]} for span in reversed(wanted)]
    assert SPANS.validate(given, labels=LABELS, text=text) == wanted


def test_a_bad_span_is_refused_with_its_position_and_the_problem():
    text = "Ana in Lisboa"
    cases = [
        ([{"start": 0, "end": 3, "label": "GPE"}], "spans[0].label: unknown label 'GPE'"),
        ([{"start": 0, "end": 30, "label": "PER"}], "spans[0]: 0..30 is outside the text (0 to 13 code points)"),
        ([{"start": 3, "end": 3, "label": "PER"}], "spans[0]: start 3 must be before end 3"),
        ([{"start": 0, "end": 3, "label": "PER", "text": "An"}], "spans[0].text: 'An' does not match the text at 0..3, 'Ana'"),
        ([{"start": 0, "end": 13, "label": "PER"}, {"start": 7, "end": 13, "label": "LOC"}],
         "spans 0..13 (PER) and 7..13 (LOC) overlap, and this project does not allow overlapping spans"),
        ("PER", "must be a list of spans"),
    ]
    for value, message in cases:
        with pytest.raises(InvalidValue) as error:
            SPANS.validate(value, labels=LABELS, text=text)
        assert str(error.value) == message


def test_overlapping_spans_pass_when_the_project_allows_them():
    value = [{"start": 0, "end": 13, "label": "ORG"}, {"start": 7, "end": 13, "label": "LOC"}]
    assert SPANS.validate(value, labels=LABELS, text="Ana in Lisboa", overlap=True) == value


def test_spans_without_the_items_text_are_refused():
    with pytest.raises(InvalidValue, match="need the item's text"):
        SPANS.validate([], labels=LABELS)


def test_an_import_maps_label_names_to_keys_and_checks_the_offsets():
    text = "Ana in Lisboa"
    by_value = {"Person": "PER", "PER": "PER", "Location": "LOC", "LOC": "LOC"}
    assert SPANS.read_import([{"start": 7, "end": 13, "label": "Location", "text": "Lisboa"},
                              {"start": 0, "end": 3, "label": "PER"}], label_by_value=by_value, text=text) == [
        {"start": 0, "end": 3, "label": "PER"}, {"start": 7, "end": 13, "label": "LOC"}]
    with pytest.raises(InvalidValue, match=r"^spans\[1\].label: unknown label 'City'$"):
        SPANS.read_import([{"start": 0, "end": 3, "label": "PER"}, {"start": 7, "end": 13, "label": "City"}],
                          label_by_value=by_value, text=text)


# --- span voting and agreement ----------------------------------------------------------------

ANA = {"start": 0, "end": 3, "label": "PER"}
LISBOA = {"start": 7, "end": 13, "label": "LOC"}
LISBOA_ORG = {"start": 7, "end": 13, "label": "ORG"}


def test_a_span_is_kept_when_more_than_half_of_the_annotators_gave_exactly_it():
    majority, agreement = SPANS.majority([[ANA, LISBOA], [ANA, LISBOA_ORG], [ANA]])
    assert majority == [ANA]
    # Pairs: (1, 2) F1 1/2, (1, 3) 2/3, (2, 3) 2/3.
    assert agreement == pytest.approx((0.5 + 2 / 3 + 2 / 3) / 3, abs=1e-4)
    assert SPANS.majority([[ANA], [LISBOA]]) == ([], 0.0)  # one each of two: neither is a majority


def test_one_annotator_agrees_with_itself_and_nobody_gives_none():
    assert SPANS.majority([[LISBOA, ANA]]) == ([ANA, LISBOA], 1.0)
    assert SPANS.majority([[], []]) == ([], 1.0)  # both saw no entity: they agree
    assert SPANS.majority([]) == ([], None)
    assert SPANS.trains_on([])


def test_alpha_is_not_computed_for_spans():
    assert SPANS.alpha([[[ANA], [ANA]]], labels=["PER"]) is None


def test_the_models_methods_say_they_are_not_written_yet():
    with pytest.raises(NotImplementedError, match="span labelling has no model yet"):
        SPANS.fit_head(None, [], classes=[])
    assert SPANS.fits(object()) is False


# --- export ------------------------------------------------------------------------------------

def test_a_csv_cell_lists_offsets_and_labels():
    assert SPANS.csv_cell([ANA, LISBOA]) == "0:3:PER|7:13:LOC" and SPANS.csv_cell([]) == ""
    assert SPANS.label_keys([LISBOA, ANA, {**ANA, "start": 4}]) == ["LOC", "PER"]


@pytest.mark.parametrize("text, pieces", TEXTS)
def test_label_studio_results_slice_the_original_text_to_the_spans_text(text, pieces):
    results = SPANS.label_studio_result(spans_of(text, pieces), to_name="text", text=text)
    units = text.encode("utf-16-le")
    for result, piece in zip(results, pieces):
        assert result["type"] == "labels" and result["from_name"] == "label" and result["to_name"] == "text"
        value = result["value"]
        assert value["text"] == piece
        # Label Studio's offsets are UTF-16 code units: what JavaScript's text.slice() returns.
        assert units[value["start"] * 2:value["end"] * 2].decode("utf-16-le") == piece
        assert text[utf16_to_cp(text, value["start"]):utf16_to_cp(text, value["end"])] == piece


@pytest.mark.django_db
def test_the_service_checks_a_submitted_span_against_the_items_text(make_project, expert):
    from labeller.models import Item
    from labeller.services import InvalidLabels, annotation_submit, labels_validate

    project = make_project(task_type="spans")
    item = Item.objects.create(project=project, data={"text": f"{FAMILY} card_arrival"})
    span = {"start": 6, "end": 18, "label": "card_arrival", "text": "card_arrival"}
    annotation = annotation_submit(item=item, user=expert, labels=[span])
    assert annotation.labels == [{"start": 6, "end": 18, "label": "card_arrival"}]
    item.refresh_from_db()
    assert item.majority == "card_arrival" and item.agreement == 1.0
    with pytest.raises(InvalidLabels) as error:
        labels_validate(project=project, labels=[{**span, "start": 9}], item=item)
    assert str(error.value) == "labels: spans[0].text: 'card_arrival' does not match the text at 9..18, 'd_arrival'"
    with pytest.raises(InvalidLabels, match="need the item's text"):
        labels_validate(project=project, labels=[span])


@pytest.mark.django_db
def test_a_spans_project_is_created_and_its_overlap_setting_changed_through_the_api(client_for, owner, viewer, make_project):
    body = {"name": "Tweets", "task_type": "spans", "labels": [{"key": "PER", "name": "Person"}]}
    created = client_for(owner).post("/api/projects/", body, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["task_type"] == "spans" and created.json()["spans_overlap"] is False
    project_id = created.json()["id"]
    changed = client_for(owner).patch(f"/api/projects/{project_id}/", {"spans_overlap": True}, format="json")
    assert changed.status_code == 200 and changed.json()["spans_overlap"] is True
    refused = client_for(owner).patch(f"/api/projects/{project_id}/", {"spans_overlap": "maybe"}, format="json")
    assert refused.status_code == 400 and "spans_overlap" in refused.json()
    # Someone who may only view the project may not change it.
    project = make_project(task_type="spans")
    assert client_for(viewer).patch(f"/api/projects/{project.id}/", {"spans_overlap": True}, format="json").status_code == 403
