"""Task types: what an annotation is and what a model does with it, one module per kind of task
(see base.TaskType and docs/task-types.md). Imports only `ml/`, the standard library and numpy,
so every app above labeller can use it."""
from __future__ import annotations

from .base import Decision, InvalidValue, TaskType
from .classification import MULTI_LABEL, SINGLE_LABEL, classification_of
from .spans import SPANS

# Keyed by Project.task_type. A new task type adds its module and one entry here.
_BY_KEY: dict[str, TaskType] = {task_type.key: task_type for task_type in (SINGLE_LABEL, MULTI_LABEL, SPANS)}


def task_type_for(project_or_key) -> TaskType:
    """The task type of a project (anything with a `task_type`) or of a Project.task_type value."""
    key = str(getattr(project_or_key, "task_type", project_or_key))
    try:
        return _BY_KEY[key]
    except KeyError:
        raise LookupError(f"unknown task type {key!r}; known: {', '.join(_BY_KEY)}") from None


__all__ = ["Decision", "InvalidValue", "TaskType", "classification_of", "task_type_for"]
