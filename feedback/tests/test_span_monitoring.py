"""Monitoring a span project's served version: prediction drift over the entity types predicted
(and the texts with none) against its training snapshot's spans, input drift as for
classification, and an alert when the entity mix moves."""
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from feedback import monitoring
from feedback.models import Alert, Prediction, ServedAs, ServingPolicy
from models_registry.models import DatasetSnapshot, ModelVersion, VersionStatus
from models_registry.snapshots import TRAIN, Example, content_hash

pytestmark = pytest.mark.django_db

# Training: people and places, a third of the tweets with no entity at all.
TRAINING = ([("Obama spoke in London", [{"start": 0, "end": 5, "label": "PER"}, {"start": 15, "end": 21, "label": "LOC"}])] * 20
            + [("lovely morning for a run", [])] * 10)


@pytest.fixture
def span_version(btc_project, settings, tmp_path, monkeypatch):
    """A version whose snapshot holds TRAINING (span labels, as a span project's snapshot stores them)."""
    monkeypatch.setattr(monitoring, "_references", {})  # version ids are reused between tests
    settings.LABELLOOP_ARTEFACT_DIR = tmp_path
    examples = [Example(i, text, spans, TRAIN, ["import"]) for i, (text, spans) in enumerate(TRAINING)]
    digest = content_hash(examples)
    path = tmp_path / "snapshots" / f"{digest}.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps({"item": e.item, "text": e.text, "labels": e.labels, "split": e.split,
                                        "sources": e.sources}) + "\n" for e in examples))
    snapshot = DatasetSnapshot.objects.create(project=btc_project, content_hash=digest, path=f"snapshots/{digest}.jsonl",
                                              n_train=len(examples), n_validation=0, n_evaluation=0,
                                              label_counts={}, source_counts={"import": len(examples)})
    return ModelVersion.objects.create(project=btc_project, number=1, kind="head", status=VersionStatus.READY, snapshot=snapshot)


def serve(project, version, answers):
    Prediction.objects.bulk_create([
        Prediction(project=project, version=version, served_as=ServedAs.CHAMPION, data={"text": text}, labels=spans,
                   confidence=0.8, top=[]) for text, spans in answers])


def test_span_prediction_drift_counts_entity_types_and_texts_with_none_against_the_training_spans(btc_project, span_version):
    ServingPolicy.objects.update_or_create(project=btc_project, defaults={"min_predictions": 10})
    org = [{"start": 0, "end": 5, "label": "ORG", "text": "Apple", "confidence": 0.9}]
    serve(btc_project, span_version, [("Apple shares fell", org)] * 15 + [("what a day", [])] * 15)
    now = timezone.now()
    points = monitoring.monitor_project(project=btc_project, now=now)
    hour = next(p for p in points if p.period == "hour")
    assert hour.predictions == 30
    assert hour.metrics["distribution"] == {"ORG": 15, "(no entity)": 15}
    # Training had PER 20, LOC 20, none 10: the live mix shares only "(no entity)" with it.
    assert hour.metrics["prediction_js"] > 0.5
    assert {"oov_rate", "domain_auc", "length", "mmd"} <= set(hour.metrics)  # input drift, as for classification
    alert = Alert.objects.get(project=btc_project, metric="prediction_js")
    assert "v1" in alert.message


def test_the_same_entity_mix_as_training_does_not_drift(btc_project, span_version):
    ServingPolicy.objects.update_or_create(project=btc_project, defaults={"min_predictions": 10})
    serve(btc_project, span_version, TRAINING)
    hour = next(p for p in monitoring.monitor_project(project=btc_project, now=timezone.now() + timedelta(seconds=1))
                if p.period == "hour")
    assert hour.metrics["distribution"] == {"PER": 20, "LOC": 20, "(no entity)": 10}
    assert hour.metrics["prediction_js"] == 0
    assert not Alert.objects.filter(project=btc_project, metric="prediction_js").exists()
