"""Shared fixtures: an owner (project admin), two experts, a viewer and an outsider; API clients;
and a real Celery worker process for the integration tests."""
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from labeller.models import Role
from labeller.services import membership_set, project_create

LABELS = [
    {"key": "card_arrival", "name": "Card arrival", "shortcut": "a", "color": "#4f46e5"},
    {"key": "exchange_rate", "name": "Exchange rate", "shortcut": "b", "color": "#059669"},
    {"key": "lost_card", "name": "Lost or stolen card", "shortcut": "c", "color": "#dc2626"},
]


@pytest.fixture
def make_user(django_user_model):
    def make(username):
        return django_user_model.objects.create_user(username=username, password=f"{username}-password")

    return make


@pytest.fixture
def owner(make_user):
    return make_user("owner")


@pytest.fixture
def expert(make_user):
    return make_user("expert")


@pytest.fixture
def expert2(make_user):
    return make_user("expert2")


@pytest.fixture
def viewer(make_user):
    return make_user("viewer")


@pytest.fixture
def outsider(make_user):
    return make_user("outsider")


@pytest.fixture
def make_project(owner, expert, expert2, viewer):
    def make(name="Intents", **fields):
        project = project_create(user=owner, labels=LABELS, name=name, **fields)
        membership_set(project=project, user=expert, role=Role.EXPERT)
        membership_set(project=project, user=expert2, role=Role.EXPERT)
        membership_set(project=project, user=viewer, role=Role.VIEWER)
        return project

    return make


@pytest.fixture
def project(make_project):
    return make_project()


@pytest.fixture
def client_for():
    def make(user):
        client = APIClient()
        client.force_authenticate(user)
        return client

    return make


@pytest.fixture
def add_items():
    from labeller.models import Item

    def add(project, texts, **fields):
        return Item.objects.bulk_create(
            Item(project=project, data={"text": text}, external_id=f"ext-{i}", **fields) for i, text in enumerate(texts)
        )

    return add


def _database_url(settings_dict) -> str:
    if settings_dict["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    user = settings_dict.get("USER") or ""
    password = f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else ""
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{settings_dict['NAME']}"


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker):
    """A real `celery worker` process on the test database and the configured broker."""
    from django.conf import settings
    from django.db import connection

    env = {**os.environ, "DATABASE_URL": _database_url(connection.settings_dict), "HF_HUB_OFFLINE": "1"}
    root = Path(__file__).resolve().parent
    celery = [sys.executable, "-m", "celery", "-A", "config"]
    if not settings.CELERY_BROKER_URL.startswith("filesystem://"):
        subprocess.run(celery + ["purge", "-f", "-Q", settings.LABELLOOP_WORKER_QUEUES], env=env, cwd=root, check=True, capture_output=True)
    worker = subprocess.Popen(
        celery + ["worker", "-Q", settings.LABELLOOP_WORKER_QUEUES, "--pool=solo", "-l", "INFO",
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
    yield worker
    worker.terminate()
    try:
        worker.wait(15)
    except subprocess.TimeoutExpired:
        worker.kill()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # The real hasher costs ~0.2 s a user; tests create many.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
