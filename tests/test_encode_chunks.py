"""Encoding in chunks, the service logic on the suite's database (no worker): a run is planned into
id ranges of LABELLOOP_ENCODE_CHUNK_ITEMS items, each chunk is idempotent, the last one ends the run
once with one refresh, items imported meanwhile are picked up, a new encoder re-encodes everything,
and the reaper redoes a chunk whose worker died. tests/test_encode_workers.py runs the same through
two real worker processes."""
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from active_learning import encoding, selectors
from core.jobs import Reaped, jobs_reap
from labeller.models import (ActiveLearningState, ChunkStatus, EncodeChunk, Item, ItemVector, ItemWordVectors,
                             JobStatus)
from labeller.services import project_create

pytestmark = pytest.mark.django_db
LONG_AGO = timedelta(hours=1)


@pytest.fixture(autouse=True)
def chunks_of_four(settings):
    settings.LABELLOOP_ENCODE_CHUNK_ITEMS = 4


def texts(n, start=0):
    return [f"where is my card number {i}?" for i in range(start, start + n)]


def state(project) -> ActiveLearningState:
    return ActiveLearningState.objects.get(project=project)


def plan(project, capture) -> list[int]:
    """encode_request, then the planner a worker would run; returns the chunk ids."""
    with capture():
        assert encoding.encode_request(project_id=project.id)
    return encoding.encode_plan(project_id=project.id, send=False)


def test_pending_items_are_split_into_chunks_of_the_configured_size_in_id_order(
        project, add_items, django_capture_on_commit_callbacks):
    items = add_items(project, texts(10))
    version = encoding.encoder_for(project).version
    ItemVector.objects.create(item=items[1], project=project, encoder_version=version, vector=b"\0" * 768)

    chunk_ids = plan(project, django_capture_on_commit_callbacks)

    ids = [item.id for item in items if item.id != items[1].id]  # the item with a vector is not planned again
    chunks = list(EncodeChunk.objects.filter(id__in=chunk_ids).order_by("first_id").values_list("first_id", "last_id"))
    assert chunks == [(ids[0], ids[3]), (ids[4], ids[7]), (ids[8], ids[8])]
    run = state(project)
    assert (run.encode_status, run.encode_total, run.encode_done) == (JobStatus.RUNNING, 10, 1)


def test_chunk_bounds_take_runs_of_consecutive_ids():
    assert encoding.chunk_bounds(iter([3, 5, 8, 9, 20]), 2) == [(3, 5), (8, 9), (20, 20)]
    assert encoding.chunk_bounds(iter([]), 2) == []


def test_the_planner_sends_one_task_per_chunk_once_committed(project, add_items, django_capture_on_commit_callbacks):
    add_items(project, texts(9))
    with django_capture_on_commit_callbacks():
        encoding.encode_request(project_id=project.id)
    with django_capture_on_commit_callbacks() as callbacks:
        chunk_ids = encoding.encode_plan(project_id=project.id)
    assert len(chunk_ids) == 3 and len(callbacks) == 3


def test_progress_adds_up_across_chunks_and_the_last_one_ends_the_run_with_one_refresh(
        project, add_items, django_capture_on_commit_callbacks):
    add_items(project, texts(10))
    first, second, third = plan(project, django_capture_on_commit_callbacks)

    with django_capture_on_commit_callbacks() as sent:
        assert encoding.encode_chunk_run(chunk_id=second) == 4
        assert encoding.encode_chunk_run(chunk_id=first) == 4
    assert sent == [] and (state(project).encode_status, state(project).encode_done) == (JobStatus.RUNNING, 8)
    assert selectors.encode_seconds_left(state(project)) > 0  # 2 left at the rate so far

    with django_capture_on_commit_callbacks() as sent:
        assert encoding.encode_chunk_run(chunk_id=third) == 2
    run = state(project)
    assert (run.encode_status, run.encode_done, run.encode_total) == (JobStatus.IDLE, 10, 10)
    assert run.refresh_requested and len(sent) == 1  # the refresh, once
    assert selectors.encode_seconds_left(run) is None
    assert ItemVector.objects.filter(project=project).count() == 10
    assert sorted(EncodeChunk.objects.filter(project=project).values_list("status", "encoded")) == [
        (ChunkStatus.DONE, 2), (ChunkStatus.DONE, 4), (ChunkStatus.DONE, 4)]


def test_a_chunk_delivered_twice_runs_once(project, add_items, django_capture_on_commit_callbacks):
    add_items(project, texts(6))
    first, second = plan(project, django_capture_on_commit_callbacks)
    assert encoding.encode_chunk_run(chunk_id=first) == 4
    assert encoding.encode_chunk_run(chunk_id=first) == 0
    assert state(project).encode_done == 4


def test_a_chunk_run_again_skips_the_items_that_already_hold_a_vector(project, add_items, django_capture_on_commit_callbacks):
    add_items(project, texts(6))
    first, second = plan(project, django_capture_on_commit_callbacks)
    assert encoding.encode_chunk_run(chunk_id=first) == 4
    EncodeChunk.objects.filter(id=first).update(status=ChunkStatus.QUEUED)  # as if its worker died before saying done
    assert encoding.encode_chunk_run(chunk_id=first) == 0
    assert encoding.encode_chunk_run(chunk_id=second) == 2
    assert ItemVector.objects.filter(project=project).count() == 6 and state(project).encode_done == 6


def test_items_imported_during_a_run_are_encoded_by_the_run_that_follows(
        project, add_items, django_capture_on_commit_callbacks):
    add_items(project, texts(5))
    chunk_ids = plan(project, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks():
        Item.objects.bulk_create(Item(project=project, data={"text": text}) for text in texts(3, start=5))
        assert not encoding.encode_request(project_id=project.id)  # what the import asks: the run is busy

    with django_capture_on_commit_callbacks() as sent:
        for chunk_id in chunk_ids:
            encoding.encode_chunk_run(chunk_id=chunk_id)
    assert state(project).encode_status == JobStatus.QUEUED and len(sent) == 2  # the next run, and the refresh

    assert encoding.encode_pending(project_id=project.id) == 3
    run = state(project)
    assert (run.encode_status, run.encode_done, run.encode_total) == (JobStatus.IDLE, 8, 8)
    assert ItemVector.objects.filter(project=project).count() == 8


def test_a_new_encoder_drops_the_old_vectors_and_encodes_every_item_again(
        project, add_items, django_capture_on_commit_callbacks):
    items = add_items(project, texts(6))
    ItemVector.objects.bulk_create(ItemVector(item=item, project=project, encoder_version="older", vector=b"\0" * 768)
                                   for item in items)
    chunk_ids = plan(project, django_capture_on_commit_callbacks)
    assert len(chunk_ids) == 2 and not ItemVector.objects.filter(encoder_version="older").exists()
    for chunk_id in chunk_ids:
        encoding.encode_chunk_run(chunk_id=chunk_id)
    version = encoding.encoder_for(project).version
    assert ItemVector.objects.filter(project=project, encoder_version=version).count() == 6


def test_a_chunk_planned_under_an_encoder_since_replaced_stores_nothing_and_a_new_run_follows(
        project, add_items, django_capture_on_commit_callbacks):
    add_items(project, texts(3))
    (chunk_id,) = plan(project, django_capture_on_commit_callbacks)
    # A champion promoted after the plan: the run's version is no longer the encoder's.
    EncodeChunk.objects.filter(id=chunk_id).update(encoder_version="older")
    ActiveLearningState.objects.filter(project=project).update(encoder_version="older")
    with django_capture_on_commit_callbacks():
        assert encoding.encode_chunk_run(chunk_id=chunk_id) == 0
    assert not ItemVector.objects.filter(project=project).exists()
    assert state(project).encode_status == JobStatus.QUEUED  # the champion's run, which re-encodes everything


def test_a_chunk_whose_run_was_dropped_meanwhile_stores_nothing(
        project, add_items, django_capture_on_commit_callbacks, monkeypatch):
    add_items(project, texts(3))
    (chunk_id,) = plan(project, django_capture_on_commit_callbacks)
    real = encoding.encoder_for(project)

    class NewRunDuringTheForwardPass:
        version, dim = real.version, real.dim

        def encode(self, batch, **kwargs):
            EncodeChunk.objects.filter(project=project).delete()  # what a newer run's planner does first
            return real.encode(batch, **kwargs)

    monkeypatch.setattr(encoding, "encoder_for", lambda project: NewRunDuringTheForwardPass())
    assert encoding.encode_chunk_run(chunk_id=chunk_id) == 0
    assert not ItemVector.objects.filter(project=project).exists() and state(project).encode_done == 0


def test_a_chunk_left_running_with_an_old_heartbeat_is_queued_again_and_redone(
        project, add_items, django_capture_on_commit_callbacks):
    add_items(project, texts(6))
    first, second = plan(project, django_capture_on_commit_callbacks)
    assert encoding.encode_chunk_run(chunk_id=second) == 2
    EncodeChunk.objects.filter(id=first).update(status=ChunkStatus.RUNNING, worker="dead@host",
                                                heartbeat_at=timezone.now() - LONG_AGO)
    ActiveLearningState.objects.filter(project=project).update(encode_heartbeat_at=timezone.now() - LONG_AGO)

    with django_capture_on_commit_callbacks() as sent:
        assert jobs_reap()["encode"] == Reaped(requeued=1, failed=0)  # the chunk; its run is alive again
    chunk = EncodeChunk.objects.get(id=first)
    assert len(sent) == 1 and (chunk.status, chunk.attempts) == (ChunkStatus.QUEUED, 1)
    assert state(project).encode_heartbeat_at > timezone.now() - timedelta(minutes=1)

    with django_capture_on_commit_callbacks():
        assert encoding.encode_chunk_run(chunk_id=first, worker="alive@host") == 4
    run = state(project)
    assert (run.encode_status, run.encode_done, run.encode_attempts) == (JobStatus.IDLE, 6, 0)
    assert EncodeChunk.objects.get(id=first).worker == "alive@host"


def test_a_live_chunk_is_left_alone(project, add_items, django_capture_on_commit_callbacks):
    add_items(project, texts(3))
    (chunk_id,) = plan(project, django_capture_on_commit_callbacks)
    EncodeChunk.objects.filter(id=chunk_id).update(status=ChunkStatus.RUNNING)
    ActiveLearningState.objects.filter(project=project).update(encode_heartbeat_at=timezone.now() - LONG_AGO)
    with django_capture_on_commit_callbacks() as sent:
        assert jobs_reap()["encode"] == Reaped()
    assert sent == [] and EncodeChunk.objects.get(id=chunk_id).status == ChunkStatus.RUNNING


def test_a_chunk_stuck_after_its_last_attempt_fails_the_run_with_the_reason(
        project, add_items, django_capture_on_commit_callbacks):
    add_items(project, texts(3))
    (chunk_id,) = plan(project, django_capture_on_commit_callbacks)
    EncodeChunk.objects.filter(id=chunk_id).update(status=ChunkStatus.RUNNING, heartbeat_at=timezone.now() - LONG_AGO,
                                                   attempts=django_settings.LABELLOOP_JOB_MAX_ATTEMPTS)
    with django_capture_on_commit_callbacks() as sent:
        assert jobs_reap()["encode"] == Reaped(requeued=0, failed=1)
    run = state(project)
    assert sent == [] and run.encode_status == JobStatus.FAILED and "no heartbeat" in run.encode_error
    assert EncodeChunk.objects.get(id=chunk_id).status == ChunkStatus.FAILED
    with django_capture_on_commit_callbacks():
        assert encoding.encode_request(project_id=project.id)  # the next import or a retry starts a new run
    assert encoding.encode_pending(project_id=project.id) == 3
    assert not EncodeChunk.objects.filter(id=chunk_id).exists()  # the failed run's rows went with its plan


def test_a_planned_run_whose_chunk_messages_were_lost_is_sent_them_again(
        project, add_items, django_capture_on_commit_callbacks, monkeypatch):
    add_items(project, texts(6))
    chunk_ids = plan(project, django_capture_on_commit_callbacks)  # sent nothing: the messages are lost
    ActiveLearningState.objects.filter(project=project).update(encode_heartbeat_at=timezone.now() - LONG_AGO)
    sent = []
    monkeypatch.setattr(encoding.encode_chunk, "delay", sent.append)
    with django_capture_on_commit_callbacks(execute=True):
        assert jobs_reap()["encode"] == Reaped(requeued=1, failed=0)
    assert sorted(sent) == sorted(chunk_ids)
    run = state(project)
    assert (run.encode_status, run.encode_attempts) == (JobStatus.RUNNING, 1)


def test_a_span_project_is_encoded_in_chunks_with_its_word_vectors(owner, add_items, django_capture_on_commit_callbacks):
    project = project_create(user=owner, labels=[{"key": "PER", "name": "Person"}], name="Tweets", task_type="spans")
    add_items(project, ["Ada Lovelace wrote to Babbage", "Paris in May", "no names here", "Alan Turing", "Grace Hopper"])
    chunk_ids = plan(project, django_capture_on_commit_callbacks)
    assert len(chunk_ids) == 2
    with django_capture_on_commit_callbacks():
        assert sum(encoding.encode_chunk_run(chunk_id=chunk_id) for chunk_id in chunk_ids) == 5
    assert ItemWordVectors.objects.filter(project=project).count() == 5 == ItemVector.objects.filter(project=project).count()
    assert state(project).encode_status == JobStatus.IDLE


def test_the_api_says_how_long_the_running_encode_has_left(project, add_items, client_for, viewer, outsider,
                                                            django_capture_on_commit_callbacks):
    add_items(project, texts(6))
    first, _ = plan(project, django_capture_on_commit_callbacks)
    url = f"/api/projects/{project.id}/active-learning"
    assert client_for(viewer).get(url).json()["encode_seconds_left"] is None  # no vector stored yet
    encoding.encode_chunk_run(chunk_id=first)
    body = client_for(viewer).get(url).json()
    assert body["encode_done"] == 4 and body["encode_total"] == 6 and body["encode_seconds_left"] > 0
    assert client_for(outsider).get(url).status_code == 404
