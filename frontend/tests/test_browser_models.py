"""The models page in a real browser while a version trains: the progress bar, epoch, loss and
ETA move in place from the versions API, a reason the admin is typing survives, and the page
shows the finished version once the admin is done typing."""
import re
from types import SimpleNamespace

import pytest
from playwright.sync_api import expect

from models_registry import training
from models_registry.models import ModelVersion, VersionStatus

from .test_browser import chromium, log_in, page  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def training_version(labelled_project, monkeypatch):
    """A fine-tuned version a worker has claimed, 10 steps of 100 in; no task reaches a broker."""
    monkeypatch.setattr(training, "train_version", SimpleNamespace(delay=lambda *a, **k: None, apply_async=lambda *a, **k: None))
    (version,) = training.retrain_request(project=labelled_project, kinds=["finetuned"])
    version = training.version_claim(version_id=version.id)
    set_progress(version, step=10, loss=2.5, eta_s=90)
    return version


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
