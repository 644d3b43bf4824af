"""Reads of the labelling application, always scoped to what the caller may see."""
from __future__ import annotations

import json
from statistics import median

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Case, Count, Exists, OuterRef, Prefetch, Q, QuerySet, TextField, Value, When
from django.db.models.functions import Cast

from core.errors import DomainError, NotAllowed, NotFound

from .consensus import Resolver, answer_key
from .agreement import AnnotatorAgreement
from .models import ROLE_RANK, Annotation, Item, ItemStatus, Label, Membership, Project, Role
from .shortcuts import shortcuts_assign
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
    """The project's labels in their order, as the labelling screen reads them, each with the
    keys that choose it (its own shortcut, else one the screen assigns; see shortcuts.py);
    archived labels are not offered for new annotations."""
    labels = list(project.labels.filter(archived=False).values("key", "name", "color", "shortcut"))
    for label, keys in zip(labels, shortcuts_assign([label["shortcut"] for label in labels])):
        label["shortcut"] = keys
    return labels


def label_get(*, project: Project, label_id: int) -> Label:
    """One of the project's labels; NotFound for any other id."""
    label = project.labels.filter(id=label_id).first()
    if label is None:
        raise NotFound("no such label in this project", field="label")
    return label


def _annotations_with(project: Project, key: str) -> QuerySet[Annotation]:
    # `labels` is a JSON list of keys, and a key holds no character that JSON escapes, so the key
    # in quotes appears in the stored text exactly when the list holds it. (SQLite has no JSON
    # `contains` lookup; this one query works on both databases.)
    return Annotation.objects.filter(project=project).annotate(
        labels_text=Cast("labels", TextField())
    ).filter(labels_text__contains=f'"{key}"')


def label_in_use(*, project: Project, key: str) -> bool:
    """Whether any annotation of the project (skips aside, they hold no labels) holds the key."""
    return _annotations_with(project, key).exists()


def label_usage(*, project: Project) -> dict[str, int]:
    """How many annotations hold each of the project's labels (a key absent: none), in one pass."""
    counts: dict[str, int] = {}
    for labels in Annotation.objects.filter(project=project, skipped=False).values_list("labels", flat=True).iterator():
        for key in labels:
            counts[key] = counts.get(key, 0) + 1
    return counts


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
    """The project's items with every annotation, skips included, as `item.annotations_all`."""
    annotations = Annotation.objects.select_related("annotator").order_by("id")
    return (
        Item.objects.filter(project=project)
        .order_by("id")
        .prefetch_related(Prefetch("annotations", queryset=annotations, to_attr="annotations_all"))
    )


def items_only_skipped(*, project: Project) -> QuerySet[Item]:
    """Items someone skipped and nobody labelled."""
    return Item.objects.filter(project=project, annotation_count=0, annotations__skipped=True).distinct()


def project_agreement(*, project: Project) -> dict:
    """The task type's agreement over the items labelled by two or more experts: Krippendorff's
    alpha for classification, pairwise span F1 for spans (TaskType.agreement)."""
    overlapping = (
        Item.objects.filter(project=project, annotation_count__gte=2)
        .order_by("id")
        .prefetch_related(Prefetch("annotations", queryset=Annotation.objects.filter(skipped=False), to_attr="submitted"))
    )
    units = [[a.labels for a in item.submitted] for item in overlapping.iterator(chunk_size=2000)]
    figures = task_type_for(project).agreement(units, labels=list(project.labels.values_list("key", flat=True)))
    return {**figures, "items_with_overlap": len(units)}


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def annotator_quality(*, project: Project) -> dict:
    """Per annotator of the project: items labelled and skipped, median lead time, agreement with
    the majority and with the other annotators on the items they shared, how often they accepted
    the model's suggestion and how often an accepted suggestion was later overturned (automation
    bias; definitions in labeller.agreement.AnnotatorAgreement and docs/annotator-quality.md).

    Counts are aggregated in SQL; medians and agreement stream (item id, annotator, labels)
    through Python in two ordered queries, since SQLite has no percentile aggregate and the
    majority rule is the task type's. Linear in the project's annotations."""
    mine = Annotation.objects.filter(project=project, annotator__isnull=False)
    rows = list(
        mine.values("annotator_id", "annotator__username")
        .annotate(
            n_labelled=Count("id", filter=Q(skipped=False)),
            n_skipped=Count("id", filter=Q(skipped=True)),
            n_with_suggestion=Count("id", filter=Q(skipped=False, suggestion_accepted__isnull=False)),
            n_accepted=Count("id", filter=Q(skipped=False, suggestion_accepted=True)),
        )
        .order_by("annotator__username")
    )
    lead_times: dict[int, list[float]] = {}
    for who, seconds in (mine.filter(skipped=False, lead_time__isnull=False).order_by("annotator_id", "lead_time")
                         .values_list("annotator_id", "lead_time").iterator(chunk_size=5000)):
        lead_times.setdefault(who, []).append(seconds)

    task_type = task_type_for(project)
    figures = AnnotatorAgreement(majority=task_type.majority, canonical=task_type.canonical,
                                 pair_score=task_type.pair_agreement)
    # The labels come as their JSON text and each distinct text is decoded once: a project uses
    # few distinct answers, and decoding every row was a third of the time at 100k annotations.
    # "The majority" is the item's consensus (labeller.consensus: Dawid–Skene once the project
    # has a fitted estimate, the task type's rule before), the value exports and training use.
    resolver = Resolver(project, preload=True)
    shared = (Annotation.objects.filter(project=project, skipped=False, item__annotation_count__gte=2)
              .order_by("item_id", "id")
              .values_list("item_id", "annotator_id", "source", Cast("labels", TextField()), "suggestion_accepted"))
    decoded: dict[str, list[str]] = {}
    current, answers, keyed = None, [], []

    def add(item_id):
        if answers:
            figures.add_item(answers, majority=resolver.resolve(keyed, item_id=item_id).labels)

    for item_id, who, source, text, accepted in shared.iterator(chunk_size=5000):
        if item_id != current:
            add(current)
            current, answers, keyed = item_id, [], []
        labels = decoded.get(text)
        if labels is None:
            labels = decoded[text] = json.loads(text)
        answers.append((who, labels, accepted))
        keyed.append((answer_key(who, source), labels))
    add(current)
    estimate = resolver.estimate.annotators if resolver.estimate is not None else {}

    names = {r["annotator_id"]: r["annotator__username"] for r in rows}
    annotators = []
    for r in rows:
        who = r["annotator_id"]
        pairs, pairs_agreeing = figures.with_others(who)
        annotators.append({
            "user_id": who,
            "username": r["annotator__username"],
            "labelled": r["n_labelled"],
            "skipped": r["n_skipped"],
            "median_lead_time": median(lead_times[who]) if who in lead_times else None,
            "shared_items": figures.shared[who],
            "agreement_with_majority": _share(figures.with_majority[who], figures.shared[who]),
            # The consensus estimator's accuracy for them, and its basis: the items with two or
            # more labels they labelled when it was last fitted (None before a fit).
            "estimated_accuracy": estimate.get(f"user:{who}", {}).get("accuracy"),
            "estimate_basis": estimate.get(f"user:{who}", {}).get("shared"),
            "pairs": pairs,
            "agreement_with_others": _share(pairs_agreeing, pairs),
            "with_suggestion": r["n_with_suggestion"],
            "accepted": r["n_accepted"],
            "acceptance_rate": _share(r["n_accepted"], r["n_with_suggestion"]),
            "accepted_shared": figures.accepted_shared[who],
            "overturned": figures.overturned[who],
            "overturned_rate": _share(figures.overturned[who], figures.accepted_shared[who]),
            "chosen_shared": figures.chosen_shared[who],
            "overruled": figures.overruled[who],
            "overruled_rate": _share(figures.overruled[who], figures.chosen_shared[who]),
        })
    pairwise = [{"annotator": names[a], "other": names[b], "items": n,
                 "agreement": _share(figures.pairs_agreeing[a, b], n)}
                for (a, b), n in sorted(figures.pairs.items(), key=lambda kv: (names[kv[0][0]], names[kv[0][1]]))]
    return {"annotators": annotators, "pairwise": pairwise, "estimate": estimate_info(resolver)}


def items_in_project(*, project: Project, item_ids: list[int]) -> QuerySet[Item]:
    """These items, if they are the project's (others are left out), with their project set."""
    return Item.objects.filter(project=project, id__in=item_ids).select_related("project")


def estimate_info(resolver: Resolver) -> dict:
    """Which rule resolved the labels, and when it was fitted on how many shared items."""
    estimate = resolver.estimate
    return {"method": resolver.method, "computed_at": estimate.computed_at if estimate else None,
            "items_fitted": estimate.items_fitted if estimate else 0}


def items_open_to_similar_labelling(items: QuerySet[Item], *, user: AbstractBaseUser) -> QuerySet[Item]:
    """`items` narrowed to those "label similar" may label in bulk for this expert: no label yet,
    not done, not skipped by them, and neither in the evaluation set (its labels are the unbiased
    yardstick of every model, so each is chosen by an expert looking at that item, never inferred
    from a neighbour) nor under review (a review is settled by an expert's own look at the
    disputed item), nor mid-import."""
    return items.filter(annotation_count=0, is_done=False, is_eval=False, needs_review=False, import_id__isnull=True).exclude(
        Exists(Annotation.objects.filter(item=OuterRef("pk"), annotator=user))
    )
