"""The labelling screen with many labels, in a real browser (headless Chromium through Playwright):
Banking77's 77 intents as labels, every one reachable from the keyboard, a filter that matches
word beginnings, Tab for the model's suggestion, names (never keys) in the status and history,
and a clock that stops when the queue is empty."""
import json
import os
import re

import numpy as np
import pytest
from playwright.sync_api import Page, expect

from labeller.label_defaults import labels_from_names
from labeller.models import ActiveLearningState, Role
from labeller.services import membership_set, project_create
from ml.heads import LinearHead

# The browser fixtures and the log-in step of the main browser test.
from .test_browser import chromium, log_in, page  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

INTENTS = json.loads((__import__("pathlib").Path(__file__).resolve().parents[2] / "labeller" / "demo"
                      / "banking77_categories.json").read_text())
NO_MORE_ITEMS = "No more items need your label in this project."
SCREENSHOTS = os.environ.get("LABELLOOP_SCREENSHOTS")  # a folder to keep the 1400×900 screenshot in


@pytest.fixture
def banking77_project(owner, expert):
    """The demo's labels: 77 intents, named like seed_demo names them, shortcuts on the first ten."""
    labels = [{"key": intent, "name": intent.replace("_", " ").capitalize(),
               "shortcut": "1234567890"[i] if i < 10 else ""} for i, intent in enumerate(INTENTS)]
    project = project_create(user=owner, labels=labels, name="Banking77")
    membership_set(project=project, user=expert, role=Role.EXPERT)
    return project


def open_screen(page: Page, project) -> None:
    log_in(page, "expert")
    page.goto(f"/projects/{project.id}/label")
    expect(page.locator("#labels button.label")).to_have_count(project.labels.count())
    # Showing the first item resets the label box (filter, pending key): keys pressed before it are lost.
    expect(page.locator("#item-text")).not_to_have_text("Loading…")


def button(page: Page, key: str):
    return page.locator(f'#labels button.label[data-key="{key}"]')


@pytest.fixture
def new_project_of_77(owner, expert):
    """The same 77 intents through the new project's defaults: 36 stored shortcuts, 41 without."""
    project = project_create(user=owner, labels=labels_from_names([i.replace("_", " ").capitalize() for i in INTENTS]),
                             name="Banking77, new project defaults")
    membership_set(project=project, user=expert, role=Role.EXPERT)
    return project


@pytest.mark.parametrize("which", ["banking77_project", "new_project_of_77"])
def test_every_one_of_77_labels_shows_its_keys_and_pressing_them_chooses_it(page, which, request, add_items):
    project = request.getfixturevalue(which)
    add_items(project, ["I still have not received my new card"])
    open_screen(page, project)
    expect(page.locator("#item-text")).to_have_text("I still have not received my new card")
    codes = page.evaluate("JSON.parse(document.getElementById('label-config').textContent).labels.map(l => [l.key, l.shortcut])")
    assert len(codes) == 77 and all(code for _, code in codes) and len({code for _, code in codes}) == 77
    for key, code in codes:
        expect(button(page, key).locator(".keys")).to_have_text(code)  # shown on the button
        for k in code:
            page.keyboard.press(k)
        expect(button(page, key)).to_have_attribute("aria-pressed", "true")
        expect(page.locator('#labels button.label[aria-pressed="true"]')).to_have_count(1)
    assert page.js_errors == []


def test_the_first_key_of_a_two_key_shortcut_waits_for_the_second_and_escape_drops_it(page, banking77_project, add_items):
    add_items(banking77_project, ["Where is my card?"])
    open_screen(page, banking77_project)
    # Showing an item drops any pending first key: press it only once the item is on screen.
    expect(page.locator("#item-text")).to_have_text("Where is my card?")
    two_key = page.evaluate("JSON.parse(document.getElementById('label-config').textContent).labels.map(l => l.shortcut)"
                            ".filter(c => c.length === 2)")
    prefix = two_key[0][0]
    page.keyboard.press(prefix)
    expect(page.locator("#pending-key")).to_contain_text(f"{prefix} … now the second key")
    expect(page.locator("#labels button.label.continues")).to_have_count(sum(c[0] == prefix for c in two_key))
    page.keyboard.press("Escape")
    expect(page.locator("#pending-key")).not_to_contain_text("second key")
    expect(page.locator("#labels button.label.continues")).to_have_count(0)
    expect(page.locator('#labels button.label[aria-pressed="true"]')).to_have_count(0)


def test_the_filter_matches_word_beginnings_best_first_and_marks_them(page, banking77_project, add_items):
    add_items(banking77_project, ["My PIN is blocked"])
    open_screen(page, banking77_project)
    page.keyboard.press("/")
    page.keyboard.type("pin")
    visible = page.locator("#labels button.label:visible")
    expect(visible).to_have_count(2)  # "Pin blocked", "Change pin"; not "Topping up by card"
    expect(button(page, "topping_up_by_card")).to_be_hidden()
    expect(button(page, "pin_blocked")).to_have_class(re.compile(r"\bhighlighted\b"))  # its first word
    expect(button(page, "pin_blocked").locator("mark")).to_have_text("Pin")
    expect(button(page, "change_pin").locator("mark")).to_have_text("pin")
    # Every typed word must begin a word of the name: "top card" is the card top-ups only.
    page.locator("#label-filter").fill("top card")
    expect(visible).to_have_count(2)
    expect(visible.first).to_have_attribute("data-key", "top_up_by_card_charge")
    page.keyboard.press("ArrowDown")
    expect(button(page, "topping_up_by_card")).to_have_class(re.compile(r"\bhighlighted\b"))
    page.keyboard.press("Enter")
    expect(button(page, "topping_up_by_card")).to_have_attribute("aria-pressed", "true")
    expect(visible).to_have_count(77)  # the filter is cleared
    expect(page.locator("#labels mark")).to_have_count(0)


def test_at_1400_by_900_the_label_box_scrolls_and_cuts_no_row_in_half(page, banking77_project, add_items):
    add_items(banking77_project, ["Why did my bank charge me twice for the same card payment?"])
    page.set_viewport_size({"width": 1400, "height": 900})
    open_screen(page, banking77_project)
    expect(page.locator("#item-text")).not_to_have_text("Loading…")
    box = page.locator("#labels").bounding_box()
    assert box["y"] + box["height"] <= 900  # the box, and the item above it, fit on the screen
    assert page.locator("#submit").bounding_box()["y"] <= 900  # and so does Submit
    assert page.evaluate("document.getElementById('labels').scrollHeight > document.getElementById('labels').clientHeight")
    cut = page.evaluate("""() => {
        const outer = document.getElementById('labels').getBoundingClientRect();
        return [...document.querySelectorAll('#labels button.label')].map(b => b.getBoundingClientRect())
          .filter(r => r.top < outer.bottom && r.bottom > outer.bottom + 0.5).length;
    }""")
    assert cut == 0
    expect(page.locator("#pending-key")).to_have_text("77 labels: scroll the box for more, or press / to filter")
    if SCREENSHOTS:
        page.screenshot(path=os.path.join(SCREENSHOTS, "label-screen-1400x900.png"))
        page.keyboard.press("/")
        page.keyboard.type("top card")
        page.screenshot(path=os.path.join(SCREENSHOTS, "label-screen-filter-1400x900.png"))


def test_tab_takes_the_suggestion_and_enter_submits_it(page, banking77_project, add_items):
    (item,) = add_items(banking77_project, ["My card payment was declined"])
    dim, classes = 4, INTENTS
    head = LinearHead(classes=classes, coef=np.zeros((len(classes), dim)), intercept=np.zeros(len(classes)))
    ActiveLearningState.objects.filter(project=banking77_project).update(head=head.to_bytes(), head_version=1)
    item.suggestion = {"labels": ["declined_card_payment"], "confidence": 0.64, "top": [{"label": "declined_card_payment", "p": 0.64}],
                       "neighbours": [], "words": [], "head_version": 1}
    item.save(update_fields=["suggestion"])
    open_screen(page, banking77_project)
    expect(page.locator("#suggestion-label")).to_have_text("Declined card payment")
    # Named as the labelling model's: the Review panel's served model may say otherwise, and did.
    expect(page.locator("#suggestion p").first).to_contain_text("Labelling model suggests Declined card payment 64% confident")
    expect(page.locator("#suggestion")).to_contain_text("Tab takes it")
    expect(page.locator('#labels button.label[aria-pressed="true"]')).to_have_count(0)
    page.keyboard.press("Tab")
    expect(button(page, "declined_card_payment")).to_have_attribute("aria-pressed", "true")
    page.keyboard.press("Enter")
    expect(page.locator("#status")).to_have_text("Labelled: Declined card payment")
    annotation = item.annotations.get()
    assert annotation.labels == ["declined_card_payment"] and annotation.suggestion_accepted


def test_status_and_history_name_labels_number_every_entry_and_the_clock_stops_at_the_end(page, banking77_project, add_items):
    long_text = "My card was charged twice for the same purchase and " * 4 + "I want the duplicate back."
    add_items(banking77_project, [long_text, "Short one"])
    page.set_viewport_size({"width": 1400, "height": 900})
    open_screen(page, banking77_project)
    for expected_name, key in (("Card arrival", "1"), ("Card linking", "2")):  # intents 1 and 2 of the list
        expect(page.locator("#item")).to_have_attribute("data-item-id", re.compile(r"^\d+$"))
        page.wait_for_timeout(100)
        page.keyboard.press(key)
        page.keyboard.press("Enter")
        expect(page.locator("#status")).to_have_text(f"Labelled: {expected_name}")
    expect(page.locator("#item-text")).to_have_text(NO_MORE_ITEMS)
    entries = page.locator("#history li")
    expect(entries.locator(".number")).to_have_text(["1.", "2."])
    expect(entries.locator("button")).to_have_text(["Card linking — Short one", f"Card arrival — {long_text}"])
    # The number of a long entry sits beside its first line.
    first_line = page.evaluate("""() => [...document.querySelectorAll('#history li')].map(li =>
        Math.abs(li.querySelector('.number').getBoundingClientRect().top - li.querySelector('button').getBoundingClientRect().top))""")
    assert max(first_line) < 4
    expect(page.locator("#timer")).to_have_text("")
    page.wait_for_timeout(1200)
    expect(page.locator("#timer")).to_have_text("")
    assert page.js_errors == []
