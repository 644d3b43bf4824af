"""The project's training policy as the API reads and changes it: the stored policy and the
retrain schedule (kept by django-celery-beat) as one thing."""
from __future__ import annotations

from labeller.models import Project
from labeller.task_types import task_type_for

from . import schedules, training


def training_policy_read(*, project: Project) -> dict:
    policy = training.training_policy_for(project)
    return {"primary_metric": policy.primary_metric, "guardrails": policy.guardrails, "auto_promote": policy.auto_promote,
            "kinds": policy.retrain_kinds(), "retrain_after_labels": policy.retrain_after_labels,
            "schedule": schedules.schedule_of(project), "finetune": policy.finetune}


def policy_context(*, project: Project) -> dict:
    """What TrainingPolicySerializer checks a change against: the project's label keys and task type."""
    return {"labels": list(project.labels.values_list("key", flat=True)), "task_type": task_type_for(project)}


def training_policy_update(*, project: Project, **changes) -> dict:
    """Apply validated `changes` (policy fields, and `schedule`: a cron expression or None)."""
    if "schedule" in changes:
        schedules.schedule_set(project=project, cron=changes.pop("schedule"))
    policy = training.training_policy_for(project)
    for name, value in changes.items():
        setattr(policy, name, value)
    policy.save()
    return training_policy_read(project=project)
