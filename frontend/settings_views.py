"""The project's settings page (project admins only): name and guidelines, the queue, active
learning, the training policy and the serving policy, one section and one Save button each.

Each section is checked by the API's own serializer (labeller.api.serializers.ProjectUpdateSerializer,
models_registry.serializers.TrainingPolicySerializer) and saved by the service the API calls, so
the page refuses exactly what the API refuses, in its words, naming the field. The serving policy
section is the monitoring page's form and view (monitoring_views.policy_update), shown here too."""
import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from feedback import monitoring, predicting
from labeller import services
from labeller.api.serializers import ProjectUpdateSerializer
from labeller.models import Strategy, SuggestionMode, TaskType
from labeller.task_types import task_type_for
from ml.gates import DEFAULT_GUARDRAILS, default_guardrails, guardrail_text
from models_registry import training_policy
from models_registry.models import ModelKind, PrimaryMetric
from models_registry.serializers import TrainingPolicySerializer

from .access import admin_project
from .errors import refusals_shown, serializer_problems

# The project's fields each section edits; a checkbox is sent only when ticked.
PROJECT_SECTIONS = {
    "general": ["name", "description", "guidelines"],
    "queue": ["labels_per_item", "hold_seconds"],
    "active-learning": ["strategy", "diversity", "warm_up", "refresh_every", "eval_share", "suggestion_mode",
                        "suggestion_holdout", "out_of_scope_label"],
}
CHECKBOXES = {"diversity", "warm_up"}


def back_to(project, section: str):
    return redirect(reverse("settings-page", args=[project.id]) + f"#{section}")


def show_problems(request, errors) -> None:
    for problem in serializer_problems(errors):
        messages.error(request, problem)


@login_required
@require_safe
def settings_page(request, project_id):
    project = admin_project(request, project_id)
    policy = training_policy.training_policy_read(project=project)
    serving = predicting.serving_policy_for(project)
    return render(request, "frontend/settings.html", {
        "project": project,
        "strategies": Strategy.choices,
        "suggestion_modes": SuggestionMode.choices,
        "single_label": project.task_type == TaskType.SINGLE_LABEL,
        "label_keys": list(project.labels.filter(archived=False).values_list("key", flat=True)),
        "training": policy,
        "guardrails_json": json.dumps(policy["guardrails"], indent=2),
        "guardrails_text": [guardrail_text(g) for g in policy["guardrails"]],
        "default_guardrails_text": [guardrail_text(g) for g in DEFAULT_GUARDRAILS],
        "uses_defaults": policy["guardrails"] == DEFAULT_GUARDRAILS,
        "primary_metrics": [(value, name) for value, name in PrimaryMetric.choices
                            if value in task_type_for(project).primary_metrics],
        "model_kinds": ModelKind.choices,
        "policy": serving,
        "thresholds": sorted(monitoring.thresholds_for(serving).items()),
    })


@login_required
@require_POST
def project_section(request, project_id, section):
    project = admin_project(request, project_id)
    fields = PROJECT_SECTIONS.get(section)
    if fields is None:
        messages.error(request, f"section: unknown section '{section}'")
        return back_to(project, "general")
    data = {name: (request.POST.get(name) == "on") if name in CHECKBOXES else request.POST.get(name, "") for name in fields}
    serializer = ProjectUpdateSerializer(data=data, partial=True)
    if not serializer.is_valid():
        show_problems(request, serializer.errors)
        return back_to(project, section)
    with refusals_shown(request):
        services.project_update(project=project, **serializer.validated_data)
        messages.success(request, "Settings saved.")
    return back_to(project, section)


@login_required
@require_POST
def training_section(request, project_id):
    project = admin_project(request, project_id)
    if request.POST.get("default_guardrails") == "on":
        guardrails = default_guardrails()
    else:
        try:
            guardrails = json.loads(request.POST.get("guardrails", "").strip() or "[]")
        except json.JSONDecodeError as exc:
            messages.error(request, f"guardrails: not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno})")
            return back_to(project, "training")
    data = {
        "primary_metric": request.POST.get("primary_metric", ""),
        "guardrails": guardrails,
        "auto_promote": request.POST.get("auto_promote") == "on",
        "kinds": request.POST.getlist("kinds"),
        "retrain_after_labels": request.POST.get("retrain_after_labels", ""),
        "schedule": request.POST.get("schedule", "").strip(),
    }
    serializer = TrainingPolicySerializer(data=data, context=training_policy.policy_context(project=project))
    if not serializer.is_valid():
        show_problems(request, serializer.errors)
        return back_to(project, "training")
    with refusals_shown(request):
        training_policy.training_policy_update(project=project, **serializer.validated_data)
        messages.success(request, "Training policy saved.")
    return back_to(project, "training")
