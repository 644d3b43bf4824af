"""Reads of a project's active-learning state."""
from __future__ import annotations

from labeller.models import ActiveLearningState


def state_for(project_id: int) -> ActiveLearningState:
    state, _ = ActiveLearningState.objects.get_or_create(project_id=project_id)
    return state
