"""Each item's consensus label and each annotator's estimated accuracy (labeller.consensus): where
items carry two or more labels, a reliable expert outweighs annotators who are often wrong, and
exports, training, the data manager and the annotator page all read the same consensus."""
import json

import numpy as np
import pytest

from active_learning.pool import training_labels
from labeller.consensus import Resolver, consensus_refresh, consensus_refresh_claim, labels_resolved
from labeller.models import Annotation, Item, LabelReliability
from labeller.services import annotation_submit, items_label_summary_refresh
from labeller.task_types import task_type_for
from models_registry.snapshots import snapshot_examples

pytestmark = pytest.mark.django_db
LABEL_KEYS = ["card_arrival", "exchange_rate", "lost_card"]


@pytest.fixture
def crowd(make_user):
    """Three careful experts and two careless annotators who always answer card_arrival."""
    return {name: make_user(name) for name in ("good1", "good2", "good3", "bad1", "bad2")}


def label(project, item, answers: dict, *, done: bool = True) -> None:
    Annotation.objects.bulk_create(Annotation(item=item, project=project, annotator=user, labels=[key])
                                   for user, key in answers.items())
    Item.objects.filter(id=item.id).update(annotation_count=len(answers), is_done=done)


@pytest.fixture
def crowded(make_project, add_items, crowd):
    """30 items the three experts agree on (one careless annotator beside them), then 12 items
    where one expert faces both careless annotators: there the plain majority is card_arrival
    and wrong. Returns (project, {item id: the true label}, the 12 contested items)."""
    project = make_project(labels_per_item=3)
    items = add_items(project, [f"text {i}" for i in range(42)])
    truth = {}
    for i, item in enumerate(items[:30]):
        truth[item.id] = LABEL_KEYS[i % 3]
        label(project, item, {crowd["good1"]: truth[item.id], crowd["good2"]: truth[item.id],
                              crowd["good3"]: truth[item.id], crowd["bad1"]: "card_arrival"})
    for i, item in enumerate(items[30:]):
        truth[item.id] = LABEL_KEYS[1 + i % 2]
        label(project, item, {crowd["good1"]: truth[item.id], crowd["bad1"]: "card_arrival",
                              crowd["bad2"]: "card_arrival"})
    items_label_summary_refresh(project=project, item_ids=[i.id for i in items])
    return project, truth, items[30:]


def test_before_any_fit_the_plain_majority_rule_resolves_the_labels(crowded):
    project, truth, contested = crowded
    assert Resolver(project).method == "majority"
    resolved = labels_resolved(project=project)
    assert all(resolved[item.id] == ["card_arrival"] for item in contested)
    assert Item.objects.get(id=contested[0].id).majority == "card_arrival"


def test_a_reliable_expert_outweighs_two_annotators_who_always_give_the_same_label(crowded, crowd):
    project, truth, contested = crowded
    estimate = consensus_refresh(project=project)
    assert estimate.method == "dawid_skene" and estimate.items_fitted == 42
    resolved = labels_resolved(project=project)
    assert all(resolved[item_id] == [key] for item_id, key in truth.items())
    # Plain majority would have said card_arrival on every contested item.
    majority = task_type_for(project).majority
    assert all(majority([["card_arrival"], ["card_arrival"], [truth[i.id]]])[0] == ["card_arrival"] for i in contested)
    item = Item.objects.get(id=contested[0].id)  # the data manager's column follows the consensus
    assert item.majority == truth[item.id] and item.agreement == pytest.approx(1 / 3)


def test_the_estimate_gives_each_annotator_an_accuracy_and_the_items_it_rests_on(crowded, crowd):
    project, _, _ = crowded
    estimate = consensus_refresh(project=project)
    accuracy = {key: value["accuracy"] for key, value in estimate.annotators.items()}
    shared = {key: value["shared"] for key, value in estimate.annotators.items()}
    who = {name: f"user:{user.id}" for name, user in crowd.items()}
    assert accuracy[who["good1"]] > 0.95 and accuracy[who["good3"]] > 0.95
    assert accuracy[who["bad1"]] < 0.4 and accuracy[who["bad2"]] < 0.1
    assert shared == {who["good1"]: 42, who["good2"]: 30, who["good3"]: 30, who["bad1"]: 42, who["bad2"]: 12}


def test_a_label_given_after_the_fit_is_weighed_by_its_annotators_estimated_accuracy(crowded, crowd, add_items):
    project, _, _ = crowded
    consensus_refresh(project=project)
    fresh = Item.objects.create(project=project, data={"text": "a new text"})
    fresh.project = project
    # bad1 and bad2 say card_arrival, good2 (never beside them on a 1-vs-2 item) says lost_card.
    label(project, fresh, {crowd["bad1"]: "card_arrival", crowd["bad2"]: "card_arrival", crowd["good2"]: "lost_card"})
    items_label_summary_refresh(project=project, item_ids=[fresh.id])
    assert labels_resolved(project=project)[fresh.id] == ["lost_card"]
    assert Item.objects.get(id=fresh.id).majority == "lost_card"


def test_an_experts_submitted_label_updates_the_data_managers_majority_with_the_consensus(crowded, crowd, add_items,
                                                                                          make_project):
    project, _, _ = crowded
    consensus_refresh(project=project)
    fresh = Item.objects.create(project=project, data={"text": "one more"})
    fresh.project = project
    label(project, fresh, {crowd["bad1"]: "card_arrival", crowd["bad2"]: "card_arrival"}, done=False)
    annotation_submit(item=Item.objects.get(id=fresh.id), user=crowd["good3"], labels=["exchange_rate"])
    item = Item.objects.get(id=fresh.id)
    assert item.majority == "exchange_rate" and item.agreement == pytest.approx(1 / 3)


def test_exports_write_the_consensus_with_its_confidence(crowded, owner, client_for, eager_celery,
                                                         django_capture_on_commit_callbacks):
    from labeller.tests.test_export import export

    project, truth, contested = crowded
    consensus_refresh(project=project)
    rows = {r["id"]: r for r in map(json.loads, export(client_for(owner), project, django_capture_on_commit_callbacks,
                                                       format="jsonl").splitlines())}
    row = rows[contested[0].id]
    assert row["majority"] == [truth[contested[0].id]] and row["agreement"] == pytest.approx(1 / 3)
    assert row["consensus_confidence"] > 0.9
    csv_text = export(client_for(owner), project, django_capture_on_commit_callbacks, format="csv")
    assert f"{contested[0].id},ext-30,text 30,{truth[contested[0].id]},0.333" in csv_text


def test_training_snapshots_and_the_refresh_train_on_the_consensus(crowded):
    project, truth, contested = crowded
    consensus_refresh(project=project)
    examples = {e.item: e.labels for e in snapshot_examples(project=project)}
    assert all(examples[item_id] == [key] for item_id, key in truth.items())
    assert training_labels(project)[contested[1].id] == [truth[contested[1].id]]


def test_the_models_out_of_sample_probabilities_are_each_items_prior(crowded, crowd):
    project, truth, contested = crowded
    split = Item.objects.create(project=project, data={"text": "two experts disagree"})
    label(project, split, {crowd["good1"]: "exchange_rate", crowd["good2"]: "lost_card"})
    for sure_of, index in (("lost_card", 2), ("exchange_rate", 1)):
        p = np.full(3, 0.05)
        p[index] = 0.9
        estimate = consensus_refresh(project=project, prior={split.id: p}, prior_classes=LABEL_KEYS)
        assert estimate.method == "dawid_skene_model_prior"
        # Two equally reliable experts disagree: the model's view of the item settles it.
        assert labels_resolved(project=project)[split.id] == [sure_of]
        assert Item.objects.get(id=split.id).majority == sure_of
    assert labels_resolved(project=project)[contested[1].id] == [truth[contested[1].id]]


def test_multi_label_and_span_projects_keep_the_majority_rule(make_project):
    multi = make_project(name="Multi", task_type="multi_label")
    assert consensus_refresh(project=multi) is None
    assert Resolver(multi).method == "majority"


def test_a_refit_is_due_after_enough_new_labels_and_is_claimed_once(crowded):
    project, _, _ = crowded
    assert consensus_refresh_claim(project=project, every=200) is False  # 156 labels since: not yet 200
    assert consensus_refresh_claim(project=project, every=100) is True
    assert LabelReliability.for_project(project).labels_at == Annotation.objects.filter(project=project).count()
    assert consensus_refresh_claim(project=project, every=100) is False  # claimed: nothing new since
