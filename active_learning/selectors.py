"""Reads of a project's active-learning state."""
from __future__ import annotations

from django.db.models import Count

from labeller.models import ActiveLearningState, JobStatus


def state_for(project_id: int) -> ActiveLearningState:
    return ActiveLearningState.for_project(project_id)


def encoding_in_progress() -> list[dict]:
    """The projects whose encoding is queued or running, with how many items it has left (the
    whole project while the worker has not started counting)."""
    states = (ActiveLearningState.objects.filter(encode_status__in=[JobStatus.QUEUED, JobStatus.RUNNING])
              .select_related("project").annotate(items=Count("project__items")).order_by("project_id"))
    return [{"project_id": s.project_id, "name": s.project.name,
             "pending": (s.encode_total - s.encode_done) if s.encode_total else s.items} for s in states]
