"""Setting up a project from nothing in a real browser: a user with no project logs in, opens the
new project page, pastes labels (keys, shortcuts and colours filled in), edits one shortcut, sees
the item and guidelines previews, creates the project, lands on its import form, imports a small
JSON Lines file and labels an item with the edited shortcut. Then the labels page archives one,
and the labelling screen no longer offers it.

With LABELLOOP_SCREENSHOT_DIR set, the run saves the two pages' screenshots there
(docs/new_project_page.png and docs/labels_page.png are made this way)."""
import json
import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from labeller.models import Item, Project

from .test_browser import chromium, log_in, page, tasks_sent  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LABELS = ["Billing", "Bug report", "Feature request", "Account access"]
ITEMS = [{"text": "I was charged twice this month", "channel": "email"},
         {"text": "The export button does nothing", "channel": "chat"},
         {"text": "Please add a dark mode", "channel": "email"}]


def screenshot(page, name: str) -> None:
    folder = os.environ.get("LABELLOOP_SCREENSHOT_DIR")
    if folder:
        page.screenshot(path=str(Path(folder) / name), full_page=True)


def shortcut_of(page, name: str):
    return page.get_by_label(f"Shortcut of {name}")


def test_a_new_user_sets_up_a_project_imports_items_and_sees_its_labels(page, outsider, tasks_sent):  # noqa: F811
    log_in(page, "outsider")
    page.get_by_role("link", name="New project").click()
    expect(page.get_by_role("heading", name="New project")).to_be_visible()

    page.get_by_label("Name", exact=True).fill("Support tickets")
    page.get_by_label("Description").fill("What customers write to support")
    page.get_by_label("One label per line").fill("\n".join(LABELS))
    expect(page.locator("#label-table tbody tr")).to_have_count(4)
    expect(page.get_by_label("Key of Bug report")).to_have_value("bug_report")
    expect(shortcut_of(page, "Bug report")).to_have_value("2")
    shortcut_of(page, "Bug report").fill("b")  # the others keep theirs, the freed 2 goes to the next one
    expect(shortcut_of(page, "Billing")).to_have_value("1")
    expect(shortcut_of(page, "Feature request")).to_have_value("2")
    expect(shortcut_of(page, "Account access")).to_have_value("3")

    page.get_by_label("Other fields every item must have").fill("channel")
    expect(page.locator("#item-preview")).to_contain_text('"text":"The text your experts read and label","channel":"…"')
    page.get_by_label("Markdown, shown beside each item").fill("## Billing\nAnything about **money**.\n\n<script>x</script>")
    expect(page.locator("#guidelines-preview strong")).to_have_text("money")
    expect(page.locator("#guidelines-preview h2")).to_have_text("Billing")
    expect(page.locator("#guidelines-preview script")).to_have_count(0)
    screenshot(page, "new_project_page.png")

    page.get_by_role("button", name="Create project and import items").click()
    project = Project.objects.get(name="Support tickets")
    expect(page).to_have_url(re.compile(rf"/projects/{project.id}/#import-items$"))
    expect(page.get_by_text("Project “Support tickets” created with 4 labels. Import its items next.")).to_be_visible()
    assert list(project.labels.values_list("name", "shortcut")) == [
        ("Billing", "1"), ("Bug report", "b"), ("Feature request", "2"), ("Account access", "3")]

    import_form = page.locator("#import-items")
    import_form.locator("input[type=file]").set_input_files(files=[{
        "name": "tickets.jsonl", "mimeType": "application/x-ndjson",
        "buffer": "\n".join(json.dumps(item) for item in ITEMS).encode()}])
    import_form.get_by_role("button", name="Import").click()
    expect(page.locator("#import-result")).to_contain_text("3 items created")
    assert Item.objects.filter(project=project).count() == 3

    page.get_by_role("link", name="Start labelling").click()
    expect(page.locator("#labels button.label")).to_have_count(4)
    expect(page.locator('#labels button.label[data-key="bug_report"] kbd')).to_have_text("b")
    expect(page.locator("#item-text")).to_have_text(ITEMS[0]["text"])
    page.keyboard.press("b")
    page.keyboard.press("Enter")
    expect(page.locator("#item-text")).to_have_text(ITEMS[1]["text"])
    assert project.annotations.get().labels == ["bug_report"]

    # The labels page: archive one; the labelling screen stops offering it.
    page.goto(f"/projects/{project.id}/labels")
    expect(page.locator('tr[data-key="bug_report"]')).to_contain_text("1 annotation")
    expect(page.get_by_role("button", name="Delete bug_report")).to_have_count(0)  # used: archive only
    page.get_by_role("button", name="Archive account_access").click()
    expect(page.get_by_text("Label “Account access” archived")).to_be_visible()
    screenshot(page, "labels_page.png")
    page.goto(f"/projects/{project.id}/label")
    expect(page.locator("#labels button.label")).to_have_count(3)
    assert page.js_errors == []


def test_labels_are_read_from_a_chosen_column_of_a_csv_file(page, outsider):  # noqa: F811
    log_in(page, "outsider")
    page.goto("/projects/new")
    page.locator("#labels-csv").set_input_files(files=[{
        "name": "tickets.csv", "mimeType": "text/csv",
        "buffer": 'text,category,team\n"Charged twice, please help",Billing,money\nApp crashes,Bug report,app\n'
                  'Refund?,Billing,money\n"Say ""hi""",Other,\n'.encode()}])
    expect(page.get_by_label("One label per line")).to_have_value("Billing\nBug report\nOther")  # "category" guessed
    page.get_by_label("Column holding the labels").select_option("team")
    expect(page.get_by_label("One label per line")).to_have_value("money\napp")
    expect(page.locator("#label-table tbody tr")).to_have_count(2)
    assert page.js_errors == []
