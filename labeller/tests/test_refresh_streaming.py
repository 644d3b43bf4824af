"""The refresh streams the stored vectors a chunk at a time (issue 18): it ranks as the in-memory
computation over the whole pool does, whatever the chunk size, and never scores more than a
chunk at once; priorities are written for the head of the queue, which then serves in order."""
import numpy as np
import pytest

from active_learning import pool, refresh
from labeller.models import ActiveLearningState, Annotation, Item
from labeller.services import queue_claim_next
from ml import strategies
from ml.heads import fit_head

from .test_active_learning import KEYS, store_vectors

pytestmark = pytest.mark.django_db


@pytest.fixture
def labelled_pool(project, add_items, expert):
    """60 items mixed from three centres, every fifth labelled by its strongest centre."""
    rng = np.random.default_rng(3)
    centres = np.eye(8)[:3] * 3
    mix = rng.dirichlet([0.4, 0.4, 0.4], size=60)
    vectors = mix @ centres + rng.normal(scale=0.2, size=(60, 8))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    items = add_items(project, [f"item {i}" for i in range(60)])
    store_vectors(project, items, vectors)
    for i in range(12):
        item = items[i * 5]
        Annotation.objects.create(item=item, project=project, annotator=expert, labels=[KEYS[int(np.argmax(mix[i * 5]))]])
        Item.objects.filter(id=item.id).update(is_done=True, annotation_count=1)
    project.eval_share = 0
    project.refresh_every = 10
    project.save()
    return project, items


def queue(project):
    return list(Item.objects.filter(project=project, is_done=False).order_by("-priority", "id").values_list("id", flat=True))


def in_memory_order(project, seed=0):
    """The order the refresh gave before it streamed: every vector in float32 at once, the head
    fitted on the labels, the whole pool scored and ranked with the diverse batch."""
    version = ActiveLearningState.objects.get(project=project).encoder_version
    ids, vectors = refresh.project_vectors(project, version)
    row = {item_id: r for r, item_id in enumerate(ids.tolist())}
    labelled = refresh.training_labels(project)
    head = fit_head(vectors[[row[i] for i in labelled]], list(labelled.values()), classes=KEYS, seed=seed)
    pool_ids = list(Item.objects.filter(project=project, is_done=False).order_by("id").values_list("id", flat=True))
    pool_vectors = vectors[[row[i] for i in pool_ids]]
    scores = strategies.uncertainty(head.predict_proba(pool_vectors), project.strategy)
    order = strategies.rank_pool(scores, pool_vectors, batch_size=refresh.refresh_batch(project), diverse=True, seed=seed)
    return [pool_ids[i] for i in order]


@pytest.mark.parametrize("chunk_rows", [7, 1000])
def test_the_streamed_refresh_ranks_the_pool_as_the_whole_pool_in_memory_did(labelled_pool, chunk_rows):
    project, _ = labelled_pool
    report = refresh.refresh_run(project=project, chunk_rows=chunk_rows)
    assert report.pool == 48 and report.labelled == 12 and not report.cold_start
    assert queue(project) == in_memory_order(project)


def test_the_streamed_cold_start_picks_the_representatives_the_in_memory_one_did(project, add_items):
    rng = np.random.default_rng(5)
    vectors = np.eye(8)[rng.integers(0, 4, size=40)] * 3 + rng.normal(scale=0.3, size=(40, 8))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    items = add_items(project, [f"item {i}" for i in range(40)])
    store_vectors(project, items, vectors)
    project.eval_share = 0
    project.warm_up = False  # with it on (the default) a project with no labels gets the warm-up, below
    project.save()
    assert refresh.refresh_run(project=project, chunk_rows=6).cold_start
    scores = strategies.cold_start(vectors.astype(np.float16).astype(np.float32), batch_size=refresh.refresh_batch(project))
    assert queue(project) == [items[i].id for i in np.argsort(-scores, kind="stable")]


@pytest.mark.parametrize("chunk_rows, sample", [(7, strategies.WARM_UP_SAMPLE), (1000, strategies.WARM_UP_SAMPLE), (9, 50)])
def test_the_streamed_warm_up_serves_what_cover_start_over_every_vector_in_memory_does(labelled_pool, monkeypatch,
                                                                                       chunk_rows, sample):
    project, items = labelled_pool
    for i in range(len(KEYS), 20):  # 12 labels of 20 classes: the warm-up, fitted on all 60 vectors (or a draw of 50)
        project.labels.create(key=f"class_{i}", name=f"Class {i}", order=i)
    monkeypatch.setattr(strategies, "WARM_UP_SAMPLE", sample)
    report = refresh.refresh_run(project=project, chunk_rows=chunk_rows)
    assert report.cold_start and report.labelled == 12
    version = ActiveLearningState.objects.get(project=project).encoder_version
    ids, vectors = refresh.project_vectors(project, version)
    labelled = np.array([i * 5 for i in range(12)])  # item positions in id order
    pool_rows = np.setdiff1d(np.arange(60), labelled)
    k_asked = max(strategies.warm_up_labels(20), refresh.refresh_batch(project))
    scores = strategies.cover_start(vectors, labelled, pool_rows, clusters=k_asked, sample=sample)
    assert queue(project) == ids[pool_rows[np.argsort(-scores, kind="stable")]].tolist()


def test_the_vector_stream_yields_chunks_of_at_most_the_asked_rows_in_item_order(labelled_pool):
    project, items = labelled_pool
    version = ActiveLearningState.objects.get(project=project).encoder_version
    chunks = list(pool.vector_chunks(project, version, chunk_rows=7))
    assert [len(c.ids) for c in chunks] == [7] * 8 + [4]
    assert all(c.rows.dtype == np.float16 and len(c.rows) == len(c.ids) for c in chunks)
    ids, vectors = refresh.project_vectors(project, version)
    assert np.concatenate([c.ids for c in chunks]).tolist() == ids.tolist()
    assert np.array_equal(np.concatenate([c.rows for c in chunks]).astype(np.float32), vectors)
    assert sum(c.is_done.sum() for c in chunks) == 12


def test_the_pool_is_scored_a_chunk_at_a_time_and_sampled_within_bounds(labelled_pool):
    project, _ = labelled_pool
    version = ActiveLearningState.objects.get(project=project).encoder_version
    seen = []

    def score(rows):
        seen.append(rows.shape)
        return np.zeros(len(rows))

    scan = pool.pool_scan(project, version, score=score, sample=10, chunk_rows=7)
    assert all(n <= 7 for n, _ in seen) and sum(n for n, _ in seen) == 48
    assert len(scan.pool_ids) == len(scan.scores) == 48
    assert len(scan.sample_ids) == 10 and set(scan.sample_ids) <= set(scan.pool_ids.tolist())
    again = pool.pool_scan(project, version, sample=10, chunk_rows=20)  # the same draw whatever the chunk size
    assert again.sample_ids.tolist() == scan.sample_ids.tolist() and np.array_equal(again.sample, scan.sample)


def test_only_the_head_of_the_queue_and_items_that_would_cut_into_it_are_written(project, add_items, expert,
                                                                                 monkeypatch):
    monkeypatch.setattr(pool, "EXACT_HEAD", 5)
    project.refresh_every = 1  # head: max(5, 20 x 1) = 20 items
    project.save()
    items = add_items(project, [f"item {i}" for i in range(60)])
    ids = np.array([item.id for item in items], dtype=np.int64)
    assert pool.write_queue(project, ids) == 20  # the others stay at 0, below the head
    assert queue(project)[:20] == ids[:20].tolist()
    reverse = ids[::-1].copy()
    assert pool.write_queue(project, reverse) == 40  # the new head, and the old one pushed below it
    assert queue(project)[:20] == reverse[:20].tolist()
    assert queue_claim_next(project=project, user=expert).id == reverse[0]


def test_a_row_whose_priority_would_not_change_is_not_written_again(project, add_items, monkeypatch):
    monkeypatch.setattr(pool, "EXACT_HEAD", 5)
    project.refresh_every = 1  # head: 20 items
    project.save()
    ids = np.array([item.id for item in add_items(project, [f"item {i}" for i in range(60)])], dtype=np.int64)
    assert pool.write_queue(project, ids) == 20
    assert pool.write_queue(project, ids) == 0  # the same order: every priority is already right
    swapped = ids.copy()
    swapped[[3, 4]] = swapped[[4, 3]]
    assert pool.write_queue(project, swapped) == 2
    assert queue(project)[:20] == swapped[:20].tolist()
