"""Import benchmark: rows per second and memory of labeller.importing.items_import on a big CSV.

What it measures
  A --rows row CSV (default 100,000; columns external_id,text; texts from
  datasets/banking77/train.csv, cycled with a " #<n>" suffix so every row is distinct)
  is written to a temporary folder, then imported with the real items_import into a fresh
  project. The same is repeated with half the rows, so you can see whether memory grows with the
  file (it should not: the import is streamed and written in batches).

  Each import runs in its own forked process so the figures do not leak into each other:
    * a timed run (no tracing): wall seconds, rows/s, and ru_maxrss delta (peak resident memory
      of the process during the import minus its resident memory just before it);
    * a traced run into another fresh project: tracemalloc peak of the Python heap during the
      import (tracing slows Python down, which is why it is not the timed run).
  The import's result (created rows, errors, duplicates) and the item count in the database are
  checked after each run.

Targets: >= 5,000 rows/s; memory flat in file size (the full and half runs about equal).

Run (from the repository root):
  .venv/bin/python benchmarks/import.py                          # 100,000 rows, PostgreSQL
  .venv/bin/python benchmarks/import.py --rows 20000
  .venv/bin/python benchmarks/import.py --database-url sqlite:////tmp/labelloop_bench.sqlite3
  .venv/bin/python benchmarks/import.py --profile                # + cProfile of one import

The database defaults to postgres://postgres@127.0.0.1:5432/labelloop_bench (created and
migrated if missing; DATABASE_URL in the environment is used if set and --database-url is not).
Projects left by earlier runs of this script (named "bench-import-...") are deleted first.
"""
import os
import sys

# Import the project (and benchmarks._common) from the repository root, not from benchmarks/.
_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, _ROOT)

import argparse  # noqa: E402
import csv  # noqa: E402
import gc  # noqa: E402
import multiprocessing as mp  # noqa: E402
import resource  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from datetime import datetime  # noqa: E402
from pathlib import Path  # noqa: E402

from benchmarks import _common  # noqa: E402

PREFIX = _common.BENCH_PROJECT_PREFIX + "import-"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows in the big file (default 100,000)")
    parser.add_argument("--database-url", default=None, help=f"default {_common.DEFAULT_DATABASE_URL}")
    parser.add_argument("--mode", choices=("atomic", "partial"), default="atomic", help="import mode (default atomic)")
    parser.add_argument("--batch-size", type=int, default=None, help="override LABELLOOP_IMPORT_BATCH_SIZE")
    parser.add_argument("--no-trace", action="store_true", help="skip the tracemalloc runs")
    parser.add_argument("--profile", action="store_true", help="also cProfile one import of the big file")
    parser.add_argument("--recreate-db", action="store_true",
                        help="drop and re-create the benchmark database first (e.g. after a migration was edited)")
    parser.add_argument("--keep", action="store_true", help="keep earlier bench-import projects")
    _common.add_dataset_flag(parser)
    args = parser.parse_args()
    _common.use_dataset(args)
    return args


def write_csv(path: Path, rows: int, texts: list[str]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["external_id", "text"])
        n = len(texts)
        for i in range(rows):
            writer.writerow([f"row-{i:08d}", f"{texts[i % n]} #{i // n}"])


def _maxrss_bytes() -> int:
    # Linux reports ru_maxrss in KiB, macOS in bytes.
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return value if sys.platform == "darwin" else value * 1024


def _current_rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return _maxrss_bytes()


def _one_import(path: Path, rows: int, args, how: str) -> dict:
    """Body of a child process: import `path` into a fresh project and measure."""
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from labeller.importing import items_import
    from labeller.models import Item
    from labeller.services import project_create

    if args.batch_size:
        settings.LABELLOOP_IMPORT_BATCH_SIZE = args.batch_size
    owner, _ = get_user_model().objects.get_or_create(username="bench_owner")
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    project = project_create(user=owner, labels=_common.banking77_labels(), name=f"{PREFIX}{how}-{rows}-{stamp}")
    out = {"rows": rows, "how": how}
    gc.collect()
    if how == "traced":
        import tracemalloc

        tracemalloc.start()
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
    profiler = None
    if how == "profiled":
        import cProfile

        profiler = cProfile.Profile()
    rss_before, maxrss_before = _current_rss_bytes(), _maxrss_bytes()
    started = time.perf_counter()
    with path.open("rb") as stream:
        if profiler:
            profiler.enable()
        result = items_import(project=project, stream=stream, filename=path.name, mode=args.mode)
        if profiler:
            profiler.disable()
    out["seconds"] = time.perf_counter() - started
    out["maxrss_delta"] = _maxrss_bytes() - max(rss_before, 0)
    out["maxrss_before"] = maxrss_before
    out["rss_before"] = rss_before
    if how == "traced":
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        out["trace_peak"] = peak - base
        out["trace_end"] = current - base
    if profiler:
        import io
        import pstats

        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(30)
        out["profile"] = text.getvalue()
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(20)
        out["profile_tottime"] = text.getvalue()
    out["created"] = result.created
    out["error_count"] = result.error_count
    out["duplicates"] = result.duplicate_count
    out["committed"] = result.committed
    out["in_db"] = Item.objects.filter(project=project).count()
    return out


def run_in_child(path: Path, rows: int, args, how: str) -> dict:
    from django.db import connections

    connections.close_all()  # the child opens its own connection
    ctx = mp.get_context("fork")
    results = ctx.Queue()

    def body():
        try:
            results.put(_one_import(path, rows, args, how))
        except BaseException:
            results.put({"error": traceback.format_exc()})

    proc = ctx.Process(target=body)
    proc.start()
    out = results.get(timeout=1800)
    proc.join(timeout=60)
    if "error" in out:
        raise RuntimeError(f"{how} import of {rows} rows failed:\n{out['error']}")
    return out


def main() -> int:
    args = parse_args()
    _common.setup_django(args.database_url, recreate=args.recreate_db)
    from django.conf import settings

    print("== Labelloop import benchmark ==")
    print(f"machine: {os.cpu_count()} CPU cores; python {sys.version.split()[0]}; "
          f"1-min load average {os.getloadavg()[0]:.2f}")
    print(f"database: {_common.describe_database()}")
    print(f"code: {_common.describe_code()} at {_common.REPO_ROOT}")
    print(f"rows={args.rows:,} mode={args.mode} batch_size={args.batch_size or settings.LABELLOOP_IMPORT_BATCH_SIZE}")
    if not args.keep:
        t = time.perf_counter()
        removed = _common.delete_bench_projects(PREFIX)
        if removed:
            print(f"removed {removed} earlier bench-import project(s) in {time.perf_counter() - t:.1f} s")

    texts = _common.banking77_texts()
    sizes = [args.rows, max(1, args.rows // 2)]
    figures = []
    with tempfile.TemporaryDirectory(prefix="labelloop-import-bench-") as tmp:
        files = {}
        for rows in sizes:
            path = Path(tmp) / f"items-{rows}.csv"
            t = time.perf_counter()
            write_csv(path, rows, texts)
            files[rows] = path
            print(f"wrote {path.name}: {path.stat().st_size / 2**20:.1f} MiB in {time.perf_counter() - t:.2f} s")
        print()
        for rows in sizes:
            timed = run_in_child(files[rows], rows, args, "timed")
            traced = None if args.no_trace else run_in_child(files[rows], rows, args, "traced")
            ok = timed["created"] == rows == timed["in_db"] and timed["error_count"] == 0 and timed["committed"]
            figures.append((rows, timed, traced))
            print(f"{rows:>9,} rows  {files[rows].stat().st_size / 2**20:6.1f} MiB  {timed['seconds']:7.2f} s  "
                  f"{rows / timed['seconds']:>9,.0f} rows/s  ru_maxrss delta {timed['maxrss_delta'] / 2**20:7.1f} MiB "
                  f"(RSS before {timed['rss_before'] / 2**20:.0f} MiB)"
                  + ("" if traced is None else
                     f"  tracemalloc peak {traced['trace_peak'] / 2**20:6.2f} MiB"
                     f" (traced run {rows / traced['seconds']:,.0f} rows/s)")
                  + f"  created={timed['created']:,} in_db={timed['in_db']:,} errors={timed['error_count']}"
                  f" duplicates={timed['duplicates']} {'OK' if ok else 'MISMATCH'}")
        if args.profile:
            prof = run_in_child(files[args.rows], args.rows, args, "profiled")
            print(f"\n-- cProfile of one import of {args.rows:,} rows ({args.rows / prof['seconds']:,.0f} rows/s "
                  f"under the profiler) --")
            print(prof["profile_tottime"])
            print(prof["profile"])

    (full_rows, full, full_tr), (half_rows, half, half_tr) = figures
    rate = full_rows / full["seconds"]
    print("\n== summary ==")
    print(f"rows/s ({full_rows:,} rows): {rate:,.0f} (target >= 5,000): {'PASS' if rate >= 5000 else 'MISS'}")
    print(f"ru_maxrss delta: {full['maxrss_delta'] / 2**20:.1f} MiB for {full_rows:,} rows vs "
          f"{half['maxrss_delta'] / 2**20:.1f} MiB for {half_rows:,} rows")
    if full_tr and half_tr:
        ratio = full_tr["trace_peak"] / max(1, half_tr["trace_peak"])
        print(f"tracemalloc peak: {full_tr['trace_peak'] / 2**20:.2f} MiB for {full_rows:,} rows vs "
              f"{half_tr['trace_peak'] / 2**20:.2f} MiB for {half_rows:,} rows (ratio {ratio:.2f}; "
              f"flat if ~1, proportional if ~2): {'FLAT' if ratio < 1.25 else 'GROWS WITH FILE SIZE'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
