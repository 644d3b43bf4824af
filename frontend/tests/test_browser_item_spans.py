"""The item page of a span project in a real browser (headless Chromium through Playwright): two
experts' spans, the model's spans one of them was shown and a served prediction, drawn in a tweet
with emoji; the label's name follows each span as CSS content, never part of the text. The page
is saved as docs/item_page_spans.png."""
from pathlib import Path

import pytest
from playwright.sync_api import expect

from feedback.models import Prediction
from labeller.models import Item, Role
from labeller.services import annotation_submit, membership_set, project_create
from models_registry.models import ModelVersion, VersionStatus

from .test_browser import chromium, log_in, page  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "item_page_spans.png"
LABELS = [{"key": "PER", "name": "Person", "shortcut": "p", "color": "#dc2626"},
          {"key": "ORG", "name": "Organisation", "shortcut": "o", "color": "#4f46e5"},
          {"key": "LOC", "name": "Location", "shortcut": "l", "color": "#059669"}]
TEXT = "👩‍👩‍👧 Anna Smith flew from 東京 to Paris with Air France today 🇫🇷 #travel"


def at(piece, label, **extra):
    start = TEXT.index(piece)  # code points: a Python str index
    return {"start": start, "end": start + len(piece), "label": label, **extra}


def test_an_items_spans_are_drawn_in_its_text_with_their_labels(page, owner, expert, expert2):  # noqa: F811
    project = project_create(user=owner, labels=LABELS, name="Tweets", task_type="spans", labels_per_item=2,
                             guidelines="Tag people, organisations and places.")
    membership_set(project=project, user=expert, role=Role.EXPERT)
    membership_set(project=project, user=expert2, role=Role.EXPERT)
    item = Item.objects.create(project=project, data={"text": TEXT}, search_text=TEXT, external_id="tweet-1")
    item.project = project
    annotation_submit(item=item, user=expert, lead_time=6.4,
                      labels=[at("Anna Smith", "PER"), at("東京", "LOC"), at("Paris", "LOC"), at("Air France", "ORG")],
                      suggested_labels=[at("Anna Smith", "PER", confidence=0.93, accepted=True),
                                        at("Paris", "LOC", confidence=0.81, accepted=True),
                                        at("France", "LOC", confidence=0.42, accepted=False)])
    annotation_submit(item=item, user=expert2, lead_time=9.1,
                      labels=[at("Anna Smith", "PER"), at("Paris", "LOC"), at("Air France", "ORG")])
    version = ModelVersion.objects.create(project=project, number=4, kind="token", status=VersionStatus.READY,
                                          base_model="test")
    Prediction.objects.create(project=project, version=version, served_as="champion", data={"text": TEXT},
                              labels=[at("Anna Smith", "PER", confidence=0.95), at("Air France", "ORG", confidence=0.58)],
                              confidence=0.58, top=[], item=item)

    page.set_viewport_size({"width": 1400, "height": 900})
    log_in(page, "expert")
    page.goto(f"/projects/{project.id}/items/{item.id}")
    text = page.locator("#item-text")
    # The majority: the three spans both experts gave; 東京 (one of two) is not in it.
    expect(text.locator(".seg.spanned")).to_have_count(3)
    expect(text).to_have_text(TEXT)  # the labels' names are CSS content, not text
    assert text.locator(".seg.spanned[data-tag]").evaluate_all("els => els.map((e) => e.dataset.tag)") == [
        "Person", "Location", "Organisation"]
    expect(page.locator("#item-label")).to_have_text("3 spans")
    suggested = page.locator("#annotations tbody tr").first.locator(".seg.suggested[data-tag]")
    assert suggested.evaluate_all("els => els.map((e) => e.dataset.tag)") == [
        "Person 93% ✓", "Location 81% ✓", "Location 42% ✗"]
    expect(page.locator("#predictions .seg.suggested[data-tag]")).to_have_count(2)
    expect(page.locator("#relabel")).to_have_count(0)
    expect(page.locator("#relabel-note")).to_contain_text("labelling screen")
    expect(page.locator("#label-similar")).to_have_count(0)
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
