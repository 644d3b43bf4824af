"""The item page in a real browser (headless Chromium through Playwright): an expert opens an item,
relabels it, sees its nearest unlabelled neighbours (all-MiniLM-L6-v2 vectors of Banking77-like
texts) ticked above the threshold, and labels them in one step. The page is saved as
docs/item_page.png."""
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import expect

from active_learning import similar
from feedback.models import Prediction
from labeller.models import Annotation, AnnotationSource
from labeller.tests.test_active_learning import store_vectors
from ml.encoder_cache import base_encoder
from models_registry.models import ModelVersion, VersionStatus

from .test_browser import chromium, log_in, page, tasks_sent  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "item_page.png"
THRESHOLD = 0.6  # the card-arrival texts score above it, the lost-card ones (0.53 to 0.56) below
TEXTS = [
    "My new card still has not arrived, where is it?",
    "I ordered a card two weeks ago and it has not come yet",
    "How long does it take for a card to be delivered?",
    "The card you sent me never showed up in the mail",
    "Which exchange rate do you use for payments abroad?",
    "Why was I charged a bad rate when converting euros?",
    "Someone stole my wallet with the card in it.",
    "I lost my card on the train yesterday",
]


@pytest.fixture(autouse=True)
def empty_cache():
    similar.vector_cache_clear()
    yield
    similar.vector_cache_clear()


def test_the_expert_relabels_an_item_and_labels_its_neighbours_in_one_step(project, add_items, page, expert, tasks_sent):
    items = add_items(project, TEXTS)
    encoder = base_encoder(project.base_model_path)
    vectors = encoder.encode(TEXTS)
    store_vectors(project, items, vectors, version=encoder.version)
    version = ModelVersion.objects.create(project=project, number=1, kind="head", status=VersionStatus.READY, base_model="test")
    Prediction.objects.create(project=project, version=version, served_as="champion", data={"text": TEXTS[0]},
                              labels=["lost_card"], confidence=0.42, top=[], abstain=True, item=items[0])
    # What the page should tick: the float16-stored neighbours at or above the threshold.
    stored = vectors.astype(np.float16).astype(np.float32)
    sims = stored[1:] @ (stored[0] / np.linalg.norm(stored[0]))
    expected = sorted(items[i + 1].id for i in np.flatnonzero(sims >= THRESHOLD))
    assert 0 < len(expected) < len(TEXTS) - 1

    log_in(page, "expert")
    page.goto(f"/projects/{project.id}/items/{items[0].id}?threshold={THRESHOLD}")
    expect(page.locator("#item-text")).to_have_text(TEXTS[0])
    expect(page.locator("#predictions tbody tr")).to_have_count(1)

    relabel = page.locator("#relabel")
    relabel.get_by_label("Card arrival").check()
    relabel.get_by_role("button", name="Save label").click()
    expect(page.locator("p.message")).to_have_text("Your label for this item is now card_arrival.")
    expect(page.locator("#item-label")).to_have_text("card_arrival")
    expect(page.locator("#annotations tbody tr")).to_have_count(1)

    bulk = page.locator("#label-similar")
    ticked = bulk.locator('input[name="items"]:checked')
    expect(ticked).to_have_count(len(expected))
    assert sorted(int(v) for v in ticked.evaluate_all("boxes => boxes.map(b => b.value)")) == expected
    expect(page.locator("#similar-label")).to_have_value("card_arrival")  # the item's own label
    button = bulk.get_by_role("button", name=f"Label {len(expected)} item{'s' if len(expected) != 1 else ''} as Card arrival")
    expect(button).to_be_enabled()
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    button.click()
    expect(page.locator("p.message").first).to_have_text(
        f"Labelled {len(expected)} item{'s' if len(expected) != 1 else ''} as card_arrival.")

    labelled = Annotation.objects.filter(source=AnnotationSource.SIMILAR)
    assert sorted(labelled.values_list("item_id", flat=True)) == expected
    assert {(a.annotator.username, tuple(a.labels), a.labelled_from_id) for a in labelled} == {
        ("expert", ("card_arrival",), items[0].id)}
    assert page.js_errors == []
