"""Schemathesis against a live server: every operation in /api/schema/ is called with generated
input (valid and invalid), then in chains that follow the schema's OpenAPI links with real ids.
The run fails on any server error, any response that does not match its documented schema, and
any status code the schema does not list. It prints how many cases ran and what failed.

The server is pytest-django's `live_server` on the real test database (SQLite or PostgreSQL,
whichever this pass runs on), so the fuzzer reaches the same code a deployment runs; nothing
leaves 127.0.0.1.
"""
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.db import connection

from models_registry import training
from models_registry.models import ModelVersion, VersionStatus

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db(transaction=True)]

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance"
# Bounded: at most MAX_EXAMPLES generated cases per operation and phase, and a time budget per
# pass that Schemathesis shares out between its phases (it keeps fuzzing until the budget is
# spent, so a pass takes its budget: about three minutes per database for both). The seed makes a
# failure reproducible with the command printed below. FUZZ_ARGS adds arguments, e.g. to
# reproduce one operation: FUZZ_ARGS="--include-path-regex /predict".
MAX_EXAMPLES = 10
SEED = 20261129
PRODUCT_SECONDS, MEMBER_SECONDS = 60, 120
# Methods a path does not document are answered 405 by DRF; checking that for every path is most
# of the coverage phase's time and none of this contract.
CONFIG = """
headers = {{ Authorization = "{authorization}" }}

[phases.coverage]
unexpected-methods = []
"""


def schemathesis_run(base: str, tmp_path: Path, name: str, authorization: str, seconds: int, *args: str) -> subprocess.CompletedProcess:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "schemathesis.toml").write_text(CONFIG.format(authorization=authorization))
    command = [str(SCHEMATHESIS), "--config-file", str(folder / "schemathesis.toml"), "--no-color", "run", f"{base}/api/schema/",
               "--checks", CHECKS, "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED), "--generation-database", "none",
               "--max-time", str(seconds), "--request-timeout", "60",  # two cores shared with the rest of the suite: slow is not wrong here
               *args, *shlex.split(os.environ.get("FUZZ_ARGS", ""))]
    started = time.monotonic()
    # In its own folder: Schemathesis keeps a crash cache in its working folder; each run starts clean.
    run = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=folder, env={**os.environ, "NO_COLOR": "1"})
    print(f"== {name}: schemathesis {' '.join(command[4:])}", run.stdout, run.stderr,
          f"== {name}: wall time {time.monotonic() - started:.0f} s", sep="\n")
    return run


def test_the_api_keeps_its_documented_contract_under_fuzzing(live_server, served_project, owner, add_items, tmp_path, capsys):
    add_items(served_project, ["where is my new card", "what rate do you give for euros", "someone took my wallet"])
    base = live_server.url
    user_token = requests.post(f"{base}/api/auth/token", data={"username": owner.username, "password": "owner-password"}).json()["token"]
    created = requests.post(f"{base}/api/projects/{served_project.id}/tokens/", json={"name": "fuzzer", "scopes": ["predict", "feedback"]},
                            headers={"Authorization": f"Token {user_token}"})
    assert created.status_code == 201, created.text
    # The first prediction loads the champion into this process; done here, not in a fuzzed request.
    warm = requests.post(f"{base}/api/projects/{served_project.id}/predict", json={"data": {"text": "lost my card"}},
                         headers={"Authorization": f"Bearer {created.json()['token']}"})
    assert warm.status_code == 200, warm.text

    try:
        product, member = fuzz(base, tmp_path, user_token=user_token, project_token=created.json()["token"])
    finally:
        # A Celery worker started by an earlier test lives for the session: it must not go on
        # training the versions the fuzzer queued once this test's rows are gone.
        for version in ModelVersion.objects.filter(status__in=[VersionStatus.QUEUED, VersionStatus.TRAINING]):
            training.version_cancel(version=version)
    with capsys.disabled():  # the figures, in the suite's own output: cases run and failures, per pass
        for name, run in (("project token", product), ("user token", member)):
            summary = re.findall(r"^\s*(\d+ generated.*)$", run.stdout, re.MULTILINE)
            print(f"\nSchemathesis, {connection.vendor}, {name}: {summary[-1] if summary else 'no summary'}")
    assert product.returncode == 0 and member.returncode == 0, "Schemathesis found failures (above)"


def fuzz(base: str, tmp_path: Path, *, user_token: str, project_token: str):
    # First the product endpoints with the project token, as product backends call them: the
    # second pass, an admin's, may revoke that token (it lists and deletes tokens with real ids).
    product = schemathesis_run(base, tmp_path, "project token", f"Bearer {project_token}", PRODUCT_SECONDS,
                               "--include-path-regex", "/(predict|feedback)$")
    # Then every operation with the admin's user token (members may call predict and feedback too).
    # Logging out revokes the token the fuzzer calls with (every later call a 401): those two
    # routes are left to tests/test_authorization_matrix.py and labeller/tests/test_auth_tokens.py.
    member = schemathesis_run(base, tmp_path, "user token", f"Token {user_token}", MEMBER_SECONDS,
                              "--exclude-path-regex", "^/api/auth/logout")
    return product, member
