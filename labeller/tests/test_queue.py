"""The expert queue: most useful open item first, held for one expert at a time."""
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from labeller.models import Item
from labeller.services import QueueConflict, annotation_submit, queue_claim_next, queue_release

pytestmark = pytest.mark.django_db


def test_it_serves_items_in_import_order_until_priorities_are_set(project, expert, add_items):
    first, second, _ = add_items(project, ["one", "two", "three"])
    assert queue_claim_next(project=project, user=expert) == first
    annotation_submit(item=first, user=expert, labels=["card_arrival"])
    assert queue_claim_next(project=project, user=expert) == second


def test_it_serves_the_highest_priority_first(project, expert, add_items):
    low, high, _ = add_items(project, ["low", "high", "zero"])
    Item.objects.filter(id=low.id).update(priority=0.2)
    Item.objects.filter(id=high.id).update(priority=0.9)
    assert queue_claim_next(project=project, user=expert) == high


def test_two_experts_never_hold_the_same_item(project, expert, expert2, add_items):
    add_items(project, ["one", "two"])
    a = queue_claim_next(project=project, user=expert)
    b = queue_claim_next(project=project, user=expert2)
    assert a != b
    assert Item.objects.get(id=a.id).held_by == expert and Item.objects.get(id=b.id).held_by == expert2


def test_asking_again_returns_the_item_already_held(project, expert, add_items):
    add_items(project, ["one", "two"])
    assert queue_claim_next(project=project, user=expert) == queue_claim_next(project=project, user=expert)


def test_an_expert_holds_at_most_the_item_on_screen_and_one_ahead(project, expert, add_items):
    first, second, third = add_items(project, ["one", "two", "three"])
    assert queue_claim_next(project=project, user=expert) == first
    assert queue_claim_next(project=project, user=expert, exclude=[first.id]) == second
    assert queue_claim_next(project=project, user=expert, exclude=[first.id, second.id]) is None
    assert Item.objects.filter(held_by=expert).count() == 2


def test_an_expired_hold_is_released(project, expert, expert2, add_items):
    (only,) = add_items(project, ["one"])
    queue_claim_next(project=project, user=expert)
    assert queue_claim_next(project=project, user=expert2) is None
    Item.objects.filter(id=only.id).update(held_until=timezone.now() - timedelta(seconds=1))
    assert queue_claim_next(project=project, user=expert2) == only


def test_the_hold_lasts_the_projects_hold_time(make_project, expert, add_items):
    project = make_project(hold_seconds=120)
    add_items(project, ["one"])
    item = queue_claim_next(project=project, user=expert)
    remaining = (Item.objects.get(id=item.id).held_until - timezone.now()).total_seconds()
    assert 110 < remaining <= 120


def test_submit_releases_the_hold_and_completes_the_item(project, expert, add_items):
    (item,) = add_items(project, ["one"])
    queue_claim_next(project=project, user=expert)
    annotation_submit(item=item, user=expert, labels=["lost_card"], lead_time=3.5)
    item.refresh_from_db()
    assert (item.held_by, item.is_done, item.annotation_count) == (None, True, 1)
    assert queue_claim_next(project=project, user=expert) is None


def test_skip_releases_the_item_to_other_experts_and_not_back_to_the_skipper(project, expert, expert2, add_items):
    (item,) = add_items(project, ["one"])
    queue_claim_next(project=project, user=expert)
    annotation_submit(item=item, user=expert, labels=[], skipped=True)
    assert queue_claim_next(project=project, user=expert) is None
    assert queue_claim_next(project=project, user=expert2) == item


def test_release_gives_held_items_back(project, expert, expert2, add_items):
    (item,) = add_items(project, ["one"])
    queue_claim_next(project=project, user=expert)
    assert queue_release(project=project, user=expert) == 1
    assert queue_claim_next(project=project, user=expert2) == item


def test_an_item_needing_two_labels_goes_to_two_different_experts(make_project, expert, expert2, owner, add_items):
    project = make_project(labels_per_item=2)
    (item,) = add_items(project, ["one"])
    queue_claim_next(project=project, user=expert)
    annotation_submit(item=item, user=expert, labels=["card_arrival"])
    assert queue_claim_next(project=project, user=expert) is None  # not twice by the same expert
    assert queue_claim_next(project=project, user=expert2) == item
    annotation_submit(item=item, user=expert2, labels=["exchange_rate"])
    item.refresh_from_db()
    assert item.is_done and item.annotation_count == 2
    assert queue_claim_next(project=project, user=owner) is None


def test_a_first_label_for_an_item_held_by_another_expert_is_refused(project, expert, expert2, add_items):
    (item,) = add_items(project, ["one"])
    queue_claim_next(project=project, user=expert)
    with pytest.raises(QueueConflict, match="held by another expert"):
        annotation_submit(item=item, user=expert2, labels=["card_arrival"])


def test_a_label_for_a_complete_item_is_refused_but_edits_are_not(project, expert, expert2, add_items):
    (item,) = add_items(project, ["one"])
    annotation_submit(item=item, user=expert, labels=["card_arrival"])
    with pytest.raises(QueueConflict, match="already has all the labels"):
        annotation_submit(item=item, user=expert2, labels=["lost_card"])
    edited = annotation_submit(item=item, user=expert, labels=["lost_card"])
    assert edited.labels == ["lost_card"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_experts_are_never_given_the_same_item(project, make_user, add_items):
    """16 experts claim at once; every claim must be a different item (row locks on PostgreSQL,
    serialised writers on SQLite)."""
    add_items(project, [f"item {i}" for i in range(40)])
    experts = [make_user(f"crowd{i}") for i in range(16)]
    from labeller.services import membership_set

    for user in experts:
        membership_set(project=project, user=user, role="expert")
    claimed, errors = [], []
    barrier = threading.Barrier(len(experts))

    def work(user):
        try:
            barrier.wait()
            for _ in range(2):
                item = queue_claim_next(project=project, user=user, exclude=[c for u, c in claimed if u == user.id])
                if item:
                    claimed.append((user.id, item.id))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(user,)) for user in experts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    item_ids = [item_id for _, item_id in claimed]
    assert len(item_ids) == 32 and len(set(item_ids)) == 32


def test_an_item_waiting_for_review_comes_before_the_items_the_expert_already_holds(project, expert, add_items):
    """After a reload the expert's held items come back, but a review the product flagged
    since outranks them: it settles a disagreement users are waiting on."""
    first, second, review = add_items(project, ["one", "two", "flagged"])
    assert queue_claim_next(project=project, user=expert) == first
    assert queue_claim_next(project=project, user=expert, exclude=[first.id]) == second
    Item.objects.filter(id=review.id).update(needs_review=True)
    assert queue_claim_next(project=project, user=expert) == review
    # the items held before are not lost: they come back once the review is on screen
    assert queue_claim_next(project=project, user=expert, exclude=[review.id]) in (first, second)


def test_a_held_review_comes_back_before_other_held_items(project, expert, add_items):
    first, review = add_items(project, ["one", "flagged"])
    assert queue_claim_next(project=project, user=expert) == first
    Item.objects.filter(id=review.id).update(needs_review=True)
    assert queue_claim_next(project=project, user=expert, exclude=[first.id]) == review
    assert queue_claim_next(project=project, user=expert) == review
