"""Encoding spread over two real `celery worker` processes on the suite's database and broker
(PostgreSQL + Redis, or SQLite + the filesystem broker): both take a project's chunks, every item
is encoded once, progress adds up, and a chunk whose worker was killed is redone by the reaper.
The service logic on its own: tests/test_encode_chunks.py."""
import signal

import pytest
from django.db.models import Sum

from active_learning import encoding
from core.jobs import jobs_reap
from labeller.models import ActiveLearningState, ChunkStatus, EncodeChunk, Item, ItemVector, JobStatus
from tests.banking77 import FOLDER
from tests.helpers import wait_for
from tests.workers import start_celery_workers, stop_celery_worker

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
ITEMS, CHUNK = 360, 30


@pytest.fixture(scope="module")
def two_workers(django_db_setup, django_db_blocker):
    """Two worker processes on the encode queue, one torch thread each (as on a 2-core machine)."""
    workers = start_celery_workers("encode", 2, env={"LABELLOOP_TORCH_THREADS": "1"})
    yield workers
    for worker in workers:
        if worker.poll() is None:
            stop_celery_worker(worker)


def log_tail(workers) -> str:
    return "\n".join("".join(worker.log[-20:]) for worker in workers)


def project_with_items(make_project, settings) -> tuple:
    """A project of ITEMS Banking77 queries, its run planned into chunks of CHUNK (here: the
    planner a worker runs on `encode_items`, so no other worker of the session plans it its way)."""
    import csv

    settings.LABELLOOP_ENCODE_CHUNK_ITEMS = CHUNK
    project = make_project()
    with open(FOLDER / "train.csv", encoding="utf-8") as f:
        texts = [row["text"] for row, _ in zip(csv.DictReader(f), range(ITEMS))]
    Item.objects.bulk_create(Item(project=project, data={"text": text}) for text in texts)
    ActiveLearningState.objects.filter(project=project).update(encode_status=JobStatus.QUEUED)
    chunk_ids = encoding.encode_plan(project_id=project.id)  # sends one encode_chunk per chunk
    assert len(chunk_ids) == ITEMS // CHUNK
    return project, chunk_ids


def test_two_workers_share_a_projects_chunks_and_encode_every_item_once(two_workers, make_project, settings):
    project, chunk_ids = project_with_items(make_project, settings)
    seen = []

    def finished():
        state = ActiveLearningState.objects.get(project=project)
        seen.append(state.encode_done)
        # The last chunk goes idle, then asks for the refresh.
        asked = state.refresh_requested or state.refresh_running or state.last_refresh_at
        return state if state.encode_status == JobStatus.IDLE and asked else None

    state = wait_for(finished, timeout=300, interval=0.1, what="two workers to encode the project")
    assert state.encode_error == "", log_tail(two_workers)
    chunks = EncodeChunk.objects.filter(project=project)
    assert ItemVector.objects.filter(project=project).count() == ITEMS
    assert chunks.aggregate(n=Sum("encoded"))["n"] == ITEMS  # no item was encoded twice
    assert set(chunks.values_list("status", flat=True)) == {ChunkStatus.DONE}
    assert {worker.hostname for worker in two_workers} <= set(chunks.values_list("worker", flat=True)), \
        "each worker took chunks"
    assert seen == sorted(seen) and all(0 <= done <= ITEMS for done in seen)  # progress only grows, within the total
    assert (state.encode_done, state.encode_total) == (ITEMS, ITEMS)


def test_a_chunk_whose_worker_was_killed_is_redone_by_the_reaper_on_the_other_worker(two_workers, make_project, settings):
    doomed = two_workers[0]
    project, chunk_ids = project_with_items(make_project, settings)

    held = wait_for(lambda: EncodeChunk.objects.filter(project=project, worker=doomed.hostname,
                                                       status=ChunkStatus.RUNNING).first(),
                    timeout=180, interval=0.02, what="the doomed worker to take a chunk")
    doomed.send_signal(signal.SIGSTOP)  # frozen mid-chunk, then killed: its row stays running
    try:
        assert EncodeChunk.objects.get(id=held.id).status == ChunkStatus.RUNNING, "the chunk finished before the kill"
    finally:
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(10)

    others = EncodeChunk.objects.filter(project=project).exclude(id=held.id)
    wait_for(lambda: not others.exclude(status=ChunkStatus.DONE).exists(), timeout=300,
             what="the other worker to encode every other chunk")
    assert ActiveLearningState.objects.get(project=project).encode_status == JobStatus.RUNNING  # not over: one is dead

    requeued = wait_for(lambda: jobs_reap(timeout_s=1)["encode"].requeued, timeout=30, what="the reaper")
    assert requeued == 1
    state = wait_for(lambda: ActiveLearningState.objects.filter(project=project, encode_status=JobStatus.IDLE).first(),
                     timeout=120, what="the survivor to redo the dead chunk", interval=0.1)
    redone = EncodeChunk.objects.get(id=held.id)
    assert (redone.status, redone.attempts) == (ChunkStatus.DONE, 1), log_tail(two_workers)
    assert redone.worker and redone.worker != doomed.hostname  # the survivor (or any other worker of the queue)
    assert ItemVector.objects.filter(project=project).count() == ITEMS == state.encode_done
    assert EncodeChunk.objects.filter(project=project).aggregate(n=Sum("encoded"))["n"] >= ITEMS
