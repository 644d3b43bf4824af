"""Expert-queue benchmark: many experts claiming and labelling items of one big project at once.

What it measures
  1. Load: --items items (default 1,000,000) are written into one fresh project with PostgreSQL
     COPY (psycopg 3), then VACUUM ANALYZE; both times are printed apart from the run.
  2. EXPLAIN (ANALYZE, BUFFERS) of the exact claim query that labeller.services.queue_claim_next
     sends (captured from the real call, then run in a rolled-back transaction), before and after
     the run, so you can see whether the partial index `item_queue_idx` is used.
  3. Run: --experts (default 16) processes, each its own Django user with the expert role and its
     own database connection, loop queue_claim_next -> annotation_submit (the real services) for
     --seconds (default 30) or --rounds per expert. Prints p50/p95/p99/max latency of each call
     and the throughput.
  4. Correctness: double assignments, from the database (items with annotation_count above
     labels_per_item, items with more annotations than labels_per_item, an expert twice on one
     item, annotation_count out of step, holds left behind) and from the workers' logs (the same
     item held by two experts at overlapping times: each expert's hold is taken as the interval
     from the moment queue_claim_next returned to the moment annotation_submit was called, which
     lies inside the real hold, so an overlap is a real double hold).

  5. Where the time went: the part of each call spent in database round trips, and the CPU
     used by the expert processes, their PostgreSQL backends and everything else on the machine
     (from /proc), so a run on a busy shared machine can be told from a slow queue.

Options worth knowing: --think-ms N makes each expert pause ~N ms (0.5x..1.5x) between claim
and submit, i.e. a realistic pace instead of the default closed loop with no pause, which
measures saturation; --concurrent-refresh also rewrites the priority of the whole open pool with
active_learning.refresh.write_priorities in a loop, as the active-learning refresh does, and
splits next-item latency into during/outside that write.

Targets: next-item (claim) p95 <= 25 ms, zero double assignments.

Run (from the repository root):
  .venv/bin/python benchmarks/queue.py                       # 1M items, 16 experts, 30 s
  .venv/bin/python benchmarks/queue.py --items 100000 --experts 4 --seconds 10
  .venv/bin/python benchmarks/queue.py --rounds 200 --labels-per-item 2
  .venv/bin/python benchmarks/queue.py --think-ms 250               # ~55 items/s offered
  .venv/bin/python benchmarks/queue.py --think-ms 250 --seconds 120 --concurrent-refresh
  .venv/bin/python benchmarks/queue.py --database-url postgres://postgres@127.0.0.1:5432/other

The database defaults to postgres://postgres@127.0.0.1:5432/labelloop_bench (created and
migrated if missing; DATABASE_URL in the environment is used if set and --database-url is not).
Projects left by earlier runs of this script (named "bench-queue-...") are deleted first.
PostgreSQL only: the COPY load and SKIP LOCKED are what is being measured.
"""
import os
import sys

# benchmarks/ must not be on sys.path: this file would shadow the standard library's `queue`.
_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, _ROOT)

import queue as _stdlib_queue  # noqa: E402,F401  cache the real one before anything can shadow it
import multiprocessing.queues  # noqa: E402,F401

import argparse  # noqa: E402
import json  # noqa: E402
import multiprocessing as mp  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from collections import defaultdict  # noqa: E402
from datetime import datetime, timezone as dt_timezone  # noqa: E402

from benchmarks import _common  # noqa: E402

PREFIX = _common.BENCH_PROJECT_PREFIX + "queue-"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000, help="items to load (default 1,000,000)")
    parser.add_argument("--experts", type=int, default=16, help="concurrent expert processes (default 16)")
    parser.add_argument("--seconds", type=float, default=30.0, help="run time per expert (default 30)")
    parser.add_argument("--rounds", type=int, default=0, help="claim+submit rounds per expert instead of --seconds")
    parser.add_argument("--labels-per-item", type=int, default=1, help="project's labels_per_item (default 1)")
    parser.add_argument(
        "--think-ms", type=float, default=0.0,
        help="mean pause between claim and submit, drawn uniformly from 0.5x..1.5x, start staggered (default 0)",
    )
    parser.add_argument(
        "--priorities", choices=("zero", "random"), default="zero",
        help="item priorities: all 0 (import order, the default) or random in [0,1)",
    )
    parser.add_argument(
        "--concurrent-refresh", action="store_true",
        help="also run active_learning.refresh.write_priorities over the whole open pool in a loop, in its own "
             "process, as the active-learning refresh does (off by default)",
    )
    parser.add_argument("--database-url", default=None, help=f"default {_common.DEFAULT_DATABASE_URL}")
    parser.add_argument("--recreate-db", action="store_true",
                        help="drop and re-create the benchmark database first (e.g. after a migration was edited)")
    parser.add_argument("--keep", action="store_true", help="keep earlier bench-queue projects")
    parser.add_argument("--no-vacuum", action="store_true", help="skip VACUUM ANALYZE after the load")
    _common.add_dataset_flag(parser)
    args = parser.parse_args()
    _common.use_dataset(args)
    return args


# --------------------------------------------------------------------------------------------
# Set-up


def make_users(count: int):
    from django.contrib.auth import get_user_model

    User = get_user_model()
    owner, _ = User.objects.get_or_create(username="bench_owner")
    experts = []
    for i in range(count):
        user, _ = User.objects.get_or_create(username=f"bench_expert_{i:03d}")
        experts.append(user)
    return owner, experts


def create_project(owner, experts, labels_per_item: int):
    from labeller.models import Role
    from labeller.services import membership_set, project_create

    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    project = project_create(
        user=owner, labels=_common.banking77_labels(), name=f"{PREFIX}{stamp}", labels_per_item=labels_per_item
    )
    for user in experts:
        membership_set(project=project, user=user, role=Role.EXPERT)
    return project


def load_items(project, count: int, priorities: str) -> float:
    """COPY `count` items into the project; returns seconds.

    The column list comes from the Item model, so columns added later are filled with their
    model defaults (the COPY bypasses Django, which is what makes a million rows take seconds).
    """
    from django.db import connection, transaction

    from labeller.models import Item

    texts = [json.dumps({"text": t}) for t in _common.banking77_texts()]
    rng = random.Random(7)
    now = datetime.now(dt_timezone.utc)
    own = ["project_id", "external_id", "data", "priority", "created_at"]
    constant = {}
    for field in Item._meta.concrete_fields:
        if field.primary_key or field.column in own:
            continue
        value = field.get_db_prep_save(field.get_default(), connection)
        if value is None and not field.null:
            raise RuntimeError(f"load_items: no value for NOT NULL column {field.column}")
        constant[field.column] = value
    columns = own + list(constant)
    tail = tuple(constant.values())
    table = Item._meta.db_table
    started = time.perf_counter()
    with transaction.atomic():
        connection.ensure_connection()
        with connection.connection.cursor() as cursor:
            with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                n_texts = len(texts)
                pid = project.id
                for i in range(count):
                    priority = rng.random() if priorities == "random" else 0.0
                    copy.write_row((pid, f"q{i}", texts[i % n_texts], priority, now) + tail)
    return time.perf_counter() - started


# --------------------------------------------------------------------------------------------
# EXPLAIN of the real claim query


def explain_claim(project, user) -> None:
    from django.db import connection, transaction

    from labeller.services import queue_claim_next

    captured = []

    def capture(execute, sql, params, many, context):
        captured.append((sql, params))
        return execute(sql, params, many, context)

    with transaction.atomic():
        with connection.execute_wrapper(capture):
            queue_claim_next(project=project, user=user)
        transaction.set_rollback(True)
    claim = [(sql, params) for sql, params in captured if "FOR UPDATE" in sql.upper()]
    if not claim:
        print("  (no SELECT ... FOR UPDATE seen in queue_claim_next; queries were:)")
        for sql, _ in captured:
            print("   ", sql[:200])
        return
    sql, params = claim[0]
    print("  claim SQL:", sql if len(sql) < 600 else sql[:600] + " ...")
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            plan = [row[0] for row in cursor.fetchall()]
        transaction.set_rollback(True)
    for line in plan:
        print("   |", line)
    text = "\n".join(plan)
    print(f"  item_queue_idx used: {'YES' if 'item_queue_idx' in text else 'NO'}")


# --------------------------------------------------------------------------------------------
# CPU accounting (Linux /proc): where the machine's 2 cores went during the run

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _own_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _proc_cpu(pid: int) -> float:
    """CPU seconds used so far by a process on this machine (0 if it cannot be read)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK
    except (OSError, IndexError, ValueError):
        return 0.0


def _machine_busy() -> float:
    """Busy CPU seconds of the whole machine so far (all cores)."""
    try:
        with open("/proc/stat") as handle:
            values = [int(v) for v in handle.readline().split()[1:]]
    except OSError:
        return 0.0
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / _TICK


# --------------------------------------------------------------------------------------------
# The experts


def expert_worker(index: int, user_id: int, project_id: int, args, barrier, results) -> None:
    try:
        from django.contrib.auth import get_user_model
        from django.db import connection

        from labeller.models import Project
        from labeller.services import QueueConflict, annotation_submit, queue_claim_next

        user = get_user_model().objects.get(id=user_id)
        project = Project.objects.get(id=project_id)
        label_keys = list(project.labels.values_list("key", flat=True))
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backend_pid = cursor.fetchone()[0]
        rng = random.Random(index)
        claim_lat, submit_lat, intervals = [], [], []
        claim_db, submit_db, claim_start = [], [], []  # seconds spent in database round trips inside each call
        empty = conflicts = 0
        think = args.think_ms / 1000.0
        db_time = [0.0]

        def timed(execute, sql, params, many, context):
            t = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                db_time[0] += time.perf_counter() - t

        barrier.wait()
        if think:
            time.sleep(rng.uniform(0, think))  # staggered start
        cpu0, backend0 = _own_cpu(), _proc_cpu(backend_pid)
        started = time.monotonic()
        deadline = started + args.seconds
        wrapper = connection.execute_wrapper(timed)
        wrapper.__enter__()
        while True:
            if args.rounds:
                if len(claim_lat) >= args.rounds:
                    break
            elif time.monotonic() >= deadline:
                break
            db_time[0] = 0.0
            t0 = time.monotonic()
            item = queue_claim_next(project=project, user=user)
            t1 = time.monotonic()
            claim_lat.append(t1 - t0)
            claim_start.append(t0)
            claim_db.append(db_time[0])
            if item is None:
                empty += 1
                if empty > 50:
                    break  # queue exhausted for this expert
                time.sleep(0.01)
                continue
            if think:
                time.sleep(rng.uniform(0.5, 1.5) * think)  # varied, so experts do not move in lockstep
            db_time[0] = 0.0
            t2 = time.monotonic()
            try:
                annotation_submit(item=item, user=user, labels=[rng.choice(label_keys)], lead_time=t2 - t1)
            except QueueConflict:
                conflicts += 1
            t3 = time.monotonic()
            submit_lat.append(t3 - t2)
            submit_db.append(db_time[0])
            intervals.append((item.id, t1, t2))
        ended = time.monotonic()
        wrapper.__exit__(None, None, None)
        results.put(
            {
                "index": index,
                "user_id": user_id,
                "claim": claim_lat,
                "submit": submit_lat,
                "claim_db": claim_db,
                "claim_start": claim_start,
                "submit_db": submit_db,
                "intervals": intervals,
                "empty": empty,
                "conflicts": conflicts,
                "started": started,
                "ended": ended,
                "cpu": _own_cpu() - cpu0,
                "backend_cpu": _proc_cpu(backend_pid) - backend0,
            }
        )
    except BaseException:  # report, never hang the parent
        results.put({"index": index, "error": traceback.format_exc()})


def refresher_worker(project_id: int, args, barrier, results) -> None:
    """Re-rank the whole open pool with the refresh's own writer, again and again, until the run ends."""
    try:
        import numpy as np

        from active_learning.refresh import write_priorities
        from labeller.models import Item

        windows = []
        barrier.wait()
        deadline = time.monotonic() + (args.seconds if not args.rounds else 60)
        time.sleep(min(3.0, args.seconds / 5))
        rng = np.random.default_rng(1)
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            ids = np.array(
                Item.objects.filter(project_id=project_id, is_done=False).values_list("id", flat=True), dtype=np.int64
            )
            order = rng.permutation(len(ids))
            priorities = 1.0 - np.arange(len(ids), dtype=np.float64) / max(len(ids), 1)
            t1 = time.monotonic()
            write_priorities(ids[order], priorities)  # commits batch by batch, as refresh_run calls it
            windows.append((t0, t1, time.monotonic(), len(ids)))
        results.put({"refresher": True, "windows": windows})
    except BaseException:
        results.put({"refresher": True, "error": traceback.format_exc()})


def run_experts(project, experts, args) -> list[dict]:
    from django.db import connections

    connections.close_all()  # children must not share the parent's socket
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(len(experts) + 1 + bool(args.concurrent_refresh))
    results = ctx.Queue()
    procs = [
        ctx.Process(target=expert_worker, args=(i, user.id, project.id, args, barrier, results), daemon=True)
        for i, user in enumerate(experts)
    ]
    if args.concurrent_refresh:
        procs.append(ctx.Process(target=refresher_worker, args=(project.id, args, barrier, results), daemon=True))
    for proc in procs:
        proc.start()
    try:
        barrier.wait(timeout=120)
    except Exception:
        pass
    busy0, load0 = _machine_busy(), os.getloadavg()[0]
    out = []
    budget = (args.seconds if not args.rounds else 3600) + 300
    for _ in procs:
        out.append(results.get(timeout=budget))
    busy = _machine_busy() - busy0
    for proc in procs:
        proc.join(timeout=30)
    return out, busy, load0


# --------------------------------------------------------------------------------------------
# Checks


def check_database(project) -> dict:
    from django.db import connection

    from labeller.models import Annotation, Item

    item_t, ann_t = Item._meta.db_table, Annotation._meta.db_table
    lpi, pid = project.labels_per_item, project.id
    queries = {
        "items with annotation_count > labels_per_item": (
            f"SELECT count(*) FROM {item_t} WHERE project_id = %s AND annotation_count > %s", [pid, lpi]),
        "items with more non-skip annotations than labels_per_item": (
            f"SELECT count(*) FROM (SELECT item_id FROM {ann_t} WHERE project_id = %s AND NOT skipped "
            f"GROUP BY item_id HAVING count(*) > %s) s", [pid, lpi]),
        "(item, expert) pairs annotated twice": (
            f"SELECT count(*) FROM (SELECT 1 FROM {ann_t} WHERE project_id = %s "
            f"GROUP BY item_id, annotator_id HAVING count(*) > 1) s", [pid]),
        "items whose annotation_count != their annotations": (
            f"SELECT count(*) FROM {item_t} i LEFT JOIN (SELECT item_id, count(*) AS n FROM {ann_t} "
            f"WHERE project_id = %s AND NOT skipped GROUP BY item_id) a ON a.item_id = i.id "
            f"WHERE i.project_id = %s AND i.annotation_count <> coalesce(a.n, 0)", [pid, pid]),
        "items still held after the run": (
            f"SELECT count(*) FROM {item_t} WHERE project_id = %s AND held_by_id IS NOT NULL", [pid]),
    }
    found = {}
    with connection.cursor() as cursor:
        for name, (sql, params) in queries.items():
            cursor.execute(sql, params)
            found[name] = cursor.fetchone()[0]
        cursor.execute(f"SELECT count(*) FROM {ann_t} WHERE project_id = %s", [pid])
        found["annotations in the database"] = cursor.fetchone()[0]
        cursor.execute(f"SELECT count(*) FROM {item_t} WHERE project_id = %s AND is_done", [pid])
        found["items done"] = cursor.fetchone()[0]
    return found


def check_logs(results: list[dict], labels_per_item: int) -> dict:
    by_item = defaultdict(list)
    for result in results:
        for item_id, start, end in result["intervals"]:
            by_item[item_id].append((start, end, result["user_id"]))
    overlapping_items = 0
    overlaps = 0
    too_many = 0
    same_expert_twice = 0
    for item_id, holds in by_item.items():
        experts = [h[2] for h in holds]
        if len(set(experts)) > labels_per_item:
            too_many += 1
        if len(set(experts)) != len(experts):
            same_expert_twice += 1
        if len(holds) < 2:
            continue
        holds.sort()
        found = False
        for i, (start, end, who) in enumerate(holds):
            for start2, end2, who2 in holds[i + 1:]:
                if start2 >= end:
                    break
                if who2 != who:
                    overlaps += 1
                    found = True
        overlapping_items += found
    return {
        "distinct items claimed": len(by_item),
        "items held by two experts at overlapping times": overlapping_items,
        "overlapping hold pairs": overlaps,
        "items claimed by more experts than labels_per_item": too_many,
        "items claimed twice by the same expert": same_expert_twice,
    }


# --------------------------------------------------------------------------------------------


def main() -> int:
    args = parse_args()
    url = _common.setup_django(args.database_url, recreate=args.recreate_db)
    from django.db import connection

    from labeller.models import Annotation, Item

    if connection.vendor != "postgresql":
        print("benchmarks/queue.py needs PostgreSQL (COPY load, SKIP LOCKED); got", connection.vendor)
        return 2
    print("== Labelloop expert-queue benchmark ==")
    print(f"machine: {os.cpu_count()} CPU cores; python {sys.version.split()[0]}")
    print(f"database: {_common.describe_database()}")
    print(f"code: {_common.describe_code()} at {_common.REPO_ROOT}")
    print(f"items={args.items:,} experts={args.experts} "
          f"{'rounds=' + str(args.rounds) if args.rounds else 'seconds=' + str(args.seconds)} "
          f"labels_per_item={args.labels_per_item} think_ms={args.think_ms} priorities={args.priorities}")

    if not args.keep:
        t = time.perf_counter()
        removed = _common.delete_bench_projects(PREFIX)
        if removed:
            print(f"removed {removed} earlier bench-queue project(s) in {time.perf_counter() - t:.1f} s")
    owner, experts = make_users(args.experts)
    project = create_project(owner, experts, args.labels_per_item)

    print("\n-- load --")
    seconds = load_items(project, args.items, args.priorities)
    print(f"COPY {args.items:,} items: {seconds:.2f} s ({args.items / seconds:,.0f} rows/s)")
    if not args.no_vacuum:
        t = time.perf_counter()
        _common.vacuum_analyze(Item._meta.db_table, Annotation._meta.db_table)
        print(f"VACUUM ANALYZE items, annotations: {time.perf_counter() - t:.2f} s")

    print("\n-- EXPLAIN ANALYZE of the claim query, before the run --")
    explain_claim(project, experts[0])

    print(f"\n-- run: {args.experts} experts, claim -> submit loop --")
    results, machine_busy, load_before = run_experts(project, experts, args)
    refresher = [r for r in results if r.get("refresher")]
    results = [r for r in results if not r.get("refresher")]
    errors = [r for r in results if "error" in r]
    for r in errors:
        print(f"expert {r['index']} FAILED:\n{r['error']}")
    results = [r for r in results if "error" not in r]
    if not results:
        return 1
    claim = [x for r in results for x in r["claim"]]
    submit = [x for r in results for x in r["submit"]]
    wall = max(r["ended"] for r in results) - min(r["started"] for r in results)
    print(_common.latency_line("next item", claim))
    print(_common.latency_line("submit", submit))
    cycles = [len(r["submit"]) for r in results]
    print(f"wall {wall:.1f} s; submitted {sum(cycles):,} items: {sum(cycles) / wall:,.1f} items/s "
          f"({len(claim) / wall:,.1f} claims/s); per expert min/max {min(cycles)}/{max(cycles)}")
    print(f"empty claims (queue gave nothing): {sum(r['empty'] for r in results)}; "
          f"QueueConflict on submit: {sum(r['conflicts'] for r in results)}; worker errors: {len(errors)}")
    print("time inside the calls spent in database round trips (rest is Python/Django CPU and waiting for a core):")
    print(_common.latency_line("  next db", [x for r in results for x in r["claim_db"]]))
    print(_common.latency_line("  submit db", [x for r in results for x in r["submit_db"]]))
    experts_cpu = sum(r["cpu"] for r in results)
    backends_cpu = sum(r["backend_cpu"] for r in results)
    cores = os.cpu_count() or 1
    n = max(1, sum(cycles))
    print(f"CPU over the run ({cores} cores x {wall:.1f} s = {cores * wall:.1f} core-s): machine busy {machine_busy:.1f}, "
          f"expert processes {experts_cpu:.1f}, their PostgreSQL backends {backends_cpu:.1f}, "
          f"everything else {max(0.0, machine_busy - experts_cpu - backends_cpu):.1f} core-s "
          f"(1-min load average at start {load_before:.2f})")
    print(f"CPU per claim+submit cycle: experts {experts_cpu / n * 1000:.2f} ms + backends {backends_cpu / n * 1000:.2f} ms "
          f"= {(experts_cpu + backends_cpu) / n * 1000:.2f} ms -> CPU-bound ceiling on {cores} idle cores "
          f"~{cores / max(1e-9, (experts_cpu + backends_cpu) / n):,.0f} items/s")

    for r in refresher:
        if "error" in r:
            print(f"refresher FAILED:\n{r['error']}")
            continue
        windows = r["windows"]
        print(f"concurrent refresh: {len(windows)} write_priorities runs over the open pool; "
              + "; ".join(f"{n:,} rows: read {t1 - t0:.1f} s + write {t2 - t1:.1f} s" for t0, t1, t2, n in windows))
        during, outside = [], []
        for res in results:
            for lat, start in zip(res["claim"], res["claim_start"]):
                hit = any(w1 <= start + lat and start <= w2 for _w0, w1, w2, _n in windows)
                (during if hit else outside).append(lat)
        print(_common.latency_line("  next, during a priority write", during))
        print(_common.latency_line("  next, outside", outside))
        submits = [x for res in results for x in res["submit"]]
        print(_common.latency_line("  submit (all)", submits))
        print(f"  submits that waited over 1 s (blocked on the refresh's row locks): {sum(x > 1.0 for x in submits)}")

    print("\n-- double-assignment checks --")
    db = check_database(project)
    logs = check_logs(results, args.labels_per_item)
    for name, value in {**logs, **db}.items():
        print(f"  {name:<58} {value:>10,}")
    double = (
        logs["items held by two experts at overlapping times"]
        + logs["items claimed by more experts than labels_per_item"]
        + logs["items claimed twice by the same expert"]
        + db["items with annotation_count > labels_per_item"]
        + db["items with more non-skip annotations than labels_per_item"]
        + db["(item, expert) pairs annotated twice"]
    )
    print(f"  DOUBLE ASSIGNMENTS: {double}")
    consistent = db["annotations in the database"] == sum(cycles) - sum(r["conflicts"] for r in results)
    print(f"  annotations in DB == successful submits: {consistent}")

    print("\n-- EXPLAIN ANALYZE of the claim query, after the run --")
    explain_claim(project, experts[0])

    p95 = _common.percentile(sorted(claim), 0.95) * 1000
    print("\n== summary ==")
    print(f"next item p95 {p95:.2f} ms (target <= 25): {'PASS' if p95 <= 25 else 'MISS'}")
    print(f"double assignments {double} (target 0): {'PASS' if double == 0 else 'FAIL'}")
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
