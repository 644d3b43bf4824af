"""The project's models page: versions side by side, learning curve, confusion matrix (span
projects: entity scores per type and the reliability of span confidence), training progress, and
the Retrain, Promote and Roll back buttons (project admins only)."""
import math
import re

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST, require_safe

from labeller import selectors
from labeller.models import Role
from labeller.task_types import task_type_for
from labeller.task_types.spans import SPANS
from models_registry import promotion, training
from ml.gates import guardrail_text, versus_text
from models_registry.models import AliasMove, ModelKind, ModelVersion

from .access import admin_project
from .charts import Series, line_chart
from .errors import refusals_shown


def learning_curve(versions, *, metric: str, metric_name: str) -> dict:
    """The primary metric of each ready version against the labels it was trained on, one line per
    kind, on a 0–1 axis with a scale on both axes."""
    ready = sorted((v for v in versions if v.status == "ready" and v.metrics and v.snapshot),
                   key=lambda v: (v.snapshot.n_train + v.snapshot.n_validation, v.number))
    series = {}
    for v in ready:
        series.setdefault(v.kind, []).append((v.snapshot.n_train + v.snapshot.n_validation, v.metrics.get(metric) or 0.0))
    names = dict(ModelKind.choices)
    return line_chart([Series(names.get(kind, kind), points, color=CURVE_COLORS.get(kind)) for kind, points in series.items()],
                      title=f"{metric_name} against training labels", y_min=0, y_max=1,
                      x_label="training labels", y_label=metric_name)


CURVE_COLORS = {ModelKind.HEAD: "#0891b2", ModelKind.FINETUNED: "#4f46e5"}


STARTING = "starting…"


def progress_text(progress: dict) -> str:
    """A training run's progress line; models.js writes the same line from the versions API. A run
    that has just started has no epoch, loss or ETA yet, and says so instead of "epoch /, loss , ETA s"."""
    numbers = [progress.get(key) for key in ("epoch", "epochs", "loss", "eta_s")]
    if not all(isinstance(n, (int, float)) and math.isfinite(n) for n in numbers):
        return STARTING
    epoch, epochs, loss, eta_s = numbers
    return f"epoch {epoch}/{epochs}, loss {loss:.3f}, ETA {math.floor(eta_s + 0.5)} s"  # rounded as Math.round does


# The metrics shown per version (keys of its metrics), by kind of project.
CLASSIFICATION_COLUMNS = [("accuracy", "Accuracy"), ("macro_f1", "Macro-F1"), ("ece", "ECE")]
SPAN_COLUMNS = [("entity_f1", "Entity F1"), ("precision", "Precision"), ("recall", "Recall"), ("ece", "ECE")]


def span_tables(metrics: dict) -> dict:
    """A span version's entity scores per type and its reliability table, for the page; a
    version recorded without them (failed, or metrics of another shape) shows none."""
    per_label = metrics.get("per_label") or {}
    rows = [(label, m.get("precision"), m.get("recall"), m.get("f1"), m.get("support"), m.get("predicted"))
            for label, m in sorted(per_label.items()) if isinstance(m, dict)]
    reliability = [r for r in metrics.get("reliability") or [] if isinstance(r, dict) and r.get("count")]
    return {"rows": rows, "micro": (metrics.get("precision"), metrics.get("recall"), metrics.get("entity_f1"),
                                    metrics.get("n_gold"), metrics.get("n_predicted")),
            "macro_f1": metrics.get("macro_f1"), "ece": metrics.get("ece"), "reliability": reliability}


@login_required
@require_safe
def models_page(request, project_id):
    project, membership = selectors.project_get_for(user=request.user, project_id=project_id)
    policy = training.training_policy_for(project)
    versions = list(ModelVersion.objects.filter(project=project).select_related("snapshot").prefetch_related("aliases"))
    spans = task_type_for(project).key == SPANS.key
    columns = SPAN_COLUMNS if spans else CLASSIFICATION_COLUMNS
    for v in versions:
        v.progress_text = progress_text(v.progress or {})
        v.versus_text = versus_text((v.gate or {}).get("versus_champion"))
    selected = None
    if re.fullmatch(r"[0-9]{1,10}", request.GET.get("version", ""), re.ASCII):  # isdigit() takes '²'; int() does not
        selected = next((v for v in versions if v.number == int(request.GET["version"])), None)
    selected = selected or next((v for v in versions if v.metrics), None)
    for v in versions:
        v.metric_cells = [(v.metrics or {}).get(key) for key, _ in columns]
    confusion = None
    if selected and selected.metrics and "confusion" in selected.metrics:
        c = selected.metrics["confusion"]
        shown = [i for i, row in enumerate(c["matrix"]) if sum(row) or sum(r[i] for r in c["matrix"])]
        confusion = {"labels": [c["labels"][i] for i in shown],
                     "rows": [(c["labels"][i], [c["matrix"][i][j] for j in shown]) for i in shown]}
    entities = span_tables(selected.metrics) if spans and selected and selected.metrics else None
    return render(request, "frontend/models.html", {
        "columns": [name for _, name in columns],
        "entities": entities,
        "project": project,
        "is_admin": membership.can(Role.ADMIN),
        "policy": policy,
        "guardrails": [guardrail_text(g) for g in policy.guardrails],
        "versions": versions,
        "selected": selected,
        "confusion": confusion,
        "curve": learning_curve(versions, metric=policy.primary_metric, metric_name=policy.get_primary_metric_display()),
        "moves": AliasMove.objects.filter(project=project).select_related("from_version", "to_version", "moved_by")[:20],
        "busy": any(v.status in ("queued", "training") for v in versions),
    })


@login_required
@require_POST
def retrain(request, project_id):
    project = admin_project(request, project_id)
    kinds = request.POST.getlist("kinds") or None
    unknown = sorted(set(kinds or []) - set(ModelKind.values))
    if unknown:  # in the page's words, which name the choices (the service refuses them too)
        messages.error(request, f"kinds: unknown kind '{unknown[0]}'; choose from {', '.join(ModelKind.values)}")
        return redirect("models-page", project_id=project.id)
    with refusals_shown(request):
        versions = training.retrain_request(project=project, user=request.user, kinds=kinds)
        messages.success(request, "Queued " + ", ".join(str(v) for v in versions) + ".")
    return redirect("models-page", project_id=project.id)


@login_required
@require_POST
def promote(request, project_id, number):
    project = admin_project(request, project_id)
    version = get_object_or_404(ModelVersion, project=project, number=number)
    with refusals_shown(request):
        promotion.version_promote(version=version, user=request.user, reason=request.POST.get("reason", ""),
                                 override=request.POST.get("override") == "on")
        messages.success(request, f"v{number} is the champion.")
    return redirect("models-page", project_id=project.id)


@login_required
@require_POST
def rollback(request, project_id):
    project = admin_project(request, project_id)
    with refusals_shown(request):
        move = promotion.champion_rollback(project=project, user=request.user, reason=request.POST.get("reason", ""))
        messages.success(request, f"Rolled back to v{move.to_version.number}.")
    return redirect("models-page", project_id=project.id)


@login_required
@require_POST
def cancel(request, project_id, number):
    project = admin_project(request, project_id)
    version = get_object_or_404(ModelVersion, project=project, number=number)
    with refusals_shown(request):
        training.version_cancel_or_refuse(version=version)
        messages.success(request, f"Cancelling v{number}.")
    return redirect("models-page", project_id=project.id)
