"""The models page in a real browser while a version trains: the progress bar, epoch, loss and
ETA move in place from the versions API (saying "starting…" until there are numbers), a reason the
admin is typing survives, and the page shows the finished version once the admin is done typing.
Why a version fails its gate is written in its row; promoting the champion again is refused in a
sentence. And the one-time API token on the monitoring page, at its top, with a copy button."""
import re
from types import SimpleNamespace

import pytest
from playwright.sync_api import expect

from models_registry import training
from models_registry.models import ModelVersion, VersionStatus

from .test_browser import chromium, log_in, page  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def claimed_version(labelled_project, monkeypatch):
    """A fine-tuned version a worker has just claimed, with no progress yet; no task reaches a broker."""
    monkeypatch.setattr(training, "train_version", SimpleNamespace(delay=lambda *a, **k: None, apply_async=lambda *a, **k: None))
    (version,) = training.retrain_request(project=labelled_project, kinds=["finetuned"])
    return training.version_claim(version_id=version.id)


@pytest.fixture
def training_version(claimed_version):
    """The claimed version, 10 steps of 100 in."""
    set_progress(claimed_version, step=10, loss=2.5, eta_s=90)
    return claimed_version


def set_progress(version, *, step: int, loss: float, eta_s: float) -> None:
    ModelVersion.objects.filter(id=version.id).update(
        progress={"epoch": 1 + step // 50, "epochs": 2, "step": step, "steps": 100, "loss": loss, "eta_s": eta_s})


def test_progress_moves_in_place_and_a_typed_reason_survives(page, owner, labelled_project, training_version):  # noqa: F811
    log_in(page, owner.username)
    page.goto(f"/projects/{labelled_project.id}/models")
    row = page.locator(f"#version-{training_version.number}")
    expect(row.locator(".progress-text")).to_have_text("epoch 1/2, loss 2.500, ETA 90 s")
    expect(row.locator(".bar > span")).to_have_attribute("style", re.compile(r"width: 10%"))
    reason = page.get_by_placeholder("why roll back?")
    reason.fill("v1 misroutes card arrivals")

    set_progress(training_version, step=60, loss=0.75, eta_s=30)
    expect(row.locator(".progress-text")).to_have_text("epoch 2/2, loss 0.750, ETA 30 s")
    expect(row.locator(".bar > span")).to_have_attribute("style", re.compile(r"width: 60%"))
    expect(reason).to_have_value("v1 misroutes card arrivals")  # polled, not reloaded

    ModelVersion.objects.filter(id=training_version.id).update(status=VersionStatus.FAILED, error="worker lost")
    page.wait_for_timeout(3000)  # a poll sees the change, and does not reload under the typed reason
    expect(reason).to_have_value("v1 misroutes card arrivals")
    reason.fill("")
    expect(row).to_have_attribute("data-status", "failed")  # reloaded at the next poll
    expect(row).to_contain_text("worker lost")
    assert page.js_errors == []


# Every text the progress line has shown, recorded by the page itself, so a flash between two
# polls is seen too.
RECORD_PROGRESS_TEXTS = """() => {
  const text = document.querySelector(".progress-text");
  window.progressTexts = [text.textContent];
  new MutationObserver(() => window.progressTexts.push(text.textContent))
    .observe(text, { childList: true, characterData: true, subtree: true });
}"""
EMPTY_PATTERN = re.compile(r"epoch\s*/|loss\s*,|ETA\s+s|NaN|undefined|^\s*$")


def test_progress_says_starting_until_there_are_numbers_and_is_never_empty(page, owner, labelled_project, claimed_version):  # noqa: F811
    log_in(page, owner.username)
    page.goto(f"/projects/{labelled_project.id}/models")
    text = page.locator(f"#version-{claimed_version.number} .progress-text")
    expect(text).to_have_text("starting…")
    page.evaluate(RECORD_PROGRESS_TEXTS)

    ModelVersion.objects.filter(id=claimed_version.id).update(progress={"epoch": 1, "epochs": 2, "step": 0, "steps": 100})
    page.wait_for_timeout(2500)  # a poll sees an epoch but no loss or ETA yet
    expect(text).to_have_text("starting…")
    set_progress(claimed_version, step=10, loss=2.5, eta_s=90)
    expect(text).to_have_text("epoch 1/2, loss 2.500, ETA 90 s")
    seen = page.evaluate("window.progressTexts")
    assert seen and not [shown for shown in seen if EMPTY_PATTERN.search(shown)], seen
    assert page.js_errors == []


def test_the_gate_failure_is_written_in_the_row_and_the_champion_is_not_promoted_again(page, owner, labelled_project):  # noqa: F811
    from models_registry import promotion
    from models_registry.models import AliasMove, TrainingPolicy

    TrainingPolicy.objects.update_or_create(project=labelled_project, defaults={"guardrails": [{"type": "min_primary", "value": 0.999}]})
    (version,) = training.retrain_request(project=labelled_project, kinds=["head"])
    version = training.version_train(version=training.version_claim(version_id=version.id))
    promotion.version_promote(version=version, user=owner, reason="accepted risk: demo", override=True)
    log_in(page, owner.username)
    page.goto(f"/projects/{labelled_project.id}/models")
    row = page.locator(f"#version-{version.number}")
    expect(row.locator(".gate-failures")).to_be_visible()
    expect(row.locator(".gate-failures")).to_have_text(version.gate["failures"][0])

    row.get_by_placeholder("reason for override").fill("again")
    row.locator("button.promote").click()
    expect(page.locator(".message.error")).to_have_text("v1 is already the champion")
    assert AliasMove.objects.filter(project=labelled_project).count() == 1
    assert page.js_errors == []


def test_a_new_token_is_shown_first_and_copied_with_one_click(page, owner, served_project, live_server):  # noqa: F811
    from feedback.models import ApiToken

    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    log_in(page, owner.username)
    page.goto(f"/projects/{served_project.id}/monitoring")
    page.get_by_placeholder("checkout backend").fill("checkout")
    page.locator("#create-token").click()
    shown = page.locator("#new-token")
    expect(shown).to_be_in_viewport()
    token = page.locator("#new-token-value").text_content()
    assert token.startswith(f"ll_{ApiToken.objects.get(project=served_project, name='checkout').prefix}_")

    shown.get_by_role("button", name="Copy").click()
    expect(shown.get_by_role("status")).to_have_text("Copied to the clipboard.")
    assert page.evaluate("navigator.clipboard.readText()") == token
    assert page.js_errors == []
