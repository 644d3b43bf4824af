"""The product's refresh at scale: how long `refresh_run` takes over a project whose vectors are
already stored (default 1,000,000 items), how much memory it holds, and whether the expert queue
keeps serving while it runs.

The vectors are derived from real encoded texts: --unique Banking77 training texts are encoded
once by the base encoder (all-MiniLM-L6-v2; cached under benchmarks/out/), then tiled to --pool
items with Gaussian noise (sd 0.02 per dimension, renormalised), so the pool has Banking77's
cluster structure with no two vectors equal. --labelled of them are labelled with their source
text's intent (the refresh fits and self-trains on them); 10 % of the rest are evaluation items.
On PostgreSQL items and vectors are written with COPY, on SQLite with bulk_create.

Then the real refresh (active_learning.refresh.refresh_run) runs --runs times, each printing its
phases (read the pool and labelled vectors, fit + self-train, score + rank, write priorities +
suggestions) and the peak resident memory the process gained during it (sampled from
/proc/self/status every 20 ms). While the last timed run goes, --experts processes loop the real
queue_claim_next -> annotation_submit (pausing --think-ms between them, as an expert reads) and
their claim latencies are printed: the queue keeps serving during a refresh. One more run under
tracemalloc prints the peak Python/numpy allocation (slower; not timed).

    .venv/bin/python benchmarks/refresh_scale.py                                   # 1,000,000 items, PostgreSQL
    .venv/bin/python benchmarks/refresh_scale.py --pool 200000
    .venv/bin/python benchmarks/refresh_scale.py --pool 20000 --unique 500 --runs 1   # smoke
    .venv/bin/python benchmarks/refresh_scale.py --database-url sqlite:////tmp/refresh_scale.sqlite3 --pool 200000

The database defaults to DATABASE_URL, else postgres://postgres@127.0.0.1:5432/labelloop_bench
(created and migrated if missing). Projects of earlier runs ("bench-refresh-scale-...") are
deleted first. Target (issue 18): <= 15 s over 1,000,000 open items on 2 cores, memory bounded
(the pool is streamed; never more than one chunk in float32). Quote the load average with the
figures.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import multiprocessing as mp
import os
import random
import struct
import sys
import threading
import time
import tracemalloc
from datetime import datetime, timezone as dt_timezone
from pathlib import Path

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

from benchmarks import _common  # noqa: E402

PREFIX = _common.BENCH_PROJECT_PREFIX + "refresh-scale-"
WRITE_CHUNK = 50_000


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pool", type=int, default=1_000_000, help="items with stored vectors")
    p.add_argument("--unique", type=int, default=4000, help="distinct Banking77 training texts encoded, then tiled")
    p.add_argument("--labelled", type=int, default=1600, help="items labelled with their source text's intent")
    p.add_argument("--runs", type=int, default=2, help="timed refreshes (the queue is exercised during the last)")
    p.add_argument("--experts", type=int, default=2, help="expert processes serving from the queue during a refresh")
    p.add_argument("--think-ms", type=float, default=200.0, help="pause between an expert's claim and submit")
    p.add_argument("--no-tracemalloc", action="store_true", help="skip the traced run")
    p.add_argument("--threads", type=int, default=2, help="torch threads while encoding")
    p.add_argument("--database-url", default=None)
    p.add_argument("--recreate-db", action="store_true")
    p.add_argument("--cache", default=str(_common.REPO_ROOT / "benchmarks" / "out"))
    return p.parse_args()


def encoded_texts(texts: list[str], cache: Path) -> tuple[np.ndarray, str]:
    """The texts' sentence vectors under the base encoder (cached on disk by content)."""
    from ml.encoder_cache import base_encoder

    encoder = base_encoder("")
    key = hashlib.sha256((encoder.version + "\x00" + "\x00".join(texts)).encode()).hexdigest()[:12]
    path = cache / f"banking77_sentences_{key}.npy"
    if path.exists():
        return np.load(path), encoder.version
    started = time.perf_counter()
    vectors = encoder.encode(texts)
    print(f"encoded {len(texts):,} texts in {time.perf_counter() - started:.0f} s (cached in {path})")
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors, encoder.version


def noisy_chunk(base: np.ndarray, source: np.ndarray, rng) -> np.ndarray:
    """float16 rows: the source texts' vectors plus noise, unit length."""
    rows = base[source] + rng.normal(scale=0.02, size=(len(source), base.shape[1])).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows.astype(np.float16)


def copy_items(project, rows) -> None:
    """COPY items (external_id, data, search_text, is_eval, is_done, annotation_count); other columns
    get their model defaults."""
    import json

    from django.db import connection

    from labeller.models import Item

    own = ["project_id", "external_id", "data", "search_text", "is_eval", "is_done", "annotation_count", "created_at"]
    constant = {}
    for field in Item._meta.concrete_fields:
        if field.primary_key or field.column in own:
            continue
        constant[field.column] = field.get_db_prep_save(field.get_default(), connection)
    now = datetime.now(dt_timezone.utc)
    tail = tuple(constant.values())
    with connection.connection.cursor() as cursor:
        with cursor.copy(f"COPY {Item._meta.db_table} ({', '.join(own + list(constant))}) FROM STDIN") as copy:
            for external_id, text, is_eval, is_done in rows:
                copy.write_row((project.id, external_id, json.dumps({"text": text}), text, is_eval, is_done,
                                int(is_done), now) + tail)


def copy_vectors(project, version: str, item_ids: np.ndarray, blobs: np.ndarray) -> None:
    """COPY ItemVector rows in PostgreSQL's binary format (float16 bytes, as the encoder stores)."""
    from django.db import connection

    from labeller.models import ItemVector

    buffer = io.BytesIO()
    version_bytes = version.encode()
    for item_id, blob in zip(item_ids.tolist(), blobs):
        raw = blob.tobytes()
        buffer.write(struct.pack("!hiqiqi", 4, 8, item_id, 8, project.id, len(version_bytes)))
        buffer.write(version_bytes)
        buffer.write(struct.pack("!i", len(raw)))
        buffer.write(raw)
    with connection.connection.cursor() as cursor:
        columns = "item_id, project_id, encoder_version, vector"
        with cursor.copy(f"COPY {ItemVector._meta.db_table} ({columns}) FROM STDIN (FORMAT binary)") as copy:
            copy.write(b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0))
            copy.write(buffer.getvalue())
            copy.write(struct.pack("!h", -1))


def build(args, texts, labels, base, version):
    """A classification project of --pool items with stored vectors, --labelled labelled."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from labeller.models import ActiveLearningState, Annotation, Item, ItemVector
    from labeller.services import project_create

    owner, _ = get_user_model().objects.get_or_create(username="bench-refresh-owner")
    project = project_create(user=owner, labels=_common.banking77_labels(), name=f"{PREFIX}{int(time.time())}",
                             refresh_every=10, eval_share=0.1)
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    labelled_ids, labelled_sources = [], []
    for start in range(0, args.pool, WRITE_CHUNK):
        rows = np.arange(start, min(start + WRITE_CHUNK, args.pool))
        source = rng.integers(0, len(texts), size=len(rows))
        is_done = rows < args.labelled
        is_eval = ~is_done & (rng.random(len(rows)) < 0.1)
        blobs = noisy_chunk(base, source, rng)
        with transaction.atomic():
            if connection.vendor == "postgresql":
                copy_items(project, ((f"r{r}", texts[s], bool(e), bool(d)) for r, s, e, d in zip(rows, source, is_eval, is_done)))
                ids = np.array(Item.objects.filter(project=project, external_id__in=[f"r{r}" for r in rows])
                               .order_by("id").values_list("id", flat=True), dtype=np.int64)
                copy_vectors(project, version, ids, blobs)
            else:
                items = Item.objects.bulk_create(
                    (Item(project=project, external_id=f"r{r}", data={"text": texts[s]}, search_text=texts[s],
                          is_eval=bool(e), is_done=bool(d), annotation_count=int(d))
                     for r, s, e, d in zip(rows, source, is_eval, is_done)), batch_size=5000)
                ids = np.array([item.id for item in items], dtype=np.int64)
                ItemVector.objects.bulk_create((ItemVector(item_id=int(i), project=project, encoder_version=version,
                                                           vector=blob.tobytes()) for i, blob in zip(ids, blobs)),
                                               batch_size=5000)
        labelled_ids += ids[is_done].tolist()
        labelled_sources += source[is_done].tolist()
        print(f"  stored {rows[-1] + 1:,} items ({time.perf_counter() - started:.0f} s)", flush=True)
    Annotation.objects.bulk_create(Annotation(item_id=i, project=project, annotator=owner, labels=[labels[s]])
                                   for i, s in zip(labelled_ids, labelled_sources))
    ActiveLearningState.objects.filter(project=project).update(encoder_version=version)
    _common.vacuum_analyze(Item._meta.db_table, ItemVector._meta.db_table)
    print(f"stored {args.pool:,} items with vectors ({args.pool * base.shape[1] * 2 / 2**20:.0f} MiB of float16), "
          f"{args.labelled:,} labelled, in {time.perf_counter() - started:.0f} s")
    return project, owner


def remove_earlier_runs() -> int:
    from django.db import connection, transaction

    from labeller.models import ItemVector, Project

    ids = list(Project.objects.filter(name__startswith=PREFIX).values_list("id", flat=True))
    if ids:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {ItemVector._meta.db_table} WHERE project_id IN ({', '.join(['%s'] * len(ids))})", ids)
    return _common.delete_bench_projects(PREFIX)


class RssPeak:
    """The peak resident memory of this process while in the block, sampled every 20 ms."""

    def __enter__(self):
        self.start = self.peak = self.read()
        self.running = True
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()

    def sample(self):
        while self.running:
            self.peak = max(self.peak, self.read())
            time.sleep(0.02)

    @staticmethod
    def read() -> int:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0


def expert_worker(index, user_id, project_id, think_ms, stop, results):
    """Claim and label items until told to stop; report each claim's latency."""
    from django.contrib.auth import get_user_model
    from django.db import connections

    connections.close_all()
    from labeller.models import Project
    from labeller.services import QueueConflict, annotation_submit, queue_claim_next

    user = get_user_model().objects.get(id=user_id)
    project = Project.objects.get(id=project_id)
    keys = list(project.labels.values_list("key", flat=True))
    rng = random.Random(index)
    claims, empty = [], 0
    while not stop.is_set():
        t = time.perf_counter()
        item = queue_claim_next(project=project, user=user)
        claims.append(time.perf_counter() - t)
        if item is None:
            empty += 1
            time.sleep(0.05)
            continue
        time.sleep(rng.uniform(0.5, 1.5) * think_ms / 1000)
        try:
            annotation_submit(item=item, user=user, labels=[rng.choice(keys)])
        except QueueConflict:
            pass
    results.put({"claims": claims, "empty": empty})


def run_with_experts(args, project, refresh):
    """One refresh while --experts processes serve from the queue; their claim latencies."""
    from django.contrib.auth import get_user_model
    from django.db import connections

    from labeller.models import Role
    from labeller.services import membership_set

    experts = []
    for i in range(args.experts):
        user, _ = get_user_model().objects.get_or_create(username=f"bench-refresh-expert-{i}")
        membership_set(project=project, user=user, role=Role.EXPERT)
        experts.append(user)
    connections.close_all()
    ctx = mp.get_context("fork")
    stop, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=expert_worker, args=(i, u.id, project.id, args.think_ms, stop, results), daemon=True)
             for i, u in enumerate(experts)]
    for proc in procs:
        proc.start()
    time.sleep(2.0)  # the experts are serving before the refresh starts
    with RssPeak() as rss:
        report = refresh()
    stop.set()
    out = [results.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
    return report, rss, out


def report_line(run, report, rss) -> str:
    read = getattr(report, "seconds_read", None)
    return (f"refresh {run}: {report.seconds_total:.1f} s ("
            + (f"read {read:.1f} s, " if read is not None else "")
            + f"fit + self-train {report.seconds_fit:.1f} s on {report.labelled:,} labelled, score + rank "
            f"{report.seconds_score:.1f} s over {report.pool:,} open, write {report.seconds_write:.1f} s); peak RSS "
            f"+{(rss.peak - rss.start) / 2**20:.0f} MiB over {rss.start / 2**20:.0f} MiB; load average "
            f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")


def main() -> int:
    args = parse_args()
    os.environ.setdefault("LABELLOOP_TORCH_THREADS", str(args.threads))
    url = _common.setup_django(args.database_url, recreate=args.recreate_db)
    from active_learning.refresh import refresh_run

    print(f"database: {_common.describe_database()}")
    print(f"code: {_common.describe_code()} at {_common.REPO_ROOT}")
    print(f"machine: {os.cpu_count()} cores; load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    removed = remove_earlier_runs()
    if removed:
        print(f"removed {removed} project(s) of earlier runs")
    import csv

    with (_common.BANKING77_DIR / "train.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))[:args.unique]
    texts, labels = [r["text"] for r in rows], [r["category"] for r in rows]
    base, version = encoded_texts(texts, Path(args.cache))
    project, _ = build(args, texts, labels, base, version)
    del base

    for run in range(1, args.runs + 1):
        if run == args.runs and args.experts:
            report, rss, experts = run_with_experts(args, project, lambda: refresh_run(project=project, seed=run))
            print(report_line(run, report, rss))
            claims = [c for e in experts for c in e["claims"]]
            print(_common.latency_line(f"  next item during refresh {run} ({args.experts} experts)", claims))
            print(f"  empty claims: {sum(e['empty'] for e in experts)}")
        else:
            with RssPeak() as rss:
                report = refresh_run(project=project, seed=run)
            print(report_line(run, report, rss), flush=True)
    if not args.no_tracemalloc:
        tracemalloc.start()
        refresh_run(project=project, seed=args.runs + 1)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"peak memory allocated by a refresh (tracemalloc): {peak / 2**20:.0f} MiB")
    print(f"database {url.split('@')[-1]}")
    remove_earlier_runs()
    return 0


if __name__ == "__main__":
    sys.exit(main())
