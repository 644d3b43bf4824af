"""Real Celery worker processes for the integration tests."""
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest


_STARTED: list[subprocess.Popen] = []  # every worker process the session started
_TASK_LINE = re.compile(r"Task \S+\[([^\]]+)\] (received)?")


def _in_flight(worker: subprocess.Popen) -> set[str]:
    """Ids of the tasks the worker logged as received and not since as succeeded, raised,
    retried or rejected (Celery's INFO lines)."""
    running: dict[str, bool] = {}
    for line in list(worker.log):
        match = _TASK_LINE.search(line)
        if match:
            running[match.group(1)] = bool(match.group(2))
    return {task for task, is_running in running.items() if is_running}


def wait_for_idle_workers(timeout: float = 120.0) -> None:
    """Return once no live worker process of the session runs a task. A test's database flush
    (a TRUNCATE on PostgreSQL) must not race a worker still finishing what the test set off: they
    deadlock, and the next test finds the last one's rows. A worker that logged anything since it
    was last seen idle must be seen idle twice, 0.3 s apart (a task may send the next just before
    it ends); one that logged nothing is idle at once."""
    deadline = time.monotonic() + timeout
    for worker in _STARTED:
        quiet = 0
        while worker.poll() is None and len(worker.log) != getattr(worker, "idle_at_line", -1):
            lines, busy = len(worker.log), _in_flight(worker)
            quiet = 0 if busy else quiet + 1
            if quiet >= 2:
                worker.idle_at_line = lines
                break
            if busy and time.monotonic() > deadline:
                pytest.fail(f"worker {worker.hostname} still runs {sorted(busy)} after {timeout:.0f} s")
            time.sleep(0.3)


def _database_url(settings_dict) -> str:
    if settings_dict["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    user = settings_dict.get("USER") or ""
    password = f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else ""
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{settings_dict['NAME']}"


def start_celery_worker(queues: str, *, purge: bool = False, name: str = "", env: dict | None = None) -> subprocess.Popen:
    """Start a real `celery worker` process on the test database and broker; wait until ready.
    Its output lines are kept in `.log` for failure messages, its node name in `.hostname`
    (`name` tells apart several on the same queues; `env` adds to its environment)."""
    from django.conf import settings
    from django.db import connection

    env = {**os.environ, "DATABASE_URL": _database_url(connection.settings_dict), "HF_HUB_OFFLINE": "1",
           # Let the worker POST alerts to a receiver the tests run on this machine.
           "LABELLOOP_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1", "LABELLOOP_WEBHOOK_ALLOW_PRIVATE": "1", **(env or {})}
    root = Path(__file__).resolve().parents[1]
    celery = [sys.executable, "-m", "celery", "-A", "config"]
    if purge and not settings.CELERY_BROKER_URL.startswith("filesystem://"):
        subprocess.run(celery + ["purge", "-f", "-Q", queues], env=env, cwd=root, check=True, capture_output=True)
    hostname = f"test-{os.getpid()}-{queues[:20]}{name}@{socket.gethostname()}"
    worker = subprocess.Popen(
        celery + ["worker", "-Q", queues, "--pool=solo", "-l", "INFO", "-n", hostname,
                  "--without-gossip", "--without-mingle", "--without-heartbeat"],
        env=env, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: list[str] = []
    ready = threading.Event()

    def drain():
        for line in worker.stdout:
            lines.append(line)
            if " ready." in line:
                ready.set()

    threading.Thread(target=drain, daemon=True).start()
    if not ready.wait(90):
        worker.kill()
        pytest.fail("Celery worker did not start:\n" + "".join(lines[-40:]))
    worker.log = lines
    worker.hostname = hostname
    _STARTED.append(worker)
    return worker


def start_celery_workers(queues: str, count: int, *, env: dict | None = None) -> list[subprocess.Popen]:
    """`count` real worker processes on the same queues (as `docker compose up --scale worker=N`
    runs them), started one after the other; the first purges the queues."""
    return [start_celery_worker(queues, purge=i == 0, name=f"-{i}", env=env) for i in range(count)]


def stop_celery_worker(worker: subprocess.Popen) -> None:
    worker.terminate()
    try:
        worker.wait(15)
    except subprocess.TimeoutExpired:
        worker.kill()
