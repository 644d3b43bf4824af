"""The item page and find-similar.

The item page shows one item with its whole history (feedback.item_history), lets an expert relabel
it (through annotation_submit, like the labelling screen) and label its nearest unlabelled
neighbours in one step (labeller.services.annotations_label_similar). The similar page finds the
items nearest to typed text. Every project member may look; experts and admins may label;
outsiders get 404."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from active_learning.similar import similar_items
from core.errors import Conflict, DomainError
from feedback.item_history import item_history_for
from labeller import selectors, services
from labeller.consensus import Resolver, answer_key
from labeller.models import Role, TaskType
from labeller.suggestions import suggestion_for_item
from labeller.task_types import task_type_for

from .errors import form_checked, form_problems, post_handled, refusal_page
from .forms import SIMILAR_K, SIMILAR_THRESHOLD, LabelSimilarForm, RelabelForm, SimilarForm, project_label_choices
from .span_marks import spans_marked


def similar_query(request) -> tuple[dict, list[str]]:
    """The page's find-similar settings from the query string, and its problems (defaults used instead)."""
    form = SimilarForm(request.GET)
    if form.is_valid():
        return form.cleaned_data, []
    return {"text": "", "k": SIMILAR_K, "threshold": SIMILAR_THRESHOLD}, form_problems(form)


def neighbours_for(project, item, query, user) -> tuple[list[tuple], str | None]:
    """The item's nearest neighbours that this expert may label in bulk, or why there are none to show."""
    try:
        return similar_items(project=project, item=item, k=query["k"], min_similarity=-1.0,
                             open_to_labelling_by=user), None
    except DomainError as exc:
        return [], exc.message


@login_required
@require_safe
def item_page(request, project_id, item_id):
    project, membership = selectors.project_get_for(user=request.user, project_id=project_id)
    history = item_history_for(project=project, item_id=item_id)
    query, problems = similar_query(request)
    for problem in problems:
        messages.error(request, problem)
    can_label = membership.can(Role.EXPERT)
    spans = project.task_type == TaskType.SPANS  # no label similar: spans do not carry over to other texts
    offers_similar = can_label and not spans
    neighbours, no_neighbours = neighbours_for(project, history.item, query, request.user) if offers_similar else ([], None)
    mine = next((a for a in history.annotations if a.annotator_id == request.user.pk), None)
    resolved = resolved_labels(project, history.annotations, item_id=history.item.id)
    text = history.item.text()
    suggestion = None
    if spans:
        spans_drawn(project, history, text, resolved)
        suggestion = suggestion_drawn(project, history.item, text, request.user)
    return render(request, "frontend/item.html", {
        "project": project,
        "membership": membership,
        "can_label": can_label,
        "history": history,
        "item": history.item,
        "text": text,
        "spans": spans,
        "labels": project_label_choices(project),
        "label_names": dict(project.labels.values_list("key", "name")),
        "multi_label": task_type_for(project).page_config(project).get("multiLabel", False),
        "my_labels": mine.labels if mine else [],
        "resolved": resolved,
        "label_error": label_error_evidence(project, history.item),
        "similar_labels": resolved or (mine.labels if mine else []),
        "neighbours": neighbours,
        "no_neighbours": no_neighbours,
        "query": query,
        "suggestion": suggestion,
    })


def spans_drawn(project, history, text: str, resolved: list) -> None:
    """A span project's spans, marked in the text for the page: each annotation's spans and the
    model's spans it was shown (with confidence and whether they were kept), each prediction's
    spans in the text it was made on, and the majority's in the item's text."""
    labels = {key: (name, colour) for key, name, colour in project.labels.values_list("key", "name", "color")}
    for annotation in history.annotations:
        annotation.marked = spans_marked(text, annotation.labels, labels=labels)
        if annotation.suggested_labels is not None:
            annotation.suggested_marked = spans_marked(text, annotation.suggested_labels, labels=labels, dashed=True)
    for prediction in history.predictions:
        # A prediction the feedback answered may have been made on a text sent to the API, not on this item.
        said = prediction.data.get(project.text_field) if isinstance(prediction.data, dict) else None
        prediction.marked = spans_marked(said if isinstance(said, str) else text, prediction.labels, labels=labels,
                                         dashed=True)
    history.marked = spans_marked(text, resolved, labels=labels)


def suggestion_drawn(project, item, text: str, user) -> dict | None:
    """The model's current spans for a span item, as the labelling screen would show them to this
    user, marked in the text, with each span's evidence (the nearest labelled spans of its label,
    precomputed by the refresh for the head of the queue; none for a suggestion computed now)."""
    suggestion = suggestion_for_item(item=item, user=user)
    if not suggestion or not suggestion.get("spans"):
        return None
    labels = {key: (name, colour) for key, name, colour in project.labels.values_list("key", "name", "color")}
    names = {key: name for key, (name, _) in labels.items()}
    rows = [{**span, "name": names.get(span["label"], span["label"]),
             "evidence": [{**e, "name": names.get(e["label"], e["label"])} for e in span.get("evidence", [])]}
            for span in suggestion["spans"]]
    return {"marked": spans_marked(text, suggestion["spans"], labels=labels, dashed=True), "spans": rows,
            "confidence": suggestion.get("confidence")}


def resolved_labels(project, annotations, *, item_id: int | None = None) -> list:
    """The item's label as its consensus (labeller.consensus: what exports and training read)."""
    answers = [(answer_key(a.annotator_id, a.source), a.labels) for a in annotations if not a.skipped]
    return Resolver(project).resolve(answers, item_id=item_id).labels if answers else []


def label_error_evidence(project, item) -> dict | None:
    """A flagged item's evidence (active_learning.label_errors): the given and suggested labels,
    the given label's out-of-sample probability and the most similar labelled items, with their
    text and labels. None for an item that is not flagged."""
    verdict = item.label_error
    if not item.likely_mislabelled or not verdict:
        return None
    near = verdict.get("similar", [])
    texts = {i.id: i.text() for i in selectors.items_in_project(project=project, item_ids=[n["item"] for n in near])}
    return {**verdict, "similar": [{**n, "text": texts[n["item"]]} for n in near if n["item"] in texts]}


def back_to_item(project_id, item_id, request):
    url = reverse("item-page", kwargs={"project_id": project_id, "item_id": item_id})
    keep = {key: request.POST[key] for key in ("k", "threshold") if request.POST.get(key)}
    return redirect(url + ("?" + "&".join(f"{k}={v}" for k, v in keep.items()) if keep else ""))


def expert_item(request, project_id, item_id):
    project, _ = selectors.project_get_for(user=request.user, project_id=project_id, role=Role.EXPERT)
    return project, selectors.item_get_for_submit(project=project, item_id=item_id)


@login_required
@require_POST
def item_relabel(request, project_id, item_id):
    project, item = expert_item(request, project_id, item_id)
    if project.task_type == TaskType.SPANS:
        # The form sends whole-item label keys; a span project's labels are spans in the text.
        return refusal_page(request, Conflict("this form gives a whole item a label; a span project's spans are "
                                              "labelled and edited on the labelling screen", field="labels"),
                            back_url=back_to_item(project.id, item.id, request).url)

    def relabel(data):
        annotation = services.annotation_submit(item=item, user=request.user, labels=data["labels"])
        messages.success(request, f"Your label for this item is now {', '.join(annotation.labels)}.")

    return post_handled(request, checked=form_checked(request, RelabelForm(request.POST, project=project)),
                        act=relabel, back=back_to_item(project.id, item.id, request))


@login_required
@require_POST
def item_label_similar(request, project_id, item_id):
    project, item = expert_item(request, project_id, item_id)
    try:
        services.label_similar_check(project=project)
    except DomainError as exc:
        return refusal_page(request, exc, back_url=back_to_item(project.id, item.id, request).url)

    def label_similar(data):
        done = services.annotations_label_similar(project=project, user=request.user, source_item=item,
                                                  item_ids=data["items"], labels=data["labels"])
        labels = ", ".join(data["labels"])
        messages.success(request, f"Labelled {len(done.labelled)} item{'s' if len(done.labelled) != 1 else ''} as {labels}.")
        if done.skipped:
            messages.warning(request, f"Skipped {len(done.skipped)}: labelled, held or sent to review meanwhile.")

    return post_handled(request, checked=form_checked(request, LabelSimilarForm(request.POST, project=project)),
                        act=label_similar, back=back_to_item(project.id, item.id, request))


@login_required
@require_safe
def similar_page(request, project_id):
    """Items nearest to typed text, each linking to its page (where its neighbours can be labelled)."""
    project, membership = selectors.project_get_for(user=request.user, project_id=project_id)
    query, problems = similar_query(request)
    for problem in problems:
        messages.error(request, problem)
    results, refusal = [], None
    if query.get("text"):
        try:
            results = similar_items(project=project, text=query["text"], k=query["k"], min_similarity=-1.0)
        except DomainError as exc:
            refusal = exc.message
    return render(request, "frontend/similar.html", {
        "project": project, "query": query, "results": results, "refusal": refusal,
        "label_names": dict(project.labels.values_list("key", "name")),
    })
