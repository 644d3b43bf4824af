"""Drift alarms that do not cry wolf (issue 18, part 4), through the product path: a project with a
pool of imported queries, a head version trained on a skewed handful of them (as active learning
chooses), /predict traffic from a token, and the monitoring check that raises alerts.

Measured against the training snapshot, unseen queries of the very intents the version was
trained on raised OOV and prediction-JS alerts in five of six runs. The reference is now a random
sample of the project's imported items with the version's own predictions on them."""
import csv
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from feedback import monitoring
from feedback.models import Alert, Prediction
from labeller.models import Item, Label
from labeller.services import annotation_submit
from models_registry import promotion, serving
from models_registry.models import ModelVersion
from tests.banking77 import INTENTS, banking77
from tests.helpers import train_head

pytestmark = pytest.mark.django_db
CLINC150 = Path(__file__).resolve().parents[2] / "datasets" / "clinc150"


def clinc150_queries(n: int) -> list[str]:
    """The first `n` test queries of CLINC150 (another dataset: travel, cooking, small talk...)."""
    with open(CLINC150 / "test.csv", encoding="utf-8") as f:
        return [row["text"] for row, _ in zip(csv.DictReader(f), range(n))]


@pytest.fixture
def skewed_version(make_project, owner, expert, monkeypatch):
    """Three Banking77 intents, 60 imported training queries each; 45 labelled, skewed as active
    learning skews them (25, 15 and 5), a fifth of them in the evaluation set; a head version on
    them is the champion."""
    monkeypatch.setattr(monitoring, "_references", {})  # version ids are reused between tests
    project = make_project(name="Card support")
    Label.objects.filter(project=project).delete()
    Label.objects.bulk_create(Label(project=project, key=k, name=k, order=i) for i, k in enumerate(INTENTS))
    rows = banking77(60)
    items = Item.objects.bulk_create(Item(project=project, data={"text": r["text"]}, search_text=r["text"],
                                          external_id=f"pool-{i}") for i, r in enumerate(rows))
    wanted = dict(zip(INTENTS, (25, 15, 5)))
    for item, row in zip(items, rows):
        if wanted[row["category"]]:
            wanted[row["category"]] -= 1
            if wanted[row["category"]] % 5 == 0:
                Item.objects.filter(id=item.id).update(is_eval=True)
                item.is_eval = True
            annotation_submit(item=item, user=expert, labels=[row["category"]])
    version = train_head(project)
    promotion.version_promote(version=version, user=owner, reason="first model", override=True)
    serving.forget_aliases()
    return version


def replay(client, project, texts, at):
    """POST the texts to /predict, then date their predictions `at` (one monitoring hour)."""
    body = {"items": [{"data": {"text": text}} for text in texts]}
    answer = client.post(f"/api/projects/{project.id}/predict", body, format="json")
    assert answer.status_code == 200, answer.content
    ids = [p["prediction_id"] for p in answer.json()["predictions"]]
    Prediction.objects.filter(id__in=ids).update(created_at=at)
    return answer.json()["predictions"]


def hour_point(project, version, at):
    points = monitoring.monitor_project(project=project, now=at)
    return next(p for p in points if p.period == "hour" and p.version_id == version.id)


def test_unseen_queries_of_the_trained_intents_raise_no_drift_alarm(skewed_version, token_client):
    project = skewed_version.project
    at = timezone.now() - timedelta(hours=1)
    queries = banking77(40, split="test")  # 120 unseen queries, 40 of each intent: not the 25/15/5 of the labels
    answers = replay(token_client(project, ["predict"]), project, [r["text"] for r in queries], at)
    assert sum(a["label"] == r["category"] for a, r in zip(answers, queries)) / len(queries) > 0.8
    m = hour_point(project, skewed_version, at).metrics
    assert not Alert.objects.filter(project=project).exists(), list(Alert.objects.values_list("message", flat=True))
    assert m["reference"]["items"] == 180 and m["reference"]["drawn_from"] == "imported items"
    # The baseline is read on pool texts never trained on, so it is not the 0 of the training texts.
    assert m["reference"]["held_out_texts"] > 40 and m["oov_baseline"] > 0.05
    assert set(m["critical"]) == {"prediction_js", "oov_rate_increase", "domain_auc"}


def test_another_domain_raises_drift_alarms(skewed_version, token_client):
    project = skewed_version.project
    at = timezone.now()
    replay(token_client(project, ["predict"]), project, clinc150_queries(120), at)
    m = hour_point(project, skewed_version, at).metrics
    fired = dict(Alert.objects.filter(project=project, status="open").values_list("metric", "value"))
    assert {"domain_auc", "oov_rate_increase"} <= set(fired), (fired, m)
    assert fired["domain_auc"] > 0.9 and fired["domain_auc"] > m["critical"]["domain_auc"]
    alert = Alert.objects.get(project=project, metric="domain_auc")
    assert "beyond chance on this many" in alert.message and alert.version == skewed_version


def test_the_reference_leaves_out_items_that_came_from_live_traffic_or_after_the_version(skewed_version, add_items):
    project = skewed_version.project
    later = add_items(project, ["a query imported after v1 was trained"])
    Item.objects.filter(id=later[0].id).update(created_at=skewed_version.created_at + timedelta(seconds=1))
    Item.objects.filter(project=project, external_id="pool-0").update(source="feedback")
    from models_registry.drift_reference import drift_reference_items

    ids = {item_id for item_id, _ in drift_reference_items(version=ModelVersion.objects.get(id=skewed_version.id))}
    assert len(ids) == 179 and later[0].id not in ids
    assert not Item.objects.filter(id__in=ids, source="feedback").exists()
