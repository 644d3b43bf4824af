"""The item page of a span project: each annotation's spans, the model's spans it was shown (with
confidence and whether each was kept) and the predictions' spans, drawn server-side in the item's
text with the labels' colours, the text escaped, offsets Unicode code points. The whole-item
relabel form and "label similar" are not offered there, and posting to them anyway is a 409 that
says why; nothing is written."""
import html
import re

import pytest
from django.utils import timezone

from core.errors import Conflict
from feedback.models import FeedbackEvent, Prediction
from frontend.span_marks import GREY, spans_marked
from labeller.models import Annotation
from labeller.services import WholeItemLabelsOnly, annotation_submit, annotations_label_similar
from models_registry.models import ModelVersion, VersionStatus

pytestmark = pytest.mark.django_db

FAMILY = "👩\u200d👩\u200d👧"  # five code points, eight UTF-16 units
TEXT = f"<b>Zoe\u0301</b> {FAMILY} met lost_card & card_arrival in 東京 𠮷"


def at(piece, label, **extra):
    start = TEXT.index(piece)
    return {"start": start, "end": start + len(piece), "label": label, **extra}


@pytest.fixture
def spans_project(make_project):
    return make_project(task_type="spans", labels_per_item=2)


@pytest.fixture
def item(spans_project, add_items):
    return add_items(spans_project, [TEXT, "another text with lost_card"])[0]


def page_of(client, user, item) -> str:
    client.force_login(user)
    response = client.get(f"/projects/{item.project_id}/items/{item.id}")
    assert response.status_code == 200
    return response.content.decode()


def drawn(page: str, table: str) -> list[tuple[str, str]]:
    """(tag, text) of each span piece drawn in the first row of the table, in order."""
    row = re.search(rf'<table id="{table}">.*?<tbody>(.*?)</tbody>', page, re.S).group(1)
    return [(html.unescape(tag), html.unescape(text))
            for tag, text in re.findall(r'<span class="seg [a-z]+" style="[^"]*" data-tag="([^"]*)">([^<]*)</span>', row)]


def test_an_annotations_spans_are_drawn_in_the_text_with_their_labels_colours(client, expert, viewer, item):
    annotation_submit(item=item, user=expert, labels=[at("lost_card", "lost_card"), at("東京", "card_arrival")])
    page = page_of(client, viewer, item)
    assert drawn(page, "annotations") == [("Lost or stolen card", "lost_card"), ("Card arrival", "東京")]
    # The offsets are code points: the list says where each span is, as Python slices the text.
    assert f'data-span="{TEXT.index("lost_card")}:{TEXT.index("lost_card") + 9}:lost_card"' in page
    assert "#dc2626" in page and "#4f46e5" in page  # the labels' colours
    # The text around the spans is escaped, never markup.
    assert "<b>Zoe" not in page and "&lt;b&gt;Zoe\u0301&lt;/b&gt;" in page
    assert "&amp; card_arrival" in page
    # The majority (one annotator) is drawn in the item's text too, and counted in the status line.
    assert re.search(r'<p class="span-text marked-text" dir="auto" id="item-text">', page)
    assert re.search(r'id="item-label">2 spans</strong>', page)


def test_the_model_spans_an_expert_was_shown_appear_with_confidence_and_whether_each_was_kept(client, expert, viewer, item):
    suggested = [at("lost_card", "lost_card", confidence=0.91, accepted=True),
                 at("card_arrival", "exchange_rate", confidence=0.4, accepted=False)]
    annotation_submit(item=item, user=expert, labels=[at("lost_card", "lost_card")], suggested_labels=suggested)
    page = page_of(client, viewer, item)
    pieces = drawn(page, "annotations")
    assert ("Lost or stolen card 91% ✓", "lost_card") in pieces
    assert ("Exchange rate 40% ✗", "card_arrival") in pieces
    assert "0.91 · accepted" in page and "0.40 · not kept" in page


def test_a_predictions_spans_are_drawn_and_a_span_outside_the_text_is_counted_not_drawn(client, owner, viewer, item):
    version = ModelVersion.objects.create(project=item.project, number=2, kind="token", status=VersionStatus.READY,
                                          base_model="test")
    Prediction.objects.create(project=item.project, version=version, served_as="champion", data={"text": TEXT},
                              labels=[at("東京", "card_arrival", confidence=0.77), {"start": 0, "end": 999, "label": "x"}],
                              confidence=0.77, top=[], item=item)
    FeedbackEvent.objects.create(project=item.project, version=version, kind="rejection", end_user="u1",
                                 predicted_labels=[at("東京", "card_arrival")], occurred_at=timezone.now(), item=item)
    page = page_of(client, viewer, item)
    assert drawn(page, "predictions") == [("Card arrival 77%", "東京")]
    assert "1 entry not a span inside this text: not drawn." in page
    assert re.search(r"<td>rejection</td>\s*<td>1 span</td>", page)  # what the model said, not a dict's repr


def test_an_expert_sees_no_whole_item_forms_on_a_span_item_and_a_post_to_them_is_a_409(client, expert, item):
    page = page_of(client, expert, item)
    assert 'id="relabel"' not in page and 'id="label-similar"' not in page
    assert 'id="relabel-note"' in page and 'id="no-label-similar"' in page
    base = f"/projects/{item.project_id}/items/{item.id}"
    relabel = client.post(f"{base}/relabel", {"labels": "lost_card"})
    assert relabel.status_code == 409
    assert "span project&#x27;s spans are labelled and edited on the labelling screen" in relabel.content.decode()
    similar = client.post(f"{base}/label-similar", {"labels": "lost_card", "items": [item.id + 1]})
    assert similar.status_code == 409
    assert "spans inside one text, which do not carry over to another" in similar.content.decode()
    assert not Annotation.objects.exists()


def test_the_label_similar_service_refuses_a_span_project_naming_labels(expert, item):
    with pytest.raises(WholeItemLabelsOnly) as refused:
        annotations_label_similar(project=item.project, user=expert, source_item=item, item_ids=[item.id + 1],
                                  labels=["lost_card"])
    assert isinstance(refused.value, Conflict) and refused.value.status == 409 and refused.value.field == "labels"
    assert not Annotation.objects.exists()


def test_an_outsider_gets_404_on_a_span_items_page_and_its_posts(client, outsider, item):
    client.force_login(outsider)
    base = f"/projects/{item.project_id}/items/{item.id}"
    assert client.get(base).status_code == 404
    assert client.post(f"{base}/relabel", {"labels": "lost_card"}).status_code == 404
    assert client.post(f"{base}/label-similar", {"labels": "lost_card", "items": [1]}).status_code == 404


def test_marked_pieces_rebuild_the_text_and_overlapping_spans_stack_at_their_own_levels():
    text = f"{FAMILY} New York City"
    spans = [{"start": 6, "end": 14, "label": "LOC"}, {"start": 10, "end": 19, "label": "ORG"}]
    marked = spans_marked(text, spans, labels={"LOC": ("Place", "#059669"), "ORG": ("Org", "red;}")})
    assert "".join(piece.text for piece in marked.pieces) == text
    assert [(m.text, m.colour) for m in marked.marks] == [("New York", "#059669"), ("York City", GREY)]
    york = next(piece for piece in marked.pieces if piece.text == "York")
    assert york.style.count("inset") == 2 and "padding-bottom: 6px" in york.style
    assert [piece.tag for piece in marked.pieces if piece.tag] == ["Place", "Org"]
    assert spans_marked(text, "not a list", labels={}).pieces[0].text == text


def test_the_models_current_spans_are_drawn_with_the_nearest_labelled_spans_as_evidence(client, viewer, outsider, item):
    from labeller.models import ActiveLearningState

    labelled = item.project.items.exclude(id=item.id).get()
    evidence = [{"item": labelled.id, "label": "lost_card", "text": "<i>lost_card</i>", "before": "another text with ",
                 "after": "", "similarity": 0.934}]
    suggestion = {"spans": [at("lost_card", "lost_card", text="lost_card", confidence=0.82, evidence=evidence)],
                  "confidence": 0.7, "head_version": 3}
    ActiveLearningState.objects.filter(project=item.project).update(head=b"stored head", head_version=3)
    type(item).objects.filter(id=item.id).update(suggestion=suggestion)

    page = page_of(client, viewer, item)
    section = re.search(r'<section class="card" id="suggestion">(.*?)</section>', page, re.S).group(1)
    assert re.search(r'data-tag="Lost or stolen card 82%">lost_card</span>', section)  # drawn dashed in the text
    row = re.search(r'<tr data-span="[^"]*:lost_card">(.*?)</tr>', section, re.S).group(1)
    assert f'<li data-item="{labelled.id}"><strong>Lost or stolen card</strong>' in row
    assert f'href="/projects/{item.project_id}/items/{labelled.id}"' in row and "(similarity 0.93)" in row
    # The evidence's text is escaped, never markup.
    assert "<i>lost_card</i>" not in page and "<mark>&lt;i&gt;lost_card&lt;/i&gt;</mark>" in row

    client.force_login(outsider)
    assert client.get(f"/projects/{item.project_id}/items/{item.id}").status_code == 404


def test_no_model_section_without_a_current_suggestion(client, viewer, item):
    type(item).objects.filter(id=item.id).update(suggestion={"spans": [at("lost_card", "lost_card", confidence=0.8)],
                                                             "confidence": 0.7, "head_version": 1})
    assert 'id="suggestion"' not in page_of(client, viewer, item)  # no stored head: the suggestion is not current
