"""The monitoring job: per model version and per hour and day, how the model is doing in
production, measured against a random sample of the domain it serves (the project's imported
items when the version was trained: models_registry.drift_reference); and the alerts.

Figures per bucket (MonitoringPoint.metrics):
- predictions, traffic by how they were served, prediction distribution, mean confidence,
  abstain rate;
- live disagreement rate from feedback (share of events saying the model was wrong) with a 95%
  Wilson interval, and the live accuracy it implies;
- input drift against the reference sample: text length (Kolmogorov–Smirnov), the
  out-of-vocabulary rate (against the baseline of reference texts held out of the vocabulary and
  never trained on), and embedding drift (a domain classifier's AUC and the MMD between
  base-encoder embeddings);
- prediction drift: Jensen–Shannon divergence from the version's own predictions on the reference
  sample (a span project's: of the entity types predicted, with the texts that have none counted
  as "(no entity)").

A drift figure alerts only when it is over both its threshold (how much drift matters) and its
critical value (how much a window of that size shows by chance alone; ml.drift.Reference.compare),
so an hour of 50 in-domain predictions does not cry wolf.
"""
from __future__ import annotations

import logging
import random
from collections import Counter
from datetime import datetime, timedelta

import numpy as np
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.enqueue import enqueue_on_commit
from labeller.models import Project
from labeller.task_types import task_type_for
from ml import drift
from ml.encoder_cache import base_encoder
from models_registry.drift_reference import drift_reference_build
from models_registry.models import ModelVersion

from . import webhooks
from .models import Alert, AlertStatus, FeedbackEvent, MonitoringPoint, Period, Prediction, SchemaViolation, ServedAs
from .predicting import serving_policy_for

log = logging.getLogger(__name__)
SAMPLE = 500  # live texts encoded for the embedding drift; enough for a stable AUC, cheap to encode
DRIFT_FIGURES = ("prediction_js", "domain_auc", "oov_rate_increase")  # alert only past their critical values too
DEFAULT_THRESHOLDS = {
    "disagreement_rate": 0.3,  # alert when the interval's lower bound is above this
    **drift.THRESHOLDS,  # prediction_js, domain_auc, oov_rate_increase: alert past their critical values too
    "abstain_rate": 0.5,
    # At its threshold the out-of-scope rule flags a few percent of in-scope queries (it may give
    # up at most 2 points of accuracy; ml.out_of_scope): a fifth of live traffic flagged means users
    # ask for things no label covers, a label to add.
    "out_of_scope_rate": 0.2,
    "schema_violations_per_day": 10,
}
_references: dict[tuple, "drift.Reference | None"] = {}  # per process: (version id, created at) -> reference
KEEP_REFERENCES = 32


def bucket_start(moment: datetime, period: str) -> datetime:
    moment = moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0) if period == Period.DAY else moment


def bucket_length(period: str) -> timedelta:
    return timedelta(days=1) if period == Period.DAY else timedelta(hours=1)


def reference_for(version: ModelVersion) -> drift.Reference | None:
    """What a version's live traffic is compared with (built once per process and version)."""
    key = (version.id, version.created_at)
    if key not in _references:
        while len(_references) >= KEEP_REFERENCES:
            _references.pop(next(iter(_references)))
        _references[key] = drift_reference_build(version=version)
    return _references[key]


def point_metrics(*, project: Project, version: ModelVersion, start: datetime, end: datetime, min_predictions: int) -> tuple[int, dict]:
    rows = list(Prediction.objects.filter(project=project, version=version, created_at__gte=start, created_at__lt=end)
                .values_list("served_as", "labels", "confidence", "abstain", f"data__{project.text_field}", "out_of_scope"))
    served = [r for r in rows if r[0] != ServedAs.SHADOW]
    judged = served or rows  # a version only in shadow is judged on its shadow predictions
    n = len(judged)
    metrics: dict = {"traffic": dict(Counter(r[0] for r in rows))}
    task_type = task_type_for(project)
    if n:
        distribution = Counter(label for r in judged for label in task_type.drift_labels(r[1], live=True))
        metrics.update(
            distribution=dict(distribution.most_common()),
            mean_confidence=round(float(np.mean([r[2] for r in judged])), 4),
            abstain_rate=round(sum(r[3] for r in judged) / n, 4),
            out_of_scope_rate=round(sum(r[5] for r in judged) / n, 4),
        )
    metrics.update(_feedback_metrics(project, version, start, end))
    if n < min_predictions:
        return n, metrics
    reference = reference_for(version)
    if reference is None:
        return n, metrics
    texts = [str(r[4] or "") for r in judged]
    sample = random.Random(0).sample(texts, min(SAMPLE, len(texts)))
    live = base_encoder(project.base_model_path).encode(sample)
    figures = reference.compare(texts, live, [task_type.drift_labels(r[1], live=True) for r in judged])
    metrics.update(
        prediction_js=_round(figures["prediction_js"]),
        oov_rate=_round(figures["oov_rate"]),
        oov_baseline=_round(figures["oov_baseline"]),
        oov_rate_increase=_round(figures["oov_rate_increase"]),
        length=figures["length"],
        domain_auc=_round(figures["domain_auc"]),
        mmd=_round(figures["mmd"]),
        critical={name: _round(value) for name, value in figures["critical"].items()},
        reference=reference.described,
    )
    return n, metrics


def _round(value):
    return None if value is None else round(value, 4)


def _feedback_metrics(project, version, start, end) -> dict:
    events = list(FeedbackEvent.objects.filter(project=project, version=version, occurred_at__gte=start, occurred_at__lt=end)
                  .only("kind", "label", "spans", "predicted_labels", "expert_agrees"))
    if not events:
        return {"feedback": 0}
    task_type = task_type_for(project)
    wrong = sum(e.disagrees(task_type) for e in events)
    low, high = drift.wilson_interval(wrong, len(events))
    return {
        "feedback": len(events),
        "disagreement_rate": round(wrong / len(events), 4),
        "disagreement_interval": [round(low, 4), round(high, 4)],
        "live_accuracy": round(1 - wrong / len(events), 4),
        "reviewed": sum(e.expert_agrees is not None for e in events),
    }


def monitor_project(*, project: Project, now: datetime | None = None) -> list[MonitoringPoint]:
    """Recompute this hour's and today's points for every version that served, then check alerts."""
    now = now or timezone.now()
    policy = serving_policy_for(project)
    points = []
    for period in (Period.HOUR, Period.DAY):
        start = bucket_start(now, period)
        end = start + bucket_length(period)
        version_ids = set(Prediction.objects.filter(project=project, created_at__gte=start, created_at__lt=end)
                          .values_list("version_id", flat=True).distinct())
        for version in ModelVersion.objects.filter(id__in=version_ids).select_related("snapshot", "project"):
            n, metrics = point_metrics(project=project, version=version, start=start, end=end,
                                       min_predictions=policy.min_predictions)
            point, _ = MonitoringPoint.objects.update_or_create(
                project=project, version=version, period=period, start=start,
                defaults={"predictions": n, "metrics": metrics})
            points.append(point)
    alerts_check(project=project, points=points, now=now)
    return points


def thresholds_for(policy) -> dict:
    return {**DEFAULT_THRESHOLDS, **(policy.thresholds or {})}


def alerts_check(*, project: Project, points: list[MonitoringPoint], now: datetime) -> list[Alert]:
    """Open an alert for each figure over its threshold (once per version and figure); resolve
    the open alerts whose figure is back under. Judged on the hour when it has enough traffic,
    else on the day so far."""
    policy = serving_policy_for(project)
    limits = thresholds_for(policy)
    over: dict[str, tuple] = {}
    judged: set[str] = set()
    by_version: dict[int, MonitoringPoint] = {}
    for point in sorted(points, key=lambda p: p.period != Period.HOUR):  # hour first
        if point.version_id in by_version:
            continue
        if point.period == Period.HOUR and point.predictions < policy.min_predictions:
            continue
        by_version[point.version_id] = point
    for point in by_version.values():
        m, v = point.metrics, point.version
        checks = {
            "prediction_js": m.get("prediction_js"),
            "domain_auc": m.get("domain_auc"),
            "oov_rate_increase": m.get("oov_rate_increase"),
            "abstain_rate": m.get("abstain_rate") if point.predictions >= policy.min_predictions else None,
            "out_of_scope_rate": m.get("out_of_scope_rate") if point.predictions >= policy.min_predictions else None,
            "disagreement_rate": (m.get("disagreement_interval") or [None])[0],
        }
        critical = m.get("critical") or {}
        for metric, value in checks.items():
            key = f"{metric}:v{v.number}"
            if value is None:
                continue
            judged.add(key)
            chance = critical.get(metric) if metric in DRIFT_FIGURES else None
            if value > limits[metric] and (chance is None or value > chance):
                beyond = "" if chance is None else f" and beyond chance on this many ({chance:.3f})"
                over[key] = (metric, v, value, limits[metric],
                             f"v{v.number}: {metric.replace('_', ' ')} is {value:.3f}, over the threshold {limits[metric]}{beyond} "
                             f"({point.period} from {point.start:%Y-%m-%d %H:%M}, {point.predictions} predictions)")
    violations = sum(SchemaViolation.objects.filter(project=project, day=now.date()).values_list("count", flat=True))
    judged.add("schema_violations")
    if violations > limits["schema_violations_per_day"]:
        over["schema_violations"] = ("schema_violations_per_day", None, violations, limits["schema_violations_per_day"],
                                     f"{violations} payloads broke the item schema today (threshold "
                                     f"{limits['schema_violations_per_day']}): a client may have changed its fields")
    opened = []
    for key, (metric, version, value, limit, message) in over.items():
        try:
            with transaction.atomic():
                alert, created = Alert.objects.get_or_create(
                    project=project, key=key, status=AlertStatus.OPEN,
                    defaults={"metric": metric, "version": version, "value": value, "threshold": limit, "message": message})
        except IntegrityError:  # another monitor run opened it at the same moment
            continue
        if created:
            opened.append(alert)
            _notify(alert.id)
        else:
            Alert.objects.filter(id=alert.id).update(value=value, message=message)
    Alert.objects.filter(project=project, status=AlertStatus.OPEN, key__in=judged - set(over)).update(
        status=AlertStatus.RESOLVED, resolved_at=now)
    return opened


def _notify(alert_id: int) -> None:
    enqueue_on_commit(webhooks.send_alert_webhook, alert_id)


def monitor_all(*, now: datetime | None = None) -> int:
    """Every project that served a prediction in the last day."""
    now = now or timezone.now()
    project_ids = set(Prediction.objects.filter(created_at__gte=now - timedelta(days=1)).values_list("project_id", flat=True).distinct())
    project_ids |= set(SchemaViolation.objects.filter(day=now.date()).values_list("project_id", flat=True))
    for project in Project.objects.filter(id__in=project_ids):
        try:
            monitor_project(project=project, now=now)
        except Exception:  # one project's failure must not silence the others
            log.exception("monitoring project %s failed", project.id)
    return len(project_ids)
