"""A large import never holds the database's only write lock (SQLite) for its whole length: other
projects' experts keep submitting while it runs. It is still all or nothing to its user: the items
of an unfinished import are not served, and a failed import leaves nothing behind."""
import json
import threading

import pytest
from django.db import connection

from labeller.importing import ImportMode, items_import
from labeller.models import Annotation, Item
from labeller.services import annotation_submit, queue_claim_next

pytestmark = pytest.mark.django_db(transaction=True)  # real commits, seen by another thread


def jsonl(texts, start=0) -> list[bytes]:
    return [json.dumps({"external_id": f"r-{start + i}", "text": text}).encode() + b"\n" for i, text in enumerate(texts)]


class PausedUpload:
    """An upload whose second part arrives only when the test says so (a slow 500 MB file)."""

    def __init__(self, first: list[bytes], second: list[bytes], fail: bool = False):
        self.first, self.second, self.fail = first, second, fail
        self.reached, self.resume = threading.Event(), threading.Event()
        self._head = b"".join(first)

    def read(self, n=-1):  # the format sniffer reads the head, then seeks back
        return self._head[:n]

    def seek(self, offset):
        pass

    def __iter__(self):
        yield from self.first
        self.reached.set()
        assert self.resume.wait(60)
        if self.fail:
            raise OSError("the upload was cut off")
        yield from self.second


def import_in_thread(project, upload, mode=ImportMode.ATOMIC):
    outcome = {}

    def run():
        try:
            outcome["result"] = items_import(project=project, stream=upload, filename="big.jsonl", mode=mode)
        except Exception as exc:
            outcome["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    assert upload.reached.wait(60), outcome
    return thread, outcome


@pytest.fixture
def small_batches(settings):
    settings.LABELLOOP_IMPORT_BATCH_SIZE = 10


def test_another_projects_expert_submits_while_a_large_import_runs(make_project, add_items, expert, small_batches):
    importing, other = make_project(name="Importing"), make_project(name="Other")
    (item,) = add_items(other, ["my card has not arrived"])
    upload = PausedUpload(jsonl([f"query {i}" for i in range(50)]), jsonl([f"query {i}" for i in range(50, 60)], start=50))
    thread, outcome = import_in_thread(importing, upload)
    try:
        if connection.vendor == "sqlite":
            with connection.cursor() as cursor:  # fail in 2 s rather than 30 if the import holds the lock
                cursor.execute("PRAGMA busy_timeout = 2000")
        annotation_submit(item=item, user=expert, labels=["card_arrival"])
        assert queue_claim_next(project=importing, user=expert) is None, "an unfinished import's items are not served"
    finally:
        upload.resume.set()
        thread.join(60)
    assert outcome["result"].created == 60
    assert Annotation.objects.filter(item=item, annotator=expert).exists()
    assert queue_claim_next(project=importing, user=expert).external_id == "r-0"


def test_a_failed_import_leaves_nothing_behind_once_its_batches_were_written(project, small_batches):
    bad = [b'{"external_id": "r-99", "text": ""}\n']  # required text missing: atomic mode imports nothing
    upload = PausedUpload(jsonl([f"query {i}" for i in range(35)]), bad)
    thread, outcome = import_in_thread(project, upload)
    upload.resume.set()
    thread.join(60)
    assert outcome["result"].committed is False and outcome["result"].error_count == 1
    assert not Item.objects.filter(project=project).exists()


def test_an_import_cut_off_by_an_error_leaves_nothing_behind(project, small_batches):
    upload = PausedUpload(jsonl([f"query {i}" for i in range(35)]), [], fail=True)
    thread, outcome = import_in_thread(project, upload)
    upload.resume.set()
    thread.join(60)
    assert isinstance(outcome["error"], OSError)
    assert not Item.objects.filter(project=project).exists()


def test_beat_deletes_what_an_import_whose_process_died_left_and_keeps_a_running_one(project):
    import uuid
    from datetime import timedelta

    from django.utils import timezone

    from labeller.tasks import discard_abandoned_imports

    dead, running = uuid.uuid4(), uuid.uuid4()
    Item.objects.bulk_create(Item(project=project, data={"text": text}, import_id=import_id)
                             for text, import_id in [("one", dead), ("two", dead), ("three", running), ("four", None)])
    Item.objects.filter(import_id=dead).update(created_at=timezone.now() - timedelta(hours=2))

    assert discard_abandoned_imports() == 2
    assert sorted(Item.objects.filter(project=project).values_list("data__text", flat=True)) == ["four", "three"]
