"""Refresh, request collapsing and suggestions, on stored vectors made by hand (no model)."""
import io

import numpy as np
import pytest

from active_learning import refresh

from labeller import suggestions
from labeller.importing import items_import
from labeller.models import ActiveLearningState, Annotation, Item, ItemVector
from labeller.services import annotation_submit, queue_claim_next
from ml.encoder import to_float16_bytes
from ml.heads import LinearHead
from tests.helpers import expected_refresh_head

pytestmark = pytest.mark.django_db
KEYS = ["card_arrival", "exchange_rate", "lost_card"]


def store_vectors(project, items, vectors, version="test-encoder"):
    ActiveLearningState.objects.filter(project=project).update(encoder_version=version)
    ItemVector.objects.bulk_create(
        ItemVector(item=item, project=project, encoder_version=version, vector=blob)
        for item, blob in zip(items, to_float16_bytes(vectors))
    )


@pytest.fixture
def clustered(project, add_items, expert):
    """Three clusters on three axes, 10 items each, plus 5 items halfway between clusters 0 and 1."""
    rng = np.random.default_rng(0)
    vectors = [np.eye(8)[c] * 4 + rng.normal(scale=0.3, size=8) for c in range(3) for _ in range(10)]
    vectors += [(np.eye(8)[0] + np.eye(8)[1]) * 2 + rng.normal(scale=0.1, size=8) for _ in range(5)]
    vectors = np.array(vectors)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    items = add_items(project, [f"item {i}" for i in range(len(vectors))])
    store_vectors(project, items, vectors)
    for cluster in range(3):  # two labelled items per cluster
        for item in items[cluster * 10: cluster * 10 + 2]:
            annotation_submit(item=item, user=expert, labels=[KEYS[cluster]])
    return project, items


def test_the_refresh_serves_the_items_between_clusters_first(clustered, expert2):
    project, items = clustered
    project.diversity = False
    project.eval_share = 0
    project.save()
    report = refresh.refresh_run(project=project)
    assert report.labelled == 6 and report.pool == 29 and not report.cold_start
    first_five = [queue_claim_next(project=project, user=expert2, exclude=[]).id]
    Item.objects.filter(held_by=expert2).update(held_by=None, held_until=None)
    top = list(Item.objects.filter(project=project, is_done=False).order_by("-priority").values_list("id", flat=True)[:5])
    assert set(top) == {item.id for item in items[30:]}
    assert first_five[0] == top[0]


def test_the_refresh_stores_a_suggestion_with_neighbours_for_the_top_of_the_queue(clustered):
    project, items = clustered
    refresh.refresh_run(project=project)
    item = Item.objects.get(id=items[5].id)  # cluster 0, unlabelled
    suggestion = suggestions.suggestion_for_item(item=item)
    assert suggestion["labels"] == ["card_arrival"] and 0 < suggestion["confidence"] <= 1
    assert [t["label"] for t in suggestion["top"]][0] == "card_arrival"
    # Two items of its cluster are labelled: they are its nearest labelled neighbours.
    assert [n["labels"] for n in suggestion["neighbours"][:2]] == [["card_arrival"], ["card_arrival"]]
    assert suggestion["neighbours"][0]["similarity"] > suggestion["neighbours"][2]["similarity"]
    assert suggestion["head_version"] == ActiveLearningState.objects.get(project=project).head_version


def test_suggestions_are_off_when_the_project_says_so(clustered):
    project, items = clustered
    refresh.refresh_run(project=project)
    project.suggestion_mode = "off"
    project.save()
    assert suggestions.suggestion_for_item(item=Item.objects.select_related("project").get(id=items[5].id)) is None


def test_a_project_without_labels_gets_a_cold_start_of_representative_items(project, add_items):
    rng = np.random.default_rng(2)
    vectors = np.vstack([np.eye(8)[c] * 4 + rng.normal(scale=0.3, size=(15, 8)) for c in range(4)])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    items = add_items(project, [f"item {i}" for i in range(60)])
    store_vectors(project, items, vectors)
    project.refresh_every, project.eval_share = 4, 0
    project.save()
    assert refresh.refresh_run(project=project).cold_start
    # The first batch (10 items: at least refresh_every, at least 10) covers every cluster.
    top = Item.objects.filter(project=project).order_by("-priority").values_list("id", flat=True)[:10]
    assert {(item_id - items[0].id) // 15 for item_id in top} == {0, 1, 2, 3}


def test_evaluation_items_are_served_at_their_share_and_never_trained_on(clustered, expert):
    project, items = clustered
    Item.objects.filter(id__in=[i.id for i in items[10:30:2]]).update(is_eval=True)
    project.eval_share = 0.2
    project.save()
    eval_labelled = items[12]
    annotation_submit(item=eval_labelled, user=expert, labels=["card_arrival"])  # deliberately "wrong"
    assert eval_labelled.id not in refresh.training_labels(project)
    refresh.refresh_run(project=project)
    top = list(Item.objects.filter(project=project, is_done=False).order_by("-priority").values_list("is_eval", flat=True)[:10])
    assert sum(top) == 2


def test_the_stored_head_self_trains_on_the_open_pool_but_never_on_evaluation_items(clustered):
    project, items = clustered
    Item.objects.filter(id__in=[i.id for i in items[10:30:2]]).update(is_eval=True)
    refresh.refresh_run(project=project)
    stored = LinearHead.from_bytes(ActiveLearningState.objects.get(project=project).head)
    expected, labels_alone = expected_refresh_head(project, "test-encoder")
    assert np.allclose(stored.coef, expected.coef, atol=1e-3)
    assert not np.allclose(stored.coef, labels_alone.coef, atol=1e-2)


def test_import_marks_about_the_evaluation_share_at_random(project):
    rows = "text\n" + "\n".join(f"query {i}" for i in range(2000)) + "\n"
    items_import(project=project, stream=io.BytesIO(rows.encode()), filename="a.csv")
    share = Item.objects.filter(project=project, is_eval=True).count() / 2000
    assert 0.08 < share < 0.12


def test_a_refresh_is_requested_every_k_new_labels(make_project, add_items, expert):
    project = make_project(refresh_every=3)
    items = add_items(project, [f"item {i}" for i in range(7)])
    requested = []
    for n, item in enumerate(items[:6], start=1):
        annotation_submit(item=item, user=expert, labels=["card_arrival"])
        state = ActiveLearningState.objects.get(project=project)
        requested.append(state.refresh_requested)
        if state.refresh_requested:  # a worker takes it
            assert refresh.refresh_claim(project_id=project.id)
            refresh.refresh_release(project_id=project.id, report=refresh.RefreshReport())
    assert requested == [False, False, True, False, False, True]


def test_skips_and_edits_do_not_count_as_new_labels(make_project, add_items, expert):
    project = make_project(refresh_every=1)
    first, second = add_items(project, ["a", "b"])
    annotation_submit(item=first, user=expert, labels=[], skipped=True)
    assert not ActiveLearningState.objects.get(project=project).refresh_requested


def test_requests_that_pile_up_collapse_into_one_run(project):
    assert refresh.refresh_request(project_id=project.id) is True
    assert refresh.refresh_request(project_id=project.id) is False  # already pending
    assert refresh.refresh_claim(project_id=project.id) is True
    assert refresh.refresh_claim(project_id=project.id) is False  # one at a time
    assert refresh.refresh_request(project_id=project.id) is True  # asked again while running
    assert refresh.refresh_claim(project_id=project.id) is False  # waits for the running one
    refresh.refresh_release(project_id=project.id, report=refresh.RefreshReport())
    assert refresh.refresh_claim(project_id=project.id) is True  # then exactly one follow-up


def test_whether_the_expert_accepted_the_suggestion_is_recorded(project, add_items, expert, expert2):
    first, second = add_items(project, ["a", "b"])
    accepted = annotation_submit(item=first, user=expert, labels=["lost_card"], suggested_labels=["lost_card"])
    rejected = annotation_submit(item=second, user=expert, labels=["card_arrival"], suggested_labels=["lost_card"])
    assert (accepted.suggestion_accepted, rejected.suggestion_accepted) == (True, False)
    assert Annotation.objects.get(id=rejected.id).suggested_labels == ["lost_card"]


def test_the_queue_api_serves_the_suggestion(clustered, client_for, expert2):
    project, items = clustered
    refresh.refresh_run(project=project)
    body = client_for(expert2).post(f"/api/projects/{project.id}/queue/next", {}, format="json").json()
    assert body["suggestion"]["labels"][0] in KEYS
    assert "is_eval" not in body  # experts are not told which items are the evaluation set


def test_the_state_endpoint_reports_progress_and_takes_refresh_requests(client_for, expert, viewer, project):
    assert client_for(viewer).get(f"/api/projects/{project.id}/active-learning").json()["encode_status"] == "idle"
    assert client_for(viewer).post(f"/api/projects/{project.id}/active-learning").status_code == 403
    response = client_for(expert).post(f"/api/projects/{project.id}/active-learning")
    assert response.status_code == 202 and response.json()["refresh_requested"] is True


@pytest.fixture
def cluster_counts(monkeypatch):
    """The real k-means classes, recording how many clusters each fit asked for."""
    import sklearn.cluster

    counts = []

    def recording(cls):
        class Recording(cls):
            def fit(self, *args, **kwargs):
                counts.append(self.n_clusters)
                return super().fit(*args, **kwargs)

        Recording.__name__ = cls.__name__
        return Recording

    monkeypatch.setattr(sklearn.cluster, "KMeans", recording(sklearn.cluster.KMeans))
    monkeypatch.setattr(sklearn.cluster, "MiniBatchKMeans", recording(sklearn.cluster.MiniBatchKMeans))
    return counts


def test_a_project_refreshing_every_10000_labels_clusters_its_pool_into_a_bounded_number(
        make_project, add_items, expert, cluster_counts):
    from ml.strategies import MAX_CLUSTERS

    project = make_project(refresh_every=10000, eval_share=0)
    rng = np.random.default_rng(3)
    n = MAX_CLUSTERS + 300
    vectors = rng.normal(size=(n, 8))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    items = add_items(project, [f"item {i}" for i in range(n)])
    store_vectors(project, items, vectors)
    assert refresh.refresh_run(project=project).cold_start
    for item, key in zip(items[:6], KEYS * 2):
        annotation_submit(item=item, user=expert, labels=[key])
    assert not refresh.refresh_run(project=project).cold_start  # ranked, with the diverse batch
    assert len(cluster_counts) == 2 and max(cluster_counts) <= MAX_CLUSTERS
    assert Item.objects.filter(project=project, is_done=False).exclude(priority=0).count() == n - 6


def test_evaluation_items_never_show_a_suggestion(clustered, client_for, expert2):
    """The evaluation set measures the model against experts who did not see it (issue 17: a
    suggestion would pull their labels towards the model and flatter every version)."""
    project, items = clustered
    eval_items = items[6:30:3]
    Item.objects.filter(id__in=[i.id for i in eval_items]).update(is_eval=True)
    Item.objects.exclude(id__in=[i.id for i in eval_items]).update(is_done=True)  # only evaluation items to serve
    project.eval_share = 1.0
    project.save()
    refresh.refresh_run(project=project)
    assert not Item.objects.filter(id__in=[i.id for i in eval_items]).exclude(suggestion=None).exists()
    for item in Item.objects.select_related("project").filter(id__in=[i.id for i in eval_items]):
        assert suggestions.suggestion_for_item(item=item) is None
    body = client_for(expert2).post(f"/api/projects/{project.id}/queue/next", {}, format="json").json()
    assert body["id"] in {i.id for i in eval_items} and body["suggestion"] is None
