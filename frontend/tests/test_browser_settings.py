"""Settings round-trip in a real browser (headless Chromium): the admin opens Settings from the
project page, changes a value in each section, saves it, reloads, and finds every value kept; a
bad value (a cron minute of 61, guardrails that are not JSON) is refused with the field named.

With LABELLOOP_SCREENSHOT_DIR set, the run saves the page's screenshot there (docs/settings_page.png)."""
import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from feedback.models import ServingPolicy
from labeller.models import Project
from models_registry import schedules
from models_registry.models import TrainingPolicy

# The browser fixtures and steps of the main browser test.
from .test_browser import chromium, log_in, page  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def screenshot(page, name: str) -> None:  # noqa: F811
    folder = os.environ.get("LABELLOOP_SCREENSHOT_DIR")
    if folder:
        page.screenshot(path=str(Path(folder) / name), full_page=True)


def saved(page, section: str, message: str) -> None:
    page.locator(f"#{section}").get_by_role("button", name="Save").click()
    expect(page.locator(".message.success")).to_have_text(message)


def test_settings_round_trip(page, project):  # noqa: F811
    log_in(page, "owner")
    page.get_by_role("link", name=project.name).click()
    page.get_by_role("link", name="Settings").click()
    expect(page.get_by_role("heading", name="Settings", exact=True)).to_be_visible()
    screenshot(page, "settings_page.png")

    page.get_by_label("Guidelines").fill("Pick the customer's main intent.")
    saved(page, "general", "Settings saved.")
    page.get_by_label("Labels per item").fill("2")
    saved(page, "queue", "Settings saved.")
    page.get_by_label("Strategy").select_option("entropy")
    page.get_by_label("Evaluation share").fill("0.2")
    page.get_by_label("Out-of-scope label").select_option("lost_card")
    saved(page, "active-learning", "Settings saved.")
    page.get_by_label("Retrain schedule").fill("0 3 * * 1")
    page.get_by_label("auto-promote").check()
    saved(page, "training", "Training policy saved.")
    page.get_by_label("Abstain below confidence").fill("0.35")
    saved(page, "serving", "Serving policy saved.")

    page.reload()
    expect(page.get_by_label("Guidelines")).to_have_value("Pick the customer's main intent.")
    expect(page.get_by_label("Labels per item")).to_have_value("2")
    expect(page.get_by_label("Strategy")).to_have_value("entropy")
    expect(page.get_by_label("Evaluation share")).to_have_value("0.2")
    expect(page.get_by_label("Out-of-scope label")).to_have_value("lost_card")
    expect(page.get_by_label("Retrain schedule")).to_have_value("0 3 * * 1")
    expect(page.get_by_label("auto-promote")).to_be_checked()
    expect(page.get_by_label("Abstain below confidence")).to_have_value("0.35")
    project = Project.objects.get(id=project.id)
    assert (project.guidelines, project.labels_per_item, project.strategy, project.eval_share) == (
        "Pick the customer's main intent.", 2, "entropy", 0.2)
    assert schedules.schedule_of(project) == "0 3 * * 1" and TrainingPolicy.objects.get(project=project).auto_promote
    assert ServingPolicy.objects.get(project=project).abstain_below == 0.35

    # Bad values: the message names the field, and nothing changes.
    page.get_by_label("Retrain schedule").fill("61 3 * * 1")
    page.locator("#training").get_by_role("button", name="Save").click()
    expect(page.locator(".message.error")).to_have_text("schedule: minute '61': Invalid end range: 61 > 59.")
    expect(page.get_by_label("Retrain schedule")).to_have_value("0 3 * * 1")
    page.locator("#guardrails").fill("[{")
    page.locator("#training").get_by_role("button", name="Save").click()
    expect(page.locator(".message.error")).to_contain_text("guardrails: not valid JSON")
    assert schedules.schedule_of(project) == "0 3 * * 1"
    assert not page.js_errors
