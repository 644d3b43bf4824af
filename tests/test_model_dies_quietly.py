"""A model "dies quietly" and Labelloop catches it, end to end through the public APIs:

1. A champion serves in-domain traffic: no drift alert.
2. The product starts sending another domain (questions about intents the model never learned)
   and a client renames a field: the drift and schema alerts fire, and the webhook is told.
3. Users' corrections flow to expert review (untrusted feedback never trains directly); experts
   settle them from the queue.
4. Retraining on the reviewed labels restores accuracy on the new traffic.
"""
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from feedback import monitoring, webhooks
from feedback.models import Alert, FeedbackEvent, FeedbackStatus, Prediction, ServingPolicy
from feedback.review import route_pending
from feedback.tokens import token_create
from labeller.models import Item, Label
from labeller.services import annotation_submit, queue_claim_next
from models_registry import promotion, serving, training
from tests.banking77 import INTENTS, banking77

pytestmark = pytest.mark.django_db

NEW_DOMAIN = ["top_up_failed", "cash_withdrawal_charge", "apple_pay_or_google_pay", "transfer_not_received_by_recipient",
              "beneficiary_not_allowed"]


def train_and_promote(project, owner):
    (version,) = training.retrain_request(project=project, kinds=["head"])
    version = training.version_train(version=training.version_claim(version_id=version.id))
    promotion.version_promote(version=version, user=owner, reason="test", override=True)
    serving.forget_aliases()
    return version


def accuracy(project, rows, truth=None):
    """The champion's accuracy on `rows`; `truth` overrides every row's label."""
    predictor = serving.predictor_for(serving.serving_versions(project)["champion"])
    answers = serving.answers(predictor, [r["text"] for r in rows], 1)
    return sum(a.labels == [truth or r["category"]] for a, r in zip(answers, rows)) / len(rows)


def test_a_model_dying_quietly_is_caught_reviewed_and_retrained(make_project, owner, expert, webhook_receiver):
    project = make_project(name="Card support")
    Label.objects.filter(project=project).delete()
    Label.objects.bulk_create(Label(project=project, key=k, name=k, order=i) for i, k in enumerate(INTENTS + ["other"]))
    for i, row in enumerate(banking77(16)):
        item = Item.objects.create(project=project, data={"text": row["text"]}, external_id=f"train-{i}", is_eval=i % 4 == 0)
        annotation_submit(item=item, user=expert, labels=[row["category"]])
    v1 = train_and_promote(project, owner)
    ServingPolicy.objects.update_or_create(project=project, defaults={
        "min_predictions": 30, "webhook_url": webhook_receiver.url,
        "thresholds": {"schema_violations_per_day": 5, "abstain_rate": 1.0}})
    token, plain = token_create(project=project, name="mobile app", scopes=["predict", "feedback"])
    app = APIClient()
    app.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    url = f"/api/projects/{project.id}"

    # 1. In-domain traffic, an hour ago: healthy.
    in_domain = banking77(20, split="test")
    answers = app.post(f"{url}/predict", {"items": [{"data": {"text": r["text"]}} for r in in_domain]}, format="json").json()
    assert sum(a["label"] == r["category"] for a, r in zip(answers["predictions"], in_domain)) / len(in_domain) > 0.85
    an_hour_ago = timezone.now() - timedelta(hours=1)
    Prediction.objects.filter(project=project).update(created_at=an_hour_ago)
    monitoring.monitor_project(project=project, now=an_hour_ago)
    assert not Alert.objects.filter(project=project).exists()
    healthy = project.monitoring_points.get(period="hour", start=monitoring.bucket_start(an_hour_ago, "hour")).metrics
    assert healthy["domain_auc"] < 0.8 and healthy["prediction_js"] < 0.1

    # 2. Another domain arrives, and a client renames `text` to `message`.
    new_domain = banking77(16, NEW_DOMAIN, split="test")
    to_review, held_out = new_domain[::2], new_domain[1::2]
    served = app.post(f"{url}/predict", {"items": [{"data": {"text": r["text"]}, "external_id": f"chat-{i}"}
                                                   for i, r in enumerate(to_review)]}, format="json").json()["predictions"]
    app.post(f"{url}/predict", {"items": [{"data": {"text": r["text"]}} for r in held_out]}, format="json")
    assert all(a["label"] != "other" for a in served)  # v1 has never seen this: it answers wrongly, quietly
    for _ in range(6):
        refused = app.post(f"{url}/predict", {"data": {"message": "my top-up failed"}}, format="json")
        assert refused.status_code == 422 and "renamed to 'message'" in refused.json()["data.text"][0]
    now = timezone.now()
    point = next(p for p in monitoring.monitor_project(project=project, now=now) if p.period == "hour")
    assert point.metrics["domain_auc"] > 0.9
    fired = dict(Alert.objects.filter(project=project, status="open").values_list("metric", "value"))
    assert {"domain_auc", "schema_violations_per_day"} <= set(fired), fired
    assert fired["schema_violations_per_day"] == 12  # six requests, missing `text` and unknown `message` each
    for alert in Alert.objects.filter(project=project):
        webhooks.alert_send(alert=alert)  # what the worker's send_alert_webhook task does
    assert {hook["metric"] for hook in webhook_receiver.received} >= {"domain_auc", "schema_violations_per_day"}
    assert all(hook["project"] == project.id for hook in webhook_receiver.received)

    # 3. Users correct the answers; untrusted, so the corrections go to review, not to training.
    events = [{"prediction_id": a["prediction_id"], "kind": "correction", "label": "other", "end_user": f"user-{i}",
               "occurred_at": now.isoformat()} for i, a in enumerate(served)]
    assert app.post(f"{url}/feedback", {"events": events}, format="json").status_code == 201
    route_pending(project_id=project.id)
    assert set(FeedbackEvent.objects.filter(project=project).values_list("status", flat=True)) == {FeedbackStatus.REVIEW}
    reviewed = 0
    while (item := queue_claim_next(project=project, user=expert)) is not None and item.needs_review:
        annotation_submit(item=item, user=expert, labels=["other"])
        reviewed += 1
    assert reviewed == len(served)
    assert set(FeedbackEvent.objects.filter(project=project).values_list("expert_agrees", flat=True)) == {True}
    point = next(p for p in monitoring.monitor_project(project=project, now=now) if p.period == "hour")
    assert point.metrics["disagreement_rate"] == 1.0 and point.metrics["live_accuracy"] == 0.0

    # 4. Retraining on the reviewed labels restores accuracy on the new traffic, and keeps the old.
    before = accuracy(project, held_out, truth="other")
    v2 = train_and_promote(project, owner)
    assert v2.snapshot.n_train + v2.snapshot.n_validation > v1.snapshot.n_train + v1.snapshot.n_validation
    after = accuracy(project, held_out, truth="other")
    assert before == 0.0 and after >= 0.8, (before, after)
    assert accuracy(project, in_domain) > 0.85
