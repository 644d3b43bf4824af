"""Monitoring figures, alert thresholds (opened once, resolved when back under), the serving
policy's validation, and the webhook's guard against private and unlisted hosts."""
from datetime import datetime, timezone as tz

import pytest

from feedback import monitoring, webhooks
from feedback.models import Alert, FeedbackEvent, Prediction, ServingPolicy
from models_registry.models import ModelVersion

pytestmark = pytest.mark.django_db
NOON = datetime(2026, 11, 25, 12, 30, tzinfo=tz.utc)


def log_predictions(project, version, labels, at=NOON, abstain=False):
    rows = Prediction.objects.bulk_create(
        Prediction(project=project, version=version, served_as="champion", data={"text": f"my card {i}"}, labels=[label],
                   confidence=0.9, top=[], abstain=abstain) for i, label in enumerate(labels))
    Prediction.objects.filter(id__in=[r.id for r in rows]).update(created_at=at)
    return rows


def feedback(project, version, prediction, kind, label=""):
    return FeedbackEvent.objects.create(project=project, version=version, prediction=prediction, kind=kind, label=label,
                                        predicted_labels=prediction.labels, end_user="u", occurred_at=NOON)


def test_the_disagreement_rate_comes_with_a_wilson_interval(served_project):
    version = ModelVersion.objects.get(project=served_project)
    rows = log_predictions(served_project, version, ["card_arrival"] * 10)
    for row in rows[:3]:
        feedback(served_project, version, row, "correction", "exchange_rate")
    feedback(served_project, version, rows[3], "rejection")
    for row in rows[4:]:
        feedback(served_project, version, row, "confirmation")
    points = monitoring.monitor_project(project=served_project, now=NOON)
    hour = next(p for p in points if p.period == "hour")
    assert hour.start == datetime(2026, 11, 25, 12, tzinfo=tz.utc) and hour.predictions == 10
    m = hour.metrics
    assert m["feedback"] == 10 and m["disagreement_rate"] == 0.4 and m["live_accuracy"] == 0.6
    assert m["disagreement_interval"] == pytest.approx([0.1682, 0.6873], abs=1e-3)
    assert m["traffic"] == {"champion": 10} and m["distribution"] == {"card_arrival": 10}
    assert "domain_auc" not in m  # fewer than min_predictions: drift is not judged on 10


def test_an_alert_opens_once_and_resolves_when_the_figure_is_back_under(served_project):
    ServingPolicy.objects.update_or_create(project=served_project, defaults={"min_predictions": 20})
    version = ModelVersion.objects.get(project=served_project)
    log_predictions(served_project, version, ["card_arrival"] * 30, abstain=True)
    monitoring.monitor_project(project=served_project, now=NOON)
    monitoring.monitor_project(project=served_project, now=NOON)
    alert = Alert.objects.get(project=served_project, metric="abstain_rate")
    assert alert.status == "open" and alert.value == 1.0 and alert.version == version and "abstain rate" in alert.message
    Prediction.objects.filter(project=served_project).update(abstain=False)
    monitoring.monitor_project(project=served_project, now=NOON)
    alert.refresh_from_db()
    assert alert.status == "resolved" and alert.resolved_at is not None


def test_prediction_drift_is_the_js_divergence_from_the_versions_answers_on_its_reference(served_project):
    ServingPolicy.objects.update_or_create(project=served_project, defaults={"min_predictions": 20})
    version = ModelVersion.objects.get(project=served_project)
    log_predictions(served_project, version, ["exchange_rate"] * 40)
    hour = next(p for p in monitoring.monitor_project(project=served_project, now=NOON) if p.period == "hour")
    # The reference, the project's 48 items, spreads over three intents; all 40 answers name one.
    assert hour.metrics["reference"]["items"] == 48
    assert hour.metrics["prediction_js"] > 0.3 > hour.metrics["critical"]["prediction_js"]
    assert Alert.objects.filter(project=served_project, metric="prediction_js", status="open").exists()


def test_the_serving_policy_is_validated_and_only_admins_change_it(served_project, client_for, owner, expert, settings):
    url = f"/api/projects/{served_project.id}/serving-policy"
    assert client_for(expert).patch(url, {"challenger_percent": 10}, format="json").status_code == 403
    bad = client_for(owner).patch(url, {"challenger_percent": 150, "thresholds": {"accuracy": 1}, "abstain_below": 2},
                                  format="json")
    assert bad.status_code == 400 and set(bad.json()) == {"challenger_percent", "thresholds", "abstain_below"}
    settings.LABELLOOP_WEBHOOK_ALLOWED_HOSTS = ["hooks.example.com"]
    refused = client_for(owner).patch(url, {"webhook_url": "http://169.254.169.254/latest/meta-data"}, format="json")
    assert refused.status_code == 400 and "not allow-listed" in refused.json()["webhook_url"][0]
    ok = client_for(owner).patch(url, {"challenger_percent": 10, "thresholds": {"domain_auc": 0.7}}, format="json")
    assert ok.status_code == 200 and ok.json()["thresholds"] == {"domain_auc": 0.7}


def test_webhooks_go_only_to_allow_listed_public_hosts(settings):
    settings.LABELLOOP_WEBHOOK_ALLOWED_HOSTS = ["localhost", "127.0.0.1"]
    settings.LABELLOOP_WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(webhooks.WebhookRefused, match="not allow-listed"):
        webhooks.webhook_check("https://attacker.example/hook")
    with pytest.raises(webhooks.WebhookRefused, match="non-public address"):
        webhooks.webhook_check("http://localhost:8080/hook")
    with pytest.raises(webhooks.WebhookRefused, match="http"):
        webhooks.webhook_check("file:///etc/passwd")
    settings.LABELLOOP_WEBHOOK_ALLOW_PRIVATE = True
    assert webhooks.webhook_check("http://127.0.0.1:8080/hook") == ["127.0.0.1"]


def test_an_alert_is_posted_to_the_webhook(served_project, webhook_receiver):
    ServingPolicy.objects.update_or_create(project=served_project, defaults={"webhook_url": webhook_receiver.url})
    alert = Alert.objects.create(project=served_project, metric="domain_auc", key="domain_auc:v1", value=0.97, threshold=0.8,
                                 message="v1: domain auc is 0.970")
    assert webhooks.alert_send(alert=alert) == "HTTP 204"
    assert webhook_receiver.received == [{**webhooks.alert_payload(alert), "created_at": alert.created_at.isoformat()}]
    alert.refresh_from_db()
    assert alert.webhook_status == "HTTP 204"


def test_monitoring_is_scoped_to_members(served_project, client_for, viewer, outsider):
    url = f"/api/projects/{served_project.id}/monitoring"
    assert client_for(outsider).get(url).status_code == 404
    body = client_for(viewer).get(url).json()
    assert set(body) == {"points", "alerts", "schema_violations", "source_reliability", "thresholds"}
    assert client_for(viewer).post(url).status_code == 403
