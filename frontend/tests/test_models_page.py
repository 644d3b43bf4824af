"""The models page: versions, curve, confusion matrix, and admin-only buttons."""
import re

import pytest
from django.utils.html import escape

from models_registry import training
from models_registry.models import Alias, AliasMove, ModelVersion, TrainingPolicy

pytestmark = pytest.mark.django_db


# labelled_project evaluates on 12 items, which the default gate refuses (it needs 30): the tests of
# the buttons themselves say that they run without guardrails.
def without_guardrails(project):
    TrainingPolicy.objects.update_or_create(project=project, defaults={"guardrails": []})


def trained(project, kind="head"):
    (version,) = training.retrain_request(project=project, kinds=[kind])
    return training.version_train(version=training.version_claim(version_id=version.id))


def test_admins_see_versions_metrics_and_the_buttons(client, owner, labelled_project):
    version = trained(labelled_project)
    client.force_login(owner)
    page = client.get(f"/projects/{labelled_project.id}/models").content.decode()
    assert f"v{version.number}" in page and "Retrain" in page and "Roll back" in page and "Promote" in page
    assert "Confusion matrix of v1" in page and "<polyline" in page


def test_the_learning_curve_has_a_scale_on_both_axes(client, owner, labelled_project):
    trained(labelled_project)
    client.force_login(owner)
    page = client.get(f"/projects/{labelled_project.id}/models").content.decode()
    curve = page[page.index("<h2>Learning curve</h2>"):page.index("Confusion matrix")]
    assert "Accuracy against training labels" in curve and "x: training labels · y: Accuracy" in curve
    ticks = re.findall(r'class="tick"[^>]*>([^<]+)</text>', curve)
    assert ticks[:5] == ["0", "0.25", "0.5", "0.75", "1"] and ticks[5] == "0" and len(ticks) == 10


def test_experts_see_the_page_without_the_buttons_and_cannot_post(client, expert, labelled_project):
    version = trained(labelled_project)
    client.force_login(expert)
    page = client.get(f"/projects/{labelled_project.id}/models").content.decode()
    assert "v1" in page and 'id="retrain"' not in page and "Promote</button>" not in page
    assert client.post(f"/projects/{labelled_project.id}/models/retrain").status_code == 403
    assert client.post(f"/projects/{labelled_project.id}/models/{version.number}/promote").status_code == 403
    assert not Alias.objects.exists()


def test_outsiders_get_404(client, outsider, labelled_project):
    client.force_login(outsider)
    assert client.get(f"/projects/{labelled_project.id}/models").status_code == 404


def test_the_buttons_retrain_promote_and_roll_back(client, owner, labelled_project):
    client.force_login(owner)
    client.post(f"/projects/{labelled_project.id}/models/retrain", {"kinds": ["head"]})
    (queued,) = ModelVersion.objects.filter(project=labelled_project, status="queued")
    client.post(f"/projects/{labelled_project.id}/models/{queued.number}/cancel")  # the next retrain waits for it
    without_guardrails(labelled_project)
    v1, v2 = trained(labelled_project), trained(labelled_project)
    client.post(f"/projects/{labelled_project.id}/models/{v1.number}/promote", {"reason": "first"})
    client.post(f"/projects/{labelled_project.id}/models/{v2.number}/promote", {"reason": "second"})
    client.post(f"/projects/{labelled_project.id}/models/rollback", {"reason": "regression"})
    assert Alias.objects.get(project=labelled_project, name="champion").version == v1
    page = client.get(f"/projects/{labelled_project.id}/models").content.decode()
    assert "regression" in page and "by owner" in page


def test_the_retrain_button_refuses_an_unknown_kind_with_a_message(client, owner, labelled_project):
    client.force_login(owner)
    page = client.post(f"/projects/{labelled_project.id}/models/retrain", {"kinds": ["gpt"]}, follow=True)
    assert page.status_code == 200 and "kinds: unknown kind &#x27;gpt&#x27;" in page.content.decode()
    assert not ModelVersion.objects.filter(project=labelled_project).exists()


def test_the_retrain_button_says_why_nothing_is_queued_while_a_version_is_queued(client, owner, labelled_project):
    client.force_login(owner)
    client.post(f"/projects/{labelled_project.id}/models/retrain", {"kinds": ["head", "head"]})
    page = client.post(f"/projects/{labelled_project.id}/models/retrain", {"kinds": ["head"]}, follow=True).content.decode()
    assert "v1 is queued" in page
    assert ModelVersion.objects.filter(project=labelled_project).count() == 1


def without_tooltips(page: str) -> str:
    """The page as read, not hovered: title attributes removed."""
    return re.sub(r'title="[^"]*"', "", page)


def test_a_version_failing_its_gate_shows_why_in_its_row(client, owner, labelled_project):
    TrainingPolicy.objects.update_or_create(project=labelled_project, defaults={"guardrails": [{"type": "min_primary", "value": 0.999}]})
    version = trained(labelled_project)
    (failure,) = version.gate["failures"]
    client.force_login(owner)
    page = without_tooltips(client.get(f"/projects/{labelled_project.id}/models").content.decode())
    assert 'class="gate-failures"' in page and escape(failure) in page


def test_the_default_gate_says_in_the_row_how_many_items_it_needs_and_shows_the_interval(client, owner, labelled_project):
    from models_registry import promotion

    champion = trained(labelled_project)
    promotion.version_promote(version=champion, user=owner, reason="accepted: demo", override=True)
    challenger = trained(labelled_project)
    client.force_login(owner)
    page = client.get(f"/projects/{labelled_project.id}/models").content.decode()
    row = re.search(rf'<tr id="version-{challenger.number}".*?</tr>', page, re.S).group(0)
    assert "<li>evaluated on 12 items; the gate needs 30</li>" in row
    low, high = challenger.gate["versus_champion"]["interval"]
    assert f"accuracy {champion.metrics['accuracy']:.2f} vs {champion.metrics['accuracy']:.2f} of v1: +0.00 (95% CI" in row
    assert f"{high:+.2f}" in row and "evaluated on at least 30 items" in page


def test_promoting_the_champion_again_says_so_in_a_sentence(client, owner, labelled_project):
    without_guardrails(labelled_project)
    version = trained(labelled_project)
    client.force_login(owner)
    client.post(f"/projects/{labelled_project.id}/models/{version.number}/promote", {"reason": "first"})
    page = client.post(f"/projects/{labelled_project.id}/models/{version.number}/promote", {"reason": "again"},
                       follow=True).content.decode()
    assert '<p class="message error">v1 is already the champion' in page
    assert AliasMove.objects.filter(project=labelled_project).count() == 1


def test_a_refused_rollback_shows_the_sentence_without_the_field(client, owner, labelled_project):
    client.force_login(owner)
    page = client.post(f"/projects/{labelled_project.id}/models/rollback", {"reason": "x"}, follow=True).content.decode()
    assert '<p class="message error">there is no earlier champion to roll back to</p>' in page


def test_cancelling_a_finished_version_says_why_nothing_happened(client, owner, labelled_project):
    version = trained(labelled_project)
    client.force_login(owner)
    page = client.post(f"/projects/{labelled_project.id}/models/{version.number}/cancel", follow=True).content.decode()
    assert f'<p class="message error">v{version.number} is ready; only queued or training versions can be cancelled</p>' in page


def test_a_version_starting_to_train_says_starting_until_it_has_numbers(client, owner, labelled_project):
    ModelVersion.objects.create(project=labelled_project, number=1, kind="finetuned", status="training", base_model="tiny")
    client.force_login(owner)
    page = client.get(f"/projects/{labelled_project.id}/models").content.decode()
    assert re.search(r'class="muted progress-text">\s*starting…\s*<', page)
    assert "epoch /" not in page and "ETA  s" not in page


def test_the_progress_line_has_numbers_only_once_all_of_them_exist():
    from frontend.model_version_views import progress_text

    assert progress_text({"epoch": 1, "epochs": 2, "step": 10, "steps": 100, "loss": 2.5, "eta_s": 89.5}) == \
        "epoch 1/2, loss 2.500, ETA 90 s"
    for partial in ({}, {"epoch": 1, "epochs": 2, "step": 0, "steps": 100}, {"epoch": 1, "epochs": 2, "loss": None, "eta_s": 3}):
        assert progress_text(partial) == "starting…"
