"""`./labelloop run`, the real script: it says what is still encoding, its first line is its own,
and a SIGTERM stops web, worker and beat, with no 'unbound variable' on the way out.

It runs the script on its embedded default (SQLite, filesystem broker) in a fresh data folder,
whatever database the suite itself uses: about 90 s (migrate, the demo import, collectstatic)."""
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants(pid: int) -> set[int]:
    found, todo = set(), [pid]
    while todo:
        children = subprocess.run(["pgrep", "-P", str(todo.pop())], capture_output=True, text=True).stdout.split()
        found.update(int(c) for c in children)
        todo.extend(int(c) for c in children)
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_sigterm_stops_web_worker_and_beat_and_the_output_says_what_is_encoding(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "LABELLOOP_CACHE_URL")}
    env.update(LABELLOOP_DATA_DIR=str(tmp_path / "data"), PORT=str(port), LABELLOOP_DEMO_PASSWORD="demo")
    out = tmp_path / "out.txt"
    with open(out, "w") as sink:
        script = subprocess.Popen([str(ROOT / "labelloop"), "run"], cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(1)
        else:
            pytest.fail("the server did not answer:\n" + out.read_text())
        deadline = time.monotonic() + 30
        while "Encoding " not in out.read_text() and time.monotonic() < deadline:
            time.sleep(0.5)
        children = descendants(script.pid)
        assert len(children) >= 3  # gunicorn (and its workers), the celery worker (and its pool), beat
        script.send_signal(signal.SIGTERM)
        script.wait(timeout=40)
        deadline = time.monotonic() + 5
        while any(alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [pid for pid in children if alive(pid)], out.read_text()
    finally:
        if script.poll() is None:
            script.kill()
        for pid in descendants(script.pid):
            os.kill(pid, signal.SIGKILL)
    text = out.read_text()
    lines = text.splitlines()
    assert lines[0].startswith("Demo project 1 created with 2000 items"), text
    assert re.search(r"^Encoding \d+ items of project 1 \(Banking77 intents \(demo\)\) in the background", text, re.M)
    assert f"Progress: http://127.0.0.1:{port}/projects/1/" in text
    assert "unbound variable" not in text and "Warning" not in text and "No hostname" not in text
    assert "Stopping web, worker and beat" in text
