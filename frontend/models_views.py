"""The project's models page: versions side by side, learning curve, confusion matrix, training
progress, and the Retrain, Promote and Roll back buttons (project admins only)."""
import re

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST, require_safe

from labeller import selectors
from labeller.models import Role
from models_registry import promotion, training
from models_registry.models import AliasMove, ModelKind, ModelVersion


def learning_curve_points(versions, metric: str, width=560, height=200, pad=30):
    """SVG polyline points of the primary metric against training labels, one series per kind."""
    ready = [v for v in versions if v.status == "ready" and v.metrics and v.snapshot]
    if not ready:
        return {}
    xs = [v.snapshot.n_train + v.snapshot.n_validation for v in ready]
    x_max = max(xs) or 1
    series = {}
    for v, x in sorted(zip(ready, xs), key=lambda pair: pair[1]):
        y = v.metrics.get(metric) or 0.0
        px = pad + (width - 2 * pad) * x / x_max
        py = height - pad - (height - 2 * pad) * y
        series.setdefault(v.kind, []).append({"x": round(px, 1), "y": round(py, 1), "label": f"v{v.number}: {y:.3f} @ {x}"})
    return {kind: {"points": " ".join(f"{p['x']},{p['y']}" for p in pts), "dots": pts} for kind, pts in series.items()}


@login_required
@require_safe
def models_page(request, project_id):
    project, membership = selectors.project_get_for(user=request.user, project_id=project_id)
    policy = training.policy_for(project)
    versions = list(ModelVersion.objects.filter(project=project).select_related("snapshot").prefetch_related("aliases"))
    selected = None
    if re.fullmatch(r"[0-9]{1,10}", request.GET.get("version", ""), re.ASCII):  # isdigit() takes '²'; int() does not
        selected = next((v for v in versions if v.number == int(request.GET["version"])), None)
    selected = selected or next((v for v in versions if v.metrics), None)
    confusion = None
    if selected and selected.metrics and "confusion" in selected.metrics:
        c = selected.metrics["confusion"]
        shown = [i for i, row in enumerate(c["matrix"]) if sum(row) or sum(r[i] for r in c["matrix"])]
        confusion = {"labels": [c["labels"][i] for i in shown],
                     "rows": [(c["labels"][i], [c["matrix"][i][j] for j in shown]) for i in shown]}
    return render(request, "frontend/models.html", {
        "project": project,
        "is_admin": membership.can(Role.ADMIN),
        "policy": policy,
        "versions": versions,
        "selected": selected,
        "confusion": confusion,
        "curve": learning_curve_points(versions, policy.primary_metric),
        "moves": AliasMove.objects.filter(project=project).select_related("from_version", "to_version", "moved_by")[:20],
        "busy": any(v.status in ("queued", "training") for v in versions),
    })


def admin_project(request, project_id):
    """The project, for its admins only (403 below admin, 404 for outsiders)."""
    project, _ = selectors.project_get_for(user=request.user, project_id=project_id, role=Role.ADMIN)
    return project


@login_required
@require_POST
def retrain(request, project_id):
    project = admin_project(request, project_id)
    kinds = request.POST.getlist("kinds") or None
    unknown = sorted(set(kinds or []) - set(ModelKind.values))
    if unknown:  # the service would queue a version of no known kind (a KeyError, a 500)
        messages.error(request, f"kinds: unknown kind '{unknown[0]}'; choose from {', '.join(ModelKind.values)}")
        return redirect("models-page", project_id=project.id)
    try:
        versions = training.retrain_request(project=project, user=request.user, kinds=kinds)
        messages.success(request, "Queued " + ", ".join(str(v) for v in versions) + ".")
    except (training.NothingToTrain, training.RetrainBusy, ValueError) as exc:
        messages.error(request, str(exc))
    return redirect("models-page", project_id=project.id)


@login_required
@require_POST
def promote(request, project_id, number):
    project = admin_project(request, project_id)
    version = get_object_or_404(ModelVersion, project=project, number=number)
    try:
        promotion.version_promote(version=version, user=request.user, reason=request.POST.get("reason", ""),
                                 override=request.POST.get("override") == "on")
        messages.success(request, f"v{number} is the champion.")
    except promotion.PromotionRefused as exc:
        messages.error(request, str(exc))
    return redirect("models-page", project_id=project.id)


@login_required
@require_POST
def rollback(request, project_id):
    project = admin_project(request, project_id)
    try:
        move = promotion.champion_rollback(project=project, user=request.user, reason=request.POST.get("reason", ""))
        messages.success(request, f"Rolled back to v{move.to_version.number}.")
    except promotion.PromotionRefused as exc:
        messages.error(request, str(exc))
    return redirect("models-page", project_id=project.id)


@login_required
@require_POST
def cancel(request, project_id, number):
    project = admin_project(request, project_id)
    version = get_object_or_404(ModelVersion, project=project, number=number)
    if training.version_cancel(version=version):
        messages.success(request, f"Cancelling v{number}.")
    return redirect("models-page", project_id=project.id)
