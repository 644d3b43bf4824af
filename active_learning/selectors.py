"""Reads of a project's active-learning state."""
from __future__ import annotations

from django.db.models import Count, Sum
from django.utils import timezone

from labeller.models import ActiveLearningState, EncodeChunk, JobStatus


def state_for(project_id: int) -> ActiveLearningState:
    return ActiveLearningState.for_project(project_id)


def encoding_in_progress() -> list[dict]:
    """The projects whose encoding is queued or running, with how many items it has left (the
    whole project while the worker has not started counting)."""
    states = (ActiveLearningState.objects.filter(encode_status__in=[JobStatus.QUEUED, JobStatus.RUNNING])
              .select_related("project").annotate(items=Count("project__items")).order_by("project_id"))
    return [{"project_id": s.project_id, "name": s.project.name,
             "pending": (s.encode_total - s.encode_done) if s.encode_total else s.items} for s in states]


def encode_seconds_left(state: ActiveLearningState) -> float | None:
    """Seconds the running encode has left at the rate its chunks have stored vectors since it was
    planned, every worker together; None when no run is going or none has stored a vector yet."""
    if state.encode_status != JobStatus.RUNNING or state.encode_started_at is None:
        return None
    stored = EncodeChunk.objects.filter(project_id=state.project_id).aggregate(n=Sum("encoded"))["n"] or 0
    elapsed = (timezone.now() - state.encode_started_at).total_seconds()
    if not stored or elapsed <= 0:
        return None
    return max(state.encode_total - state.encode_done, 0) * elapsed / stored
