"""Reads of the labelling application, always scoped to what the caller may see."""
from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Prefetch, Q, QuerySet
from django.http import Http404
from django.core.exceptions import PermissionDenied

from .models import Annotation, Item, Membership, Project, Role
from .task_types import task_type_for


def projects_for(*, user: AbstractBaseUser) -> QuerySet[Project]:
    return Project.objects.filter(memberships__user=user)


def projects_with_progress_for(*, user: AbstractBaseUser) -> QuerySet[Project]:
    return projects_for(user=user).annotate(
        item_total=Count("items", distinct=True),
        item_done=Count("items", filter=Q(items__is_done=True), distinct=True),
    )


def project_get_for(*, user: AbstractBaseUser, project_id: int, role: str = Role.VIEWER) -> tuple[Project, Membership]:
    """The project and the caller's membership. Outsiders get 404 (the project's existence is
    not theirs to learn); members below `role` get 403."""
    membership = (
        Membership.objects.select_related("project").filter(project_id=project_id, user=user).first()
        if user.is_authenticated
        else None
    )
    if membership is None:
        raise Http404("No such project.")
    if not membership.can(role):
        raise PermissionDenied(f"This needs the project role '{role}' or higher; you are '{membership.role}'.")
    return membership.project, membership


def project_progress(*, project: Project) -> dict:
    counts = Item.objects.filter(project=project).aggregate(
        total=Count("id"), done=Count("id", filter=Q(is_done=True)), labelled=Count("id", filter=Q(annotation_count__gt=0))
    )
    counts["annotations"] = Annotation.objects.filter(project=project, skipped=False).count()
    return counts


def annotation_history_for(*, project: Project, user: AbstractBaseUser, limit: int = 10) -> QuerySet[Annotation]:
    """The expert's most recent labels in this project, newest first (undo and edit)."""
    return (
        Annotation.objects.filter(project=project, annotator=user)
        .select_related("item__project", "annotator")
        .order_by("-updated_at", "-id")[:limit]
    )


def items_with_annotations(*, project: Project) -> QuerySet[Item]:
    annotations = Annotation.objects.filter(skipped=False).select_related("annotator").order_by("id")
    return (
        Item.objects.filter(project=project)
        .order_by("id")
        .prefetch_related(Prefetch("annotations", queryset=annotations, to_attr="submitted"))
    )


def project_agreement(*, project: Project) -> dict:
    """Krippendorff's alpha over the items labelled by two or more experts."""
    overlapping = (
        Item.objects.filter(project=project, annotation_count__gte=2)
        .order_by("id")
        .prefetch_related(Prefetch("annotations", queryset=Annotation.objects.filter(skipped=False), to_attr="submitted"))
    )
    units = [[a.labels for a in item.submitted] for item in overlapping.iterator(chunk_size=2000)]
    alpha = task_type_for(project).alpha(units, labels=list(project.labels.values_list("key", flat=True)))
    return {"statistic": "krippendorff_alpha_nominal", "alpha": alpha, "items_with_overlap": len(units)}
