"""The warm-up (issue 18): a new single-label project is served the most typical item of each
cluster no label covers yet until it has a label per class, then its strategy (margin)."""
import numpy as np
import pytest

from active_learning import refresh
from labeller.models import ActiveLearningState, Item, Project, Role
from labeller.services import annotation_submit, membership_set, queue_claim_next
from ml import strategies
from tests.helpers import expected_refresh_head

from .test_active_learning import store_vectors

pytestmark = pytest.mark.django_db
CLASSES = [f"intent_{c}" for c in range(10)]


@pytest.fixture
def ten_clusters(client_for, owner, expert, add_items):
    """A project made through the API with 10 classes, and 10 items around each of 10 axes."""
    body = {"name": "Warm-up", "labels": [{"key": k, "name": k} for k in CLASSES], "eval_share": 0, "diversity": False}
    created = client_for(owner).post("/api/projects/", body, format="json")
    assert created.status_code == 201 and created.json()["warm_up"] is True  # the default
    project = Project.objects.get(id=created.json()["id"])
    membership_set(project=project, user=expert, role=Role.EXPERT)
    rng = np.random.default_rng(4)
    vectors = np.vstack([np.eye(16)[c] * 4 + rng.normal(scale=0.05, size=(10, 16)) for c in range(10)])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    items = add_items(project, [f"item {i}" for i in range(100)])
    store_vectors(project, items, vectors)
    return project, items


def cluster_of(project, item_id):
    return (item_id - Item.objects.filter(project=project).order_by("id").first().id) // 10


def head_of_queue(project, n):
    return list(Item.objects.filter(project=project, is_done=False).order_by("-priority", "id").values_list("id", flat=True)[:n])


def test_a_new_project_is_served_a_representative_of_each_uncovered_cluster_then_margin(ten_clusters, expert):
    project, items = ten_clusters
    annotation_submit(item=items[0], user=expert, labels=[CLASSES[0]])  # clusters 0 and 1 hold a label
    annotation_submit(item=items[10], user=expert, labels=[CLASSES[1]])
    report = refresh.refresh_run(project=project)
    assert report.cold_start and report.labelled == 2  # 2 labels of 10 classes: the warm-up
    top = head_of_queue(project, 8)
    assert sorted(cluster_of(project, i) for i in top) == list(range(2, 10))
    assert ActiveLearningState.objects.get(project=project).head is not None  # suggestions still come from a head

    for _ in range(8):  # the expert takes the queue's head: one item of each cluster not labelled yet
        item = queue_claim_next(project=project, user=expert)
        annotation_submit(item=item, user=expert, labels=[CLASSES[cluster_of(project, item.id)]])
    report = refresh.refresh_run(project=project)
    assert report.labelled == 10 and not report.cold_start  # a label per class: margin from here on
    _, labels_alone = expected_refresh_head(project, ActiveLearningState.objects.get(project=project).encoder_version)
    pool_ids, vectors = refresh.stored_vectors(project, "test-encoder", Item.objects.filter(
        project=project, is_done=False).order_by("id").values_list("id", flat=True))
    margin = strategies.uncertainty(labels_alone.predict_proba(vectors), strategies.MARGIN)
    assert head_of_queue(project, 90) == pool_ids[np.argsort(-margin, kind="stable")].tolist()


def test_with_the_warm_up_off_two_labels_are_enough_for_margin(ten_clusters, client_for, owner, expert):
    project, items = ten_clusters
    answer = client_for(owner).patch(f"/api/projects/{project.id}/", {"warm_up": False}, format="json")
    assert answer.status_code == 200 and answer.json()["warm_up"] is False
    annotation_submit(item=items[0], user=expert, labels=[CLASSES[0]])
    annotation_submit(item=items[10], user=expert, labels=[CLASSES[1]])
    project.refresh_from_db()
    assert not refresh.refresh_run(project=project).cold_start


def test_a_warm_up_that_is_no_boolean_is_refused_naming_the_field(ten_clusters, client_for, owner):
    project, _ = ten_clusters
    answer = client_for(owner).patch(f"/api/projects/{project.id}/", {"warm_up": "sometimes"}, format="json")
    assert answer.status_code == 400 and list(answer.json()) == ["warm_up"]
    created = client_for(owner).post("/api/projects/", {"name": "x", "labels": [{"key": "a", "name": "a"}],
                                                         "warm_up": [1]}, format="json")
    assert created.status_code == 400 and list(created.json()) == ["warm_up"]


def test_an_outsider_cannot_turn_the_warm_up_off(ten_clusters, client_for, outsider):
    project, _ = ten_clusters
    answer = client_for(outsider).patch(f"/api/projects/{project.id}/", {"warm_up": False}, format="json")
    assert answer.status_code == 404
    project.refresh_from_db()
    assert project.warm_up is True


def test_multi_label_projects_keep_the_cold_start_and_then_their_strategy(make_project, add_items, expert):
    project = make_project(task_type="multi_label", eval_share=0)
    rng = np.random.default_rng(2)
    vectors = np.vstack([np.eye(8)[c] * 4 + rng.normal(scale=0.05, size=(10, 8)) for c in range(3)])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    items = add_items(project, [f"item {i}" for i in range(30)])
    store_vectors(project, items, vectors)
    assert not refresh.warming_up(project, labelled=0, n_classes=3)
    assert refresh.refresh_run(project=project).cold_start  # the cold start: no labels, no head


def test_the_project_page_says_the_queue_starts_with_the_warm_up_while_it_is_on(client, owner, ten_clusters):
    project, _ = ten_clusters
    client.force_login(owner)
    assert "after a warm-up of one typical item per cluster" in client.get(f"/projects/{project.id}/").content.decode()
    Project.objects.filter(id=project.id).update(warm_up=False)
    assert "after a warm-up" not in client.get(f"/projects/{project.id}/").content.decode()
