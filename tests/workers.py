"""Real Celery worker processes for the integration tests."""
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest


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
