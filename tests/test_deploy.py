"""Production defaults that let no one in: compose creates no user and publishes nothing but the web
port on loopback, Django's deploy check is clean with compose's environment, the image runs as an
unprivileged user, carries no local state and installs only the hash-locked runtime dependencies,
the secret key is private from its first byte, and the API docs work with no internet."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.contrib.auth import get_user_model
from django.core.management import call_command

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def compose_environment() -> dict[str, str]:
    return {name: str(value) for name, value in COMPOSE["x-app"]["environment"].items()}


def test_compose_creates_no_user_and_runs_no_demo():
    for name, service in COMPOSE["services"].items():
        command = service.get("command", "")
        command = " ".join(command) if isinstance(command, list) else command
        assert "seed_demo" not in command and "createsuperuser" not in command, name
        assert "LABELLOOP_DEMO_PASSWORD" not in service.get("environment", {}), name
    assert "LABELLOOP_DEMO_PASSWORD" not in compose_environment()


def test_compose_publishes_only_the_web_port_on_loopback():
    published = {name: service["ports"] for name, service in COMPOSE["services"].items() if service.get("ports")}
    assert published == {"web": ["127.0.0.1:8000:8000"]}


def compose_queues() -> dict[str, set[str]]:
    """Each compose service that runs a Celery worker, and the queues it consumes (-Q)."""
    out = {}
    for name, service in COMPOSE["services"].items():
        command = service.get("command", "")
        command = " ".join(command) if isinstance(command, list) else command
        if "celery" in command and " worker " in command:
            out[name] = set(re.search(r"-Q (\S+)", command).group(1).split(","))
    return out


def test_compose_workers_consume_every_routed_queue_and_training_has_workers_of_its_own(settings):
    queues = compose_queues()
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()} | {settings.CELERY_TASK_DEFAULT_QUEUE}
    assert set().union(*queues.values()) == routed == set(settings.LABELLOOP_WORKER_QUEUES.split(","))
    assert [name for name, consumed in queues.items() if "training" in consumed] == ["training-worker"]
    assert queues["training-worker"] == {"training"}
    assert "encode" in queues["worker"]  # `docker compose up --scale worker=N` spreads encoding over N


def test_the_deploy_check_with_composes_environment_reports_nothing(tmp_path):
    # Only what a container has: not the test process's variables (the browser tests set one the
    # deploy check rightly flags).
    environment = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "HF_HUB_OFFLINE": "1",
                   **compose_environment(), "LABELLOOP_DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "config.settings"}
    checked = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                             cwd=ROOT, env=environment, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "System check identified no issues" in checked.stdout


def test_the_embedded_default_is_plain_http_for_a_local_run(settings):
    # `./labelloop run` serves http://127.0.0.1: secure-only cookies would make logging in impossible.
    assert not settings.SESSION_COOKIE_SECURE and not settings.SECURE_SSL_REDIRECT and settings.SECURE_HSTS_SECONDS == 0


def test_the_image_runs_as_an_unprivileged_user():
    dockerfile = (ROOT / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.MULTILINE)
    assert users and users[-1] not in ("root", "0", "0:0")
    assert dockerfile.rindex("USER ") < dockerfile.index("CMD ")


def test_the_image_carries_no_local_state():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".git", ".venv", "data", ".test-data"} <= ignored


LOCKS = ("requirements.txt", "requirements-dev.txt")
# Packages only the tests and benchmarks use: none of them belongs in the image.
TEST_AND_BENCHMARK_ONLY = {"pytest", "pytest-django", "playwright", "moto", "flask", "flask-cors", "schemathesis",
                           "hypothesis", "responses", "matplotlib", "import-linter"}


def package_name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", re.split(r"[=<>!~\[;\s]", requirement, maxsplit=1)[0]).lower()


def lock_entries(lock: str) -> dict[str, tuple[str, list[str]]]:
    """{package: (its requirement line, the options under it)} of a pip-compile lock file."""
    entries: dict[str, tuple[str, list[str]]] = {}
    options: list[str] = []
    for line in (ROOT / lock).read_text().splitlines():
        text = line.strip().removesuffix("\\").strip()
        if not text or text.startswith("#"):
            continue
        if line[0].isspace():
            options.append(text)
        else:
            options = []
            entries[package_name(text)] = (text, options)
    return entries


def test_the_image_installs_the_runtime_lock_only():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.findall(r"(?:-r|--requirement)\s+(\S+)", dockerfile) == ["requirements.txt"]
    assert re.findall(r"^COPY\s+requirements\S*", dockerfile, re.MULTILINE) == ["COPY requirements.txt"]


@pytest.mark.parametrize("lock", LOCKS)
def test_every_locked_package_is_pinned_with_its_hashes(lock):
    entries = lock_entries(lock)
    assert len(entries) > 50
    for package, (requirement, options) in entries.items():
        assert re.fullmatch(r"[a-z0-9][a-z0-9._-]*==[^\s=]+", requirement), requirement
        assert options and all(re.fullmatch(r"--hash=sha256:[0-9a-f]{64}", option) for option in options), package


def test_the_dev_lock_holds_the_runtime_lock_unchanged():
    runtime, dev = (lock_entries(lock) for lock in LOCKS)
    assert {package: dev.get(package) for package in runtime} == runtime


def test_torch_stays_pinned_to_its_cpu_build():
    declared = [line.split("#")[0].strip() for line in (ROOT / "requirements.in").read_text().splitlines()]
    assert "torch==2.13.0" in declared
    assert lock_entries("requirements.txt")["torch"][0] == "torch==2.13.0+cpu"


def test_the_runtime_lock_carries_no_test_or_benchmark_package():
    runtime, dev = (set(lock_entries(lock)) for lock in LOCKS)
    assert not TEST_AND_BENCHMARK_ONLY & runtime
    assert TEST_AND_BENCHMARK_ONLY <= dev


@pytest.mark.django_db
def test_the_demo_user_never_gets_a_known_password(monkeypatch, capsys):
    monkeypatch.delenv("LABELLOOP_DEMO_PASSWORD", raising=False)
    monkeypatch.delenv("LABELLOOP_DEMO_USER", raising=False)
    call_command("seed_demo")
    demo = get_user_model().objects.get(username="demo")
    assert not demo.check_password("demo")
    printed = re.search(r"log in as demo / (\S+)", capsys.readouterr().out).group(1)
    assert len(printed) >= 16 and demo.check_password(printed)


def test_processes_starting_together_share_one_private_secret_key(tmp_path):
    """Web, worker and beat start at once on a new data folder: one key, mode 0600, even under umask 0."""
    code = "from django.conf import settings; print(settings.SECRET_KEY)"
    environment = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    environment.update(LABELLOOP_DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="config.settings")
    starts = [subprocess.Popen([sys.executable, "-c", f"import os; os.umask(0); import django; django.setup(); {code}"],
                               cwd=ROOT, env=environment, stdout=subprocess.PIPE, text=True) for _ in range(6)]
    keys = {process.communicate(timeout=120)[0].strip() for process in starts}
    assert len(keys) == 1 and len(keys.pop()) >= 50
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir() if "secret_key" in p.name] == ["secret_key"]  # no temporary left


@pytest.mark.django_db
def test_the_api_docs_load_every_asset_from_this_server(client, owner):
    client.force_login(owner)
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    assert not [a for a in assets if re.match(r"(https?:)?//", a)], assets
    scripts = [a for a in assets if a.endswith(".js")]
    assert any("swagger-ui-bundle" in a for a in scripts)
    for asset in scripts:
        assert client.get(asset).status_code == 200, asset


@pytest.mark.django_db
def test_the_schema_describes_both_ways_to_authenticate(client, owner):
    client.force_login(owner)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["knoxApiToken"]["in"] == "header" and "Token" in schemes["knoxApiToken"]["description"]
    assert schemes["projectToken"] == {**schemes["projectToken"], "type": "http", "scheme": "bearer", "bearerFormat": "ll_…"}
    predict = schema["paths"]["/api/projects/{project_id}/predict"]["post"]
    assert {"projectToken": []} in predict["security"]
