"""The project's labels page (project admins only): add, rename, recolour, change the shortcut,
reorder, archive and unarchive, delete an unused label. The API's serializer checks each label
and labeller.services refuses what would corrupt data (a used label's key, deleting it)."""
from functools import partial

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe

from labeller import selectors, services
from labeller.api.serializers import LabelCreateSerializer

from .access import admin_project
from .errors import post_handled, serializer_problems


def checked_label(request):
    """The posted label fields as the API checks them, or None with the problems shown."""
    serializer = LabelCreateSerializer(data={f: request.POST.get(f, "") for f in ("key", "name", "color", "shortcut")})
    if serializer.is_valid():
        return serializer.validated_data
    for problem in serializer_problems(serializer.errors):
        messages.error(request, problem)
    return None


def admin_label(request, project_id, label_id):
    """The project (its admins only) and one of its labels; 404 for a label of another project."""
    project = admin_project(request, project_id)
    return project, selectors.label_get(project=project, label_id=label_id)


def back(project):
    return redirect("labels-page", project_id=project.id)


@login_required
@require_safe
def labels_page(request, project_id):
    project = admin_project(request, project_id)
    usage = selectors.label_usage(project=project)
    labels = list(project.labels.all())
    for label in labels:
        label.uses = usage.get(label.key, 0)
    return render(request, "frontend/labels.html", {"project": project, "labels": labels})


def label_saved(request, project, save, done: str):
    """Check the posted label as the API does, save it (`save(**fields)` returns the label), say
    so or show the refusal, and go back to the labels page."""
    def act(fields):
        label = save(**fields)
        messages.success(request, f"Label “{label.name}” {done}.")

    return post_handled(request, checked=checked_label(request), act=act, back=back(project))


@login_required
@require_POST
def label_add(request, project_id):
    project = admin_project(request, project_id)
    return label_saved(request, project, partial(services.label_create, project=project), "added")


@login_required
@require_POST
def label_update(request, project_id, label_id):
    project, label = admin_label(request, project_id, label_id)
    return label_saved(request, project, partial(services.label_update, label=label), "saved")


@login_required
@require_POST
def label_archive(request, project_id, label_id):
    project, label = admin_label(request, project_id, label_id)
    archived = request.POST.get("archived") != "false"
    services.label_archive(label=label, archived=archived)
    messages.success(request, f"Label “{label.name}” {'archived: it is no longer offered for new labels' if archived else 'is offered again'}.")
    return back(project)


@login_required
@require_POST
def label_move(request, project_id, label_id):
    project, label = admin_label(request, project_id, label_id)
    keys = list(project.labels.values_list("key", flat=True))
    at = keys.index(label.key)
    to = at - 1 if request.POST.get("direction") == "up" else at + 1
    if 0 <= to < len(keys):
        keys[at], keys[to] = keys[to], keys[at]
        services.labels_reorder(project=project, keys=keys)
    return back(project)


@login_required
@require_POST
def label_delete(request, project_id, label_id):
    project, label = admin_label(request, project_id, label_id)

    def delete(_):
        services.label_delete(label=label)
        messages.success(request, f"Label “{label.name}” deleted.")

    return post_handled(request, checked={}, act=delete, back=back(project))
