"""The whole expert journey in a real browser (headless Chromium through Playwright):

log in -> project list with progress -> label three items with the keyboard only -> undo/edit
the last label -> the labels are in the database -> export JSON Lines from the project page (a
real Celery worker writes the file) -> download it and find the three labels in it.

And the model's side of it: on Banking77 texts encoded by all-MiniLM-L6-v2, the labelling screen
shows the suggestion, its confidence and why (words, nearest labelled items), pre-selects it, and
records whether the expert accepted it.
"""
import csv
import json
import os
import re
from types import SimpleNamespace

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from django.db import connections

from active_learning import encoding, explaining, refresh
from labeller.models import ActiveLearningState, Annotation, Item, JobStatus
from labeller.services import annotation_submit
from tests.banking77 import FOLDER

# Playwright's sync API runs an event loop in this thread; the ORM calls made here are plain
# blocking calls all the same.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
WAIT_MS = 10_000  # every wait for the page, unless a step says otherwise
EXPORT_WAIT_MS = 45_000  # the worker picks the job up, writes it, the page polls the API

XSS_TEXT = "<script>window.__xss=1</script><b>bold</b>"
TEXTS = [
    "My new card still has not arrived, where is it?",
    XSS_TEXT,
    "Which exchange rate do you use for payments abroad?",
    "Someone stole my wallet with the card in it.",
    "Can I choose when my card is delivered?",
]

# Label key (conftest's LABELS) -> its Banking77 intent, and a part of its name to type in the filter.
BANKING77 = FOLDER / "train.csv"
INTENT_OF = {"card_arrival": "card_arrival", "exchange_rate": "exchange_rate", "lost_card": "lost_or_stolen_card"}
# conftest's LABELS by name: the screen speaks in names, never keys.
NAME = {"card_arrival": "Card arrival", "exchange_rate": "Exchange rate", "lost_card": "Lost or stolen card"}
FILTER_TYPED = {"card_arrival": "arrival", "exchange_rate": "exchange", "lost_card": "stolen"}
TEXTS_PER_INTENT = 8
SEEDS_PER_INTENT = 2  # labelled before the expert arrives, so the head has something to learn from

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


# --- browser fixtures -----------------------------------------------------------------------

@pytest.fixture
def chromium():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=30_000)
        try:
            yield browser
        finally:
            browser.close()
            close_connections_opened_under_playwright()


def close_connections_opened_under_playwright() -> None:
    """While Playwright's loop counts as running in this thread, Django keeps the thread's
    connections in a context-local store apart from the ordinary one, so the ORM calls of the
    test body open a second connection that pytest-django never sees. Close it here, with the
    loop still marked running; left open it stops the test database from being dropped."""
    connections.close_all()


@pytest.fixture
def page(chromium, live_server):
    """A fresh browser tab on the live server; JavaScript errors are collected in `page.js_errors`."""
    context = chromium.new_context(base_url=live_server.url, accept_downloads=True)
    context.set_default_timeout(WAIT_MS)
    context.set_default_navigation_timeout(WAIT_MS)
    expect.set_options(timeout=WAIT_MS)
    tab = context.new_page()
    tab.js_errors = []
    tab.on("pageerror", lambda error: tab.js_errors.append(str(error)))
    try:
        yield tab
    finally:
        context.close()


# --- a project whose model already suggests ---------------------------------------------------

def banking77_texts(per_intent: int) -> dict[str, list[str]]:
    """The first `per_intent` training texts of each intent in INTENT_OF, by label key."""
    key_of = {intent: key for key, intent in INTENT_OF.items()}
    texts = {key: [] for key in INTENT_OF}
    with open(BANKING77, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            key = key_of.get(row["category"])
            if key and len(texts[key]) < per_intent:
                texts[key].append(row["text"])
    return texts


@pytest.fixture
def tasks_sent(monkeypatch):
    """Keep the active-learning tasks off the broker and list them instead: the test runs each
    step itself, and a worker started for another test of the session must not run them too."""
    sent = []
    for module, name in ((encoding, "encode_items"), (refresh, "refresh_priorities"), (explaining, "explain_suggestions")):
        def record(*args, name=name):
            sent.append((name, *args))

        monkeypatch.setattr(module, name, SimpleNamespace(name=f"labeller.tasks.{name}", delay=record,
                                                         apply_async=lambda args=(), record=record, **options: record(*args)))
    return sent


@pytest.fixture
def suggesting_project(make_project, add_items, owner, tasks_sent):
    """24 Banking77 texts encoded by the real base model, two per intent labelled by the owner,
    and the refresh and explanations a worker would run: the open items carry suggestions."""
    project = make_project(name="Banking77 with suggestions", suggestion_mode="preselect", eval_share=0)
    texts = banking77_texts(TEXTS_PER_INTENT)
    keys = [key for key in texts for _ in texts[key]]
    items = add_items(project, [text for key in texts for text in texts[key]])

    ActiveLearningState.objects.filter(project=project).update(encode_status=JobStatus.QUEUED)
    assert encoding.encode_pending(project_id=project.id) == len(items)
    assert tasks_sent == [("refresh_priorities", project.id)]  # what a worker would pick up next

    for key in INTENT_OF:  # ground truth, like an earlier expert
        for item in [item for item, k in zip(items, keys) if k == key][:SEEDS_PER_INTENT]:
            annotation_submit(item=item, user=owner, labels=[key])

    assert refresh.refresh_claim(project_id=project.id)
    report = refresh.refresh_run(project=project)
    refresh.refresh_release(project_id=project.id, report=report)
    seeds = len(INTENT_OF) * SEEDS_PER_INTENT
    assert (report.labelled, report.pool, report.cold_start) == (seeds, len(items) - seeds, False)
    # Word attributions for the two items the expert is served first (the worker does 20).
    assert explaining.explain_top(project_id=project.id, limit=2) == 2
    for item in Item.objects.filter(project=project, is_done=False).order_by("-priority", "id")[:2]:
        assert item.suggestion["words"] and len(item.suggestion["neighbours"]) == 3, item.suggestion
    return project


# --- steps ----------------------------------------------------------------------------------

def log_in(page: Page, username: str) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(f"{username}-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()
    expect(page.get_by_role("button", name=f"Log out {username}")).to_be_visible()


def log_out(page: Page, username: str) -> None:
    page.get_by_role("button", name=f"Log out {username}").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()


def project_card(page: Page, project):
    return page.locator("ul.projects li.card").filter(has=page.get_by_role("link", name=project.name))


def expect_project_progress(page: Page, project, done: int, total: int) -> None:
    card = project_card(page, project)
    expect(card).to_contain_text(f"{done} / {total} items done")
    expect(card.locator(".bar")).to_have_attribute("title", f"{done} of {total} done")


def open_labelling_screen(page: Page, project) -> None:
    project_card(page, project).get_by_role("link", name=project.name).click()
    expect(page.get_by_role("heading", name=project.name)).to_be_visible()
    page.get_by_role("link", name="Start labelling").click()
    expect(page.locator("#labels button.label")).to_have_count(project.labels.count())


def item_text(page: Page) -> str:
    return page.locator("#item-text").text_content()


def wait_for_new_item(page: Page, previous_text: str) -> str:
    """Wait until the screen shows an item other than `previous_text`; return its text."""
    expect(page.locator("#item-text")).not_to_have_text(previous_text)
    expect(page.locator("#item")).to_have_attribute("data-item-id", re.compile(r"^\d+$"))
    return item_text(page)


def expect_text_shown_literally(page: Page, text: str) -> None:
    """The item's text is on screen character for character, and none of it ran as HTML."""
    expect(page.locator("#item-text")).to_have_text(text, use_inner_text=True)
    expect(page.locator("#item-text *")).to_have_count(0)
    assert page.evaluate("typeof window.__xss") == "undefined"


def label_button(page: Page, key: str):
    return page.locator(f'#labels button.label[data-key="{key}"]')


def label_with_keyboard(page: Page, shortcut: str, key: str, *, enter_presses: int = 1) -> str:
    """Choose a label by its shortcut and submit with Enter; return the text of the next item.

    With `enter_presses=2` an impatient expert hits Enter twice: still one item is labelled.
    """
    labelled_text = item_text(page)
    page.wait_for_timeout(150)  # the expert reads the item: a measurable lead time
    page.keyboard.press(shortcut)
    expect(label_button(page, key)).to_have_attribute("aria-pressed", "true")
    for _ in range(enter_presses):
        page.keyboard.press("Enter")
    next_text = wait_for_new_item(page, labelled_text)
    if enter_presses == 1:  # a second Enter that lands on the next item asks for a label
        expect(page.locator("#status")).to_have_text(f"Labelled: {NAME[key]}")
    expect(page.locator("#history li button").first).to_have_text(f"{NAME[key]} — {labelled_text}", use_inner_text=True)
    return next_text


def submit_with_enter(page: Page, key: str) -> str:
    """Enter submits what is selected; return the text of the next item."""
    labelled_text = item_text(page)
    page.keyboard.press("Enter")
    next_text = wait_for_new_item(page, labelled_text)
    expect(page.locator("#status")).to_have_text(f"Labelled: {NAME[key]}")
    return next_text


def choose_with_label_filter(page: Page, typed: str, key: str) -> None:
    """/ opens the label filter; typing narrows the labels and Enter chooses the highlighted one."""
    page.keyboard.press("/")
    expect(page.locator("#label-filter")).to_be_focused()
    page.keyboard.type(typed)
    expect(page.locator("#labels button.label:visible")).to_have_count(1)
    expect(label_button(page, key)).to_have_class(re.compile(r"\bhighlighted\b"))
    page.keyboard.press("Enter")
    expect(page.locator("#label-filter")).not_to_be_focused()
    expect(page.locator("#labels button.label:visible")).to_have_count(len(INTENT_OF))  # filter cleared
    expect(label_button(page, key)).to_have_attribute("aria-pressed", "true")


def shown_item(page: Page) -> Item:
    return Item.objects.get(id=int(page.locator("#item").get_attribute("data-item-id")))


def expect_suggestion_and_why(page: Page, suggestion: dict, name_of: dict[str, str]) -> None:
    """The panel under the item shows the suggested label, how sure the model is, the words that
    pushed it and the three most similar labelled items, each with its label first."""
    expect(page.locator("#suggestion")).to_be_visible()
    expect(page.locator("#suggestion-label")).to_have_text(", ".join(name_of[k] for k in suggestion["labels"]))
    confidence = page.locator("#suggestion-confidence")
    expect(confidence).to_have_text(re.compile(r"^\d+% confident$"))
    expect(confidence).to_have_text(f"{int(suggestion['confidence'] * 100 + 0.5)}% confident")  # Math.round
    words = page.locator("#suggestion-words mark")
    expect(words.first).to_be_visible()
    expect(words).to_have_text([w["word"] for w in suggestion["words"]])
    neighbours = page.locator("#suggestion-neighbours li")
    expect(neighbours).to_have_count(3)
    for li, neighbour in zip(neighbours.all(), suggestion["neighbours"]):
        expect(li).to_have_text(re.compile(rf"^{re.escape(name_of[neighbour['labels'][0]])} — "))
        expect(li).to_contain_text(neighbour["text"])


def expect_preselected(page: Page, key: str) -> None:
    """The suggested label's button is marked as suggested and already pressed; no other is."""
    expect(label_button(page, key)).to_have_class(re.compile(r"\bsuggested\b"))
    expect(label_button(page, key)).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#labels button.label.suggested")).to_have_count(1)
    expect(page.locator('#labels button.label[aria-pressed="true"]')).to_have_count(1)


def edit_last_label_with_keyboard(page: Page, *, old_key: str, shortcut: str, key: str, text: str) -> None:
    """Ctrl+Z brings back the last labelled item; a shortcut and Enter change its label."""
    current_text = item_text(page)
    page.keyboard.press("Control+z")
    expect(page.locator("#item")).to_have_class(re.compile(r"\bediting\b"))
    expect_text_shown_literally(page, text)
    expect(label_button(page, old_key)).to_have_attribute("aria-pressed", "true")
    page.wait_for_timeout(100)
    page.keyboard.press(shortcut)
    expect(label_button(page, key)).to_have_attribute("aria-pressed", "true")
    expect(label_button(page, old_key)).to_have_attribute("aria-pressed", "false")
    page.keyboard.press("Enter")
    expect(page.locator("#status")).to_have_text(f"Changed “{text[:59] + '…' if len(text) > 60 else text}” to {NAME[key]}.")
    expect(page.locator("#item")).not_to_have_class(re.compile(r"\bediting\b"))
    expect(page.locator("#item-text")).to_have_text(current_text, use_inner_text=True)
    expect(page.locator("#history li button").first).to_have_text(f"{NAME[key]} — {text}", use_inner_text=True)


def export_jsonl_from_project_page(page: Page, project) -> list[dict]:
    """Submit the export form, wait for the polled list to offer the file, download it, parse it."""
    project_card(page, project).get_by_role("link", name=project.name).click()
    form = page.locator("#export-form")
    form.locator("select[name=format]").select_option("jsonl")
    form.locator("select[name=status]").select_option("all")
    polled = []  # the export API requests project.js makes while the worker runs
    page.on("request", lambda request: polled.append(request.url) if "/exports/" in request.url else None)
    with page.expect_response(lambda r: r.url.endswith(f"/projects/{project.id}/") and r.status == 200) as landing:
        form.get_by_role("button", name="Export").click()
    expect(page.locator("p.message.success")).to_contain_text("Export queued")
    newest = page.locator("ul.exports li[data-export]").first
    expect(newest).to_contain_text("JSON Lines")
    download = newest.locator("a.download")
    expect(download).to_have_text(f"Download ({len(TEXTS)} items)", timeout=EXPORT_WAIT_MS)
    expect(newest.locator(".status")).to_have_text("done")
    export_id = newest.get_attribute("data-export")
    if f'data-export="{export_id}" data-status="done"' not in landing.value.text():
        # The page showed the job unfinished, so the link came from polling the API.
        assert any(url.endswith(f"/exports/{export_id}/") for url in polled), polled
    response = page.request.get(download.get_attribute("href"), timeout=WAIT_MS)
    assert response.ok, f"download answered HTTP {response.status}"
    assert response.headers["content-disposition"].startswith("attachment;")
    return [json.loads(line) for line in response.text().splitlines() if line.strip()]


# --- the journey ----------------------------------------------------------------------------

def test_expert_labels_with_the_keyboard_and_the_owner_downloads_the_export(
    page, make_project, add_items, expert, owner, celery_worker_process
):
    project = make_project(name="Banking intents")
    add_items(project, TEXTS)
    shortcut_of = dict(project.labels.values_list("key", "shortcut"))
    assert shortcut_of == {"card_arrival": "a", "exchange_rate": "b", "lost_card": "c"}

    # The expert logs in through the form and sees the project with its progress.
    log_in(page, "expert")
    expect_project_progress(page, project, done=0, total=len(TEXTS))

    # The labelling screen serves items in import order; label three with the keyboard only.
    open_labelling_screen(page, project)
    expect(page.locator("#item-text")).not_to_have_text("Loading…")
    expect(page.locator("#progress")).to_have_text(f"0 / {len(TEXTS)} done")
    plan = ["card_arrival", "exchange_rate", "lost_card"]  # for the first three items
    labelled = {}  # item text -> label key submitted
    shown = item_text(page)
    for n, key in enumerate(plan):
        assert shown in TEXTS and shown not in labelled, f"unexpected item on screen: {shown!r}"
        expect_text_shown_literally(page, shown)
        next_text = label_with_keyboard(page, shortcut_of[key], key, enter_presses=2 if n == 0 else 1)
        labelled[shown] = key
        shown = next_text
    assert list(labelled) == TEXTS[:3]  # import order, none passed over; the second is the script tag
    expect_text_shown_literally(page, shown)
    assert shown == TEXTS[3]
    expect(page.locator("#progress")).to_have_text(f"3 / {len(TEXTS)} done")
    # The history shows the script-tag item as text too.
    expect(page.locator("#history")).to_contain_text(f"Exchange rate — {XSS_TEXT}", use_inner_text=True)
    expect(page.locator("#history b, #history script")).to_have_count(0)

    # Ctrl+Z: change the last label (lost_card) to card_arrival.
    last_text = TEXTS[2]
    edit_last_label_with_keyboard(page, old_key=labelled[last_text], shortcut=shortcut_of["card_arrival"],
                                  key="card_arrival", text=last_text)
    labelled[last_text] = "card_arrival"
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.js_errors == []

    # The database holds exactly these three labels, each with a lead time.
    annotations = Annotation.objects.filter(project=project).select_related("item", "annotator")
    recorded = {a.item.data["text"]: a for a in annotations}
    assert {text: a.labels for text, a in recorded.items()} == {text: [key] for text, key in labelled.items()}
    for text, annotation in recorded.items():
        assert annotation.annotator == expert and not annotation.skipped
        assert annotation.lead_time is not None and annotation.lead_time > 0, (text, annotation.lead_time)
    assert recorded[last_text].updated_at > recorded[last_text].created_at  # edited, not re-created

    # The owner (project admin) exports JSON Lines; a real worker writes the file.
    log_out(page, "expert")
    log_in(page, "owner")
    expect_project_progress(page, project, done=3, total=len(TEXTS))
    rows = export_jsonl_from_project_page(page, project)
    assert [row["data"]["text"] for row in rows] == TEXTS
    exported = {row["data"]["text"]: row for row in rows}
    for text in TEXTS:
        row = exported[text]
        if text in labelled:
            assert [a["labels"] for a in row["annotations"]] == [[labelled[text]]], text
            assert row["annotations"][0]["annotator"] == "expert"
            assert row["annotations"][0]["lead_time"] > 0
            assert row["majority"] == [labelled[text]] and row["done"] is True
        else:
            assert row["annotations"] == [] and row["done"] is False
    assert page.js_errors == []


def test_the_labelling_screen_shows_the_suggestion_and_why_and_records_acceptance(
    suggesting_project, tasks_sent, page, expert
):
    project = suggesting_project
    name_of = dict(project.labels.values_list("key", "name"))
    log_in(page, "expert")
    open_labelling_screen(page, project)
    expect(page.locator("#item")).to_have_attribute("data-item-id", re.compile(r"^\d+$"))

    # The first item: the suggestion, its confidence and why; pre-selected, Enter accepts it.
    first = shown_item(page)
    suggested = first.suggestion["labels"][0]
    expect_suggestion_and_why(page, first.suggestion, name_of)
    expect_preselected(page, suggested)
    page.wait_for_timeout(150)  # the expert reads the item
    submit_with_enter(page, suggested)
    accepted = Annotation.objects.get(item=first, annotator=expert)
    assert accepted.labels == accepted.suggested_labels == [suggested]
    assert accepted.suggestion_accepted is True

    # The next item: the expert overrides the suggestion through the label filter.
    second = shown_item(page)
    assert second.id != first.id
    suggested = second.suggestion["labels"][0]
    expect_suggestion_and_why(page, second.suggestion, name_of)
    expect_preselected(page, suggested)
    chosen = next(key for key in FILTER_TYPED if key != suggested)
    choose_with_label_filter(page, FILTER_TYPED[chosen], chosen)
    expect(label_button(page, suggested)).to_have_attribute("aria-pressed", "false")
    expect(label_button(page, suggested)).to_have_class(re.compile(r"\bsuggested\b"))  # still marked
    submit_with_enter(page, chosen)
    overridden = Annotation.objects.get(item=second, annotator=expert)
    assert (overridden.labels, overridden.suggested_labels) == ([chosen], [suggested])
    assert overridden.suggestion_accepted is False

    # Editing that label (Ctrl+Z) shows the earlier item: the panel, which explains the item
    # underneath, steps aside until Escape brings that item back.
    page.keyboard.press("Control+z")
    expect(page.locator("#item")).to_have_class(re.compile(r"\bediting\b"))
    expect(page.locator("#suggestion")).to_be_hidden()
    expect(page.locator("#labels button.label.suggested")).to_have_count(0)
    page.keyboard.press("Escape")
    expect(page.locator("#item")).not_to_have_class(re.compile(r"\bediting\b"))
    expect(page.locator("#suggestion")).to_be_visible()

    assert page.js_errors == []
    assert tasks_sent == [("refresh_priorities", project.id)]  # two new labels ask for no refresh yet
