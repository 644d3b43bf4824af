"""Reads of the labelling application, always scoped to what the caller may see."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Case, Count, Exists, OuterRef, Prefetch, Q, QuerySet, Value, When

from core.errors import DomainError, NotAllowed, NotFound

from .models import ROLE_RANK, Annotation, Item, ItemStatus, Membership, Project, Role
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
        raise NotFound("No such project.")
    if not membership.can(role):
        raise NotAllowed(f"This needs the project role '{role}' or higher; you are '{membership.role}'.")
    return membership.project, membership


def memberships_for(*, project: Project) -> QuerySet[Membership]:
    """The project's members with their users, admins first, then by username."""
    rank = Case(*(When(role=role, then=Value(-r)) for role, r in ROLE_RANK.items()))
    return project.memberships.select_related("user").order_by(rank, "user__username")


def membership_get(*, project: Project, user_id: int) -> Membership:
    """The project's membership of that user, with the user; NotFound if they are not a member."""
    membership = project.memberships.select_related("user").filter(user_id=user_id).first()
    if membership is None:
        raise NotFound("No such member.")
    return membership


# One answer for an unknown user, an inactive one and an ambiguous e-mail, without echoing what was
# typed: adding a member must not become a way to learn which usernames or addresses exist.
INVITE_REFUSED = "cannot be added: check the username"


def user_find_for_invite(*, identifier: str) -> AbstractBaseUser:
    """The active user to add to a project, named by their username or, failing that, by the
    e-mail address of exactly one active user (Django does not make e-mails unique)."""
    users = get_user_model().objects.filter(is_active=True)
    user = users.filter(username=identifier).first()
    if user is None and "@" in identifier:
        by_email = list(users.filter(email__iexact=identifier)[:2])
        user = by_email[0] if len(by_email) == 1 else None
    if user is None:
        raise DomainError(INVITE_REFUSED, field="username")
    return user


ITEM_STATUS_FILTERS = {
    "done": Q(is_done=True),
    "not_done": Q(is_done=False),
    "labelled": Q(annotation_count__gt=0),
    "unlabelled": Q(annotation_count=0),
}


def items_for(*, project: Project, status: str = "all", external_id: str | None = None, ordering: str = "id") -> QuerySet[Item]:
    """The project's items, filtered by status ("all" or a key of ITEM_STATUS_FILTERS) and
    external id, in `ordering` then id."""
    items = Item.objects.filter(project=project)
    if status in ITEM_STATUS_FILTERS:
        items = items.filter(ITEM_STATUS_FILTERS[status])
    if external_id is not None:
        items = items.filter(external_id=external_id)
    return items.order_by(ordering, "id")


def item_get_for_submit(*, project: Project, item_id: int) -> Item:
    """The item, with only what submitting an annotation reads; NotFound outside the project."""
    item = (Item.objects.select_related("project").only("id", "project", "held_by", "held_until", "is_done")
            .filter(project=project, id=item_id).first())
    if item is None:
        raise NotFound("No such item in this project.")
    return item


def annotations_for(*, project: Project, item_id: int | None = None) -> QuerySet[Annotation]:
    annotations = Annotation.objects.filter(project=project).select_related("annotator", "item__project")
    if item_id is not None:
        annotations = annotations.filter(item_id=item_id)
    return annotations.order_by("id")


def labels_for_screen(*, project: Project) -> list[dict]:
    """The project's labels in their order, as the labelling screen reads them."""
    return list(project.labels.values("key", "name", "color", "shortcut"))


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


_STATUS_CONDITIONS = {
    ItemStatus.DONE: Q(is_done=True),
    ItemStatus.NOT_DONE: Q(is_done=False),
    ItemStatus.LABELLED: Q(annotation_count__gt=0),
    ItemStatus.UNLABELLED: Q(annotation_count=0),
}


def items_with_status(items: QuerySet[Item], *, status: str) -> QuerySet[Item]:
    """`items` narrowed to those `status` keeps (ItemStatus.ALL: all of them)."""
    condition = _STATUS_CONDITIONS.get(status)
    return items if condition is None else items.filter(condition)


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


def items_open_to_similar_labelling(items: QuerySet[Item], *, user: AbstractBaseUser) -> QuerySet[Item]:
    """`items` narrowed to those "label similar" may label in bulk for this expert: no label yet,
    not done, not skipped by them, and neither in the evaluation set (its labels are the unbiased
    yardstick of every model, so each is chosen by an expert looking at that item, never inferred
    from a neighbour) nor under review (a review is settled by an expert's own look at the
    disputed item), nor mid-import."""
    return items.filter(annotation_count=0, is_done=False, is_eval=False, needs_review=False, import_id__isnull=True).exclude(
        Exists(Annotation.objects.filter(item=OuterRef("pk"), annotator=user))
    )
