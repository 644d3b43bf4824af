"""One item's whole history, for the item page: its annotations (who, when, lead time, the
suggestion shown and whether it was accepted, where a bulk label came from), the predictions
served on it with their model versions, the product's feedback events on it and their review.

It lives here, not in labeller, because it reads the feedback app's tables: feedback imports
labeller, never the reverse (docs/architecture.md)."""
from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q

from core.errors import NotFound
from labeller.models import Annotation, Item, Project

from .models import FeedbackEvent, FeedbackStatus, Prediction
from .review import review_summary

# An item collects a handful of each; the page shows the newest this many of each kind.
HISTORY_ROWS = 200


@dataclass
class ItemHistory:
    item: Item
    annotations: list[Annotation]
    predictions: list[Prediction]
    feedback: list[FeedbackEvent]
    review: dict | None  # feedback.review.review_summary, when product users gave feedback on it
    under_review: bool
    reviewed: int  # feedback events an expert's label has settled


def item_history_for(*, project: Project, item_id: int) -> ItemHistory:
    """The item of this project and its history, oldest first in each part; NotFound outside it."""
    item = Item.objects.select_related("project", "held_by").filter(project=project, id=item_id).first()
    if item is None:
        raise NotFound("No such item in this project.")
    annotations = (Annotation.objects.filter(item=item).select_related("annotator", "labelled_from")
                   .order_by("-created_at", "-id")[:HISTORY_ROWS])
    feedback = list(FeedbackEvent.objects.filter(item=item).select_related("token", "user", "version", "prediction__version")
                    .order_by("-id")[:HISTORY_ROWS])[::-1]
    # The predictions linked to the item (it abstained, or went to review) and those the feedback answered.
    answered = [event.prediction_id for event in feedback if event.prediction_id]
    predictions = (Prediction.objects.filter(Q(item=item) | Q(id__in=answered), project=project)
                   .select_related("version").order_by("-created_at")[:HISTORY_ROWS])
    return ItemHistory(
        item=item,
        annotations=list(annotations)[::-1],
        predictions=list(predictions)[::-1],
        feedback=feedback,
        review=review_summary(item=item) if feedback else None,
        under_review=item.needs_review,
        reviewed=sum(1 for event in feedback if event.status == FeedbackStatus.REVIEWED),
    )
