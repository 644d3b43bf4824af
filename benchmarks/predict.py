"""Predict API benchmark: POST /api/projects/<id>/predict through a real gunicorn, over HTTP.

Set-up (printed with its times): a fresh database, a project with the 77 Banking77 intents and
--per-intent (default 20) labelled training queries each, written with the ORM; a head version
trained by the registry's services and promoted to champion; a project token with the predict
scope. Then, for each gunicorn configuration in --configs (default "1x4,2x1": `-w 1 --threads 4`
(gthread) and `-w 2` (sync)), a server is started on a free port and, after a warm-up that
loads the model in every worker:

  1. single item at a fixed --rate (default 20 requests/s) for --seconds (default 30), from a
     pool of client threads; each latency is measured from the request's *scheduled* send time,
     so a stalled server is charged for every request it held up (no coordinated omission).
     p50, p95, p99, max and errors. Targets: p50 <= 30 ms, p99 <= 100 ms.
  2. batches of --batch (default 64) items, back to back, with 1 and then 2 concurrent clients
     for --batch-seconds (default 20) each: items/s. Target >= 250 items/s.

Texts come from Banking77's test.csv (train.csv if it is missing). Each phase also prints where
the machine's CPU went (gunicorn, PostgreSQL backends, this load generator, everything else),
and the share of answers that abstained: an abstaining prediction also writes a queue item in the
request. Last, an in-process breakdown of single and batch requests through Django's test client
(the same view, no gunicorn) splits each request into model (encoder + head), database round
trips and the rest (Django, DRF, JSON, the service's Python), so a miss can be traced.

Figures go to benchmarks/out/predict.json (or --json).

Run (from the repository root):
  .venv/bin/python benchmarks/predict.py                         # SQLite, both configurations, ~5 min
  .venv/bin/python benchmarks/predict.py --quick                 # smoke run, ~1.5 min
  .venv/bin/python benchmarks/predict.py --configs 2x1 --database-url postgres://postgres@127.0.0.1:5432/labelloop_bench_serving

The database is dropped and created again on each run (SQLite in --data-dir by default, or the
PostgreSQL database named by --database-url); --data-dir defaults to /tmp/bench-serving.
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
import time  # noqa: E402

from benchmarks import _common, _serving  # noqa: E402

TARGET_P50_MS, TARGET_P99_MS, TARGET_ITEMS_S = 30.0, 100.0, 250.0


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--database-url", default=None, help="default: SQLite in --data-dir (the app's embedded default)")
    p.add_argument("--data-dir", default=_serving.DEFAULT_DATA_DIR)
    p.add_argument("--cache-url", default="", help="LABELLOOP_CACHE_URL for the server (default: per-process memory)")
    p.add_argument("--configs", default="1x4,2x1", help="gunicorn WORKERSxTHREADS, comma-separated (default 1x4,2x1)")
    p.add_argument("--runtime", default="onnx", choices=["onnx", "torch"], help="LABELLOOP_SERVE_RUNTIME (default onnx)")
    p.add_argument("--precisions", default="fp32,int8",
                   help="serving precisions to run each configuration with (LABELLOOP_SERVE_INT8 off/on; default fp32,int8)")
    p.add_argument("--per-intent", type=int, default=20, help="labelled queries per intent (default 20)")
    p.add_argument("--intents", type=int, default=77)
    p.add_argument("--rate", type=float, default=20.0, help="single-item requests per second (default 20)")
    p.add_argument("--seconds", type=float, default=30.0, help="single-item phase length (default 30)")
    p.add_argument("--threads", type=int, default=8, help="client threads of the paced phase (default 8)")
    p.add_argument("--batch", type=int, default=64, help="items per batch request (default 64)")
    p.add_argument("--batch-seconds", type=float, default=20.0, help="length of each batch phase (default 20)")
    p.add_argument("--warmup", type=float, default=5.0, help="minimum warm-up seconds per server (default 5)")
    p.add_argument("--no-breakdown", action="store_true", help="skip the in-process time breakdown")
    p.add_argument("--quick", action="store_true", help="smoke run: 8 s phases, 5 per intent, one configuration")
    p.add_argument("--json", default="predict.json", help="file name in benchmarks/out (default predict.json)")
    _common.add_dataset_flag(p)
    args = p.parse_args()
    _common.use_dataset(args)
    if args.quick:
        args.seconds, args.batch_seconds, args.warmup, args.per_intent = 8.0, 6.0, 2.0, min(args.per_intent, 5)
        if args.configs == "1x4,2x1":
            args.configs = "2x1"
    return args


def single_bodies(texts: list[str]) -> list[bytes]:
    return [json.dumps({"data": {"text": t}, "key": f"user-{i}"}).encode() for i, t in enumerate(texts)]


def batch_bodies(texts: list[str], size: int) -> list[bytes]:
    out = []
    for start in range(0, len(texts) - size + 1, size):
        out.append(json.dumps({"items": [{"data": {"text": t}} for t in texts[start:start + size]]}).encode())
    return out


def sender(path: str, bodies: list[bytes], units: int):
    def send(client: _serving.Http, i: int):
        status, data = client.post(path, bodies[i % len(bodies)])
        if status != 200:
            return status, units, {"body": data[:300].decode(errors="replace")}
        answer = json.loads(data)
        answers = answer["predictions"] if "predictions" in answer else [answer]
        return status, units, {"abstain": sum(a["abstain"] for a in answers), "n": len(answers)}

    return send


def abstain_share(results) -> float:
    n = sum(r.extra.get("n", 0) for r in results if r.status == 200 and r.extra)
    return sum(r.extra.get("abstain", 0) for r in results if r.status == 200 and r.extra) / n if n else 0.0


def warm_up(server: _serving.Gunicorn, headers: dict, path: str, single: list[bytes], batch: list[bytes], seconds: float) -> dict:
    """Until every worker has loaded the model (its RSS grew past the torch import) and `seconds`
    passed: concurrent single and batch requests, so each worker serves some."""
    started = time.monotonic()
    clients = max(2, server.workers * server.threads * 2)
    while True:
        _serving.closed_loop(port=server.port, headers=headers, clients=clients, seconds=1.0,
                             send=lambda c, i: sender(path, batch if i % 4 == 0 else single, 1)(c, i))
        rss = {pid: _serving.rss_mib(pid) for pid in server.worker_pids()}
        if time.monotonic() - started >= seconds and rss and min(rss.values()) > 250:
            break
        if time.monotonic() - started > 120:
            print("  warning: a worker did not load the model in 120 s; RSS (MiB):", rss)
            break
    return {"seconds": round(time.monotonic() - started, 1), "worker_rss_mib": [round(v) for v in rss.values()]}


def run_config(spec: str, precision: str, args, headers: dict, path: str, single: list[bytes], batch: list[bytes],
               dbname: str | None) -> dict:
    workers, threads = (int(x) for x in spec.lower().split("x"))
    port = _serving.free_port()
    log = Path(args.data_dir) / f"gunicorn-predict-{spec}-{precision}.log"
    os.environ["LABELLOOP_SERVE_INT8"] = "1" if precision == "int8" else "0"  # read by the server's workers
    os.environ["LABELLOOP_SERVE_RUNTIME"] = args.runtime
    os.environ["LABELLOOP_TORCH_THREADS"] = str(max(1, (os.cpu_count() or 1) // workers))  # no oversubscription
    server = _serving.Gunicorn(port=port, workers=workers, threads=threads, log_path=log)
    out: dict = {"config": f"{server.config}, {args.runtime} {precision}", "precision": precision, "runtime": args.runtime}
    print(f"\n-- gunicorn {server.config}, serving {args.runtime} {precision}, on 127.0.0.1:{port} (log {log}) --")
    server.start()
    try:
        out["ready_s"] = round(server.wait_ready(), 2)
        out["warm_up"] = warm_up(server, headers, path, single, batch, args.warmup)
        print(f"  answering after {out['ready_s']} s; warm-up {out['warm_up']['seconds']} s, "
              f"worker RSS {out['warm_up']['worker_rss_mib']} MiB")
        meter = _serving.CpuMeter({"gunicorn": server}, dbname)

        meter.start()
        results = _serving.paced(port=port, headers=headers, rate=args.rate, seconds=args.seconds, threads=args.threads,
                                 send=sender(path, single, 1))
        cpu = meter.stop()
        s = _serving.summary(results, ok=(200,))
        s.update(rate=args.rate, seconds=args.seconds, abstain_share=round(abstain_share(results), 3), cpu=cpu)
        out["single"] = s
        print(_serving.latency_row(f"single item @ {args.rate:g}/s", s))
        print(f"  service time (send to answer) p50 {s['service_p50_ms']} / p99 {s['service_p99_ms']} ms; "
              f"client send lag p99 {s['send_lag_p99_ms']} ms (max {s['send_lag_max_ms']}); abstained {s['abstain_share']:.0%}")
        if s["errors"]:
            print(f"  errors {s['error_kinds']}; first: {_serving.first_error(results)}")
        print(_serving.cpu_line(cpu, per=s["requests"]))

        for clients in (1, 2):
            meter.start()
            results, wall = _serving.closed_loop(port=port, headers=headers, clients=clients, seconds=args.batch_seconds,
                                                 send=sender(path, batch, args.batch))
            cpu = meter.stop()
            s = _serving.summary(results, ok=(200,))
            items = sum(r.units for r in results if r.status == 200)
            s.update(clients=clients, batch=args.batch, wall_s=round(wall, 2), items=items,
                     items_per_s=round(items / wall, 1), abstain_share=round(abstain_share(results), 3), cpu=cpu)
            out[f"batch_{clients}_clients"] = s
            print(_serving.latency_row(f"batch of {args.batch}, {clients} client(s)", s))
            print(f"  {items} items in {wall:.1f} s = {items / wall:,.1f} items/s; abstained {s['abstain_share']:.0%}")
            if s["errors"]:
                print(f"  errors {s['error_kinds']}; first: {_serving.first_error(results)}")
            print(_serving.cpu_line(cpu, per=items, unit="item"))
    finally:
        server.stop()
    return out


def serving_accuracy(version, runtime: str, precisions: list[str], limit: int | None = None) -> dict:
    """The champion's accuracy on Banking77's test set as served, in each precision: what
    LABELLOOP_SERVE_INT8's speed costs."""
    from django.test import override_settings

    from models_registry import serving

    rows = _serving.banking77_rows("test.csv")[:limit]
    texts, truth = [r["text"] for r in rows], [r["category"] for r in rows]
    out = {}
    for precision in precisions:
        with override_settings(LABELLOOP_SERVE_INT8=precision == "int8", LABELLOOP_SERVE_RUNTIME=runtime):
            predictor = serving.Predictor(version)
            predictor.probabilities(texts[:64])
            started = time.perf_counter()
            probs = predictor.probabilities(texts)
            seconds = time.perf_counter() - started
        predicted = [predictor.classes[i] for i in probs.argmax(axis=1)]
        out[precision] = {"n": len(texts), "accuracy": round(sum(p == t for p, t in zip(predicted, truth)) / len(texts), 4),
                          "texts_per_s": round(len(texts) / seconds, 1)}
    return out


def breakdown(project, token: str, texts: list[str], batch: int, n_single: int = 200, n_batch: int = 10) -> dict:
    """Single and batch requests through Django's test client, in this process: total, model
    (Predictor.probabilities), database round trips, and the rest."""
    from django.db import connection
    from django.test import Client

    from models_registry import serving

    timers = {"model": 0.0, "db": 0.0, "queries": 0}
    original = serving.Predictor.probabilities

    def timed_probabilities(self, texts, batch_size=serving.SERVE_BATCH):
        t = time.perf_counter()
        try:
            return original(self, texts, batch_size=batch_size)
        finally:
            timers["model"] += time.perf_counter() - t

    def timed_db(execute, sql, params, many, context):
        t = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            timers["db"] += time.perf_counter() - t
            timers["queries"] += 1

    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    path = f"/api/projects/{project.id}/predict"
    out = {}
    serving.Predictor.probabilities = timed_probabilities
    try:
        with connection.execute_wrapper(timed_db):
            for name, n, make in (
                ("single", n_single, lambda i: {"data": {"text": texts[i % len(texts)]}}),
                (f"batch_{batch}", n_batch, lambda i: {"items": [{"data": {"text": t}} for t in texts[i * batch:(i + 1) * batch]]}),
            ):
                for i in range(3):  # warm
                    client.post(path, make(i), content_type="application/json")
                timers.update(model=0.0, db=0.0, queries=0)
                started = time.perf_counter()
                for i in range(n):
                    response = client.post(path, make(i), content_type="application/json")
                    assert response.status_code == 200, response.content[:300]
                total = time.perf_counter() - started
                rest = total - timers["model"] - timers["db"]
                out[name] = {"requests": n, "total_ms": round(total / n * 1000, 2), "model_ms": round(timers["model"] / n * 1000, 2),
                             "db_ms": round(timers["db"] / n * 1000, 2), "queries": round(timers["queries"] / n, 1),
                             "rest_ms": round(rest / n * 1000, 2)}
    finally:
        serving.Predictor.probabilities = original
    return out


def main() -> int:
    args = parse_args()
    url = _serving.configure(database_url=args.database_url, data_dir=args.data_dir, cache_url=args.cache_url or None)
    from django.db import connection

    dbname = _serving.database_name(url) if connection.vendor == "postgresql" else None
    print("== Labelloop predict API benchmark (HTTP, gunicorn) ==")
    print(f"machine: {os.cpu_count()} CPU cores; python {sys.version.split()[0]}; 1-min load average {os.getloadavg()[0]:.2f}")
    print(f"database: {_common.describe_database()}")
    print(f"code: {_common.describe_code()}; cache: {args.cache_url or 'per-process memory'}; data dir {args.data_dir}")

    print("\n-- set-up --")
    served = _serving.served_project(name="bench-predict", intents=args.intents, per_intent=args.per_intent)
    version = served.version
    print(f"project {served.project.id}: {len(served.intents)} intents x {args.per_intent} labelled queries; "
          f"head v{version.number} {version.status}, eval accuracy {version.metrics.get('accuracy')}; champion")
    print("  " + ", ".join(f"{k} {v:.1f} s" for k, v in served.timings.items()))
    print("\n-- serving accuracy of the champion on banking77 test.csv, per precision (in process) --")
    figures_accuracy = serving_accuracy(version, args.runtime, [p.strip() for p in args.precisions.split(",") if p.strip()],
                                        limit=500 if args.quick else None)
    for name, a in figures_accuracy.items():
        print(f"  {name}: accuracy {a['accuracy']:.4f} on {a['n']} texts ({a['texts_per_s']:.0f} texts/s in process, as served)")
    token = _serving.make_token(served.project, ["predict"], "bench predict")
    headers = {"Authorization": f"Bearer {token}"}
    texts, source = _serving.request_texts()
    path = f"/api/projects/{served.project.id}/predict"
    single, batch = single_bodies(texts), batch_bodies(texts, args.batch)
    print(f"request texts: {len(texts)} from banking77 {source}")

    figures = {
        "machine": {"cores": os.cpu_count(), "python": sys.version.split()[0], "load_average_at_start": os.getloadavg()[0]},
        "database": _common.describe_database(), "code": _common.describe_code(), "cache": args.cache_url or "locmem",
        "setup": {"intents": len(served.intents), "per_intent": args.per_intent, "timings_s": served.timings,
                  "version": version.number, "metrics": {k: version.metrics.get(k) for k in ("accuracy", "macro_f1")}},
        "serving_accuracy": figures_accuracy,
        "targets": {"single_p50_ms": TARGET_P50_MS, "single_p99_ms": TARGET_P99_MS, "batch_items_per_s": TARGET_ITEMS_S},
        "runs": [],
    }
    from django.db import connections

    connections.close_all()  # no open SQLite/PostgreSQL handle of ours while the server runs
    try:
        for spec in [s.strip() for s in args.configs.split(",") if s.strip()]:
            for precision in [p.strip() for p in args.precisions.split(",") if p.strip()]:
                figures["runs"].append(run_config(spec, precision, args, headers, path, single, batch, dbname))
    finally:
        _serving.Group.stop_all()

    if not args.no_breakdown:
        print("\n-- where a request's time goes (in process, Django test client, same view; no gunicorn, no load) --")
        figures["breakdown"] = breakdown(served.project, token, texts, args.batch, n_single=50 if args.quick else 200,
                                         n_batch=3 if args.quick else 10)
        for name, b in figures["breakdown"].items():
            print(f"  {name:<9} total {b['total_ms']:7.2f} ms = model {b['model_ms']:7.2f} + database {b['db_ms']:6.2f} "
                  f"({b['queries']} queries) + rest {b['rest_ms']:6.2f} (Django, DRF, JSON, service Python)")

    print("\n== summary ==")
    print(f"{'gunicorn, runtime, precision':<40} {'single p50':>10} {'p95':>8} {'p99':>8} {'errors':>7} {'batch 1 client':>15} {'2 clients':>10}")
    for run in figures["runs"]:
        s, b1, b2 = run["single"], run["batch_1_clients"], run["batch_2_clients"]
        print(f"{run['config']:<40} {s['p50_ms']:>8.1f}ms {s['p95_ms']:>6.1f}ms {s['p99_ms']:>6.1f}ms {s['errors']:>7} "
              f"{b1['items_per_s']:>9.1f} it/s {b2['items_per_s']:>6.1f} it/s")
    for run in figures["runs"]:
        s = run["single"]
        best = max(run["batch_1_clients"]["items_per_s"], run["batch_2_clients"]["items_per_s"])
        verdicts = [f"p50 {'PASS' if s['p50_ms'] <= TARGET_P50_MS else 'MISS'}",
                    f"p99 {'PASS' if s['p99_ms'] <= TARGET_P99_MS else 'MISS'}",
                    f"batch {'PASS' if best >= TARGET_ITEMS_S else 'MISS'}"]
        print(f"{run['config']}: {', '.join(verdicts)} (targets p50 <= {TARGET_P50_MS:g} ms, p99 <= {TARGET_P99_MS:g} ms, "
              f">= {TARGET_ITEMS_S:g} items/s)")
    path_out = _serving.write_json(args.json, figures)
    print(f"figures written to {path_out}")
    errors = sum(run["single"]["errors"] + run["batch_1_clients"]["errors"] + run["batch_2_clients"]["errors"] for run in figures["runs"])
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
