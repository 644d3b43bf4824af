"""Feedback API benchmark: POST /api/projects/<id>/feedback through a real gunicorn, over HTTP, on
PostgreSQL, with a real Celery worker routing the events.

Set-up (printed with its times): a fresh database, a project with the 77 Banking77 intents and
--per-intent (default 20) labelled training queries each, written with the ORM; a head version
trained by the registry's services and promoted to champion; --predictions (default 500)
predictions made by the predict service, in process (every other one with an external id); a
project token with the feedback scope. Every event names a unique pseudonymous end user; three
in four refer to one of those predictions (a confirmation, a correction or a rejection), one in
four carries the item's data and its own external id instead (a correction). Each request sends a
new Idempotency-Key, as the API's clients are asked to. Then a gunicorn (--config, default "3x4":
`-w 3 --threads 4`, gthread, as docker-compose runs it) is started on a free port and, after a warm-up:

  1. bulk ingest: batches of --bulk (default 1000) events, back to back, with 1, 2 and then 4
     concurrent clients for --bulk-seconds (default 20) each: events/s. Target >= 5,000 events/s.
     No worker runs here: the events stay pending, routing is measured in phase 3.
  2. single event at a fixed --rate (default 200 requests/s) for --seconds (default 30), from a
     pool of client threads, after a CHECKPOINT and a VACUUM of phase 1's rows (which would
     otherwise run in the middle of this phase); each latency is measured from the request's *scheduled* send time
     (no coordinated omission). p50, p95, p99, max and errors. Target p99 <= 50 ms.
  3. durability, for --durability-seconds (default 60): the events of phases 1 and 2 are deleted
     and the routing queue purged; a Celery worker on the route_feedback task's queue (`default`)
     is started; single events at --durability-rate (default 50/s) and batches of
     --durability-batch (default 200) events at 1/s flow. At 20% of the phase the worker is
     killed (SIGKILL, its whole process group); at 40% gunicorn is killed (master and workers)
     and started again; at 60% the worker is started again. Clients follow the API's contract: a
     request whose connection failed, or that got a 5xx or a 409 ("still in progress"), is sent
     again with the SAME Idempotency-Key until it is acknowledged (or --retry-timeout passes).
     Then: events acknowledged (2xx) against events in the database, by their end-user ids:
     lost (must be 0), stored twice (must be 0), stored but never acknowledged; how long the
     restarted worker took to route the backlog left by the dead one (target <= 30 s), how
     long until every event was routed (status no longer pending) after the last answer, and at
     what rate the worker routes once the load has stopped.

Phases 1 and 2 also print where the machine's CPU went (gunicorn, the PostgreSQL backends, this
load generator, everything else). Last, an in-process breakdown of a single event (without and
with an Idempotency-Key) and of a bulk batch through Django's test client (the same view, no
gunicorn) splits a request into checking (events_check), storing (events_store) and the rest
(authentication, throttle, idempotency, commit, DRF, JSON), each with its database time.

Figures go to benchmarks/out/feedback_ingest.json (or --json). The exit status is 1 if an
acknowledged event is missing from the database, an event is stored twice, or a request of
phase 1 or 2 failed.

Run (from the repository root; PostgreSQL and Redis on 127.0.0.1):
  .venv/bin/python benchmarks/feedback_ingest.py                 # all three phases, ~6-9 min
  .venv/bin/python benchmarks/feedback_ingest.py --quick         # smoke run, ~1.5-2.5 min
  .venv/bin/python benchmarks/feedback_ingest.py --config 2x1 --rate 100

The database named by --database-url (default labelloop_bench_feedback) is dropped and created
again on each run; the broker (Redis database 9) and the cache (Redis database 8: throttle
counters, the routing debounce, shared by every process as in production) are flushed.
--data-dir (default /tmp/bench-feedback) holds the model artefacts and the server and worker logs.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import json  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from datetime import datetime, timedelta, timezone  # noqa: E402
from urllib.parse import urlparse  # noqa: E402

from benchmarks import _common, _serving  # noqa: E402

TARGET_EVENTS_S, TARGET_P99_MS, TARGET_ROUTED_S = 5000.0, 50.0, 30.0
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/labelloop_bench_feedback"
KINDS = ("confirmation", "correction", "rejection")
FORBIDDEN_DATABASES = {"test", "test_test"}  # the test suites' databases
FORBIDDEN_REDIS_DBS = {13, 14, 15}  # the test suites' brokers


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--database-url", default=DEFAULT_DATABASE_URL, help=f"default {DEFAULT_DATABASE_URL} (dropped and created again)")
    p.add_argument("--data-dir", default="/tmp/bench-feedback")
    p.add_argument("--broker-url", default="redis://127.0.0.1:6379/9", help="CELERY_BROKER_URL (default Redis db 9; flushed)")
    p.add_argument("--cache-url", default="redis://127.0.0.1:6379/8", help="LABELLOOP_CACHE_URL (default Redis db 8; flushed)")
    p.add_argument("--config", default="3x4", help="gunicorn WORKERSxTHREADS (default 3x4)")
    p.add_argument("--per-intent", type=int, default=20, help="labelled queries per intent (default 20)")
    p.add_argument("--intents", type=int, default=77)
    p.add_argument("--predictions", type=int, default=500, help="predictions the events refer to (default 500)")
    p.add_argument("--bulk", type=int, default=1000, help="events per bulk request (default 1000)")
    p.add_argument("--bulk-seconds", type=float, default=20.0, help="length of each bulk phase (default 20)")
    p.add_argument("--rate", type=float, default=200.0, help="single-event requests per second (default 200)")
    p.add_argument("--seconds", type=float, default=30.0, help="single-event phase length (default 30)")
    p.add_argument("--threads", type=int, default=16, help="client threads of the paced phases (default 16)")
    p.add_argument("--durability-seconds", type=float, default=60.0, help="durability phase length (default 60)")
    p.add_argument("--durability-rate", type=float, default=50.0, help="single events per second in phase 3 (default 50)")
    p.add_argument("--durability-batch", type=int, default=200, help="events per batch in phase 3, one batch a second (default 200)")
    p.add_argument("--worker-concurrency", type=int, default=2, help="routing worker processes (default 2)")
    p.add_argument("--retry-timeout", type=float, default=180.0,
                   help="a client gives a request up after this many seconds of retries (default 180: above the "
                        "2-minute life of a crashed request's in-flight key)")
    p.add_argument("--drain-timeout", type=float, default=60.0, help="wait this long for every event to be routed (default 60)")
    p.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds (default 3)")
    p.add_argument("--no-breakdown", action="store_true", help="skip the in-process time breakdown")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 6-8 s phases, a 20 s durability phase, 5 per intent, retries given up after 30 s")
    p.add_argument("--json", default="feedback_ingest.json", help="file name in benchmarks/out (default feedback_ingest.json)")
    _common.add_dataset_flag(p)
    args = p.parse_args()
    _common.use_dataset(args)
    if args.quick:
        args.bulk_seconds, args.seconds, args.durability_seconds, args.warmup = 6.0, 8.0, 20.0, 2.0
        args.per_intent, args.predictions = min(args.per_intent, 5), min(args.predictions, 200)
        args.drain_timeout = min(args.drain_timeout, 20.0)
        if args.retry_timeout == p.get_default("retry_timeout"):
            args.retry_timeout = 30.0  # below the app's 2 minutes: a request killed in flight may be given up
    refuse_shared_stores(args)
    return args


def refuse_shared_stores(args) -> None:
    """This script drops its database and flushes its Redis databases: never the test suites' ones."""
    if _serving.database_name(args.database_url) in FORBIDDEN_DATABASES:
        sys.exit(f"refusing --database-url {args.database_url}: the test suites use that database, and this script drops it")
    for name in ("broker_url", "cache_url"):
        url = getattr(args, name)
        if url.startswith("redis") and int(urlparse(url).path.lstrip("/") or 0) in FORBIDDEN_REDIS_DBS:
            sys.exit(f"refusing --{name.replace('_', '-')} {url}: Redis databases 13-15 belong to the test suites")
    if urlparse(args.broker_url).path == urlparse(args.cache_url).path:
        sys.exit("--broker-url and --cache-url must name different Redis databases")


# --------------------------------------------------------------------------------------------
# Events and requests


def make_predictions(served, texts: list[str], n: int) -> list[dict]:
    """`n` predictions from the predict service, in process; every other one with an external id."""
    from feedback import predicting

    out = []
    for start in range(0, n, 256):
        items = [{"data": {"text": texts[i % len(texts)]}, "external_id": f"p-{i}" if i % 2 == 0 else "", "key": f"user-{i}"}
                 for i in range(start, min(n, start + 256))]
        out.extend({"id": a["prediction_id"], "abstain": a["abstain"]}
                   for a in predicting.predict(project=served.project, items=items, caller=served.owner))
    return out


class Events:
    """Feedback events: three in four refer to a prediction, one in four carries the item itself."""

    def __init__(self, predictions: list[dict], texts: list[str], intents: list[str]):
        self.predictions, self.texts, self.intents = predictions, texts, intents
        self.occurred_at = (datetime.now(timezone.utc) - timedelta(minutes=1)).replace(microsecond=0).isoformat()

    def event(self, n: int, user: str) -> dict:
        if n % 4 == 3:  # a product that never called predict sends the item and its own id
            return {"data": {"text": self.texts[n % len(self.texts)]}, "external_id": f"x-{user}", "kind": "correction",
                    "label": self.intents[n % len(self.intents)], "end_user": user, "occurred_at": self.occurred_at}
        kind = KINDS[n % len(KINDS)]
        event = {"prediction_id": self.predictions[n % len(self.predictions)]["id"], "kind": kind, "end_user": user,
                 "occurred_at": self.occurred_at}
        if kind == "correction":
            event["label"] = self.intents[(n * 7) % len(self.intents)]
        return event

    def single(self, n: int, user: str) -> bytes:
        return json.dumps(self.event(n, user)).encode()

    def batch(self, n: int, size: int, user: str) -> bytes:
        return json.dumps({"events": [self.event(n * size + j, f"{user}.{j}") for j in range(size)]}).encode()


def sender(path: str, bodies: list[bytes], units: int, key_prefix: str):
    """One attempt per request, a new Idempotency-Key each (phases 1 and 2)."""
    def send(client: _serving.Http, i: int):
        status, data = client.post(path, bodies[i % len(bodies)], {"Idempotency-Key": f"{key_prefix}-{i}"})
        if status != 201:
            return status, units, {"body": data[:300].decode(errors="replace")}
        return status, units, None

    return send


def retrying_sender(path: str, body_for, units: int, key_prefix: str, give_up_after: float):
    """The API's client contract: a request whose connection failed, or that got a 5xx or a 409
    (the same key still in progress), is sent again with the same key and body until a 2xx, with
    a short back-off; any other 4xx is final. `extra` keeps the request number, the attempts and
    what the failed attempts got."""
    def send(client: _serving.Http, i: int):
        body, key = body_for(i), f"{key_prefix}-{i}"
        first, attempts, seen = time.monotonic(), 0, Counter()
        while True:
            attempts += 1
            try:
                status, data = client.post(path, body, {"Idempotency-Key": key})
            except Exception as exc:  # noqa: BLE001 - the server is down or went away: retry
                status, data = 0, type(exc).__name__.encode()
            extra = {"n": i, "attempts": attempts, "seen": dict(seen), "ack_s": round(time.monotonic() - first, 3)}
            if 200 <= status < 300:
                return status, units, extra
            seen[str(status) if status else data.decode()] += 1
            if 400 <= status < 500 and status != 409:
                return status, units, {**extra, "seen": dict(seen), "body": data[:300].decode(errors="replace")}
            if time.monotonic() - first > give_up_after:
                return status, units, {**extra, "seen": dict(seen), "gave_up": True}
            time.sleep(min(0.1 * attempts, 1.0))

    return send


# --------------------------------------------------------------------------------------------
# Phases 1 and 2


def warm_up(server: _serving.Gunicorn, headers: dict, path: str, single: list[bytes], batch: list[bytes], size: int,
            seconds: float) -> float:
    """Single and bulk requests from enough clients that every worker thread serves some."""
    started = time.monotonic()
    clients = max(2, server.workers * server.threads)
    send_single, send_batch = sender(path, single, 1, "warm-s"), sender(path, batch, size, "warm-b")
    _serving.closed_loop(port=server.port, headers=headers, clients=clients, seconds=seconds,
                         send=lambda c, i: (send_batch if i % 8 == 0 else send_single)(c, i))
    return round(time.monotonic() - started, 1)


def bulk_phase(args, server, headers: dict, path: str, batch: list[bytes], dbname: str | None) -> dict:
    out = {}
    meter = _serving.CpuMeter({"gunicorn": server}, dbname)
    for clients in (1, 2, 4):
        meter.start()
        results, wall = _serving.closed_loop(port=server.port, headers=headers, clients=clients, seconds=args.bulk_seconds,
                                             send=sender(path, batch, args.bulk, f"bulk{clients}"))
        cpu = meter.stop()
        s = _serving.summary(results, ok=(201,))
        events = sum(r.units for r in results if r.status == 201)
        s.update(clients=clients, batch=args.bulk, wall_s=round(wall, 2), events=events, events_per_s=round(events / wall, 1), cpu=cpu)
        out[f"bulk_{clients}_clients"] = s
        print(_serving.latency_row(f"bulk of {args.bulk}, {clients} client(s)", s))
        print(f"  {events:,} events in {wall:.1f} s = {events / wall:,.0f} events/s")
        if s["errors"]:
            print(f"  errors {s['error_kinds']}; first: {_serving.first_error(results)}")
        print(_serving.cpu_line(cpu, per=events, unit="event"))
    return out


def settle() -> float:
    """Let PostgreSQL finish the bulk phase's aftermath before the latency phase: hundreds of
    thousands of new rows leave a checkpoint and autovacuum to run, which otherwise land in the
    middle of phase 2 and measure them rather than the API. Returns the seconds it took."""
    from django.db import connection

    started = time.perf_counter()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("CHECKPOINT")
            cursor.execute("VACUUM ANALYZE feedback_feedbackevent")
        connection.close()
    time.sleep(3)  # and the load generator's and server's own queues drain
    return round(time.perf_counter() - started, 2)


def single_phase(args, server, headers: dict, path: str, single: list[bytes], dbname: str | None) -> dict:
    meter = _serving.CpuMeter({"gunicorn": server}, dbname)
    meter.start()
    results = _serving.paced(port=server.port, headers=headers, rate=args.rate, seconds=args.seconds, threads=args.threads,
                             send=sender(path, single, 1, "single"))
    cpu = meter.stop()
    s = _serving.summary(results, ok=(201,))
    s.update(rate=args.rate, seconds=args.seconds, cpu=cpu)
    print(_serving.latency_row(f"single event @ {args.rate:g}/s", s))
    print(f"  service time (send to answer) p50 {s['service_p50_ms']} / p99 {s['service_p99_ms']} ms; "
          f"client send lag p99 {s['send_lag_p99_ms']} ms (max {s['send_lag_max_ms']})")
    if s["errors"]:
        print(f"  errors {s['error_kinds']}; first: {_serving.first_error(results)}")
    print(_serving.cpu_line(cpu, per=s["requests"]))
    return s


# --------------------------------------------------------------------------------------------
# Phase 3: durability


def forget_earlier_events(project) -> int:
    """Delete phases 1 and 2's events (never routed) and purge their routing messages, so the
    worker of phase 3 routes only what phase 3 sends."""
    from django.db import connection

    from config.celery import app
    from feedback.models import FeedbackEvent

    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {FeedbackEvent._meta.db_table} WHERE project_id = %s", [project.id])
        deleted = cursor.rowcount
    _common.vacuum_analyze(FeedbackEvent._meta.db_table)
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("default")
    connection.close()
    return deleted


class PendingWatch(threading.Thread):
    """Samples the project's pending events twice a second; once `mark()` has set a watermark,
    notes when no event at or below it is pending any more."""

    def __init__(self, project_id: int, t0: float):
        super().__init__(daemon=True)
        self.project_id, self.t0 = project_id, t0
        self.timeline: list[tuple[float, int]] = []
        self.watermark: int | None = None
        self.backlog_routed_at: float | None = None
        self.halt = threading.Event()

    def pending(self):
        from feedback.models import FeedbackEvent, FeedbackStatus

        return FeedbackEvent.objects.filter(project_id=self.project_id, status=FeedbackStatus.PENDING)

    def mark(self) -> int:
        """The newest event now is the watermark; returns how many events at or below it are pending."""
        from django.db import connection
        from django.db.models import Max

        from feedback.models import FeedbackEvent

        self.watermark = FeedbackEvent.objects.filter(project_id=self.project_id).aggregate(m=Max("id"))["m"] or 0
        backlog = self.pending().filter(id__lte=self.watermark).count()
        connection.close()
        return backlog

    def run(self) -> None:
        from django.db import connection

        try:
            while not self.halt.wait(0.5):
                self.timeline.append((round(time.monotonic() - self.t0, 1), self.pending().count()))
                if self.watermark is not None and self.backlog_routed_at is None:
                    if not self.pending().filter(id__lte=self.watermark).exists():
                        self.backlog_routed_at = time.monotonic()
        finally:
            connection.close()


def durability_phase(args, server: _serving.Gunicorn, worker: _serving.CeleryWorker, project, headers: dict, path: str,
                     events: Events) -> dict:
    from django.db import connection

    from feedback.models import FeedbackEvent, FeedbackStatus

    seconds = args.durability_seconds
    size = args.durability_batch
    out: dict = {"seconds": seconds, "single_rate": args.durability_rate, "batch": size, "batch_rate": 1.0,
                 "retry_timeout_s": args.retry_timeout, "steps": []}
    print(f"  load: single events at {args.durability_rate:g}/s + batches of {size} at 1/s for {seconds:g} s; "
          f"kills at {0.2 * seconds:.0f} s (worker), {0.4 * seconds:.0f} s (gunicorn), worker back at {0.6 * seconds:.0f} s")
    results: dict[str, list] = {}
    streams = [
        threading.Thread(target=lambda: results.__setitem__("single", _serving.paced(
            port=server.port, headers=headers, rate=args.durability_rate, seconds=seconds, threads=8,
            send=retrying_sender(path, lambda i: events.single(i, f"d-s{i}"), 1, "d-s", args.retry_timeout)))),
        threading.Thread(target=lambda: results.__setitem__("batch", _serving.paced(
            port=server.port, headers=headers, rate=1.0, seconds=seconds, threads=3,
            send=retrying_sender(path, lambda i: events.batch(i, size, f"d-b{i}"), size, "d-b", args.retry_timeout)))),
    ]
    t0 = time.monotonic()
    watch = PendingWatch(project.id, t0)

    def at(fraction: float) -> None:
        time.sleep(max(0.0, t0 + fraction * seconds - time.monotonic()))

    def step(what: str, **figures) -> None:
        t = round(time.monotonic() - t0, 1)
        out["steps"].append({"t": t, "what": what, **figures})
        print(f"  t={t:5.1f} s  {what}" + "".join(f"; {k.replace('_', ' ')} {v}" for k, v in figures.items()))

    for thread in (*streams, watch):
        thread.start()
    at(0.2)
    worker.kill_group(signal.SIGKILL)
    step("SIGKILL celery worker (all its processes)", pending=watch.pending().count())
    connection.close()
    at(0.4)
    pgid = server.pid
    server.kill_group(signal.SIGKILL)
    killed = time.monotonic()
    while server.group_alive(pgid) and time.monotonic() - killed < 10:
        time.sleep(0.05)
    step("SIGKILL gunicorn (master and workers); starting it again")
    server.start()
    server.wait_ready()
    out["web_down_s"] = round(time.monotonic() - killed, 2)
    step("gunicorn answering again", down_s=out["web_down_s"])
    at(0.6)
    backlog = watch.mark()
    restarted = time.monotonic()
    worker.start()
    out["worker_ready_s"] = round(worker.wait_ready(), 2)
    out["backlog"] = backlog
    step("celery worker started again", ready_after_s=out["worker_ready_s"], pending_backlog=backlog)
    for thread in streams:
        thread.join()
    last_answer = time.monotonic()
    step("load over, every request answered or given up")

    deadline = last_answer + args.drain_timeout
    out["pending_at_last_answer"] = pending = watch.pending().count()
    while pending and time.monotonic() < deadline:
        time.sleep(0.25)
        pending = watch.pending().count()
    drained_s = time.monotonic() - last_answer
    out["all_routed_after_last_answer_s"] = None if pending else round(drained_s, 2)
    out["still_pending"] = pending
    out["routed_per_s_without_load"] = round((out["pending_at_last_answer"] - pending) / drained_s, 1)
    watch.halt.set()
    watch.join()
    if watch.backlog_routed_at is not None:
        out["backlog_routed_s"] = round(watch.backlog_routed_at - restarted, 2)
        out["backlog_routed_after_ready_s"] = round(watch.backlog_routed_at - restarted - out["worker_ready_s"], 2)
    else:
        out["backlog_routed_s"] = out["backlog_routed_after_ready_s"] = None
    out["pending_timeline"] = watch.timeline

    # Acknowledged against stored, by the unique end-user ids.
    acked, gave_up, refused, retried = set(), [], [], []
    for name, rs in results.items():
        for r in rs:
            extra = r.extra or {}
            if 200 <= r.status < 300:
                i = extra["n"]
                acked.update([f"d-s{i}"] if name == "single" else [f"d-b{i}.{j}" for j in range(size)])
                if extra["attempts"] > 1:
                    retried.append(extra)
            elif extra.get("gave_up"):
                gave_up.append(extra)
            else:
                refused.append({"status": r.status, "error": r.error, **extra})
    stored = Counter(FeedbackEvent.objects.filter(project=project, end_user__startswith="d-").values_list("end_user", flat=True))
    statuses = Counter(FeedbackEvent.objects.filter(project=project, end_user__startswith="d-").values_list("status", flat=True))
    connection.close()
    lost = acked - set(stored)
    seen = Counter()
    for extra in retried + gave_up:
        seen.update(extra["seen"])
    out.update(
        requests={name: len(rs) for name, rs in results.items()},
        latency={name: _serving.summary(rs, ok=(201,)) for name, rs in results.items()},
        acknowledged=len(acked), stored=sum(stored.values()), lost=len(lost), lost_sample=sorted(lost)[:10],
        duplicates=sum(c - 1 for c in stored.values() if c > 1),
        stored_unacknowledged=len(set(stored) - acked),
        retried_requests=len(retried), failed_attempts_seen=dict(seen),
        longest_ack_s=max((e["ack_s"] for e in retried), default=0.0),
        gave_up_requests=len(gave_up), refused_requests=len(refused), refused_sample=refused[:3],
        statuses=dict(statuses), routed=statuses.total() - statuses.get(FeedbackStatus.PENDING, 0),
    )
    return out


def print_durability(d: dict) -> None:
    for name, s in d["latency"].items():
        print(_serving.latency_row(f"{name} (with retries)", s))
    print(f"  acknowledged {d['acknowledged']:,} events; stored {d['stored']:,}; lost {d['lost']}"
          f"{' ' + str(d['lost_sample']) if d['lost'] else ''}; stored twice {d['duplicates']}; "
          f"stored but never acknowledged {d['stored_unacknowledged']}")
    print(f"  {d['retried_requests']} request(s) acknowledged after retries (longest {d['longest_ack_s']:.1f} s); "
          f"failed attempts: {d['failed_attempts_seen'] or 'none'}")
    if d["gave_up_requests"]:
        print(f"  {d['gave_up_requests']} request(s) given up after {d['retry_timeout_s']:g} s of retries: not acknowledged, "
              f"so not counted as lost (a request killed in flight leaves its key 'in progress' for "
              f"{d['stale_in_flight_key_s']:g} s: 409 until then)")
    if d["refused_requests"]:
        print(f"  {d['refused_requests']} request(s) refused: {d['refused_sample']}")
    routed = d["backlog_routed_s"]
    print(f"  backlog of {d['backlog']:,} pending events at the worker restart: "
          + (f"routed {routed:.1f} s after the restart ({d['backlog_routed_after_ready_s']:.1f} s after the worker was ready)"
             if routed is not None else "NOT routed"))
    if d["still_pending"]:
        print(f"  {d['still_pending']:,} events still pending at the drain timeout; statuses {d['statuses']}")
    else:
        print(f"  every event routed {d['all_routed_after_last_answer_s']:.1f} s after the last answer; statuses {d['statuses']}")
    if d["pending_at_last_answer"]:
        print(f"  routing once the load stopped: {d['pending_at_last_answer']:,} pending at the last answer, "
              f"{d['routed_per_s_without_load']:,.0f} events/s routed")


# --------------------------------------------------------------------------------------------
# In-process breakdown


def breakdown(project, token: str, path: str, single: list[bytes], batch: list[bytes], size: int, n_single: int,
              n_batch: int) -> dict:
    """Requests through Django's test client, in this process: events_check, events_store and the
    rest, each with the database time spent inside it."""
    from django.db import connection
    from django.test import Client

    from feedback import ingest

    timers: Counter = Counter()
    section = ["rest"]
    originals = {"check": ingest.events_check, "store": ingest.events_store}

    def timed(name: str):
        def call(**kwargs):
            section[0], started = name, time.perf_counter()
            try:
                return originals[name](**kwargs)
            finally:
                timers[name] += time.perf_counter() - started
                section[0] = "rest"

        return call

    def timed_db(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            timers[f"db_{section[0]}"] += time.perf_counter() - started
            timers["queries"] += 1

    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    cases = (("single, no key", n_single, single, False), ("single + key", n_single, single, True),
             (f"bulk {size} + key", n_batch, batch, True))
    out = {}
    ingest.events_check, ingest.events_store = timed("check"), timed("store")
    try:
        with connection.execute_wrapper(timed_db):
            for name, n, bodies, keyed in cases:
                for i in range(n + 3):
                    if i == 3:  # three to warm up
                        timers.clear()
                        started = time.perf_counter()
                    headers = {"Idempotency-Key": f"breakdown-{name}-{i}"} if keyed else {}
                    response = client.post(path, bodies[i % len(bodies)], content_type="application/json", headers=headers)
                    assert response.status_code == 201, response.content[:300]
                total = time.perf_counter() - started
                ms = {k: round(v / n * 1000, 2) for k, v in timers.items() if k != "queries"}
                out[name] = {"requests": n, "total_ms": round(total / n * 1000, 2), "check_ms": ms.get("check", 0.0),
                             "check_db_ms": ms.get("db_check", 0.0), "store_ms": ms.get("store", 0.0),
                             "store_db_ms": ms.get("db_store", 0.0),
                             "rest_ms": round((total - timers["check"] - timers["store"]) / n * 1000, 2),
                             "rest_db_ms": ms.get("db_rest", 0.0), "queries": round(timers["queries"] / n, 1)}
    finally:
        ingest.events_check, ingest.events_store = originals["check"], originals["store"]
        connection.close()
    return out


# --------------------------------------------------------------------------------------------


def main() -> int:
    args = parse_args()
    url = _serving.configure(database_url=args.database_url, data_dir=args.data_dir, broker_url=args.broker_url,
                             cache_url=args.cache_url)
    if args.cache_url.startswith("redis"):
        import redis

        redis.Redis.from_url(args.cache_url).flushdb()  # the benchmark's own cache: throttle counters, routing debounce
    from django.db import connection, connections

    dbname = _serving.database_name(url) if connection.vendor == "postgresql" else None
    print("== Labelloop feedback API benchmark (HTTP, gunicorn, Celery) ==")
    print(f"machine: {os.cpu_count()} CPU cores; python {sys.version.split()[0]}; 1-min load average {os.getloadavg()[0]:.2f}")
    print(f"database: {_common.describe_database()}")
    print(f"code: {_common.describe_code()}; broker {args.broker_url}; cache {args.cache_url}; data dir {args.data_dir}")

    print("\n-- set-up --")
    served = _serving.served_project(name="bench-feedback", intents=args.intents, per_intent=args.per_intent)
    version = served.version
    print(f"project {served.project.id}: {len(served.intents)} intents x {args.per_intent} labelled queries; "
          f"head v{version.number} {version.status}, eval accuracy {version.metrics.get('accuracy')}; champion")
    print("  " + ", ".join(f"{k} {v:.1f} s" for k, v in served.timings.items()))
    texts, source = _serving.request_texts()
    started = time.perf_counter()
    predictions = make_predictions(served, texts, args.predictions)
    served.timings["predictions"] = round(time.perf_counter() - started, 2)
    print(f"{len(predictions)} predictions in {served.timings['predictions']:.1f} s (predict service, in process; "
          f"{sum(p['abstain'] for p in predictions)} abstained); texts: banking77 {source}")
    token = _serving.make_token(served.project, ["feedback"], "bench feedback")
    headers = {"Authorization": f"Bearer {token}"}
    path = f"/api/projects/{served.project.id}/feedback"
    events = Events(predictions, texts, served.intents)
    single = [events.single(n, f"u-{n}") for n in range(1000)]
    batch = [events.batch(n, args.bulk, f"u-b{n}") for n in range(8)]
    print(f"bodies: single event {len(single[0])} bytes; batch of {args.bulk} events {len(batch[0]) / 1024:.0f} KiB")

    figures = {
        "machine": {"cores": os.cpu_count(), "python": sys.version.split()[0], "load_average_at_start": os.getloadavg()[0]},
        "database": _common.describe_database(), "code": _common.describe_code(), "broker": args.broker_url,
        "cache": args.cache_url, "quick": args.quick,
        "setup": {"intents": len(served.intents), "per_intent": args.per_intent, "predictions": len(predictions),
                  "timings_s": served.timings, "version": version.number},
        "targets": {"bulk_events_per_s": TARGET_EVENTS_S, "single_p99_ms": TARGET_P99_MS, "lost": 0, "duplicates": 0,
                    "backlog_routed_s": TARGET_ROUTED_S},
    }
    connections.close_all()  # no open handle of ours while the server runs
    workers, threads = (int(x) for x in args.config.lower().split("x"))
    port = _serving.free_port()
    log_dir = Path(args.data_dir)
    server = _serving.Gunicorn(port=port, workers=workers, threads=threads, log_path=log_dir / "gunicorn-feedback.log")
    worker = _serving.CeleryWorker(queues="default", concurrency=args.worker_concurrency,
                                   log_path=log_dir / "celery-feedback.log", name="bench-feedback")
    figures["config"] = server.config
    try:
        print(f"\n-- gunicorn {server.config} on 127.0.0.1:{port} (log {server.log_path}) --")
        server.start()
        figures["ready_s"] = round(server.wait_ready(), 2)
        figures["warm_up_s"] = warm_up(server, headers, path, single, batch, args.bulk, args.warmup)
        print(f"  answering after {figures['ready_s']} s; warm-up {figures['warm_up_s']} s")

        print(f"\n-- 1. bulk ingest: batches of {args.bulk} events back to back, {args.bulk_seconds:g} s each (no worker) --")
        figures.update(bulk_phase(args, server, headers, path, batch, dbname))

        figures["settle_s"] = settle()
        print(f"\n-- 2. single event at {args.rate:g} requests/s for {args.seconds:g} s (paced, from scheduled send times; "
              f"after a checkpoint and a vacuum of the bulk rows, {figures['settle_s']} s) --")
        figures["single"] = single_phase(args, server, headers, path, single, dbname)

        print(f"\n-- 3. durability: worker and web server killed under load, clients retrying with the same key "
              f"(worker log {worker.log_path}) --")
        deleted = forget_earlier_events(served.project)
        print(f"  deleted the {deleted:,} events of phases 1-2 (never routed) and purged their routing messages")
        worker.start()
        print(f"  celery worker -Q default -c {args.worker_concurrency} ready after {worker.wait_ready():.1f} s")
        figures["durability"] = durability_phase(args, server, worker, served.project, headers, path, events)
        print_durability(figures["durability"])
    finally:
        _serving.Group.stop_all()

    if not args.no_breakdown:
        print("\n-- where a request's time goes (in process, Django test client, same view; no gunicorn, no load) --")
        figures["breakdown"] = breakdown(served.project, token, path, single, batch, args.bulk, n_single=30 if args.quick else 200,
                                         n_batch=3 if args.quick else 10)
        for name, b in figures["breakdown"].items():
            print(f"  {name:<16} total {b['total_ms']:7.2f} ms = check {b['check_ms']:6.2f} (db {b['check_db_ms']:.2f}) "
                  f"+ store {b['store_ms']:6.2f} (db {b['store_db_ms']:.2f}) + rest {b['rest_ms']:6.2f} (db {b['rest_db_ms']:.2f}; "
                  f"auth, throttle, idempotency, commit, DRF, JSON); {b['queries']} queries")

    d, s = figures["durability"], figures["single"]
    best = max(figures[f"bulk_{n}_clients"]["events_per_s"] for n in (1, 2, 4))
    routed_s = d["backlog_routed_after_ready_s"]
    print("\n== summary ==" + ("  (--quick: short phases, figures indicative only)" if args.quick else ""))
    print(f"gunicorn {figures['config']}")
    print(f"bulk ingest, batches of {args.bulk}: 1 client {figures['bulk_1_clients']['events_per_s']:,.0f} events/s, "
          f"2 clients {figures['bulk_2_clients']['events_per_s']:,.0f}, 4 clients {figures['bulk_4_clients']['events_per_s']:,.0f} events/s: {'PASS' if best >= TARGET_EVENTS_S else 'MISS'} "
          f"(target >= {TARGET_EVENTS_S:,.0f} events/s)")
    print(f"single event @ {args.rate:g}/s: p50 {s['p50_ms']:.1f} ms, p95 {s['p95_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms, "
          f"max {s['max_ms']:.1f} ms, errors {s['errors']}: {'PASS' if s['p99_ms'] <= TARGET_P99_MS and not s['errors'] else 'MISS'} "
          f"(target p99 <= {TARGET_P99_MS:g} ms)")
    print(f"durability: {d['acknowledged']:,} events acknowledged, {d['stored']:,} stored: lost {d['lost']} "
          f"{'PASS' if not d['lost'] else 'MISS'}, stored twice {d['duplicates']} {'PASS' if not d['duplicates'] else 'MISS'}; "
          f"requests given up {d['gave_up_requests']} {'PASS' if not d['gave_up_requests'] else 'MISS'}")
    print(f"routing after the worker restart: backlog of {d['backlog']:,} routed "
          + (f"{routed_s:.1f} s after the worker was ready" if routed_s is not None else "NEVER")
          + f": {'PASS' if routed_s is not None and routed_s <= TARGET_ROUTED_S else 'MISS'} (target <= {TARGET_ROUTED_S:g} s); "
          + (f"all routed {d['all_routed_after_last_answer_s']:.1f} s after the last answer" if not d["still_pending"]
             else f"{d['still_pending']:,} still pending {args.drain_timeout:g} s after the last answer"))
    path_out = _serving.write_json(args.json, figures)
    print(f"figures written to {path_out}")
    phase_errors = figures["bulk_1_clients"]["errors"] + figures["bulk_2_clients"]["errors"] + s["errors"]
    return 1 if d["lost"] or d["duplicates"] or phase_errors else 0


if __name__ == "__main__":
    sys.exit(main())
