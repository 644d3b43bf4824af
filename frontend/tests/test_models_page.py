"""The models page: versions, curve, confusion matrix, and admin-only buttons."""
import pytest

from models_registry import promotion, training
from models_registry.models import Alias, ModelVersion

pytestmark = pytest.mark.django_db


def trained(project, kind="head"):
    (version,) = training.retrain_request(project=project, kinds=[kind])
    return training.version_train(version=training.version_claim(version_id=version.id))


def test_admins_see_versions_metrics_and_the_buttons(client, owner, labelled_project):
    version = trained(labelled_project)
    client.force_login(owner)
    page = client.get(f"/projects/{labelled_project.id}/models").content.decode()
    assert f"v{version.number}" in page and "Retrain" in page and "Roll back" in page and "Promote" in page
    assert "Confusion matrix of v1" in page and "<polyline" in page


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
