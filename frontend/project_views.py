"""The new project page: one form with sensible defaults (a name and a few labels are enough),
checked by the API's own serializer and created by the API's own service, so the page and
`POST /api/projects/` accept and refuse the same things. Then on to importing items.

Who may: any logged-in user, as the API (its only permission is IsAuthenticated)."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from labeller import label_defaults, services
from labeller.api.serializers import FIELD_TYPES, ProjectCreateSerializer
from labeller.models import TaskType

from .errors import serializer_problems
from .templatetags.labelloop import markdown

LABEL_FIELDS = ("key", "name", "shortcut", "color")


def posted_labels(post) -> list[dict]:
    """The label table's rows; without the page's script, the pasted names with their defaults."""
    rows = zip(*(post.getlist(f"label_{field}") for field in LABEL_FIELDS))
    labels = [dict(zip(LABEL_FIELDS, row)) for row in rows]
    if labels:
        return labels
    names = list(dict.fromkeys(line.strip() for line in post.get("labels_text", "").splitlines() if line.strip()))
    return label_defaults.labels_from_names(names)


def posted_project(post) -> dict:
    """The form as the API's body: lists split, empty rows dropped, blanks left for the serializer."""
    types = zip(post.getlist("field_name"), post.getlist("field_type"))
    return {
        "name": post.get("name", ""),
        "description": post.get("description", ""),
        "guidelines": post.get("guidelines", ""),
        "task_type": post.get("task_type", ""),
        "text_field": post.get("text_field", ""),
        "required_fields": post.get("required_fields", "").replace(",", " ").split(),
        "field_types": {name.strip(): kind for name, kind in types if name.strip()},
        "labels": posted_labels(post),
    }


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def project_new(request):
    data, status = {"task_type": TaskType.SINGLE_LABEL, "text_field": "text", "labels": [], "field_types": {}}, 200
    if request.method == "POST":
        data = posted_project(request.POST)
        serializer = ProjectCreateSerializer(data=data)
        if serializer.is_valid():
            project = services.project_create(user=request.user, **serializer.validated_data)
            messages.success(request, f"Project “{project.name}” created with {project.labels.count()} labels. Import its items next.")
            return redirect(reverse("project-detail", args=[project.id]) + "#import-items")
        for problem in serializer_problems(serializer.errors):
            messages.error(request, problem)
        status = 400
    return render(request, "frontend/project_new.html", {
        "data": data,
        "labels_text": request.POST.get("labels_text", ""),
        "task_types": TaskType.choices,
        "field_types": FIELD_TYPES,
        "config": {
            "shortcuts": label_defaults.SHORTCUTS,
            "palette": label_defaults.PALETTE,
            "labels": data["labels"],
            "previewUrl": reverse("project-new-preview"),
        },
    }, status=status)


@login_required
@require_POST
def guidelines_preview(request):
    """The guidelines as the project and labelling pages will show them: the same Markdown
    filter, so the same sanitised HTML."""
    return HttpResponse(markdown(request.POST.get("guidelines", "")), content_type="text/html; charset=utf-8")
