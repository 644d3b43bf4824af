"""The monitoring page: charts from real monitoring points, alerts with a banner on the project
page, and the admin forms (serving policy, tokens, recompute) with the API's validation."""
import re
from datetime import date, datetime, timedelta, timezone as tz

import pytest

from feedback import monitoring
from feedback.models import Alert, ApiToken, FeedbackEvent, Prediction, SchemaViolation, ServingPolicy
from feedback.tokens import token_create
from models_registry.models import ModelVersion

pytestmark = pytest.mark.django_db
NOON = datetime(2026, 11, 25, 12, 30, tzinfo=tz.utc)


def served_hours(project, hours=3, per_hour=30):
    """`hours` hours of champion traffic, a third of it corrected by users, one abstaining hour."""
    version = ModelVersion.objects.get(project=project)
    ServingPolicy.objects.update_or_create(project=project, defaults={"min_predictions": 20})
    for h in range(hours):
        at = NOON - timedelta(hours=hours - 1 - h)
        rows = Prediction.objects.bulk_create(
            Prediction(project=project, version=version, served_as="champion", data={"text": f"where is my card {i}"},
                       labels=["card_arrival"], confidence=0.3 if h == hours - 1 else 0.9, top=[], abstain=h == hours - 1)
            for i in range(per_hour))
        Prediction.objects.filter(id__in=[r.id for r in rows]).update(created_at=at)
        FeedbackEvent.objects.bulk_create(
            FeedbackEvent(project=project, version=version, prediction=r, kind="correction" if i % 3 == 0 else "confirmation",
                          label="exchange_rate" if i % 3 == 0 else "", predicted_labels=r.labels, end_user=f"u{i}",
                          occurred_at=at) for i, r in enumerate(rows))
        monitoring.monitor_project(project=project, now=at)
    return version


def test_charts_show_each_figure_per_version_with_its_threshold(client, owner, served_project):
    version = served_hours(served_project)
    SchemaViolation.objects.create(project=served_project, source="token:1", day=date(2026, 11, 25), endpoint="predict",
                                   field="data.txt", problem="unknown", count=12, last_seen_at=NOON)
    client.force_login(owner)
    page = client.get(f"/projects/{served_project.id}/monitoring").content.decode()
    for title in ("Live accuracy from feedback", "domain classifier AUC", "out-of-vocabulary", "Jensen–Shannon",
                  "Abstain rate", "Traffic split", "Schema violations per day"):
        assert title in page
    assert page.count(f'data-series="v{version.number}"') >= 5  # one line per chart that has this version's figure
    assert "v1 champion" in page and 'class="band"' in page and "alert below 0.7" in page
    assert page.count("<polyline") >= 5
    alert = Alert.objects.get(project=served_project, metric="abstain_rate")
    assert alert.status == "open" and "abstain_rate" in page and "data.txt" in page
    day = client.get(f"/projects/{served_project.id}/monitoring?period=day").content.decode()
    assert "Latest day" in day and "0.667" in day  # live accuracy of the day: 60 of 90 agreed


def test_the_page_says_what_drift_is_measured_against(client, viewer, served_project):
    served_hours(served_project, hours=1)
    client.force_login(viewer)
    page = client.get(f"/projects/{served_project.id}/monitoring").content.decode()
    reference = re.search(r'id="drift-reference">(.*?)</p>', page, re.S).group(1)
    assert "random sample of the project's" in reference and "not its training labels" in reference
    assert re.search(r"v1: 48 items,\s+out-of-vocabulary baseline [0-9.]+ on \d+", reference), reference
    assert "(chance 0." in page  # each drift figure beside what chance gives a window of this size


def test_an_open_alert_shows_a_banner_on_the_project_page(client, expert, served_project):
    served_hours(served_project)
    client.force_login(expert)
    page = client.get(f"/projects/{served_project.id}/").content.decode()
    n = Alert.objects.filter(project=served_project, status="open").count()
    assert n >= 1 and 'id="alert-banner"' in page and f"{n} open alert" in page
    Alert.objects.update(status="resolved")
    assert 'id="alert-banner"' not in client.get(f"/projects/{served_project.id}/").content.decode()


def test_admins_set_the_policy_with_the_api_validation(client, owner, served_project):
    client.force_login(owner)
    url = f"/projects/{served_project.id}/monitoring/policy"
    form = {"abstain_below": "0.4", "challenger_percent": "10", "shadow": "on", "min_predictions": "30",
            "webhook_url": "", "threshold_domain_auc": "0.75", "threshold_prediction_js": "0.1"}
    client.post(url, form)
    policy = ServingPolicy.objects.get(project=served_project)
    assert (policy.abstain_below, policy.challenger_percent, policy.shadow, policy.min_predictions) == (0.4, 10, True, 30)
    assert policy.thresholds == {"domain_auc": 0.75}  # the default stays a default
    page = client.post(url, {**form, "challenger_percent": "150"}, follow=True).content.decode()
    assert "challenger_percent: must be between 0 and 100" in page
    page = client.post(url, {**form, "threshold_domain_auc": "high"}, follow=True).content.decode()
    assert "domain_auc: &#x27;high&#x27; is not a number" in page
    page = client.post(url, {**form, "webhook_url": "http://10.0.0.1/hook"}, follow=True).content.decode()
    assert "webhook_url" in page
    assert ServingPolicy.objects.get(project=served_project).challenger_percent == 10


def test_a_token_is_shown_once_and_can_be_revoked(client, owner, served_project):
    client.force_login(owner)
    base = f"/projects/{served_project.id}/monitoring"
    page = client.post(f"{base}/tokens", {"name": "checkout", "scopes": ["feedback"]}, follow=True).content.decode()
    token = ApiToken.objects.get(project=served_project, name="checkout")
    assert token.scopes == ["feedback"] and not token.trusted
    assert 'id="new-token"' in page and f"ll_{token.prefix}_" in page
    assert f"ll_{token.prefix}_" not in client.get(base).content.decode()  # only once
    page = client.post(f"{base}/tokens", {"name": "", "scopes": []}, follow=True).content.decode()
    assert "name:" in page and "scopes:" in page
    client.post(f"{base}/tokens/{token.prefix}/revoke")
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_experts_read_the_page_but_cannot_change_anything(client, expert, viewer, outsider, served_project):
    served_hours(served_project, hours=1)
    _, plain = token_create(project=served_project, name="app", scopes=["predict"])
    base = f"/projects/{served_project.id}/monitoring"
    client.force_login(expert)
    page = client.get(base).content.decode()
    assert "Live accuracy" in page and 'id="save-policy"' not in page and 'id="tokens"' not in page and plain not in page
    for path, data in ((f"{base}/policy", {"abstain_below": "0.9"}), (f"{base}/tokens", {"name": "x", "scopes": ["predict"]}),
                       (f"{base}/recompute", {}), (f"{base}/tokens/{plain.split('_')[1]}/revoke", {})):
        assert client.post(path, data).status_code == 403
    assert ApiToken.objects.get(project=served_project).revoked_at is None
    client.force_login(viewer)
    assert client.get(base).status_code == 200
    client.force_login(outsider)
    assert client.get(base).status_code == 404


def test_a_new_token_is_shown_at_the_top_of_the_page_with_a_copy_button(client, owner, served_project):
    client.force_login(owner)
    page = client.post(f"/projects/{served_project.id}/monitoring/tokens", {"name": "checkout", "scopes": ["feedback"]},
                       follow=True).content.decode()
    token = ApiToken.objects.get(project=served_project, name="checkout")
    assert page.index('id="new-token"') < page.index('id="alerts"') < page.index('id="tokens"')
    assert re.search(rf'<button[^>]* data-copy="ll_{token.prefix}_[^"]+"', page) and "frontend/copy.js" in page
