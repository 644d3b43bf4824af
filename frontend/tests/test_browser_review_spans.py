"""The expert review of span feedback in a real browser (headless Chromium through Playwright):

a span project served a prediction that found Trump and took Washington for an organisation; its
product's users correct it through the feedback API with an untrusted token (two send the whole
corrected list, one says a span is missing) -> the item goes under review -> the span labelling
screen serves it first, with a Review panel that draws the model's spans and the users' in the
text side by side -> the expert tags the entities with the keyboard only -> the review is
settled and every event on it is scored against the expert's spans.

With LABELLOOP_SCREENSHOT_DIR set, the run saves the screen with the panel there
(docs/span_review.png is made this way).
"""
import os
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from feedback.models import FeedbackEvent, FeedbackStatus, Prediction, ServedAs
from feedback.review import route_pending
from labeller.models import Annotation, Item
from models_registry.models import ModelVersion, VersionStatus

from .test_browser import chromium, log_in, page  # noqa: F401
from .test_browser_review import tasks_sent  # noqa: F401  (keeps tasks off the broker)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TEXT = "Donald Trump met Theresa May in Washington"
TRUMP = {"start": 0, "end": 12, "label": "PER"}
MAY = {"start": 17, "end": 28, "label": "PER"}
WASHINGTON = {"start": 32, "end": 42, "label": "LOC"}
WASHINGTON_AS_ORG = {"start": 32, "end": 42, "label": "ORG"}


def send_feedback(client, project, events: list[dict]) -> None:
    now = timezone.now().isoformat()
    response = client.post(f"/api/projects/{project.id}/feedback",
                           {"events": [{**event, "occurred_at": now} for event in events]}, format="json")
    assert response.status_code == 201, response.content


def test_the_expert_sees_the_models_spans_and_the_users_side_by_side_and_their_spans_settle_the_review(
        btc_project, token_client, page, expert):
    project = btc_project
    version = ModelVersion.objects.create(project=project, number=1, kind="head", status=VersionStatus.READY)
    prediction = Prediction.objects.create(
        project=project, version=version, served_as=ServedAs.CHAMPION, data={"text": TEXT}, external_id="tweet-1",
        labels=[{**s, "text": TEXT[s["start"]:s["end"]], "confidence": c} for s, c in ((TRUMP, 0.91), (WASHINGTON_AS_ORG, 0.55))],
        confidence=0.55, top=[])
    app = token_client(project, ["feedback"], name="tweet app")
    pid = str(prediction.id)
    send_feedback(app, project, [{"prediction_id": pid, "kind": "correction", "spans": [TRUMP, MAY, WASHINGTON], "end_user": u}
                                 for u in ("u-1", "u-2")]
                  + [{"prediction_id": pid, "kind": "span_missing", "span": MAY, "end_user": "u-3"}])
    assert route_pending(project_id=project.id) == 3
    item = Item.objects.get(project=project, external_id="tweet-1")
    assert item.needs_review and not item.is_done

    log_in(page, "expert")
    page.goto(f"/projects/{project.id}/label")
    expect(page.locator("#item-text")).to_have_text(TEXT)
    expect(page.locator("#item")).to_have_attribute("data-item-id", str(item.id))
    panel = page.locator("#review")
    expect(panel).to_be_visible()
    # The model's spans, marked in the text with their entity type.
    model = page.locator("#review-model-text mark")
    expect(model).to_have_text(["Donald Trump Person", "Washington Organisation"], use_inner_text=True)
    expect(page.locator("#review-model-meta")).to_have_text("2 span(s), 55% confident, version 1, when the product asked")
    # The users' beside them: the whole correction (two users), and the span one user said was missing.
    users = page.locator("#review-users > li")
    expect(users).to_have_count(2)
    expect(users.nth(0)).to_contain_text("Their spans: — 2 users")
    expect(users.nth(0).locator("mark")).to_have_text(["Donald Trump Person", "Theresa May Person", "Washington Location"],
                                                      use_inner_text=True)
    expect(users.nth(1)).to_contain_text("A span is missing: — 1 user")
    expect(users.nth(1).locator("mark")).to_have_text(["Theresa May Person"], use_inner_text=True)
    expect(page.locator("#review-sources li")).to_have_text(["tweet app — not yet estimated"], use_inner_text=True)

    folder = os.environ.get("LABELLOOP_SCREENSHOT_DIR")
    if folder:
        page.set_viewport_size({"width": 1400, "height": 900})
        page.screenshot(path=str(Path(folder) / "span_review.png"))

    # Keyboard only: Donald Trump, Theresa May (people), Washington (a place), then Enter.
    page.wait_for_timeout(150)  # the expert reads the item and the panel
    page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("p")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("p")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("l")
    expect(page.locator("#spans li")).to_have_text(["Person “Donald Trump”", "Person “Theresa May”", "Location “Washington”"])
    page.keyboard.press("Enter")
    expect(page.locator("#item-text")).not_to_have_text(TEXT)
    expect(panel).to_be_hidden()
    assert page.js_errors == []

    item.refresh_from_db()
    assert not item.needs_review and item.is_done
    assert Annotation.objects.get(item=item).labels == [TRUMP, MAY, WASHINGTON]
    assert set(FeedbackEvent.objects.filter(item=item).values_list("status", "expert_agrees")) == {
        (FeedbackStatus.REVIEWED, True)}
