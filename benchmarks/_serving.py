"""Helpers shared by the HTTP serving benchmarks (benchmarks/predict.py, benchmarks/feedback_ingest.py).

Not a benchmark itself. What it gives the scripts:

- `configure`: the benchmark's own database, data dir, broker and cache, set in os.environ so that
  this process and every child (gunicorn, celery) read the same settings, as the app does;
- `served_project`: a Banking77 project whose labelled items are written with the ORM, with a head
  version trained and promoted to champion by the registry's own services;
- `Gunicorn` and `CeleryWorker`: real processes, each started in its own process group so the
  scripts can kill them mid-run (SIGKILL) and always clean up every group they started;
- a load generator of threads, each with one keep-alive `http.client` connection. `paced` sends
  at a fixed rate and measures each latency from the request's *scheduled* send time, so a server
  that stalls is charged for every request it delayed (no coordinated omission); `closed_loop`
  keeps N clients busy back to back, for throughput;
- `CpuMeter`: CPU seconds from /proc of the server, the worker, this process, the PostgreSQL
  backends of the benchmark database and the whole machine, so a slow server can be told from a
  busy shared machine.
"""
from __future__ import annotations

import http.client
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import unquote, urlparse

from benchmarks import _common

ROOT = _common.REPO_ROOT
OUT_DIR = ROOT / "benchmarks" / "out"
DEFAULT_DATA_DIR = "/tmp/bench-serving"
DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/labelloop_bench_serving"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/12"
_TICK = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------------------------
# Settings


def configure(*, database_url: str | None, data_dir: str, broker_url: str | None = None, cache_url: str | None = None,
              fresh: bool = True) -> str:
    """Settings for this process and its children; a fresh database and data dir unless `fresh` is
    off. Returns the database URL (SQLite in the data dir when none is given)."""
    data = Path(data_dir)
    if fresh:
        for sub in ("artefacts", "broker", "exports"):
            shutil.rmtree(data / sub, ignore_errors=True)
    data.mkdir(parents=True, exist_ok=True)
    url = database_url or f"sqlite:///{data / 'labelloop.sqlite3'}"
    os.environ.update({
        "DATABASE_URL": url, "LABELLOOP_DATA_DIR": str(data), "DJANGO_SETTINGS_MODULE": "config.settings",
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING"),
        # gunicorn is called on 127.0.0.1; the in-process breakdown uses Django's test client.
        "ALLOWED_HOSTS": "localhost,127.0.0.1,testserver",
        # The benchmarks measure the server, not the per-token throttle (default 100/s).
        "LABELLOOP_TOKEN_RATE": os.environ.get("LABELLOOP_TOKEN_RATE", "100000/s"),
    })
    for name, value in (("CELERY_BROKER_URL", broker_url), ("LABELLOOP_CACHE_URL", cache_url)):
        if value:
            os.environ[name] = value
        else:
            os.environ.pop(name, None)
    os.environ.pop("CELERY_TASK_ALWAYS_EAGER", None)
    if broker_url and broker_url.startswith("redis") and fresh:
        import redis

        redis.Redis.from_url(broker_url).flushdb()  # the benchmark's own Redis database: old tasks, counters
    return _common.setup_django(url, recreate=fresh)


def database_name(url: str) -> str:
    return unquote(urlparse(url).path.lstrip("/"))


# --------------------------------------------------------------------------------------------
# A served project


def banking77_rows(name: str) -> list[dict]:
    import csv

    with open(_common.BANKING77_DIR / name, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def request_texts(limit: int | None = None) -> tuple[list[str], str]:
    """Texts to send: Banking77's test.csv (train.csv if it is missing)."""
    for name in ("test.csv", "train.csv"):
        if (_common.BANKING77_DIR / name).exists():
            texts = [r["text"] for r in banking77_rows(name)]
            return (texts[:limit] if limit else texts), name
    return [f"synthetic question {i} about my card" for i in range(limit or 1000)], "synthetic"


@dataclass
class Served:
    project: object
    version: object
    owner: object
    intents: list[str]
    timings: dict = field(default_factory=dict)


def served_project(*, name: str, intents: int, per_intent: int, eval_every: int = 5) -> Served:
    """A project with `intents` Banking77 intents and `per_intent` labelled training queries each
    (every `eval_every`-th item in the evaluation set), a head version trained on them and promoted
    to champion, as the feedback tests set it up (feedback/tests/conftest.py)."""
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from labeller.models import Annotation, AnnotationSource, Item
    from labeller.services import project_create
    from models_registry import promotion, serving, training

    timings = {}
    started = time.perf_counter()
    chosen, counts = [], {}
    rows = banking77_rows("train.csv")
    keys = list(dict.fromkeys(r["category"] for r in rows))[:intents]
    wanted = set(keys)
    for row in rows:
        if row["category"] in wanted and counts.get(row["category"], 0) < per_intent:
            counts[row["category"]] = counts.get(row["category"], 0) + 1
            chosen.append(row)
    owner, _ = get_user_model().objects.get_or_create(username="bench_serving_owner")
    with transaction.atomic():
        project = project_create(user=owner, labels=[{"key": k, "name": k.replace("_", " ")} for k in keys], name=name,
                                 eval_share=1 / eval_every)
        items = Item.objects.bulk_create(
            Item(project=project, data={"text": r["text"]}, external_id=f"train-{i}", is_eval=i % eval_every == 0,
                 annotation_count=1, is_done=True) for i, r in enumerate(chosen))
        Annotation.objects.bulk_create(
            Annotation(item=item, project=project, annotator=owner, labels=[r["category"]], source=AnnotationSource.EXPERT)
            for item, r in zip(items, chosen))
    timings["items + annotations (ORM)"] = time.perf_counter() - started
    t = time.perf_counter()
    (version,) = training.retrain_request(project=project, kinds=["head"])
    version = training.version_train(version=training.version_claim(version_id=version.id))
    version.refresh_from_db()
    timings["train head"] = time.perf_counter() - t
    promotion.version_promote(version=version, user=owner, reason="benchmark champion", override=True)
    serving.forget_aliases()
    timings["total"] = time.perf_counter() - started
    return Served(project, version, owner, keys, timings)


def make_token(project, scopes: list[str], name: str, trusted: bool = False) -> str:
    from feedback.tokens import token_create

    _, plain = token_create(project=project, name=name, scopes=scopes, trusted=trusted)
    return plain


# --------------------------------------------------------------------------------------------
# Processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    out = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out.extend(int(x) for x in f.read().split())
    except OSError:
        pass
    return out


def process_tree(pid: int) -> list[int]:
    seen, todo = [], [pid]
    while todo:
        p = todo.pop()
        if os.path.exists(f"/proc/{p}"):
            seen.append(p)
            todo.extend(_children(p))
    return seen


def proc_cpu(pid: int) -> float:
    """CPU seconds a process has used (0 if gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK
    except (OSError, IndexError, ValueError):
        return 0.0


def rss_mib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Group:
    """A child process started in its own session (process group), logging to a file."""

    _all: list["Group"] = []

    def __init__(self, name: str, argv: list[str], log_path: Path):
        self.name, self.argv, self.log_path = name, argv, log_path
        self.proc: subprocess.Popen | None = None
        self.pgids: list[int] = []  # every group this object started (restarts leave orphans behind)
        Group._all.append(self)

    def start(self) -> None:
        log = open(self.log_path, "a")
        log.write(f"\n==== {time.strftime('%H:%M:%S')} start: {' '.join(self.argv)}\n")
        log.flush()
        self.proc = subprocess.Popen(self.argv, cwd=ROOT, env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
        self.pgids.append(self.proc.pid)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def pids(self) -> list[int]:
        return process_tree(self.proc.pid) if self.proc and self.proc.poll() is None else []

    def group_alive(self, pgid: int) -> bool:
        try:
            os.killpg(pgid, 0)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            return True

    def kill_group(self, sig=signal.SIGKILL) -> None:
        """Signal the current group: the main process and all its children at once."""
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass
        self.proc.wait()

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM every group this object started, then SIGKILL whatever is left."""
        for pgid in self.pgids:
            if self.group_alive(pgid):
                try:
                    os.killpg(pgid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + timeout
        for pgid in self.pgids:
            while self.group_alive(pgid) and time.monotonic() < deadline:
                if self.proc and self.proc.pid == pgid:
                    try:
                        self.proc.wait(0.1)
                    except subprocess.TimeoutExpired:
                        pass
                else:
                    time.sleep(0.1)
            if self.group_alive(pgid):
                try:
                    os.killpg(pgid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self.proc:
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass

    @classmethod
    def stop_all(cls) -> None:
        for group in cls._all:
            try:
                group.stop()
            except Exception as exc:  # clean up the rest whatever happens
                print(f"warning: stopping {group.name}: {exc}", file=sys.stderr)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "".join(self.log_path.read_text(errors="replace").splitlines(True)[-lines:])
        except OSError:
            return ""


class Gunicorn(Group):
    """`gunicorn config.wsgi` on 127.0.0.1:<port>, as ./labelloop runs it, with the chosen workers and threads."""

    def __init__(self, *, port: int, workers: int, threads: int, log_path: Path, timeout: int = 120):
        self.port, self.workers, self.threads = port, workers, threads
        argv = [sys.executable, "-m", "gunicorn", "config.wsgi", "-b", f"127.0.0.1:{port}", "-w", str(workers),
                "--threads", str(threads), "--timeout", str(timeout), "--graceful-timeout", "10"]
        super().__init__(f"gunicorn :{port}", argv, log_path)

    @property
    def config(self) -> str:
        kind = "gthread" if self.threads > 1 else "sync"
        return f"-w {self.workers} --threads {self.threads} ({kind})"

    def worker_pids(self) -> list[int]:
        return _children(self.proc.pid) if self.proc and self.proc.poll() is None else []

    def wait_ready(self, timeout: float = 90.0) -> float:
        """Seconds until the server answers HTTP (any status)."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/api/")
                conn.getresponse().read()
                conn.close()
                return time.monotonic() - started
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"gunicorn did not answer in {timeout} s:\n{self.log_tail()}")


class CeleryWorker(Group):
    """`celery -A config worker -Q <queues>` (prefork), logging to a file."""

    def __init__(self, *, queues: str, concurrency: int, log_path: Path, name: str = "bench-serving"):
        argv = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queues, "-c", str(concurrency),
                "-l", "INFO", "-n", f"{name}-{os.getpid()}@%h", "--without-gossip", "--without-mingle"]
        super().__init__(f"celery worker {queues}", argv, log_path)

    def wait_ready(self, timeout: float = 90.0) -> float:
        started = time.monotonic()
        size = self.log_path.stat().st_size if self.log_path.exists() else 0
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"celery worker exited with {self.proc.returncode}:\n{self.log_tail()}")
            with open(self.log_path, errors="replace") as f:
                f.seek(size)
                if " ready." in f.read():
                    return time.monotonic() - started
            time.sleep(0.1)
        raise RuntimeError(f"celery worker not ready in {timeout} s:\n{self.log_tail()}")


# --------------------------------------------------------------------------------------------
# Load generation


class Http:
    """One keep-alive connection to the server. A request that fails on a *reused* connection
    before any answer came back (the server had closed it) is sent once more on a new one; every
    other failure raises."""

    def __init__(self, port: int, headers: dict[str, str], timeout: float = 60.0):
        self.port, self.headers, self.timeout = port, headers, timeout
        self.conn: http.client.HTTPConnection | None = None
        self.reconnects = 0

    def post(self, path: str, body: bytes, headers: dict | None = None) -> tuple[int, bytes]:
        all_headers = {**self.headers, "Content-Type": "application/json", **(headers or {})}
        for attempt in (0, 1):
            reused = self.conn is not None and self.conn.sock is not None
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            try:
                self.conn.request("POST", path, body=body, headers=all_headers)
                response = self.conn.getresponse()
                data = response.read()
                if response.will_close:
                    self.close()
                return response.status, data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self.close()
                if not reused or attempt:
                    raise
                self.reconnects += 1
            except (OSError, http.client.HTTPException):
                self.close()
                raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


@dataclass
class Result:
    scheduled: float  # monotonic time the request was due (paced) or started (closed loop)
    sent: float
    done: float
    status: int  # 0: no HTTP answer (connection error, timeout)
    error: str = ""
    units: int = 1  # items or events in the request
    extra: dict | None = None

    @property
    def latency(self) -> float:
        """From the scheduled send time: includes any wait for a free client thread."""
        return self.done - self.scheduled

    @property
    def service(self) -> float:
        return self.done - self.sent


Send = Callable[[Http, int], tuple[int, int, dict | None]]  # (client, request number) -> (status, units, extra)


def _run(send: Send, client: Http, i: int, scheduled: float, out: list) -> None:
    sent = time.monotonic()
    try:
        status, units, extra = send(client, i)
        out.append(Result(scheduled, sent, time.monotonic(), status, units=units, extra=extra))
    except Exception as exc:  # noqa: BLE001 - counted as an error, with its name
        out.append(Result(scheduled, sent, time.monotonic(), 0, f"{type(exc).__name__}: {exc}"[:200]))


def paced(*, port: int, headers: dict, rate: float, seconds: float, threads: int, send: Send) -> list[Result]:
    """Open-loop load: request i is due at t0 + i/rate; the next free thread takes the next due
    request, sleeps until it is due, sends it. Latency is counted from the due time."""
    total = max(1, int(rate * seconds))
    counter = itertools.count()
    lock = threading.Lock()
    results: list[Result] = []
    t0 = time.monotonic() + 0.1

    def loop():
        client = Http(port, headers)
        mine: list[Result] = []
        while True:
            with lock:
                i = next(counter)
            if i >= total:
                break
            due = t0 + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            _run(send, client, i, due, mine)
        client.close()
        with lock:
            results.extend(mine)

    _run_threads(loop, threads)
    results.sort(key=lambda r: r.scheduled)
    return results


def _run_threads(target, n: int) -> None:
    workers = [threading.Thread(target=target, daemon=True) for _ in range(n)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def closed_loop(*, port: int, headers: dict, clients: int, seconds: float, send: Send) -> tuple[list[Result], float]:
    """`clients` threads, each sending its next request as soon as the last one is answered, until
    `seconds` have passed. Returns the results and the wall time (first send to last answer)."""
    counter = itertools.count()
    lock = threading.Lock()
    results: list[Result] = []
    start = time.monotonic()
    deadline = start + seconds

    def loop():
        client = Http(port, headers)
        mine: list[Result] = []
        while time.monotonic() < deadline:
            with lock:
                i = next(counter)
            now = time.monotonic()
            _run(send, client, i, now, mine)
        client.close()
        with lock:
            results.extend(mine)

    _run_threads(loop, clients)
    return results, time.monotonic() - start


def summary(results: list[Result], *, ok=(200, 201)) -> dict:
    """Latency percentiles (ms) of the answered-OK requests, from their scheduled times, and counts."""
    good = sorted(r.latency * 1000 for r in results if r.status in ok)
    service = sorted(r.service * 1000 for r in results if r.status in ok)
    lag = sorted((r.sent - r.scheduled) * 1000 for r in results)
    errors: dict[str, int] = {}
    for r in results:
        if r.status not in ok:
            key = str(r.status) if r.status else (r.error.split(":")[0] or "error")
            errors[key] = errors.get(key, 0) + 1
    p = _common.percentile
    return {
        "requests": len(results), "ok": len(good), "errors": sum(errors.values()), "error_kinds": errors,
        "p50_ms": round(p(good, .50), 2), "p95_ms": round(p(good, .95), 2), "p99_ms": round(p(good, .99), 2),
        "max_ms": round(good[-1], 2) if good else 0.0, "mean_ms": round(sum(good) / len(good), 2) if good else 0.0,
        "service_p50_ms": round(p(service, .50), 2), "service_p99_ms": round(p(service, .99), 2),
        "send_lag_p99_ms": round(p(lag, .99), 2), "send_lag_max_ms": round(lag[-1], 2) if lag else 0.0,
    }


def latency_row(name: str, s: dict) -> str:
    return (f"{name:<34} n={s['requests']:<6} ok={s['ok']:<6} err={s['errors']:<4} p50={s['p50_ms']:7.2f}  "
            f"p95={s['p95_ms']:7.2f}  p99={s['p99_ms']:7.2f}  max={s['max_ms']:8.2f} ms")


def first_error(results: list[Result]) -> str:
    for r in results:
        if r.status not in (200, 201):
            return f"status {r.status} {r.error} {json.dumps(r.extra)[:300] if r.extra else ''}"
    return ""


# --------------------------------------------------------------------------------------------
# CPU accounting


def _machine_busy() -> float:
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / _TICK


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system


def postgres_backends(dbname: str) -> list[int]:
    """PIDs of the PostgreSQL backends connected to `dbname` (from their process titles)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                title = f.read().decode(errors="replace")
        except OSError:
            continue
        if title.startswith("postgres: ") and f" {dbname} " in title:
            out.append(int(entry))
    return out


class CpuMeter:
    """CPU seconds used between `start()` and `stop()` by the groups given, this process, the
    PostgreSQL backends of the benchmark database, and the whole machine."""

    def __init__(self, groups: dict[str, Group], dbname: str | None):
        self.groups, self.dbname = groups, dbname

    def _sample(self) -> dict[str, dict[int, float]]:
        sample = {name: {pid: proc_cpu(pid) for pid in group.pids()} for name, group in self.groups.items()}
        if self.dbname:
            sample["postgres"] = {pid: proc_cpu(pid) for pid in postgres_backends(self.dbname)}
        return sample

    def start(self) -> None:
        self.t0, self.busy0, self.own0, self.s0 = time.monotonic(), _machine_busy(), _own_cpu(), self._sample()
        self.load0 = os.getloadavg()[0]

    def stop(self) -> dict:
        s1, wall = self._sample(), time.monotonic() - self.t0
        used = {"wall_s": round(wall, 2), "cores": os.cpu_count(), "machine_busy": round(_machine_busy() - self.busy0, 2),
                "load_generator": round(_own_cpu() - self.own0, 2)}
        for name, now in s1.items():
            before = self.s0.get(name, {})
            used[name] = round(sum(cpu - before.get(pid, 0.0) for pid, cpu in now.items()), 2)
        known = sum(v for k, v in used.items() if k not in ("wall_s", "cores", "machine_busy"))
        used["everything_else"] = round(max(0.0, used["machine_busy"] - known), 2)
        used["load_average_at_start"] = round(self.load0, 2)
        return used


def cpu_line(cpu: dict, per: int | None = None, unit: str = "request") -> str:
    parts = [f"{k} {v:.1f}" for k, v in cpu.items() if k not in ("wall_s", "cores", "machine_busy", "load_average_at_start")]
    line = (f"  CPU core-s over {cpu['wall_s']:.1f} s ({cpu['cores']} cores = {cpu['cores'] * cpu['wall_s']:.1f} available): "
            f"machine busy {cpu['machine_busy']:.1f} = " + ", ".join(parts) + f" (1-min load at start {cpu['load_average_at_start']})")
    if per:
        known = {k: v for k, v in cpu.items() if k in ("gunicorn", "postgres")}
        line += "\n  per " + unit + ": " + ", ".join(f"{k} {v / per * 1000:.2f} ms" for k, v in known.items())
    return line


def write_json(name: str, figures: dict) -> Path:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / name
    path.write_text(json.dumps(figures, indent=2, default=str))
    return path
