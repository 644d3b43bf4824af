"""Does encoding scale with the workers a team runs?

N items (Banking77 and CLINC150 training queries from datasets/, tiled with a numbered variant
after the first pass so no two texts are the same) are encoded through the product's own chunk
tasks (`active_learning.encoding`: the planner splits the project into EncodeChunk rows, real
`celery worker` processes on the `encode` queue take them), first by 1 worker process, then by 2,
each with one torch thread (LABELLOOP_TORCH_THREADS=1). Workers are started and warmed up (model
loaded by a small warm-up project) before the clock starts; the clock stops when the run is over.

Prints items/s for 1 and 2 workers, the ratio (target >= 1.7x on a 2-core machine), and each
worker's items/s against the raw forward pass of one core (target >= 90 %), measured here with the
same model, one thread, on a sample of the same texts; with 2 workers also against the raw pass
run in two processes at once (two cores share caches and memory: the ceiling two workers have).

Uses DATABASE_URL / --database-url (default postgres://postgres@127.0.0.1:5432/labelloop_bench,
created if missing) and CELERY_BROKER_URL (Redis recommended; the embedded filesystem broker works
too). Run on a quiet machine:

    .venv/bin/python benchmarks/encode_scale.py                       # 100,000 items, 1 and 2 workers
    .venv/bin/python benchmarks/encode_scale.py --items 4000 --chunk-items 500   # smoke
"""
from __future__ import annotations

import sys
from pathlib import Path

# benchmarks/queue.py would shadow the standard library's `queue`: run from the repository root.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402
import csv  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from benchmarks import _common  # noqa: E402

DATASETS = [_common.REPO_ROOT / "datasets" / "banking77" / "train.csv", _common.REPO_ROOT / "datasets" / "clinc150" / "train.csv"]
PREFIX = "bench-encode-scale-"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--items", type=int, default=100_000)
    p.add_argument("--workers", default="1,2", help="worker process counts to time, in order")
    p.add_argument("--chunk-items", type=int, default=0, help="LABELLOOP_ENCODE_CHUNK_ITEMS (0: the setting's default)")
    p.add_argument("--raw-sample", type=int, default=3000, help="texts the raw one-core forward pass is timed on")
    p.add_argument("--database-url", default=None)
    p.add_argument("--timeout", type=float, default=7200, help="seconds to wait for one run")
    p.add_argument("--raw-process", default="", help=argparse.SUPPRESS)  # internal: one process of the raw pair
    return p.parse_args()


def corpus(n: int) -> list[str]:
    base: list[str] = []
    for path in DATASETS:
        with open(path, encoding="utf-8", newline="") as f:
            base += [row["text"] for row in csv.DictReader(f)]
    return [text if i < len(base) else f"{text} ({i // len(base)})" for i, text in
            ((i, base[i % len(base)]) for i in range(n))]


def make_project(name: str, texts: list[str]):
    from django.contrib.auth import get_user_model

    from labeller.models import ActiveLearningState, Item, JobStatus
    from labeller.services import project_create

    owner, _ = get_user_model().objects.get_or_create(username="bench-encode-scale")
    project = project_create(user=owner, labels=[{"key": "a", "name": "A"}, {"key": "b", "name": "B"}], name=PREFIX + name)
    for start in range(0, len(texts), 5000):
        Item.objects.bulk_create(Item(project=project, data={"text": t}) for t in texts[start:start + 5000])
    ActiveLearningState.objects.filter(project=project).update(encode_status=JobStatus.QUEUED)
    return project


def run_encode(project, timeout: float) -> float:
    """Plan the project's run (its chunks go to the workers) and wait until it is over; seconds."""
    from active_learning import encoding
    from labeller.models import ActiveLearningState, JobStatus

    started = time.perf_counter()
    encoding.encode_plan(project_id=project.id)
    while True:
        state = ActiveLearningState.objects.get(project=project)
        if state.encode_status == JobStatus.IDLE:
            return time.perf_counter() - started
        if state.encode_status == JobStatus.FAILED:
            raise RuntimeError(state.encode_error)
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"not encoded after {timeout} s: {state.encode_done}/{state.encode_total}")
        time.sleep(0.2)


def cleanup() -> None:
    """Remove earlier runs' projects (their vectors and chunks first: the fast delete skips them)."""
    from labeller.models import EncodeChunk, ItemVector, Project

    projects = Project.objects.filter(name__startswith=PREFIX)
    ItemVector.objects.filter(project__in=projects).delete()
    EncodeChunk.objects.filter(project__in=projects).delete()
    _common.delete_bench_projects(PREFIX)


def purge(queues: str) -> None:
    from django.conf import settings

    if not settings.CELERY_BROKER_URL.startswith("filesystem://"):
        subprocess.run([sys.executable, "-m", "celery", "-A", "config", "purge", "-f", "-Q", queues],
                       cwd=_common.REPO_ROOT, env=os.environ.copy(), check=True, capture_output=True)


def raw_process(sample_path: str) -> None:
    """--raw-process: load the encoder (one thread), say "ready", wait for a line on stdin, then
    time the raw forward pass over the sample and print its items/s."""
    from ml.encoder import Encoder

    sample = Path(sample_path).read_text(encoding="utf-8").split("\n")
    encoder = Encoder(threads=1)
    encoder.raw_forward_throughput(sample[:200])  # warm-up
    print("ready", flush=True)
    sys.stdin.readline()
    print(f"{encoder.raw_forward_throughput(sample).per_second:.1f}", flush=True)


def raw_pair_rates(sample: list[str], logs: Path) -> list[float]:
    """The raw one-thread forward pass in two processes at once, started together: what two
    workers could reach with nothing else on the machine (two cores share caches and memory)."""
    path = logs / "raw-sample.txt"
    path.write_text("\n".join(t.replace("\n", " ") for t in sample), encoding="utf-8")
    procs = [subprocess.Popen([sys.executable, __file__, "--raw-process", str(path)], cwd=_common.REPO_ROOT, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) for _ in range(2)]
    for proc in procs:
        assert proc.stdout.readline().strip() == "ready"
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    rates = [float(proc.stdout.readline()) for proc in procs]
    for proc in procs:
        proc.wait()
    return rates


def main() -> None:
    args = parse_args()
    if args.raw_process:
        return raw_process(args.raw_process)
    os.environ["LABELLOOP_TORCH_THREADS"] = "1"
    if args.chunk_items:
        os.environ["LABELLOOP_ENCODE_CHUNK_ITEMS"] = str(args.chunk_items)
    _common.setup_django(args.database_url)
    from django.conf import settings
    from django.db.models import Sum

    from benchmarks._serving import CeleryWorker, Group
    from labeller.models import EncodeChunk
    from ml.encoder import Encoder

    print(f"load average at start: {os.getloadavg()}; {os.cpu_count()} cores; code {_common.describe_code()}")
    print(f"database: {_common.describe_database()}; broker: {settings.CELERY_BROKER_URL.split('@')[-1]}")
    texts = corpus(args.items)
    chunk_items = settings.LABELLOOP_ENCODE_CHUNK_ITEMS
    print(f"{len(texts)} texts, chunks of {chunk_items}")

    raw_encoder = Encoder(threads=1)
    sample = texts[:args.raw_sample]
    raw_encoder.raw_forward_throughput(sample[:200])  # warm-up

    def raw_rate() -> float:
        """The raw one-core forward pass, timed now (under the load the runs see)."""
        rate = raw_encoder.raw_forward_throughput(sample).per_second
        print(f"raw forward pass, one torch thread: {rate:.0f} items/s (load average {os.getloadavg()[0]:.2f})")
        return rate

    logs = Path(tempfile.mkdtemp(prefix="encode-scale-"))
    results = {}
    try:
        for count in [int(w) for w in args.workers.split(",")]:
            cleanup()
            purge("encode,refresh")
            workers = [CeleryWorker(queues="encode", concurrency=1, log_path=logs / f"w{count}-{i}.log", name=f"encode-scale-{i}")
                       for i in range(count)]
            for worker in workers:  # one after the other: wait_ready reads the log from where it stands
                worker.start()
                worker.wait_ready(timeout=300)
            warm = make_project(f"warm-{count}", texts[:count * min(chunk_items, 256)])
            settings.LABELLOOP_ENCODE_CHUNK_ITEMS, saved = min(chunk_items, 256), chunk_items
            run_encode(warm, args.timeout)  # each worker loads the model on its first chunk
            settings.LABELLOOP_ENCODE_CHUNK_ITEMS = saved
            project = make_project(f"{count}-workers", texts)
            raw = raw_rate()  # beside each run: a loaded machine's rate drifts
            pair = 0.0
            if count == 2:
                rates = raw_pair_rates(sample, logs)
                pair = sum(rates) / 2
                print(f"raw forward pass, two processes at once: {rates[0]:.0f} and {rates[1]:.0f} items/s "
                      f"({pair / raw:.0%} of one alone: what two cores sharing caches and memory allow)")
            load = os.getloadavg()
            seconds = run_encode(project, args.timeout)
            per_worker = dict(EncodeChunk.objects.filter(project=project).values_list("worker").annotate(n=Sum("encoded")))
            rate = len(texts) / seconds
            results[count] = rate
            print(f"\n{count} worker(s): {len(texts)} items in {seconds:.1f} s = {rate:.0f} items/s "
                  f"(load average before: {load[0]:.2f})")
            for name, n in sorted(per_worker.items()):
                print(f"  {name}: {n} items, {n / seconds:.0f} items/s = {n / seconds / raw:.0%} of the raw one-core forward "
                      f"pass (target >= 90 %)" + (f"; {n / seconds / pair:.0%} of the pair's" if pair else ""))
            for worker in workers:
                worker.stop()
        if 1 in results and 2 in results:
            ratio = results[2] / results[1]
            print(f"\n2 workers / 1 worker: {ratio:.2f}x (target >= 1.7x): {'met' if ratio >= 1.7 else 'MISSED'}")
        print(f"load average at end: {os.getloadavg()}; worker logs in {logs}")
    finally:
        Group.stop_all()
        cleanup()


if __name__ == "__main__":
    main()
