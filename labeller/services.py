"""Writes of the labelling application: projects, members, the expert queue and annotations."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from core.errors import Conflict, DomainError

from . import selectors
from .consensus import Resolver, consensus_summary
from .models import ActiveLearningState, Annotation, AnnotationSource, Item, Label, Membership, Project, Role, TaskType, label_keys_cell
from .signals import annotation_recorded, labels_recorded
from .suggestion_holdout import is_withheld, suggested_value
from .suggestions import suggestion_for_item
from .task_types import InvalidValue, task_type_for

# An expert holds the item on screen plus one fetched ahead, so submitting feels instant.
MAX_HELD_PER_EXPERT = 2


class QueueConflict(Conflict):
    """The item cannot take this expert's annotation now (held by another, already complete)."""


class LastAdmin(Conflict):
    """The change would leave the project without an admin."""


class InvalidLabels(DomainError):
    """Label keys that the project does not have, or the wrong number for its task type."""


@transaction.atomic
def project_create(*, user: AbstractBaseUser, labels: list[dict], **fields) -> Project:
    _refuse_out_of_scope_label(fields.get("out_of_scope_label", ""), fields.get("task_type", TaskType.SINGLE_LABEL),
                               [label["key"] for label in labels])
    project = Project.objects.create(created_by=user, **fields)
    Label.objects.bulk_create(Label(project=project, order=i, **label) for i, label in enumerate(labels))
    Membership.objects.create(project=project, user=user, role=Role.ADMIN)
    ActiveLearningState.objects.create(project=project)
    return project


def project_update(*, project: Project, **fields) -> Project:
    """Change the project's settings named in `fields` (already validated)."""
    if fields.get("out_of_scope_label"):
        _refuse_out_of_scope_label(fields["out_of_scope_label"], project.task_type,
                                   list(project.labels.filter(archived=False).values_list("key", flat=True)))
    for name, value in fields.items():
        setattr(project, name, value)
    project.save(update_fields=list(fields) or None)
    return project


def _refuse_out_of_scope_label(key: str, task_type: str, label_keys: list[str]) -> None:
    """The out-of-scope label is one of the project's labels, in a single-label project (a
    multi-label or span answer has no one class meaning "none of the others")."""
    if not key:
        return
    if task_type != TaskType.SINGLE_LABEL:
        raise DomainError("only single-label projects have an out-of-scope label", field="out_of_scope_label")
    if key not in label_keys:
        raise DomainError(f"'{key[:100]}' is not a label of this project", field="out_of_scope_label")


def label_create(*, project: Project, key: str, name: str, **fields) -> Label:
    """Add a label at the end of the project's list; its key and shortcut must be new there."""
    shortcut = fields.get("shortcut")
    _refuse_taken_label(project, key=key, shortcut=shortcut)
    try:
        with transaction.atomic():
            return Label.objects.create(project=project, order=project.labels.count(), key=key, name=name, **fields)
    except IntegrityError:  # created by a concurrent request since the check above: answer as it does
        _refuse_taken_label(project, key=key, shortcut=shortcut)
        raise DomainError(f"shortcut '{shortcut}' is already used", field="shortcut")


def _refuse_taken_label(project: Project, *, key: str, shortcut: str | None, other_than: Label | None = None) -> None:
    labels = project.labels.exclude(id=other_than.id) if other_than else project.labels.all()
    if labels.filter(key=key).exists():
        raise DomainError(f"label '{key}' already exists in this project", field="key")
    # The labelling screen matches shortcuts ignoring case: "A" would answer for "a" too.
    if shortcut and labels.filter(shortcut__iexact=shortcut).exists():
        raise DomainError(f"shortcut '{shortcut}' is already used", field="shortcut")


@transaction.atomic
def label_update(*, label: Label, **fields) -> Label:
    """Change the label's key, name, colour or shortcut (those named in `fields`, already valid).
    The key is what annotations, exports and models hold: it changes only while nothing uses it."""
    key = fields.get("key", label.key)
    if key != label.key and selectors.label_in_use(project=label.project, key=label.key):
        raise Conflict(
            f"label '{label.key}' is used by annotations: its key cannot change (rename it instead)", field="key"
        )
    _refuse_taken_label(label.project, key=key, shortcut=fields.get("shortcut"), other_than=label)
    for name, value in fields.items():
        setattr(label, name, value)
    try:
        with transaction.atomic():
            label.save(update_fields=list(fields) or None)
    except IntegrityError:  # taken by a concurrent request since the check above: answer as it does
        _refuse_taken_label(label.project, key=key, shortcut=fields.get("shortcut"), other_than=label)
        raise DomainError(f"shortcut '{fields.get('shortcut')}' is already used", field="shortcut")
    return label


def label_archive(*, label: Label, archived: bool = True) -> Label:
    """Retire the label (or bring it back): its annotations and exports keep it, but it is not
    offered for new annotations, and labels_validate refuses it."""
    if label.archived != archived:
        label.archived = archived
        label.save(update_fields=["archived"])
    return label


@transaction.atomic
def label_delete(*, label: Label) -> None:
    """Delete a label nothing uses yet (a typo); a used one is archived instead."""
    if selectors.label_in_use(project=label.project, key=label.key):
        raise Conflict(f"label '{label.key}' is used by annotations: archive it instead of deleting it", field="key")
    label.delete()


@transaction.atomic
def labels_reorder(*, project: Project, keys: list[str]) -> None:
    """Put the project's labels in the order of `keys`, which must name each of them once."""
    labels = {label.key: label for label in project.labels.select_for_update()}
    if sorted(keys) != sorted(labels):
        raise DomainError("must list every label of the project once", field="keys")
    for order, key in enumerate(keys):
        labels[key].order = order
    Label.objects.bulk_update(labels.values(), ["order"])


@transaction.atomic
def membership_set(*, project: Project, user: AbstractBaseUser, role: str) -> Membership:
    """Add `user` to the project or change their role; never demote the last admin."""
    _lock_members(project)
    current = Membership.objects.filter(project=project, user=user).first()
    if current is not None and current.role == Role.ADMIN and role != Role.ADMIN:
        _refuse_last_admin(project)
    membership, _ = Membership.objects.update_or_create(project=project, user=user, defaults={"role": role})
    return membership


@transaction.atomic
def membership_remove(*, project: Project, user: AbstractBaseUser) -> bool:
    """Take `user` out of the project (False if they were not in it), giving back the items they
    hold; their annotations stay. Never removes the last admin."""
    _lock_members(project)
    membership = Membership.objects.filter(project=project, user=user).first()
    if membership is None:
        return False
    if membership.role == Role.ADMIN:
        _refuse_last_admin(project)
    membership.delete()
    Item.objects.filter(project=project, held_by=user).update(held_by=None, held_until=None)
    return True


def _lock_members(project: Project) -> None:
    # Membership changes of one project run one at a time: two admins demoting themselves at once
    # would otherwise each count two admins and leave none. (SQLite's IMMEDIATE transactions
    # serialise writers anyway; on PostgreSQL this row lock does it.)
    Project.objects.select_for_update().filter(id=project.id).values_list("id", flat=True).first()


def _refuse_last_admin(project: Project) -> None:
    if Membership.objects.filter(project=project, role=Role.ADMIN).count() <= 1:
        raise LastAdmin("the project needs at least one admin; make another member admin first", field="role")


def queue_claim_next(*, project: Project, user: AbstractBaseUser, exclude: list[int] | None = None) -> Item | None:
    """Hold and return the most useful item that still needs this expert's label.

    An item the expert already holds (other than those in `exclude`, which the caller has on
    screen) comes back first, so a reload does not lose it, unless an item waits for review: a
    review settles a disagreement product users are waiting on, so it outranks the items held
    for the expert (one of them is given back when the expert holds all they may). Otherwise the
    highest-priority open item that nobody else holds and that this expert has not labelled or
    skipped is claimed. On PostgreSQL concurrent experts skip each other's locked rows; SQLite
    serialises writers.
    """
    now = timezone.now()
    exclude = exclude or []
    held = list(
        Item.objects.filter(project=project, held_by=user, held_until__gt=now, is_done=False)
        .order_by("-needs_review", "held_until")
        .values_list("id", "needs_review")
    )
    mine = [(item_id, review) for item_id, review in held if item_id not in exclude]
    candidates = (
        Item.objects.filter(project=project, is_done=False, import_id__isnull=True)  # not mid-import
        .filter(Q(held_until__isnull=True) | Q(held_until__lte=now))
        .exclude(id__in=exclude)
        .exclude(Exists(Annotation.objects.filter(item=OuterRef("pk"), annotator=user)))
        .order_by("-needs_review", "-priority", "id")
    )
    if mine and (mine[0][1] or not candidates.filter(needs_review=True).exists()):
        return _item_for_screen(mine[0][0], project)
    if len(held) >= MAX_HELD_PER_EXPERT:
        if not mine:
            return None
        queue_release(project=project, user=user, item_ids=[mine[-1][0]])  # the one it would serve last
    held_until = now + timedelta(seconds=project.hold_seconds)
    if connection.vendor == "postgresql":
        # One statement, one round trip: pick (skipping rows other experts are claiming) and hold.
        table = Item._meta.db_table
        pick_sql, pick_params = candidates.values("id")[:1].query.sql_with_params()
        pick_sql += f' FOR UPDATE OF "{table}" SKIP LOCKED'
        fields = ", ".join(f'"{f.column}"' for f in Item._meta.concrete_fields)
        claimed = list(
            Item.objects.raw(
                f'UPDATE "{table}" SET "held_by_id" = %s, "held_until" = %s WHERE "id" = ({pick_sql}) RETURNING {fields}',
                [user.pk, held_until, *pick_params],
            )
        )
        if not claimed:
            return None
        claimed[0].project = project
        return claimed[0]
    with transaction.atomic():
        item_id = candidates.values_list("id", flat=True).first()
        if item_id is None:
            return None
        Item.objects.filter(id=item_id).update(held_by=user, held_until=held_until)
    return _item_for_screen(item_id, project)


def queue_next_with_suggestion(
    *, project: Project, user: AbstractBaseUser, exclude: list[int] | None = None
) -> tuple[Item, dict | None] | None:
    """The item `queue_claim_next` holds for the expert, with the model's suggestion for it."""
    item = queue_claim_next(project=project, user=user, exclude=exclude)
    if item is None:
        return None
    return item, suggestion_for_item(item=item, user=user)


def _item_for_screen(item_id: int, project: Project) -> Item:
    item = Item.objects.get(id=item_id)
    item.project = project
    return item


def queue_release(*, project: Project, user: AbstractBaseUser, item_ids: list[int] | None = None) -> int:
    """Give back held items (the expert left the screen)."""
    held = Item.objects.filter(project=project, held_by=user)
    if item_ids is not None:
        held = held.filter(id__in=item_ids)
    return held.update(held_by=None, held_until=None)


def label_summary(*, project: Project, label_sets: list[list[str]]) -> dict:
    """The data manager's denormalised columns for an item with these submitted label sets."""
    task_type = task_type_for(project)
    majority, agreement = task_type.majority(label_sets)
    return {"majority": label_keys_cell(task_type.label_keys(majority)) if label_sets else "", "agreement": agreement}


def items_label_summary_refresh(*, project: Project, item_ids: list[int]) -> None:
    """Recompute majority and agreement of these items from their submitted annotations (after
    labels were added in bulk, e.g. trusted feedback): the consensus (labeller.consensus)."""
    rows: dict[int, list] = {item_id: [] for item_id in item_ids}
    for item_id, who, source, labels in (Annotation.objects.filter(item_id__in=item_ids, skipped=False).order_by("id")
                                         .values_list("item_id", "annotator_id", "source", "labels")):
        rows[item_id].append((who, source, labels))
    now = timezone.now()
    resolver = Resolver(project)
    Item.objects.bulk_update(
        [Item(id=item_id, labelled_at=now, **consensus_summary(project=project, item_id=item_id, rows=answers,
                                                                resolver=resolver))
         for item_id, answers in rows.items()],
        ["majority", "agreement", "labelled_at"], batch_size=1000)


# Bulk actions of the data manager, on a selection or on everything a filter keeps
# (item_table.items_table_filter). Experts may send items back to the queue or mark them for
# review (both only add work); deleting is for admins (the API and page check the role).

def items_requeue(*, items: QuerySet[Item]) -> int:
    """Send the items back to the expert queue: open again and held by nobody. Their labels
    stay; each still needs a label from an expert who has not labelled it."""
    return items.update(is_done=False, held_by=None, held_until=None)


def items_mark_for_review(*, items: QuerySet[Item]) -> int:
    """Put the items under expert review: open again, served ahead of the queue, until an expert
    labels them (review_settle clears the mark)."""
    return items.update(needs_review=True, is_done=False)


DELETE_BATCH = 2000


def items_delete(*, items: QuerySet[Item]) -> int:
    """Delete the items with their annotations and vectors, a batch per transaction so that other
    writers are never held up for long (SQLite has one write lock). Returns how many."""
    deleted = 0
    ids = items.order_by().values_list("id", flat=True)
    while True:
        with transaction.atomic():
            batch = list(ids[:DELETE_BATCH])
            if not batch:
                return deleted
            Item.objects.filter(id__in=batch).delete()
        deleted += len(batch)


def _item_text(project: Project, item: Item | None) -> str | None:
    text = item.data.get(project.text_field) if item is not None and isinstance(item.data, dict) else None
    return text if isinstance(text, str) else None


def labels_validate(*, project: Project, labels: list, item: Item | None = None) -> list:
    """The labels of a new submission, checked: known to the project, not archived, as many as its
    task type takes. Spans are checked against the `item`'s text (none given: refused)."""
    known = dict(project.labels.values_list("key", "archived"))
    task_type = task_type_for(project)
    try:
        valid = task_type.validate(labels, labels=set(known), text=_item_text(project, item), overlap=project.spans_overlap)
    except InvalidValue as exc:
        raise InvalidLabels(str(exc), field="labels") from None
    archived = [key for key in task_type.label_keys(valid) if known[key]]
    if archived:
        raise InvalidLabels(f"label '{archived[0]}' is archived: it is no longer offered for new labels", field="labels")
    return valid


def suggested_validate(*, project: Project, suggested: list, item: Item) -> list:
    """The model's suggestion as the labelling page showed it (label keys, or spans with their
    confidence and whether each was kept), checked by the project's task type for storage."""
    try:
        return task_type_for(project).suggested_record(suggested, text=_item_text(project, item))
    except InvalidValue as exc:
        raise InvalidLabels(str(exc), field="suggested_labels") from None


def annotation_submit(
    *,
    item: Item,
    user: AbstractBaseUser,
    labels: list[str],
    lead_time: float | None = None,
    skipped: bool = False,
    suggested_labels: list | None = None,
) -> Annotation:
    """Record (or edit) this expert's labels for the item, or a skip, and release their hold.

    A first annotation needs the item to be held by this expert, or free and still open. Editing
    one's own earlier annotation (undo in the labelling screen) is always allowed. Every new label
    counts towards the project's next active-learning refresh.
    """
    project = item.project
    labels = [] if skipped else labels_validate(project=project, labels=labels, item=item)
    if suggested_labels is not None:
        suggested_labels = suggested_validate(project=project, suggested=suggested_labels, item=item)
    task_type = task_type_for(project)
    now = timezone.now()
    with transaction.atomic():
        locked = (
            Item.objects.select_for_update()
            .only("id", "held_by_id", "held_until", "is_done", "needs_review", "majority", "likely_mislabelled",
                  "label_error")
            .get(id=item.id)
        )
        # Read after the lock, in a statement of its own. As a subquery of the locking statement
        # (one round trip fewer) it saw PostgreSQL's snapshot from before the lock wait, so the
        # same label sent twice at once missed the first one's annotation: a duplicate-key 500,
        # or a 409 "already has all the labels" for the expert's own double click.
        annotation = Annotation.objects.filter(item=locked, annotator=user).first()
        if annotation is None:
            held_by_other = locked.held_by_id not in (None, user.pk) and locked.held_until and locked.held_until > now
            if held_by_other:
                raise QueueConflict("held by another expert", field="item")
            if locked.is_done:
                raise QueueConflict("already has all the labels it needs", field="item")
            annotation = Annotation(item=locked, project=project, annotator=user)
        is_new_label = annotation.pk is None and not skipped
        if suggested_labels is not None and annotation.pk is None:
            annotation.suggested_labels = suggested_labels
        elif annotation.pk is None and is_withheld(project=project, item=item, user=user):
            annotation.withheld_suggestion = suggested_value(project=project, suggestion=suggestion_for_item(item=item))
        if annotation.suggested_labels is not None and not skipped:
            # Spans: accepted when every suggested span was kept unchanged and none added.
            annotation.suggestion_accepted = task_type.canonical(annotation.suggested_labels) == task_type.canonical(labels)
        annotation.labels = labels
        annotation.skipped = skipped
        if annotation.source == AnnotationSource.SIMILAR:
            # The expert has now looked at this item itself: its own label, no longer a bulk one
            # (labelled_from stays, as where its first label came from).
            annotation.source = AnnotationSource.EXPERT
        if lead_time is not None:
            annotation.lead_time = (annotation.lead_time or 0.0) + lead_time if annotation.pk else lead_time
        annotation.save()
        answers = list(Annotation.objects.filter(item=locked, skipped=False).order_by("id")
                       .values_list("annotator_id", "source", "labels"))
        count = len(answers)
        changes = {"annotation_count": count, "is_done": count >= project.labels_per_item,
                   **consensus_summary(project=project, item_id=locked.id, rows=answers)}
        if not skipped:
            changes["labelled_at"] = now
        if locked.held_by_id == user.pk:
            changes.update(held_by=None, held_until=None)
        if is_new_label and locked.likely_mislabelled:
            changes.update(label_error_settled(locked, user=user, majority=changes["majority"], at=now))
        Item.objects.filter(id=locked.id).update(**changes)
        locked.is_done = changes["is_done"]
        if not skipped:
            annotation_recorded.send(sender=Annotation, item=locked, annotation=annotation)
    if is_new_label:
        labels_recorded.send(sender=Annotation, project=project)  # after the commit above
    return annotation


def label_error_settled(item: Item, *, user: AbstractBaseUser, majority: str, at) -> dict:
    """The changes that settle a likely label error: another expert's label is the second opinion
    it asked for, so the flag goes, and the verdict keeps who re-reviewed it and whether the
    majority label stayed (kept) or moved (changed)."""
    review = {"by": user.get_username(), "at": at.isoformat(),
              "outcome": "kept" if majority == item.majority else "changed", "majority": majority.split("|")}
    return {"likely_mislabelled": False, "label_error": {**(item.label_error or {}), "re_reviewed": review}}


@dataclass
class SimilarLabelled:
    labelled: list[int]  # item ids labelled now
    skipped: list[int]  # asked for, but labelled meanwhile, held by another expert, or not open to it


class WholeItemLabelsOnly(Conflict):
    """The action copies a whole item's labels, which a span project's items do not have."""


def label_similar_check(*, project: Project) -> None:
    """Refuse labelling neighbours in bulk in a span project: its labels are spans at offsets in
    one text, which mean nothing in another text (finding similar items still works: it reads
    sentence vectors)."""
    if project.task_type == TaskType.SPANS:
        raise WholeItemLabelsOnly(
            "label similar copies a whole item's labels to its neighbours; a span project's labels are "
            "spans inside one text, which do not carry over to another: label each item on the labelling screen",
            field="labels")


def annotations_label_similar(
    *, project: Project, user: AbstractBaseUser, source_item: Item, item_ids: list[int], labels: list[str]
) -> SimilarLabelled:
    """Label the chosen neighbours of `source_item` with `labels` in one step, as this expert's
    annotations with their provenance (source "similar", `labelled_from`). All or nothing; items
    that another expert holds, that this expert skipped, or that stopped being open to it (selectors.items_open_to_similar_
    labelling) since the list was shown, are skipped and reported. No suggestion was shown for
    them, so `suggested_labels` and `suggestion_accepted` stay null. Like submit, each new label
    counts towards the next refresh (labels_recorded, after commit); `annotation_recorded` is not
    sent because items under review are never labelled this way."""
    label_similar_check(project=project)
    labels = labels_validate(project=project, labels=labels)
    if source_item.project_id != project.id:
        raise DomainError("the item to label from is not in this project", field="item")
    wanted = sorted(set(item_ids) - {source_item.id})
    now = timezone.now()
    with transaction.atomic():
        open_items = selectors.items_open_to_similar_labelling(Item.objects.filter(project=project, id__in=wanted), user=user)
        free = open_items.filter(Q(held_by__isnull=True) | Q(held_by=user) | Q(held_until__isnull=True) | Q(held_until__lte=now))
        # Lock them: a concurrent submit or bulk labelling of the same item waits, then skips it.
        chosen = list(free.select_for_update().order_by("id").values_list("id", flat=True))
        # Re-check after the lock: an item labelled by the submit we waited for is no longer open.
        chosen = list(selectors.items_open_to_similar_labelling(Item.objects.filter(id__in=chosen), user=user).values_list("id", flat=True))
        Annotation.objects.bulk_create(
            Annotation(item_id=item_id, project=project, annotator=user, labels=labels, source=AnnotationSource.SIMILAR,
                       labelled_from=source_item)
            for item_id in chosen
        )
        # Their only label is this one: the data manager's majority and agreement columns follow it.
        Item.objects.filter(id__in=chosen).update(annotation_count=1, is_done=project.labels_per_item <= 1,
                                                  held_by=None, held_until=None, labelled_at=now,
                                                  **label_summary(project=project, label_sets=[labels]))
    for _ in chosen:  # after the commit above, one per new label, as submit does
        labels_recorded.send(sender=Annotation, project=project)
    return SimilarLabelled(labelled=chosen, skipped=[i for i in wanted if i not in set(chosen)])
