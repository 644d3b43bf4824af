"""Find-similar benchmark: the nearest items of a big project to one of its items, or to typed text.

What it measures
  1. Load: --items items (default 1,000,000) and one stored float16 vector each (384 dims, the
     shape all-MiniLM-L6-v2 gives) are written with COPY (PostgreSQL) or bulk_create (SQLite).
     The vectors are clustered (--clusters centres plus noise), like real embeddings of
     requests; one item in 100 is marked labelled so the unlabelled filter has work to do.
  2. The first search: it loads the project's matrix into this process's cache (cold).
  3. --queries warm searches to a random item (unlabelled only, k=20) and to typed text
     (banking77 sentences embedded by the real base encoder, offline), p50/p95/max.
  4. Recall@20 of the projected first pass against an exact scan (from 200k items on).
  5. Memory: the cache's bytes and the process's peak RSS.

Target: find-similar p95 <= 300 ms at 1M items.

Run (from the repository root):
  HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/find_similar.py --database-url postgres://postgres@127.0.0.1:5432/h_item_bench
  HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/find_similar.py --items 100000 --database-url sqlite:////tmp/similar.sqlite3
  ... --reuse            # search the project an earlier run loaded (same --items) instead of loading again
"""
from __future__ import annotations

import sys
from pathlib import Path

# benchmarks/queue.py would shadow the standard library's queue: put the repository root first instead.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402
from datetime import datetime, timezone as dt_timezone  # noqa: E402

import numpy as np  # noqa: E402

from benchmarks import _common  # noqa: E402

PREFIX = _common.BENCH_PROJECT_PREFIX + "similar-"
DIM = 384
CHUNK = 50_000


def clustered_vectors(count: int, clusters: int, seed: int = 3):
    """Unit float16 rows in chunks: a random centre each, plus noise (cosine to the centre ~0.7)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    for start in range(0, count, CHUNK):
        n = min(CHUNK, count - start)
        rows = centres[rng.integers(0, clusters, n)] + rng.standard_normal((n, DIM)).astype(np.float32) * 0.05
        rows /= np.linalg.norm(rows, axis=1, keepdims=True)
        yield rows.astype(np.float16)


def load(project, count: int, clusters: int, version: str) -> float:
    from django.db import connection, transaction

    from labeller.models import Item, ItemVector

    texts = [json.dumps({"text": t}) for t in _common.banking77_texts()]
    started = time.perf_counter()
    now = datetime.now(dt_timezone.utc)
    if connection.vendor == "postgresql":
        with transaction.atomic():
            connection.ensure_connection()
            with connection.connection.cursor() as cursor:
                # The data manager's columns (source, search_text, majority, predicted) have no
                # database default: COPY names them, as the services would have set them.
                with cursor.copy(f"COPY {Item._meta.db_table} (project_id, external_id, data, priority, annotation_count, "
                                 "is_done, is_eval, needs_review, created_at, source, search_text, majority, predicted) "
                                 "FROM STDIN") as copy:
                    for i in range(count):
                        labelled = i % 100 == 0
                        text = texts[i % len(texts)]
                        copy.write_row((project.id, f"s{i}", text, 0.0, int(labelled), labelled,
                                        False, False, now, "import", json.loads(text)["text"], "", ""))
                cursor.execute(f"SELECT id FROM {Item._meta.db_table} WHERE project_id = %s ORDER BY id", [project.id])
                ids = [row[0] for row in cursor.fetchall()]
                with cursor.copy(f"COPY {ItemVector._meta.db_table} (item_id, project_id, encoder_version, vector) "
                                 "FROM STDIN") as copy:
                    position = 0
                    for rows in clustered_vectors(count, clusters):
                        for row in rows:
                            copy.write_row((ids[position], project.id, version, row.tobytes()))
                            position += 1
    else:
        position = 0
        for rows in clustered_vectors(count, clusters):
            with transaction.atomic():
                items = Item.objects.bulk_create(
                    Item(project=project, external_id=f"s{position + i}", data={"text": "x"},
                         annotation_count=int((position + i) % 100 == 0), is_done=(position + i) % 100 == 0)
                    for i in range(len(rows)))
                ItemVector.objects.bulk_create(
                    ItemVector(item_id=item.id, project=project, encoder_version=version, vector=row.tobytes())
                    for item, row in zip(items, rows))
            position += len(rows)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--clusters", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--recall-queries", type=int, default=10, help="searches checked against an exact scan")
    parser.add_argument("--reuse", action="store_true", help="search the project an earlier run loaded")
    parser.add_argument("--database-url", default=None, help=f"default {_common.DEFAULT_DATABASE_URL}")
    args = parser.parse_args()
    _common.setup_django(args.database_url)

    from django.contrib.auth import get_user_model
    from django.db import connection

    from active_learning import similar
    from labeller.models import ActiveLearningState, Item, Project
    from labeller.services import project_create
    from ml.encoder import default_model_path, encoder_version
    from ml.encoder_cache import base_encoder

    print(f"database: {_common.describe_database()}")
    print(f"code: {_common.describe_code()}")
    version = encoder_version(default_model_path())
    name = f"{PREFIX}{args.items}"
    project = Project.objects.filter(name=name).order_by("-id").first() if args.reuse else None
    if project is None:
        removed = _common.delete_bench_projects(PREFIX)
        if removed:
            print(f"removed {removed} earlier benchmark project(s)")
        owner, _ = get_user_model().objects.get_or_create(username="bench-similar")
        project = project_create(user=owner, labels=_common.banking77_labels(), name=name)
        seconds = load(project, args.items, args.clusters, version)
        print(f"load {args.items:,} items and vectors: {seconds:.1f} s")
        _common.vacuum_analyze(Item._meta.db_table, "labeller_itemvector")
    ActiveLearningState.objects.filter(project=project).update(encoder_version=version)

    similar.vector_cache_clear()
    rng = np.random.default_rng(5)
    ids = list(Item.objects.filter(project=project).values_list("id", flat=True)[:200_000])
    item = Item.objects.get(id=ids[0])

    started = time.perf_counter()
    similar.similar_items(project=project, item=item, k=20, unlabelled_only=True)
    print(f"first search (cold: loads the matrix): {time.perf_counter() - started:.1f} s")
    index = similar.vector_index_for(project, ActiveLearningState.objects.get(project=project))
    mode = "exact float32" if index.matrix.exact is not None else f"float16 + {index.matrix.basis.shape[1]}-dim projection"
    print(f"cache: {similar.vector_cache_bytes() / 2**20:,.0f} MiB for {args.items:,} x {DIM} ({mode})")

    to_item = []
    for item_id in rng.choice(ids, args.queries, replace=False):
        item = Item.objects.get(id=int(item_id))
        started = time.perf_counter()
        found = similar.similar_items(project=project, item=item, k=20, unlabelled_only=True)
        to_item.append(time.perf_counter() - started)
    print(_common.latency_line("similar to an item", sorted(to_item)))
    print(f"  (k=20 found {len(found)}; best {found[0][1]:.3f}, 20th {found[-1][1]:.3f})")

    if index.matrix.exact is None and args.recall_queries:  # what the projection's first pass misses, against an exact scan
        hits = 0
        rows = rng.choice(len(index.ids), args.recall_queries, replace=False)
        for row in rows:
            query = index.matrix.row(int(row))
            got, _ = index.matrix.nearest(query, top=20, skip=int(row))
            scores = np.concatenate([index.matrix.half[s:s + 65_536].astype(np.float32) @ query
                                     for s in range(0, index.matrix.n, 65_536)])
            scores[row] = -np.inf
            want = np.argpartition(-scores, 20)[:20]
            hits += len(set(got.tolist()) & set(want.tolist()))
        print(f"recall@20 against the exact search: {hits / (20 * len(rows)):.3f} over {len(rows)} queries")
    base_encoder("").encode(["warm up"])
    texts = _common.banking77_texts(args.queries)
    to_text = []
    for text in texts:
        started = time.perf_counter()
        similar.similar_items(project=project, text=text, k=20)
        to_text.append(time.perf_counter() - started)
    print(_common.latency_line("similar to typed text", sorted(to_text)))
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB "
          f"({connection.vendor})")
    p95 = _common.percentile(sorted(to_item + to_text), 0.95) * 1000
    print(f"target p95 <= 300 ms: {'met' if p95 <= 300 else 'NOT met'} ({p95:.0f} ms over both kinds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
