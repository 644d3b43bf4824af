"""Data manager benchmark: the item table's first page under every single filter and sort, full-text
search and filtered counts, on one big project.

What it measures
  1. Fill: --items items (default 1,000,000 on PostgreSQL, 100,000 on SQLite) in one fresh
     project, with PostgreSQL COPY or SQLite executemany, all columns the table reads already
     set as the services would have set them: 40 % labelled by 1-3 of 8 experts (majority and
     agreement), 30 % with a logged prediction (confidence 0.2-1.0, right 80 % of the time),
     10 % in the evaluation set, 1 % under review, 90 / 7 / 3 % imported / abstaining prediction /
     feedback, created over 90 days. Texts are Banking77's. Then VACUUM ANALYZE (or ANALYZE).
  2. For each query, --repeat calls of the real selector (labeller.item_table.items_table_page
     plus the row shaping the API does), first page of 50: p50 / p95 / max, against the targets
     (first page with any single filter or sort p95 <= 150 ms, search p95 <= 300 ms). Then the
     plan of each statement the call sent (EXPLAIN ANALYZE on PostgreSQL, EXPLAIN QUERY PLAN on
     SQLite), as benchmarks/queue.py prints its claim query's.
  3. items_table_count for each filter: time, value, and whether it is exact or an estimate.

Run (from the repository root):
  .venv/bin/python benchmarks/data_manager.py --database-url postgres://postgres@127.0.0.1:5432/labelloop_bench
  .venv/bin/python benchmarks/data_manager.py --database-url sqlite:////tmp/dm_bench.sqlite3 --items 100000
  .venv/bin/python benchmarks/data_manager.py --items 20000 --repeat 5 --no-plans    # a quick look

Projects left by earlier runs (named "bench-dm-...") are deleted first unless --keep.
"""
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, _ROOT)

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402
from datetime import datetime, timedelta, timezone as dt_timezone  # noqa: E402

from benchmarks import _common  # noqa: E402

PREFIX = _common.BENCH_PROJECT_PREFIX + "dm-"
PAGE_TARGET_MS, SEARCH_TARGET_MS = 150.0, 300.0
EXPERTS = 8


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=None, help="items (default 1,000,000 on PostgreSQL, 100,000 on SQLite)")
    parser.add_argument("--repeat", type=int, default=15, help="calls per query (default 15)")
    parser.add_argument("--database-url", default=None, help=f"default {_common.DEFAULT_DATABASE_URL}")
    parser.add_argument("--recreate-db", action="store_true", help="drop and create the database first")
    parser.add_argument("--keep", action="store_true", help="keep earlier bench-dm projects")
    parser.add_argument("--no-plans", action="store_true", help="do not print the query plans")
    _common.add_dataset_flag(parser)
    return parser.parse_args()


def rows_of_dataset() -> list[tuple[str, str]]:
    path = _common.BANKING77_DIR / "train.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        return [(row["text"], row["category"]) for row in csv.DictReader(handle)]


# --------------------------------------------------------------------------------------------
# Fill


def make_project():
    from django.contrib.auth import get_user_model

    from labeller.models import Role
    from labeller.services import membership_set, project_create

    User = get_user_model()
    owner, _ = User.objects.get_or_create(username="bench_owner")
    experts = [User.objects.get_or_create(username=f"bench_dm_expert_{i}")[0] for i in range(EXPERTS)]
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    project = project_create(user=owner, labels=_common.banking77_labels(), name=f"{PREFIX}{stamp}")
    for user in experts:
        membership_set(project=project, user=user, role=Role.EXPERT)
    return project, experts


def generated(project, count: int, experts, rows):
    """(item values by column, [(annotator id, labels)]) for each item, reproducibly."""
    from labeller.agreement import item_majority

    rng = random.Random(11)
    keys = sorted({category for _, category in rows})
    start = datetime.now(dt_timezone.utc) - timedelta(days=90)
    step = timedelta(days=90) / max(count, 1)
    for i in range(count):
        text, category = rows[i % len(rows)]
        created = start + step * i
        values = {"external_id": f"q{i}", "data": json.dumps({"text": text}), "search_text": text,
                  "created_at": created, "is_eval": rng.random() < 0.10, "needs_review": rng.random() < 0.01,
                  "annotation_count": 0, "is_done": False, "majority": "", "agreement": None, "labelled_at": None,
                  "predicted": "", "confidence": None}
        r = rng.random()
        values["source"] = "import" if r < 0.90 else "prediction" if r < 0.97 else "feedback"
        annotations = []
        if rng.random() < 0.40:
            n = rng.choice((1, 1, 2, 3))
            chosen = rng.sample(experts, n)
            labels = [category if rng.random() < 0.8 else rng.choice(keys) for _ in chosen]
            annotations = [(user.id, [label]) for user, label in zip(chosen, labels)]
            (top,), agreement = item_majority([[label] for label in labels], multi_label=False)
            values.update(annotation_count=n, is_done=True, majority=top, agreement=agreement,
                          labelled_at=created + timedelta(hours=rng.random() * 48))
        if rng.random() < 0.30:
            values.update(predicted=category if rng.random() < 0.8 else rng.choice(keys),
                          confidence=round(0.2 + 0.8 * rng.random(), 4))
        yield values, annotations


def fill(project, count: int, experts) -> float:
    """Write the items and their annotations; returns seconds."""
    from django.db import connection, transaction

    from labeller.models import Annotation, Item

    rows = rows_of_dataset()
    item_columns = {f.column: f for f in Item._meta.concrete_fields if not f.primary_key}
    generated_names = ["external_id", "data", "search_text", "created_at", "is_eval", "needs_review", "source",
                       "annotation_count", "is_done", "majority", "agreement", "labelled_at", "predicted", "confidence"]
    constant = {}
    for column, field in item_columns.items():
        if column in generated_names or column == "project_id":
            continue
        constant[column] = field.get_db_prep_save(field.get_default(), connection)
    columns = ["project_id", *generated_names, *constant]
    tail = tuple(constant.values())
    pid = project.id
    now = datetime.now(dt_timezone.utc)
    started = time.perf_counter()
    annotation_rows = []

    def item_rows():
        for values, annotations in generated(project, count, experts, rows):
            annotation_rows.append(annotations)
            yield (pid, *(values[name] for name in generated_names), *tail)

    with transaction.atomic():
        if connection.vendor == "postgresql":
            connection.ensure_connection()
            with connection.connection.cursor() as cursor:
                with cursor.copy(f"COPY {Item._meta.db_table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in item_rows():
                        copy.write_row(row)
        else:
            marks = ", ".join(["%s"] * len(columns))
            convert = [item_columns[c] if c in item_columns else None for c in columns]
            with connection.cursor() as cursor:
                batch = []
                for row in item_rows():
                    batch.append([f.get_db_prep_save(v, connection) if f is not None and not isinstance(v, (str, int, float))
                                  and v is not None else v for f, v in zip(convert, row)])
                    if len(batch) == 5000:
                        cursor.executemany(f"INSERT INTO {Item._meta.db_table} ({', '.join(columns)}) VALUES ({marks})", batch)
                        batch = []
                if batch:
                    cursor.executemany(f"INSERT INTO {Item._meta.db_table} ({', '.join(columns)}) VALUES ({marks})", batch)
        first_id = Item.objects.filter(project=project).order_by("id").values_list("id", flat=True).first()
        ann = [(pid, first_id + i, user_id, json.dumps(labels), False, "expert", now, now)
               for i, annotations in enumerate(annotation_rows) for user_id, labels in annotations]
        ann_columns = "project_id, item_id, annotator_id, labels, skipped, source, created_at, updated_at"
        if connection.vendor == "postgresql":
            with connection.connection.cursor() as cursor:
                with cursor.copy(f"COPY {Annotation._meta.db_table} ({ann_columns}) FROM STDIN") as copy:
                    for row in ann:
                        copy.write_row(row)
        else:
            with connection.cursor() as cursor:
                cursor.executemany(f"INSERT INTO {Annotation._meta.db_table} ({ann_columns}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                                   [(*row[:6], connection.ops.adapt_datetimefield_value(now),
                                     connection.ops.adapt_datetimefield_value(now)) for row in ann])
    print(f"annotations: {len(ann):,}")
    return time.perf_counter() - started


# --------------------------------------------------------------------------------------------
# Queries


def queries(project, experts) -> list[tuple[str, str, dict, list[str]]]:
    """(kind, name, filters, [sort]) for every single filter and sort, and the searches."""
    from datetime import datetime as dt

    now = dt.now(dt_timezone.utc)
    out = [("sort", f"sort={sort}", {}, [sort]) for sort in ("id", "-id", "created_at", "-created_at", "labelled_at",
                                                              "-labelled_at", "confidence", "-confidence",
                                                              "agreement", "-agreement")]
    singles = [("status=done", {"status": "done"}), ("status=not_done", {"status": "not_done"}),
               ("status=labelled", {"status": "labelled"}), ("status=unlabelled", {"status": "unlabelled"}),
               ("label=<one of 77>", "label"), ("predicted=<one of 77>", "predicted"),
               ("annotator=<one of 8>", "annotator"),
               ("agreement_min=0.9", {"agreement_min": 0.9}), ("agreement_max=0.5", {"agreement_max": 0.5}),
               ("confidence_min=0.9", {"confidence_min": 0.9}), ("confidence_max=0.3", {"confidence_max": 0.3}),
               ("disagrees=true", {"disagrees": True}), ("disagrees=false", {"disagrees": False}),
               ("is_eval=true", {"is_eval": True}), ("needs_review=true", {"needs_review": True}),
               ("source=import", {"source": "import"}), ("source=prediction", {"source": "prediction"}),
               ("source=feedback", {"source": "feedback"}),
               ("created_after=-7d", {"created_after": now - timedelta(days=7)}),
               ("created_before=-83d", {"created_before": now - timedelta(days=83)}),
               ("labelled_after=-7d", {"labelled_after": now - timedelta(days=7)})]
    out += [("filter", name, filters, ["id"]) for name, filters in singles]
    # Words from very common to rare in Banking77, and a two-word query.
    for q in ("card", "transfer", "refund", "exchange rate", "pin", "apple pay", "disposable", "zzzunknownword"):
        out.append(("search", f"q={q!r}", {"q": q}, ["id"]))
    out.append(("search", "q='card' sort=-confidence", {"q": "card"}, ["-confidence"]))
    out.append(("search", "q='card' + status=done", {"q": "card", "status": "done"}, ["id"]))
    return out


def resolved(filters, project, experts, rng, keys):
    if filters == "label":
        return {"label": rng.choice(keys)}
    if filters == "predicted":
        return {"predicted": rng.choice(keys)}
    if filters == "annotator":
        return {"annotator": rng.choice(experts).id}
    return filters


def run_queries(project, experts, repeat: int, plans: bool) -> list[tuple[str, str, float, float, float]]:
    from django.db import connection

    from labeller import item_table

    keys = list(project.labels.values_list("key", flat=True))
    rng = random.Random(3)
    results = []
    for kind, name, filters, (sort,) in queries(project, experts):
        seconds = []
        for _ in range(repeat):
            chosen = resolved(filters, project, experts, rng, keys)
            t = time.perf_counter()
            page = item_table.items_table_page(project=project, filters=chosen, sort=sort, limit=50)
            [item_table.item_row(row) for row in page.rows]
            seconds.append(time.perf_counter() - t)
        ms = sorted(s * 1000 for s in seconds)
        p50, p95 = _common.percentile(ms, .5), _common.percentile(ms, .95)
        target = SEARCH_TARGET_MS if kind == "search" else PAGE_TARGET_MS
        print(f"{kind:<7} {name:<34} rows={len(page.rows):<3} p50={p50:8.2f} ms  p95={p95:8.2f} ms  max={ms[-1]:8.2f} ms"
              f"  {'ok' if p95 <= target else 'OVER ' + str(int(target))}")
        results.append((kind, name, p50, p95, ms[-1]))
        if plans:
            print_plans(project, resolved(filters, project, experts, rng, keys), sort, connection)
    return results


def print_plans(project, filters, sort, connection) -> None:
    from django.db import transaction

    from labeller import item_table

    captured = []

    def capture(execute, sql, params, many, context):
        captured.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        item_table.items_table_page(project=project, filters=filters, sort=sort, limit=50)
    for sql, params in captured:
        prefix = "EXPLAIN (ANALYZE, BUFFERS) " if connection.vendor == "postgresql" else "EXPLAIN QUERY PLAN "
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(prefix + sql, params)
            rows = cursor.fetchall()
        # The column list is the same in every query: show from FROM on.
        short = sql[sql.find(" FROM "):] if " FROM " in sql else sql
        print(f"    SQL: ...{short if len(short) < 400 else short[:400] + ' ...'}")
        for row in rows:
            print("     |", row[0] if connection.vendor == "postgresql" else row[-1])


def run_counts(project, experts) -> None:
    from labeller import item_table

    keys = list(project.labels.values_list("key", flat=True))
    rng = random.Random(5)
    print("\n-- filtered counts (items_table_count: exact up to 10,000, else the planner's estimate) --")
    seen = set()
    for kind, name, filters, _ in queries(project, experts):
        if name in seen or kind == "sort" and name != "sort=id":
            continue
        seen.add(name)
        chosen = resolved(filters, project, experts, rng, keys)
        t = time.perf_counter()
        count = item_table.items_table_count(project=project, filters=chosen)
        ms = (time.perf_counter() - t) * 1000
        label = "(no filter)" if kind == "sort" else name
        print(f"count  {label:<34} {ms:8.2f} ms  {count.text:>16}  {'exact' if count.exact else 'estimate'}")


def main() -> int:
    args = parse_args()
    _common.use_dataset(args)
    _common.setup_django(args.database_url, recreate=args.recreate_db)
    from django.db import connection

    from labeller.models import Annotation, Item

    count = args.items or (1_000_000 if connection.vendor == "postgresql" else 100_000)
    print("== Labelloop data manager benchmark ==")
    print(f"machine: {os.cpu_count()} CPU cores; python {sys.version.split()[0]}")
    print(f"database: {_common.describe_database()}")
    print(f"code: {_common.describe_code()} at {_common.REPO_ROOT}")
    print(f"items={count:,} repeat={args.repeat}")
    if not args.keep:
        t = time.perf_counter()
        removed = _common.delete_bench_projects(PREFIX)
        if removed:
            print(f"removed {removed} earlier bench-dm project(s) in {time.perf_counter() - t:.1f} s")
    project, experts = make_project()
    print("\n-- fill --")
    seconds = fill(project, count, experts)
    print(f"fill {count:,} items: {seconds:.1f} s ({count / seconds:,.0f} items/s)")
    t = time.perf_counter()
    _common.vacuum_analyze(Item._meta.db_table, Annotation._meta.db_table)
    print(f"VACUUM ANALYZE / ANALYZE: {time.perf_counter() - t:.1f} s")

    print(f"\n-- first page of 50 (targets: p95 <= {PAGE_TARGET_MS:.0f} ms, search p95 <= {SEARCH_TARGET_MS:.0f} ms) --")
    results = run_queries(project, experts, args.repeat, plans=not args.no_plans)
    run_counts(project, experts)
    worst_page = max((r for r in results if r[0] != "search"), key=lambda r: r[3])
    worst_search = max((r for r in results if r[0] == "search"), key=lambda r: r[3])
    print("\n-- summary --")
    print(f"worst first page p95: {worst_page[3]:.2f} ms ({worst_page[1]})")
    print(f"worst search p95: {worst_search[3]:.2f} ms ({worst_search[1]})")
    over = [r for r in results if r[3] > (SEARCH_TARGET_MS if r[0] == "search" else PAGE_TARGET_MS)]
    print(f"queries over target: {len(over)}" + (": " + ", ".join(r[1] for r in over) if over else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
