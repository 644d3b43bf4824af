"""The project's monitoring page: live accuracy per version, drift, traffic split, abstentions,
schema violations and alerts over time; for admins, the serving policy, the API tokens and a
"recompute now" button. Reads through the feedback app's models and services, writes through its
services after checking the input with frontend.forms (the API's rules and messages)."""
from collections import defaultdict

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.db.models import Sum
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from feedback import monitoring, predicting, review, serving_policy, tokens
from feedback.models import Alert, AlertStatus, ApiToken, MonitoringPoint, Period, SchemaViolation, Scope
from labeller import selectors
from labeller.models import Role

from .access import admin_project
from .charts import Series, line_chart
from .errors import form_problems
from .forms import ServingPolicyForm, TokenCreateForm

POINTS_SHOWN = 500  # about three weeks of hours, or a year and a half of days, per version


def version_series(points, metric: str, *, band=None, transform=lambda x: x) -> list[Series]:
    """One line per model version of `metric` from the points' metrics; `band(metrics)` gives an
    optional (low, high) interval drawn behind it."""
    by_version = defaultdict(lambda: Series(name="", points=[]))
    for p in points:
        s = by_version[p.version.number]
        s.name = f"v{p.version.number}"
        value = p.metrics.get(metric)
        s.points.append((p.start, None if value is None else transform(value)))
        interval = band(p.metrics) if band else None
        if interval:
            s.band.append((p.start, *interval))
    return [by_version[n] for n in sorted(by_version)]


def accuracy_band(metrics: dict):
    """Live accuracy is one minus the disagreement rate; so is its interval, upside down."""
    interval = metrics.get("disagreement_interval")
    return (1 - interval[1], 1 - interval[0]) if interval else None


def traffic_series(points) -> list[Series]:
    """Predictions per version and role (champion, challenger, shadow) in each period."""
    lines = defaultdict(list)
    for p in points:
        for role, n in p.metrics.get("traffic", {}).items():
            lines[(p.version.number, role)].append((p.start, n))
    return [Series(name=f"v{number} {role}", points=values) for (number, role), values in sorted(lines.items())]


def violation_series(project) -> list[Series]:
    rows = (SchemaViolation.objects.filter(project=project).values("day", "source", "token__name")
            .annotate(n=Sum("count")).order_by("day"))
    lines = defaultdict(list)
    for r in rows:
        lines[r["token__name"] or r["source"]].append((r["day"], r["n"]))
    return [Series(name=name, points=values) for name, values in sorted(lines.items())]


def monitoring_charts(project, period: str, thresholds: dict) -> list[dict]:
    points = list(MonitoringPoint.objects.filter(project=project, period=period).select_related("version")
                  .order_by("-start")[:POINTS_SHOWN])[::-1]
    fmt = "%m-%d %H:%M" if period == Period.HOUR else "%Y-%m-%d"
    return [
        line_chart(version_series(points, "live_accuracy", band=accuracy_band), y_min=0, y_max=1, time_format=fmt,
                   title="Live accuracy from feedback (share of feedback agreeing with the model; 95% interval)",
                   threshold=1 - thresholds["disagreement_rate"], threshold_label="alert below"),
        line_chart(version_series(points, "domain_auc"), y_min=0, y_max=1, time_format=fmt,
                   title="Embedding drift: domain classifier AUC, live vs the reference sample of the project's items (0.5 = indistinguishable)",
                   threshold=thresholds["domain_auc"], threshold_label="alert above"),
        line_chart(version_series(points, "oov_rate_increase"), time_format=fmt,
                   title="Input drift: out-of-vocabulary rate above the reference's held-out baseline",
                   threshold=thresholds["oov_rate_increase"], threshold_label="alert above"),
        line_chart(version_series(points, "prediction_js"), time_format=fmt,
                   title="Prediction drift: Jensen–Shannon divergence from the version's answers on the reference sample",
                   threshold=thresholds["prediction_js"], threshold_label="alert above"),
        line_chart(version_series(points, "abstain_rate"), y_min=0, y_max=1, time_format=fmt,
                   title="Abstain rate (answers below the confidence threshold, sent to experts)",
                   threshold=thresholds["abstain_rate"], threshold_label="alert above"),
        line_chart(version_series(points, "out_of_scope_rate"), y_min=0, y_max=1, time_format=fmt,
                   title="Out-of-scope rate (queries like none of the labels, sent to experts)",
                   threshold=thresholds["out_of_scope_rate"], threshold_label="alert above"),
        line_chart(version_series(points, "mean_confidence"), y_min=0, y_max=1, time_format=fmt,
                   title="Mean confidence"),
        line_chart(traffic_series(points), time_format=fmt, value_format="{:.0f}",
                   title="Traffic split: predictions per version and role"),
        line_chart(violation_series(project), time_format="%Y-%m-%d", value_format="{:.0f}",
                   title="Schema violations per day and source",
                   threshold=thresholds["schema_violations_per_day"], threshold_label="alert above"),
    ]


@login_required
@require_safe
def monitoring_page(request, project_id):
    project, membership = selectors.project_get_for(user=request.user, project_id=project_id)
    period = request.GET.get("period", Period.HOUR)
    if period not in Period.values:
        period = Period.HOUR
    policy = predicting.serving_policy_for(project)
    thresholds = monitoring.thresholds_for(policy)
    is_admin = membership.can(Role.ADMIN)
    latest = (MonitoringPoint.objects.filter(project=project, period=period).select_related("version")
              .order_by("-start", "version__number"))
    newest = latest.first()
    return render(request, "frontend/monitoring.html", {
        "project": project,
        "is_admin": is_admin,
        "period": period,
        "charts": monitoring_charts(project, period, thresholds),
        "latest": [p for p in latest[:20] if newest and p.start == newest.start],
        "alerts": Alert.objects.filter(project=project).select_related("version").order_by("status", "-created_at")[:50],
        "violations": SchemaViolation.objects.filter(project=project).select_related("token").order_by("-day", "-count")[:30],
        "reliability": review.source_reliability(project=project),
        "review": review.review_counts(project=project),
        "policy": policy,
        "thresholds": sorted(thresholds.items()),
        "tokens": project.api_tokens.order_by("revoked_at", "-created_at") if is_admin else [],
        "scopes": Scope.choices,
        "new_token": request.session.pop(f"new_token_{project.id}", None) if is_admin else None,
    })


def policy_page(request, project):
    """Back to the page the serving policy form was sent from: this one, or the settings page
    (which shows the same form); never a URL from the request."""
    if request.POST.get("return_to") == "settings":
        return redirect(reverse("settings-page", args=[project.id]) + "#serving")
    return redirect("monitoring-page", project_id=project.id)


@login_required
@require_POST
def policy_update(request, project_id):
    project = admin_project(request, project_id)
    back = policy_page(request, project)
    policy = predicting.serving_policy_for(project)
    thresholds = {}
    for name in monitoring.DEFAULT_THRESHOLDS:
        raw = request.POST.get(f"threshold_{name}", "").strip()
        if raw:
            try:
                thresholds[name] = float(raw)
            except ValueError:
                messages.error(request, f"thresholds: {name}: '{raw}' is not a number")
                return back
    data = {
        "abstain_below": request.POST.get("abstain_below"),
        "challenger_percent": request.POST.get("challenger_percent"),
        "shadow": request.POST.get("shadow") == "on",
        "min_predictions": request.POST.get("min_predictions"),
        "webhook_url": request.POST.get("webhook_url", "").strip(),
        "thresholds": {k: v for k, v in thresholds.items() if v != monitoring.DEFAULT_THRESHOLDS[k]},
    }
    form = ServingPolicyForm(data)
    if form.is_valid():
        serving_policy.serving_policy_update(policy=policy, **form.cleaned_data)
        messages.success(request, "Serving policy saved.")
    else:
        messages.error(request, "; ".join(form_problems(form)))
    return back


@login_required
@require_POST
def token_create(request, project_id):
    project = admin_project(request, project_id)
    form = TokenCreateForm({"name": request.POST.get("name", "").strip(),
                            "scopes": request.POST.getlist("scopes"),
                            "trusted": request.POST.get("trusted") == "on"})
    if form.is_valid():
        token, plain = tokens.token_create(project=project, user=request.user, **form.cleaned_data)
        # Shown once, on the next page only: the database keeps only its hash.
        request.session[f"new_token_{project.id}"] = {"name": token.name, "token": plain}
    else:
        messages.error(request, "; ".join(form_problems(form)))
    return redirect("monitoring-page", project_id=project.id)


@login_required
@require_POST
def token_revoke(request, project_id, prefix):
    project = admin_project(request, project_id)
    token = ApiToken.objects.filter(project=project, prefix=prefix).first()
    if token is None:
        raise Http404("No such token in this project.")
    tokens.token_revoke(token=token)
    messages.success(request, f"Token '{token.name}' revoked.")
    return redirect("monitoring-page", project_id=project.id)


@login_required
@require_POST
def recompute(request, project_id):
    from feedback.tasks import monitor_one

    project = admin_project(request, project_id)
    transaction.on_commit(lambda: monitor_one.delay(project.id))
    messages.success(request, "Recomputing: reload in a few seconds.")
    return redirect("monitoring-page", project_id=project.id)


def open_alert_count(project) -> int:
    return Alert.objects.filter(project=project, status=AlertStatus.OPEN).count()
