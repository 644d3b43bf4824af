"""Annotator quality figures on a small hand-built project, every number worked out by hand.

Labels: A = card_arrival, B = exchange_rate, C = lost_card. Three annotators (expert, expert2 and
owner) on a project that wants three labels per item:

    item  expert                      expert2          owner                      others      majority
    i1    A (suggested A, 2 s)        A (4 s)          B (suggested A, 6 s)                   A
    i2    A (suggested A, 10 s)       C (1 s)          C (suggested C, 3 s)                   C
    i3    B (suggested A, 3 s)        B (5 s)          -                          A (feedback) B
    i4    A (suggested A, no time)    -                -                                      (not shared)
    i5    -                           skipped (7 s)    -
"""
import pytest

from labeller.models import Annotation, AnnotationSource, Item
from labeller.selectors import annotator_quality
from labeller.services import annotation_submit

pytestmark = pytest.mark.django_db

A, B, C = "card_arrival", "exchange_rate", "lost_card"


@pytest.fixture
def quality_project(make_project, add_items, owner, expert, expert2):
    project = make_project(labels_per_item=3)
    i1, i2, i3, i4, i5 = add_items(project, ["i1", "i2", "i3", "i4", "i5"])
    submit = annotation_submit
    submit(item=i1, user=expert, labels=[A], suggested_labels=[A], lead_time=2)
    submit(item=i1, user=expert2, labels=[A], lead_time=4)
    submit(item=i1, user=owner, labels=[B], suggested_labels=[A], lead_time=6)
    submit(item=i2, user=expert, labels=[A], suggested_labels=[A], lead_time=10)
    submit(item=i2, user=expert2, labels=[C], lead_time=1)
    submit(item=i2, user=owner, labels=[C], suggested_labels=[C], lead_time=3)
    submit(item=i3, user=expert, labels=[B], suggested_labels=[A], lead_time=3)
    submit(item=i3, user=expert2, labels=[B], lead_time=5)
    Annotation.objects.create(item=i3, project=project, annotator=None, labels=[A], source=AnnotationSource.FEEDBACK)
    Item.objects.filter(id=i3.id).update(annotation_count=3)
    submit(item=i4, user=expert, labels=[A], suggested_labels=[A])
    submit(item=i5, user=expert2, labels=[], skipped=True, lead_time=7)
    return project


def test_each_annotator_has_counts_lead_time_and_agreement(quality_project):
    rows = {r["username"]: r for r in annotator_quality(project=quality_project)["annotators"]}
    assert list(rows) == ["expert", "expert2", "owner"]
    assert {k: rows["expert"][k] for k in ("labelled", "skipped", "median_lead_time", "shared_items",
                                           "agreement_with_majority", "pairs", "agreement_with_others")} == {
        "labelled": 4, "skipped": 0, "median_lead_time": 3, "shared_items": 3,
        "agreement_with_majority": 0.667, "pairs": 5, "agreement_with_others": 0.4}
    expert2 = rows["expert2"]
    assert (expert2["labelled"], expert2["skipped"], expert2["median_lead_time"]) == (3, 1, 4)
    assert (expert2["agreement_with_majority"], expert2["agreement_with_others"]) == (1.0, 0.6)
    owner = rows["owner"]
    assert (owner["labelled"], owner["median_lead_time"], owner["shared_items"]) == (2, 4.5, 2)
    assert (owner["agreement_with_majority"], owner["pairs"], owner["agreement_with_others"]) == (0.5, 4, 0.25)


def test_accepted_suggestions_and_how_often_the_majority_overturned_them(quality_project):
    rows = {r["username"]: r for r in annotator_quality(project=quality_project)["annotators"]}
    keys = ("with_suggestion", "accepted", "acceptance_rate", "accepted_shared", "overturned", "overturned_rate",
            "chosen_shared", "overruled", "overruled_rate")
    assert [rows["expert"][k] for k in keys] == [4, 3, 0.75, 2, 1, 0.5, 1, 0, 0.0]
    assert [rows["owner"][k] for k in keys] == [2, 1, 0.5, 1, 0, 0.0, 1, 1, 1.0]
    assert [rows["expert2"][k] for k in keys] == [0, 0, None, 0, 0, None, 0, 0, None]


def test_pairwise_agreement_counts_the_items_each_pair_shared(quality_project):
    pairs = {(p["annotator"], p["other"]): (p["items"], p["agreement"])
             for p in annotator_quality(project=quality_project)["pairwise"]}
    assert pairs == {
        ("expert", "expert2"): (3, 0.667), ("expert", "owner"): (2, 0.0),
        ("expert2", "expert"): (3, 0.667), ("expert2", "owner"): (2, 0.5),
        ("owner", "expert"): (2, 0.0), ("owner", "expert2"): (2, 0.5),
    }


def test_a_project_without_annotations_has_no_annotator_rows(project):
    # "estimate" (which rule resolved the labels) is new with the consensus estimator.
    assert annotator_quality(project=project) == {
        "annotators": [], "pairwise": [],
        "estimate": {"method": "majority", "computed_at": None, "items_fitted": 0}}


def test_multi_label_answers_compare_as_sets_under_the_multi_label_majority(make_project, add_items, expert, expert2):
    project = make_project(name="Multi", task_type="multi_label", labels_per_item=2)
    i1, i2 = add_items(project, ["i1", "i2"])
    annotation_submit(item=i1, user=expert, labels=[A, B], suggested_labels=[B, A])
    annotation_submit(item=i1, user=expert2, labels=[A])  # majority: A alone (B has one vote of two)
    annotation_submit(item=i2, user=expert, labels=[C, B])
    annotation_submit(item=i2, user=expert2, labels=[B, C])
    rows = {r["username"]: r for r in annotator_quality(project=project)["annotators"]}
    assert (rows["expert"]["agreement_with_majority"], rows["expert"]["agreement_with_others"]) == (0.5, 0.5)
    assert (rows["expert"]["accepted"], rows["expert"]["overturned"]) == (1, 1)
    assert rows["expert2"]["agreement_with_majority"] == 1.0
