"""Label similar: the chosen neighbours become the expert's annotations with their provenance, in one
transaction; items labelled, held, under review or in the evaluation set meanwhile are skipped; each
new label counts towards the next refresh, like a submit."""
from datetime import timedelta

import pytest
from django.utils import timezone

from core.errors import DomainError
from labeller.models import ActiveLearningState, Annotation, AnnotationSource, Item
from labeller.services import annotation_submit, annotations_label_similar

pytestmark = pytest.mark.django_db


@pytest.fixture
def items(project, add_items):
    return add_items(project, [f"item {i}" for i in range(8)])


def label_similar(project, user, source, targets, labels=("lost_card",)):
    return annotations_label_similar(project=project, user=user, source_item=source,
                                     item_ids=[t.id for t in targets], labels=list(labels))


def test_each_item_gets_the_experts_label_with_where_it_came_from(project, items, expert):
    done = label_similar(project, expert, items[0], items[1:4])
    assert done.labelled == [i.id for i in items[1:4]] and done.skipped == []
    for annotation in Annotation.objects.filter(item__in=items[1:4]):
        assert annotation.annotator == expert and annotation.labels == ["lost_card"]
        assert annotation.source == AnnotationSource.SIMILAR and annotation.labelled_from_id == items[0].id
        assert annotation.suggested_labels is None and annotation.suggestion_accepted is None
    assert set(Item.objects.filter(id__in=done.labelled).values_list("annotation_count", "is_done")) == {(1, True)}


def test_the_data_manager_columns_follow_the_new_labels(project, items, expert):
    label_similar(project, expert, items[0], items[1:3])
    majority_of = dict(Item.objects.filter(project=project).values_list("id", "majority"))
    expected = Item.objects.get(id=items[1].id)
    annotation_submit(item=items[7], user=expert, labels=["lost_card"])  # the same label, by submit
    assert majority_of[items[1].id] == majority_of[items[2].id] == Item.objects.get(id=items[7].id).majority != ""
    assert expected.agreement == Item.objects.get(id=items[7].id).agreement and expected.labelled_at is not None


def test_an_item_that_needs_two_labels_is_not_done_after_one(make_project, add_items, expert):
    project = make_project(name="Two", labels_per_item=2)
    source, target = add_items(project, ["a", "b"])
    label_similar(project, expert, source, [target])
    assert Item.objects.filter(id=target.id, annotation_count=1, is_done=False).exists()


def test_it_skips_labelled_evaluation_review_held_and_foreign_items(project, items, expert, expert2, make_project, add_items):
    annotation_submit(item=items[1], user=expert2, labels=["card_arrival"])
    annotation_submit(item=items[7], user=expert, labels=[], skipped=True)  # still unlabelled, but not for them
    Item.objects.filter(id=items[2].id).update(is_eval=True)
    Item.objects.filter(id=items[3].id).update(needs_review=True)
    Item.objects.filter(id=items[4].id).update(held_by=expert2, held_until=timezone.now() + timedelta(minutes=5))
    Item.objects.filter(id=items[5].id).update(held_by=expert2, held_until=timezone.now() - timedelta(minutes=5))
    (foreign,) = add_items(make_project(name="Other"), ["foreign"])
    done = label_similar(project, expert, items[0], [*items[1:8], foreign, items[0]])
    assert done.labelled == [items[5].id, items[6].id]  # an expired hold is no hold
    assert set(done.skipped) == {items[1].id, items[2].id, items[3].id, items[4].id, items[7].id, foreign.id}
    assert not Annotation.objects.filter(item__in=[items[2], items[3], items[4], foreign, items[0]]).exists()
    assert Annotation.objects.get(item=items[1]).labels == ["card_arrival"]


def test_each_new_label_counts_towards_the_next_refresh(project, items, expert):
    label_similar(project, expert, items[0], items[1:4])
    assert ActiveLearningState.objects.get(project=project).labels_since_refresh == 3


def test_unknown_labels_and_a_source_item_of_another_project_are_refused(project, items, expert, make_project, add_items):
    with pytest.raises(DomainError, match="nope"):
        label_similar(project, expert, items[0], items[1:3], labels=["nope"])
    (foreign,) = add_items(make_project(name="Other"), ["foreign"])
    with pytest.raises(DomainError, match="not in this project"):
        label_similar(project, expert, foreign, items[1:3])
    assert not Annotation.objects.exists()


def test_an_expert_who_then_labels_the_item_itself_makes_it_their_own_label(project, items, expert):
    label_similar(project, expert, items[0], items[1:2])
    annotation_submit(item=items[1], user=expert, labels=["card_arrival"])
    annotation = Annotation.objects.get(item=items[1])
    assert (annotation.source, annotation.labels, annotation.labelled_from_id) == (
        AnnotationSource.EXPERT, ["card_arrival"], items[0].id)
    assert Item.objects.get(id=items[1].id).annotation_count == 1
