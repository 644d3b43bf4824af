"""Monitoring a span project's served version: prediction drift over the entity types predicted
(and the texts with none) against the version's own predictions on the project's items (its
drift reference), input drift as for classification, and an alert when the entity mix moves."""
import json
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from feedback import monitoring
from feedback.models import Alert, Prediction, ServedAs, ServingPolicy
from labeller.models import Item
from models_registry import serving
from models_registry.models import DatasetSnapshot, ModelVersion
from models_registry.snapshots import TRAIN, Example, content_hash
from ml.drift import js_divergence

pytestmark = pytest.mark.django_db

# Training: people and places, a third of the tweets with no entity at all.
TRAINING = ([("Obama spoke in London", [{"start": 0, "end": 5, "label": "PER"}, {"start": 15, "end": 21, "label": "LOC"}])] * 20
            + [("lovely morning for a run", [])] * 10)


@pytest.fixture
def span_version(btc_project, btc_head_version, settings, monkeypatch):
    """The BTC head version over a project whose imported items are TRAINING's texts, with a
    snapshot holding TRAINING (span labels, as a span project's snapshot stores them)."""
    monkeypatch.setattr(monitoring, "_references", {})  # version ids are reused between tests
    tmp_path = settings.LABELLOOP_ARTEFACT_DIR
    Item.objects.bulk_create(Item(project=btc_project, data={"text": text}, external_id=f"t{i}")
                             for i, (text, _) in enumerate(TRAINING))
    examples = [Example(i, text, spans, TRAIN, ["import"]) for i, (text, spans) in enumerate(TRAINING)]
    digest = content_hash(examples)
    path = tmp_path / "snapshots" / f"{digest}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"item": e.item, "text": e.text, "labels": e.labels, "split": e.split,
                                        "sources": e.sources}) + "\n" for e in examples))
    snapshot = DatasetSnapshot.objects.create(project=btc_project, content_hash=digest, path=f"snapshots/{digest}.jsonl",
                                              n_train=len(examples), n_validation=0, n_evaluation=0,
                                              label_counts={}, source_counts={"import": len(examples)})
    # Trained after the items were imported: they are its reference.
    ModelVersion.objects.filter(id=btc_head_version.id).update(snapshot=snapshot, created_at=timezone.now())
    return ModelVersion.objects.get(id=btc_head_version.id)


def serve(project, version, answers):
    Prediction.objects.bulk_create([
        Prediction(project=project, version=version, served_as=ServedAs.CHAMPION, data={"text": text}, labels=spans,
                   confidence=0.8, top=[]) for text, spans in answers])


def test_span_prediction_drift_counts_entity_types_and_texts_with_none_against_the_versions_answers(btc_project, span_version):
    ServingPolicy.objects.update_or_create(project=btc_project, defaults={"min_predictions": 10})
    answers = serving.answers(serving.predictor_for(span_version), [text for text, _ in TRAINING], 1)
    given = Counter(span["label"] for answer in answers for span in answer.labels)
    rare = min(("PER", "LOC", "ORG"), key=lambda label: given[label])  # what the version seldom finds in its reference
    found = [{"start": 0, "end": 5, "label": rare, "text": "Apple", "confidence": 0.9}]
    serve(btc_project, span_version, [("Apple shares fell", found)] * 15 + [("what a day", [])] * 15)
    now = timezone.now()
    points = monitoring.monitor_project(project=btc_project, now=now)
    hour = next(p for p in points if p.period == "hour")
    assert hour.predictions == 30
    assert hour.metrics["distribution"] == {rare: 15, "(no entity)": 15}
    reference = {**given, "(no entity)": sum(not answer.labels for answer in answers)}
    assert hour.metrics["prediction_js"] == pytest.approx(js_divergence({rare: 15, "(no entity)": 15}, reference), abs=1e-4)
    assert hour.metrics["prediction_js"] > max(0.1, hour.metrics["critical"]["prediction_js"])
    assert {"oov_rate", "domain_auc", "length", "mmd"} <= set(hour.metrics)  # input drift, as for classification
    assert "v1" in Alert.objects.get(project=btc_project, metric="prediction_js").message


def test_the_same_entity_mix_as_the_reference_does_not_drift(btc_project, span_version):
    ServingPolicy.objects.update_or_create(project=btc_project, defaults={"min_predictions": 10})
    texts = [text for text, _ in TRAINING]
    answers = serving.answers(serving.predictor_for(span_version), texts, 1)
    serve(btc_project, span_version, [(text, answer.labels) for text, answer in zip(texts, answers)])
    hour = next(p for p in monitoring.monitor_project(project=btc_project, now=timezone.now() + timedelta(seconds=1))
                if p.period == "hour")
    assert sum(hour.metrics["distribution"].values()) >= 30
    assert hour.metrics["prediction_js"] == 0
    assert not Alert.objects.filter(project=btc_project, metric="prediction_js").exists()
