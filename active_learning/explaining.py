"""Word attributions for the suggestions at the head of the queue: occlusion through the encoder
and head, run after a refresh on the encode queue, where the encoder is loaded."""
from __future__ import annotations

from celery import shared_task

from labeller.models import Item, Project, SuggestionMode
from labeller.task_types import classification_of, task_type_for
from ml import explain
from ml.heads import LinearHead

from .encoding import encoder_for
from .selectors import state_for


def explain_top(*, project_id: int, limit: int = 20) -> int:
    """Add word attributions (occlusion through the encoder and head) to the suggestions at the
    head of the queue. Runs after a refresh on the encode queue, where the encoder is loaded."""
    project = Project.objects.get(id=project_id)
    state = state_for(project_id)
    if not state.head or project.suggestion_mode == SuggestionMode.OFF or task_type_for(project).word_level:
        return 0  # a span suggestion's evidence is its spans' confidence: no word occlusion for it
    head = LinearHead.from_bytes(bytes(state.head))
    encoder = encoder_for(project)
    items = list(
        Item.objects.filter(project=project, is_done=False, suggestion__isnull=False)
        .order_by("-priority", "id")[:limit]
    )
    updated = []
    for item in items:
        suggestion = item.suggestion
        if suggestion.get("words") or suggestion.get("head_version") != state.head_version:
            continue
        class_index = classification_of(head).explained_class(head.classes, suggestion["labels"])
        suggestion["words"] = explain.word_occlusion(
            item.text(), class_index, encode=encoder.encode, predict_proba=head.predict_proba
        )
        updated.append(item)
    Item.objects.bulk_update(updated, ["suggestion"])
    return len(updated)


# Beside the service it runs; the name predates this module (routes, messages already queued).
@shared_task(name="labeller.tasks.explain_suggestions")
def explain_suggestions(project_id: int) -> int:
    """Word attributions for the suggestions at the head of the queue (needs the encoder)."""
    return explain_top(project_id=project_id)
