"""Reads of a project's active-learning state."""
from __future__ import annotations

from labeller.models import ActiveLearningState


def state_for(project_id: int) -> ActiveLearningState:
    return ActiveLearningState.for_project(project_id)
