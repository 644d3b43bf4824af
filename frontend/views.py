"""Server-rendered pages. Each page reads through selectors and writes through services; a page
that only reads answers GET and HEAD alone (405 otherwise), a form target POST alone."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe

from active_learning.selectors import state_for
from core.errors import DomainError
from labeller import exporting, importing, selectors
from labeller.models import Role
from labeller.task_types import task_type_for

from .errors import form_problems, refusal_show
from .forms import ExportForm, ImportForm
from .monitoring_views import open_alert_count


@login_required
@require_safe
def project_list(request):
    projects = selectors.projects_with_progress_for(user=request.user).order_by("id")
    return render(request, "frontend/project_list.html", {"projects": projects})


@login_required
@require_safe
def project_detail(request, project_id):
    project, membership = selectors.project_get_for(user=request.user, project_id=project_id)
    return render(request, "frontend/project_detail.html", {
        "project": project,
        "membership": membership,
        "is_admin": membership.can(Role.ADMIN),
        "is_expert": membership.can(Role.EXPERT),
        "progress": selectors.project_progress(project=project),
        "agreement": selectors.project_agreement(project=project) if project.labels_per_item > 1 else None,
        "exports": project.exports.all()[:10],
        "al": state_for(project.id),
        "export_formats": exporting.export_formats_for(project),
        "export_statuses": exporting.EXPORT_STATUSES,
        "import_result": request.session.pop(f"import_result_{project.id}", None),
        "open_alerts": open_alert_count(project),
    })


@login_required
@require_POST
def project_import(request, project_id):
    project, _ = selectors.project_get_for(user=request.user, project_id=project_id, role=Role.ADMIN)
    form = ImportForm({"mode": request.POST.get("mode", "atomic")}, request.FILES)
    if not form.is_valid():
        for problem in form_problems(form):
            messages.error(request, problem)
        return redirect("project-detail", project_id=project.id)
    upload = form.cleaned_data["file"]
    try:
        result = importing.items_import(
            project=project, stream=upload.file, filename=upload.name, mode=form.cleaned_data["mode"]
        )
    except DomainError as exc:
        refusal_show(request, exc)
        return redirect("project-detail", project_id=project.id)
    report = result.as_dict()
    report["errors"] = report["errors"][:50]  # the page shows the first few; the API returns them all
    report["duplicates"] = report["duplicates"][:50]
    request.session[f"import_result_{project.id}"] = report
    return redirect("project-detail", project_id=project.id)


@login_required
@require_POST
def project_export(request, project_id):
    project, _ = selectors.project_get_for(user=request.user, project_id=project_id)
    form = ExportForm({
        "format": request.POST.get("format"),
        "status": request.POST.get("status", "all"),
        "min_agreement": request.POST.get("min_agreement") or None,
    })
    if not form.is_valid():
        for problem in form_problems(form):
            messages.error(request, problem)
    else:
        try:
            exporting.export_create(project=project, user=request.user, **form.cleaned_data)
        except DomainError as exc:  # CoNLL asked of a classification project
            refusal_show(request, exc)
        else:
            messages.success(request, "Export queued; it appears below when a worker has written it.")
    return redirect("project-detail", project_id=project.id)


@login_required
@require_safe
def label_screen(request, project_id):
    project, _ = selectors.project_get_for(user=request.user, project_id=project_id, role=Role.EXPERT)
    task_type = task_type_for(project)
    return render(request, task_type.label_template, {
        "project": project,
        "config": {
            "projectId": project.id,
            **task_type.page_config(project),
            "suggestionMode": project.suggestion_mode,
            "labels": selectors.labels_for_screen(project=project),
            "progress": selectors.project_progress(project=project),
        },
    })
