"""The expert review in a real browser (headless Chromium through Playwright):

product users tell the model it is wrong, through the feedback API with untrusted tokens -> the
item goes under review -> the labelling screen serves it first, with a Review panel that shows the
model's answer and the users' side by side and how reliable each source has been -> the expert
labels it with the keyboard only -> the review is settled and every event on it is scored.
"""
import math
import re
from types import SimpleNamespace

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from feedback.models import FeedbackEvent, FeedbackStatus
from feedback.review import route_pending, source_reliability
from labeller.models import Annotation, Item

# The browser fixtures and the log-in step of the main browser test.
from .test_browser import chromium, log_in, page  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TEXT = "I ordered a new card two weeks ago and it still has not come"
SHORTCUTS = "abc"  # the banking labels of served_project have none: give them a, b, c
NO_MORE_ITEMS = "No more items need your label in this project."
MOBILE_APP = "mobile <b>app</b>"  # a source name that must show as text, not as HTML


@pytest.fixture(autouse=True)
def tasks_sent(monkeypatch):
    """Keep every task off the broker and list it instead: the test routes the feedback itself,
    and a worker started for another test of the session must not train or route for this one."""
    from active_learning import encoding, explaining, refresh
    from feedback import review
    from models_registry import training

    sent = []
    for module, name in [(encoding, "encode_items"), (refresh, "refresh_priorities"),
                         (explaining, "explain_suggestions"), (training, "train_version"),
                         (review, "route_feedback")]:
        def record(*args, name=name, **kwargs):
            sent.append(name)
        monkeypatch.setattr(module, name, SimpleNamespace(delay=record, apply_async=record))
    return sent


def predict(client, project, text: str, external_id: str) -> dict:
    response = client.post(f"/api/projects/{project.id}/predict", {"data": {"text": text}, "external_id": external_id},
                           format="json")
    assert response.status_code == 200, response.content
    return response.json()


def send_feedback(client, project, events: list[dict]) -> None:
    now = timezone.now().isoformat()
    response = client.post(f"/api/projects/{project.id}/feedback",
                           {"events": [{**event, "occurred_at": now} for event in events]}, format="json")
    assert response.status_code == 201, response.content


def expect_review_panel(page: Page, *, model: str, meta: str, users: list[str], sources: list[str]) -> None:
    panel = page.locator("#review")
    expect(panel).to_be_visible()
    expect(panel.get_by_role("heading", name=re.compile(r"^Review"))).to_be_visible()
    expect(page.locator("#review-model-label")).to_have_text(model)
    expect(page.locator("#review-model-meta")).to_have_text(meta)
    expect(page.locator("#review-users li")).to_have_text(users, use_inner_text=True)
    expect(page.locator("#review-sources li")).to_have_text(sources, use_inner_text=True)
    expect(panel.locator("b, script")).to_have_count(0)


def test_the_expert_sees_the_model_and_the_users_side_by_side_and_their_label_settles_the_review(
    served_project, token_client, page, expert, tasks_sent
):
    project = served_project
    for label, shortcut in zip(project.labels.order_by("order"), SHORTCUTS):
        label.shortcut = shortcut
        label.save(update_fields=["shortcut"])
    shortcut_of = dict(project.labels.values_list("key", "shortcut"))
    name_of = dict(project.labels.values_list("key", "name"))
    checkout = token_client(project, ["predict", "feedback"], name="checkout backend")
    mobile = token_client(project, ["feedback"], name=MOBILE_APP)

    # Earlier, the checkout backend was right about an item an expert had labelled: 1 of 1.
    labelled = Item.objects.filter(project=project, annotations__annotator=expert).first()
    send_feedback(checkout, project, [{"data": labelled.data, "external_id": labelled.external_id, "kind": "correction",
                                       "label": labelled.annotations.get().labels[0], "end_user": "u-0"}])

    # Now two of its users and one of the mobile app's say the model is wrong about a new text.
    answer = predict(checkout, project, TEXT, external_id="chat-1")
    said = next(key for key in name_of if key != answer["label"])
    send_feedback(checkout, project, [{"prediction_id": answer["prediction_id"], "kind": "correction", "label": said,
                                       "end_user": user} for user in ("u-1", "u-2")])
    send_feedback(mobile, project, [{"prediction_id": answer["prediction_id"], "kind": "rejection", "end_user": "u-3"}])
    assert "route_feedback" in tasks_sent  # asked for a worker; the test routes them itself
    assert route_pending(project_id=project.id) == 4
    item = Item.objects.get(project=project, external_id="chat-1")
    assert item.needs_review and not item.is_done

    # The expert opens the labelling screen: the item under review comes first, with the panel.
    log_in(page, "expert")
    page.goto(f"/projects/{project.id}/label")
    expect(page.locator("#labels button.label")).to_have_count(len(name_of))
    expect(page.locator("#item")).to_have_attribute("data-item-id", str(item.id))
    expect(page.locator("#item-text")).to_have_text(TEXT)
    confidence = math.floor(answer["confidence"] * 100 + 0.5)  # as JavaScript's Math.round
    expect_review_panel(
        page, model=name_of[answer["label"]], meta=f"{confidence}% confident, version 1, when the product asked",
        users=[f"{name_of[said]} — 2 users", "(the prediction is wrong) — 1 user"],
        sources=["checkout backend — 100% reliable", f"{MOBILE_APP} — not yet estimated"],
    )

    # Keyboard only, as on any other item: the expert sides with the users.
    page.wait_for_timeout(150)  # the expert reads the item and the panel
    page.keyboard.press(shortcut_of[said])
    expect(page.locator(f'#labels button.label[data-key="{said}"]')).to_have_attribute("aria-pressed", "true")
    page.keyboard.press("Enter")
    expect(page.locator("#status")).to_have_text(f"Labelled: {name_of[said]}")
    expect(page.locator("#item-text")).to_have_text(NO_MORE_ITEMS)
    expect(page.locator("#review")).to_be_hidden()
    expect(page.locator("#history li button").first).to_have_text(f"{name_of[said]} — {TEXT}", use_inner_text=True)
    assert page.js_errors == []

    # The label settled the review: the item is done, and every event on it is scored.
    item.refresh_from_db()
    assert not item.needs_review and item.is_done
    annotation = Annotation.objects.get(item=item)
    assert annotation.annotator == expert and annotation.labels == [said] and annotation.lead_time > 0
    assert set(FeedbackEvent.objects.filter(item=item).values_list("status", "expert_agrees")) == {
        (FeedbackStatus.REVIEWED, True)}
    reliability = {r["name"]: (r["reviewed"], r["reliability"]) for r in source_reliability(project=project)}
    assert reliability == {"checkout backend": (3, 1.0), MOBILE_APP: (1, 1.0)}
