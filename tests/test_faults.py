"""Fault injection with real processes: a worker SIGKILLed in the middle of each kind of job, the
broker dying while product feedback arrives, the database dropping the web process's
connections, and a real PostgreSQL restart (of a throwaway cluster, in both passes) under a
live gunicorn, which serves again without being restarted. Every job ends `done` or `failed` with a
reason, and no write that was answered 2xx is lost.

A job is started on a queue of its own with a doomed worker (so the suite's worker cannot take it
first), the doomed worker is frozen (SIGSTOP) once the job is seen half done, checked to be still
mid-job, and SIGKILLed. The suite's worker (`celery_worker_process`, every queue) then takes over
what the reaper sends again.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import requests
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from config.celery import app as celery_app
from active_learning import encoding
from labeller.exporting import CHUNK as EXPORT_CHUNK
from core.jobs import Reaped, jobs_reap
from labeller.models import ActiveLearningState, ExportJob, ExportStatus, Item, ItemVector, JobStatus, SuggestionMode
from ml.encoder import to_float16_bytes
from tests.helpers import wait_for
from tests.workers import _database_url, start_celery_worker, stop_celery_worker

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def doomed_worker(queue: str):
    worker = start_celery_worker(queue, purge=True)
    try:
        yield worker
    finally:
        if worker.poll() is None:
            stop_celery_worker(worker)


def kill_mid_job(worker, *, started, unfinished, what: str) -> None:
    """Wait until `started()`, freeze the worker there, check `unfinished()`, then SIGKILL it."""
    try:
        wait_for(started, timeout=180, interval=0.02, what=what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{log_tail(worker)}") from None
    worker.send_signal(signal.SIGSTOP)
    try:
        assert unfinished(), f"the worker finished {what} before it could be stopped mid-job: give it more to do"
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)


def reap_until(kind: str, *, requeued: int = 0, failed: int = 0) -> Reaped:
    """Run the reaper (with a one-second timeout: the dead worker's heartbeat soon counts as
    stopped) until it has dealt with the dead job(s); returns what it did in all."""
    total = Reaped()

    def reaped():
        outcome = jobs_reap(timeout_s=1)[kind]
        total.requeued += outcome.requeued
        total.failed += outcome.failed
        return total.requeued >= requeued and total.failed >= failed

    wait_for(reaped, timeout=30, what=f"the reaper to notice the dead {kind} job")
    return total


def log_tail(worker) -> str:
    return "".join(worker.log[-30:])


def wait_for_worker(worker, predicate, *, timeout: float, what: str):
    """wait_for, with the worker's last log lines when it times out."""
    try:
        return wait_for(predicate, timeout=timeout, what=what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{log_tail(worker)}") from None


# --- (a) encoding ----------------------------------------------------------------------------------

def test_encoding_killed_mid_chunk_is_sent_again_and_encodes_every_item(celery_worker_process, make_project):
    from active_learning.encoding import encode_chunk
    from labeller.models import ChunkStatus, EncodeChunk

    project = make_project()
    Item.objects.bulk_create(Item(project=project, data={"text": f"where is my card number {i}?"})
                             for i in range(2 * encoding.ENCODE_CHUNK))
    with doomed_worker("encode-doomed") as worker:
        # What the planner does, its one chunk (of two steps) sent to the doomed worker's queue.
        ActiveLearningState.objects.filter(project=project).update(encode_status=JobStatus.QUEUED)
        (chunk_id,) = encoding.encode_plan(project_id=project.id, send=False)
        encode_chunk.apply_async((chunk_id,), queue="encode-doomed")
        state = lambda: ActiveLearningState.objects.get(project=project)  # noqa: E731
        kill_mid_job(worker, started=lambda: state().encode_done >= encoding.ENCODE_CHUNK,
                     unfinished=lambda: EncodeChunk.objects.get(id=chunk_id).status == ChunkStatus.RUNNING,
                     what="the chunk's first step")
    kept = ItemVector.objects.filter(project=project).count()
    assert encoding.ENCODE_CHUNK <= kept < Item.objects.filter(project=project).count()

    assert reap_until("encode", requeued=1).requeued == 1
    done = wait_for_worker(celery_worker_process, timeout=150, what="the suite's worker to finish encoding",
                           predicate=lambda: ActiveLearningState.objects.filter(project=project, encode_status=JobStatus.IDLE).first())
    assert done.encode_error == "" and done.encode_attempts == 0, log_tail(celery_worker_process)
    assert ItemVector.objects.filter(project=project).count() == 2 * encoding.ENCODE_CHUNK  # every item, once
    chunk = EncodeChunk.objects.get(id=chunk_id)
    assert (chunk.status, chunk.attempts, chunk.encoded) == (ChunkStatus.DONE, 1, 2 * encoding.ENCODE_CHUNK)


# --- (b) a priority refresh ------------------------------------------------------------------------

def test_a_refresh_killed_mid_run_is_requested_again_and_ranks_the_queue(celery_worker_process, make_project, expert):
    from labeller.services import annotation_submit
    from active_learning.refresh import refresh_priorities

    # No suggestions: nothing after the refresh needs the encoder. Labels never ask for a refresh.
    project = make_project(refresh_every=10_000, suggestion_mode=SuggestionMode.OFF)
    rng = np.random.default_rng(0)
    items = Item.objects.bulk_create(Item(project=project, data={"text": f"query {i}"}) for i in range(5_000))
    vectors = rng.normal(size=(len(items), 384)).astype(np.float32)
    ItemVector.objects.bulk_create((ItemVector(item=item, project=project, encoder_version="faults", vector=blob)
                                    for item, blob in zip(items, to_float16_bytes(vectors))), batch_size=2000)
    for item, label in zip(items[:6], ["card_arrival", "exchange_rate", "lost_card"] * 2):
        annotation_submit(item=item, user=expert, labels=[label])
    with doomed_worker("refresh-doomed") as worker:
        # What refresh_request does, sent to the doomed worker's queue.
        ActiveLearningState.objects.filter(project=project).update(
            encoder_version="faults", refresh_requested=True, refresh_heartbeat_at=timezone.now())
        refresh_priorities.apply_async((project.id,), queue="refresh-doomed")
        state = lambda: ActiveLearningState.objects.get(project=project)  # noqa: E731
        kill_mid_job(worker, started=lambda: state().refresh_running, unfinished=lambda: state().refresh_running,
                     what="the refresh")

    assert reap_until("refresh", requeued=1).requeued == 1
    done = wait_for_worker(celery_worker_process, timeout=120, what="the suite's worker to finish the refresh",
                           predicate=lambda: ActiveLearningState.objects.filter(
                               project=project, refresh_running=False, refresh_requested=False, last_refresh_at__isnull=False).first())
    assert done.refresh_error == "" and done.head_version >= 1 and done.head_trained_on == 6, log_tail(celery_worker_process)
    priorities = list(Item.objects.filter(project=project, is_done=False).values_list("priority", flat=True))
    assert len(set(priorities)) == len(priorities)  # every open item ranked


# --- (c) an export ---------------------------------------------------------------------------------

def test_an_export_killed_mid_file_is_run_again_and_written_whole(celery_worker_process, make_project, owner):
    from labeller.exporting import export_run

    project = make_project()
    total = 5 * EXPORT_CHUNK
    Item.objects.bulk_create(Item(project=project, data={"text": f"query {i}"}) for i in range(total))
    with doomed_worker("exports-doomed") as worker:
        # What export_create does, sent to the doomed worker's queue.
        job = ExportJob.objects.create(project=project, created_by=owner, format="jsonl",
                                       filters={"status": "all", "min_agreement": None})
        export_run.apply_async((str(job.id),), queue="exports-doomed")
        row = lambda: ExportJob.objects.get(id=job.id)  # noqa: E731
        kill_mid_job(worker, started=lambda: row().written >= EXPORT_CHUNK, unfinished=lambda: row().status == ExportStatus.RUNNING,
                     what="the first rows of the export")
    assert not job.file_path.exists()  # only a .part: a half file is never offered

    assert reap_until("export", requeued=1).requeued == 1
    finished = wait_for_worker(celery_worker_process, timeout=120, what="the suite's worker to write the export",
                               predicate=lambda: ExportJob.objects.filter(id=job.id, status__in=["done", "failed"]).first())
    assert finished.status == ExportStatus.DONE, finished.error + log_tail(celery_worker_process)
    assert (finished.written, finished.total, finished.attempts) == (total, total, 1)
    assert len(finished.file_path.read_text().splitlines()) == total
    assert not finished.file_path.with_suffix(".jsonl.part").exists()


# --- (d) a training run ----------------------------------------------------------------------------

def test_a_training_run_killed_mid_epoch_fails_with_the_reason_and_the_next_version_still_trains(
        celery_worker_process, labelled_project):
    from models_registry import training
    from models_registry.models import ModelVersion, TrainingPolicy, VersionStatus
    from models_registry.snapshots import snapshot_create
    from models_registry.training import train_version

    hyper = {"epochs": 50, "small_data_epochs": 50, "batch_size": 4}
    TrainingPolicy.objects.update_or_create(project=labelled_project, defaults={"finetune": hyper})
    snapshot = snapshot_create(project=labelled_project)
    doomed = ModelVersion.objects.create(project=labelled_project, number=1, kind="finetuned", snapshot=snapshot,
                                         base_model="base", hyperparameters=hyper, code_version=training.CODE_VERSION)
    # Queued behind it; its message was lost (it is never sent).
    waiting = ModelVersion.objects.create(project=labelled_project, number=2, kind="head", snapshot=snapshot,
                                          base_model="base", hyperparameters={"c": 10.0}, code_version=training.CODE_VERSION)
    with doomed_worker("training-doomed") as worker:
        train_version.apply_async((doomed.id,), queue="training-doomed")
        kill_mid_job(worker, what="training to start",
                     started=lambda: ModelVersion.objects.filter(id=doomed.id, progress__step__gte=1).exists(),
                     unfinished=lambda: ModelVersion.objects.filter(id=doomed.id, status=VersionStatus.TRAINING).exists())

    reaped = reap_until("training", requeued=1, failed=1)
    assert (reaped.requeued, reaped.failed) == (1, 1)
    doomed.refresh_from_db()
    assert doomed.status == VersionStatus.FAILED and "no heartbeat" in doomed.error
    trained = wait_for_worker(celery_worker_process, timeout=120, what="the suite's worker to train the waiting version",
                              predicate=lambda: ModelVersion.objects.filter(id=waiting.id, status__in=["ready", "failed"]).first())
    assert trained.status == VersionStatus.READY, trained.error + log_tail(celery_worker_process)


# --- (e) the broker dies while feedback arrives ----------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def throwaway_redis():
    """A redis-server of this test's own (never the machine's: others use it), to kill."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: install Debian's redis-server (./labelloop test does)")
    port = free_port()
    server = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import redis

    client = redis.Redis(port=port)
    wait_for(lambda: _pings(client), timeout=10, interval=0.05, what="the throwaway redis-server")
    yield server, client, f"redis://127.0.0.1:{port}/0"
    if server.poll() is None:
        server.kill()
    server.wait(5)


def _pings(client) -> bool:
    import redis

    try:
        return client.ping()
    except redis.ConnectionError:
        return False


@contextmanager
def broker_for_this_process(url: str):
    """Point this process's task publishing at `url` (the write URL: CELERY_BROKER_URL in the
    environment would win over the read one), with fresh connection pools."""
    def fresh_pools():
        # Dropped, not closed: kombu keeps pools per URL, and the suite's own comes back afterwards.
        celery_app._pool = None
        celery_app.amqp._producer_pool = None

    before = celery_app.conf.get("broker_write_url")
    fresh_pools()
    celery_app.conf.broker_write_url = url
    try:
        yield
    finally:
        celery_app.conf.broker_write_url = before
        fresh_pools()


def test_every_feedback_post_answered_2xx_is_stored_when_the_broker_dies(throwaway_redis, project, token_client):
    from feedback.models import FeedbackEvent, FeedbackStatus
    from feedback.tasks import route_all_pending

    server, broker, url = throwaway_redis
    app = token_client(project, ["feedback"])
    answered = []

    def post(i):
        cache.clear()  # the routing debounce would skip the enqueue for a second: every post must try it
        response = app.post(f"/api/projects/{project.id}/feedback", {
            "data": {"text": f"my card {i} never came"}, "kind": "correction", "label": "card_arrival",
            "end_user": f"u-{i}", "occurred_at": "2026-11-25T10:00:00Z"}, format="json")
        assert response.status_code < 500, response.content
        if response.status_code < 300:
            answered.extend(response.json()["event_ids"])

    with broker_for_this_process(url):
        for i in range(3):
            post(i)
        assert broker.llen("default") >= 1  # the routing messages reached the throwaway broker
        server.kill()
        server.wait(5)
        for i in range(3, 6):
            post(i)

    assert len(answered) == 6  # the broker being down is no reason to refuse a stored event
    stored = set(FeedbackEvent.objects.filter(project=project).values_list("id", flat=True))
    assert set(answered) <= stored
    # The messages that never left are made good by beat's sweeper.
    route_all_pending()
    assert not FeedbackEvent.objects.filter(id__in=answered, status=FeedbackStatus.PENDING).exists()


# --- (f) the database drops every connection -------------------------------------------------------

@contextmanager
def gunicorn(env: dict):
    """gunicorn serving config.wsgi with `env`, one sync worker; yields (server, base URL) once the
    app has answered its first request (which loads it)."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "config.wsgi", "-b", f"127.0.0.1:{port}", "-w", "1",
                               "--timeout", "120"],
                              env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"

    def up():
        try:
            requests.get(f"{base}/login/", timeout=60)  # the first request loads the app
            return True
        except requests.ConnectionError:
            assert server.poll() is None, server.stderr.read()
            return False

    try:
        wait_for(up, timeout=60, interval=0.1, what="gunicorn to listen")
        yield server, base
    finally:
        server.terminate()
        server.wait(15)


@pytest.fixture
def web_process():
    """gunicorn serving the test database, connections kept between requests as in production
    (DATABASE_CONN_MAX_AGE)."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: SQLite has no server whose connections can be dropped")
    env = {**os.environ, "DATABASE_URL": _database_url(connection.settings_dict), "DATABASE_CONN_MAX_AGE": "600"}
    with gunicorn(env) as (_server, base):
        yield base


def test_the_web_process_serves_again_at_once_after_the_database_dropped_its_connections(web_process, owner, make_project):
    from knox.models import AuthToken

    make_project()
    headers = {"Authorization": f"Token {AuthToken.objects.create(user=owner)[1]}"}
    assert requests.get(f"{web_process}/api/projects/", headers=headers, timeout=30).status_code == 200

    # What a PostgreSQL restart does to the web process: every connection to its database is gone.
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        assert cursor.fetchone()[0] >= 1
    time.sleep(0.2)  # let the server finish closing them

    answer = requests.get(f"{web_process}/api/projects/", headers=headers, timeout=30)
    assert answer.status_code == 200 and answer.json()["count"] == 1


# --- (g) PostgreSQL itself restarts under a live web process -----------------------------------------

def _cluster_owner() -> list[str]:
    """The prefix that runs a command as the cluster's owner: initdb and the server refuse root, so
    under root (as in CI) they run as the postgres OS user; otherwise as the user running the tests."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def _as_postgres(*command: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*_cluster_owner(), *command], check=True, capture_output=True, text=True, **kwargs)


@pytest.fixture
def throwaway_postgres():
    """A PostgreSQL cluster of this test's own (never the machine's server: others use it), to
    restart. Yields (the command that restarts it, URL of an empty database `labelloop` in it).
    It is independent of the suite's database, so it runs in both passes."""
    missing = [tool for tool in ("initdb", "pg_ctl", *(["runuser"] if _cluster_owner() else [])) if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not on PATH: install PostgreSQL's server binaries (the suite's PostgreSQL pass needs them anyway)")
    import pwd
    import tempfile

    import psycopg

    # Not pytest's tmp_path: its parents are root's, mode 0700, where the postgres user cannot go.
    root = Path(tempfile.mkdtemp(prefix="labelloop-pg-"))
    if _cluster_owner():
        owner = pwd.getpwnam("postgres")  # a KeyError here says plainly what is missing
        os.chown(root, owner.pw_uid, owner.pw_gid)
    data, port = root / "data", free_port()
    try:
        _as_postgres(shutil.which("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
        # fsync off: what is tested is the server process going away and coming back, not the disk.
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        _as_postgres(shutil.which("pg_ctl"), "start", "-w", "-t", "60", "-D", str(data), "-l", str(root / "log"), "-o", options)
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True) as admin:
            admin.execute("CREATE DATABASE labelloop")
        # The server's output goes to the log, never to a pipe of ours (which it would hold open).
        restart = [*_cluster_owner(), shutil.which("pg_ctl"), "restart", "-m", "fast", "-w", "-t", "60",
                   "-D", str(data), "-l", str(root / "log")]
        yield restart, f"postgres://postgres@127.0.0.1:{port}/labelloop"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run([*_cluster_owner(), shutil.which("pg_ctl"), "stop", "-m", "immediate", "-w",
                            "-D", str(data)], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


RESTART_SETUP = """
from django.contrib.auth import get_user_model
from feedback.tokens import token_create
from labeller.services import project_create

user = get_user_model().objects.create_user("restart-owner", password="restart-owner-password")
project = project_create(user=user, name="Restart", labels=[{"key": "card_arrival", "name": "Card arrival"}])
print(project.id, token_create(project=project, name="checkout backend", scopes=["feedback"])[1])
"""


def _workers_of(server) -> set[int]:
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    return {int(pid) for pid in children}


def test_every_write_answered_2xx_survives_a_real_postgresql_restart_and_the_same_web_process_serves_again(
        throwaway_postgres, tmp_path):
    import psycopg

    restart, database_url = throwaway_postgres
    env = {key: value for key, value in os.environ.items() if key not in ("CELERY_BROKER_URL", "LABELLOOP_CACHE_URL")}
    # Nothing shared with the suite: its own database, and the filesystem broker and file cache under
    # its own data directory (the routing message sent after each commit goes there).
    env.update(DATABASE_URL=database_url, DATABASE_CONN_MAX_AGE="600", LABELLOOP_DATA_DIR=str(tmp_path / "data"))
    manage = [sys.executable, "manage.py"]
    subprocess.run(manage + ["migrate", "--noinput"], env=env, cwd=ROOT, check=True, capture_output=True)
    setup = subprocess.run(manage + ["shell", "-c", RESTART_SETUP], env=env, cwd=ROOT, check=True, capture_output=True, text=True)
    project_id, plain = setup.stdout.split()[-2:]

    answered: list[int] = []  # event ids of every post answered 2xx
    refused: list[str] = []  # what the posts made while the server was down got

    def post(i: int) -> bool:
        try:
            response = requests.post(f"{base}/api/projects/{project_id}/feedback", timeout=30,
                                     headers={"Authorization": f"Bearer {plain}"},
                                     json={"data": {"text": f"my card {i} never came"}, "kind": "correction",
                                           "label": "card_arrival", "end_user": f"u-{i}", "occurred_at": "2026-11-25T10:00:00Z"})
        except requests.ConnectionError as exc:
            refused.append(f"post {i}: {type(exc).__name__}")
            return False
        if response.status_code < 300:
            answered.extend(response.json()["event_ids"])
            return True
        assert response.status_code >= 500, response.content  # never a 4xx for a good post
        refused.append(f"post {i}: {response.status_code}")
        return False

    with gunicorn(env) as (server, base):
        workers = _workers_of(server)
        assert len(workers) == 1
        for i in range(3):
            assert post(i), refused

        # A quiet restart first: no request sees the server down, so only the web process's own
        # check of its kept connection stands between the next post and a dead socket.
        subprocess.run(restart, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for i in range(3, 6):
            assert post(i), refused

        # Then a busy one: posts while the server goes down and comes back may fail (5xx or no answer).
        busy = subprocess.Popen(restart, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        i = 6
        while busy.poll() is None:
            post(i)
            i += 1
            time.sleep(0.05)
        assert busy.wait() == 0, "pg_ctl restart failed"
        refused_during_restart = len(refused)
        for j in range(i, i + 3):  # the server is back: every post is answered at once
            assert post(j), refused[refused_during_restart:]
        assert server.poll() is None and _workers_of(server) == workers

    assert len(answered) >= 9
    with psycopg.connect(database_url.replace("postgres://", "postgresql://", 1)) as db:
        stored = {row[0] for row in db.execute("SELECT id FROM feedback_feedbackevent")}
    assert set(answered) <= stored, f"answered 2xx but lost: {sorted(set(answered) - stored)}"
