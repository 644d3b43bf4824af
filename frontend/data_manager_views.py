"""The data manager: a table of the project's items with the columns the member picks, filters,
sorting, full-text search and bulk actions. The page is a shell; data_manager.js reads rows from
GET /api/projects/<id>/items/table and acts through POST .../items/bulk, so the page and the API
apply one set of rules (labeller.item_table, the bulk services)."""
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_safe

from labeller import exporting, item_table, selectors
from labeller.models import ItemSource, ItemStatus, Role, TaskType

# (key, heading, shown by default) of every column the table can show.
COLUMNS = [
    ("text", "Text", True), ("status", "Status", True), ("annotations", "Labels and annotators", True),
    ("majority", "Majority", True), ("agreement", "Agreement", True), ("predicted", "Prediction", True),
    ("confidence", "Confidence", True), ("disagrees", "Experts vs model", False), ("is_eval", "Evaluation set", False),
    ("needs_review", "Needs review", True), ("likely_mislabelled", "Likely mislabelled", True), ("source", "Source", False), ("created_at", "Created", False),
    ("labelled_at", "Last labelled", False),
]
# A span project's cells count the spans of each label (item_table.majority_span_counts).
SPAN_HEADINGS = {"annotations": "Spans and annotators", "majority": "Majority spans"}
SORT_NAMES = {"id": "Import order", "created_at": "Created", "labelled_at": "Last labelled",
              "confidence": "Confidence", "agreement": "Agreement"}


@login_required
@require_safe
def data_manager_page(request, project_id):
    project, membership = selectors.project_get_for(user=request.user, project_id=project_id)
    spans = project.task_type == TaskType.SPANS  # the label filter keeps the items with a span of that label
    sorts = [(sort, f"{SORT_NAMES[sort.lstrip('-')]} {'↓' if sort.startswith('-') else '↑'}") for sort in item_table.SORT_CHOICES]
    return render(request, "frontend/data_manager.html", {
        "project": project,
        "membership": membership,
        "spans": spans,
        "can_act": membership.can(Role.EXPERT),
        "can_delete": membership.can(Role.ADMIN),
        "labels": project.labels.all(),
        "members": selectors.memberships_for(project=project),
        "statuses": ItemStatus.choices,
        "sources": ItemSource.choices,
        "sorts": sorts,
        "columns": [(key, SPAN_HEADINGS.get(key, heading) if spans else heading, shown) for key, heading, shown in COLUMNS],
        "export_formats": exporting.export_formats_for(project),
    })
