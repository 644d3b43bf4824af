"""The product's span refresh over a large pool: how long `refresh_run` takes on a span project
whose stored form (sentence vectors and per-word vectors) is in the database, and how much memory
it holds.

Builds the stored form in a benchmark database: --unique BTC training tweets are encoded once by
the base encoder (ml.token_model.encode_words; cached on disk under benchmarks/out/), tiled to a
--pool-item project (ItemVector + ItemWordVectors rows, as active_learning.span_encoding writes
them), --labelled of them labelled with their gold spans. Then the real refresh
(active_learning.refresh.refresh_run -> span_refresh_run) runs --runs times (seconds per phase),
and once more under tracemalloc (peak Python/numpy allocation; slower, not timed).

    .venv/bin/python benchmarks/span_refresh.py                               # 20,000 items, 1,000 labelled
    .venv/bin/python benchmarks/span_refresh.py --pool 2000 --unique 300 --labelled 100   # smoke
    .venv/bin/python benchmarks/span_refresh.py --database-url postgres://postgres@127.0.0.1:5432/other
    .venv/bin/python benchmarks/span_refresh.py --evidence-cost    # + each run without the suggestions' evidence

The database defaults to DATABASE_URL, else postgres://postgres@127.0.0.1:5432/labelloop_bench
(created and migrated if missing); SQLite URLs work too. Projects of earlier runs
("bench-span-refresh-...") are deleted first. The target (issue 16): <= 10 s over 20,000 texts on
2 cores. Say what else ran on the machine when quoting the figures.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

from benchmarks import _common  # noqa: E402

PREFIX = _common.BENCH_PROJECT_PREFIX + "span-refresh-"
BTC = _common.REPO_ROOT / "datasets" / "btc" / "btc.train.conll"
LABELS = ["PER", "ORG", "LOC"]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pool", type=int, default=20_000, help="items in the project")
    p.add_argument("--unique", type=int, default=6338, help="distinct BTC training tweets encoded, then tiled")
    p.add_argument("--labelled", type=int, default=1000, help="items labelled with their gold spans")
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--evidence-cost", action="store_true",
                   help="also time each run without the suggestions' evidence (alternating, same process): its cost as a ratio")
    p.add_argument("--threads", type=int, default=2, help="torch threads while encoding")
    p.add_argument("--database-url", default=None)
    p.add_argument("--recreate-db", action="store_true")
    p.add_argument("--cache", default=str(_common.REPO_ROOT / "benchmarks" / "out"))
    return p.parse_args()


def encoded_tweets(texts, cache: Path):
    """The tweets' word and sentence vectors (the span benchmark's on-disk cache format)."""
    import hashlib

    from ml import token_model as tm
    from ml.encoder_cache import base_encoder

    encoder = base_encoder("")
    key = hashlib.sha256((encoder.version + "\x00" + "\x00".join(texts)).encode()).hexdigest()[:12]
    path = cache / f"btc_train_{key}.npz"
    if path.exists():
        data = np.load(path)
        return tm.WordVectors(data["vectors"], data["starts"], data["sentences"]), encoder.version
    started = time.perf_counter()
    vectors = tm.encode_words(encoder, texts)
    print(f"encoded {len(texts):,} tweets in {time.perf_counter() - started:.0f} s (cached in {path})")
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, vectors=vectors.vectors, starts=vectors.starts, sentences=vectors.sentences)
    return vectors, encoder.version


def build(args, examples, vectors, version):
    """A span project of --pool items with their stored form, --labelled labelled."""
    from django.contrib.auth import get_user_model

    from active_learning.span_encoding import words_read
    from labeller.models import ActiveLearningState, Annotation, Item, ItemVector, ItemWordVectors
    from labeller.services import project_create
    from ml.encoder import to_float16_bytes

    user, _ = get_user_model().objects.get_or_create(username="bench-span-owner")
    project = project_create(user=user, labels=[{"key": k, "name": k} for k in LABELS], name=f"{PREFIX}{int(time.time())}",
                             task_type="spans", refresh_every=50)
    rng = np.random.default_rng(0)
    index = np.tile(np.arange(len(examples)), -(-args.pool // len(examples)))[:args.pool]
    labelled = set(range(args.labelled))
    started = time.perf_counter()
    sentences = to_float16_bytes(vectors.sentences)
    words = []
    for i in range(len(examples)):
        matrix = vectors.vectors[vectors.starts[i]:vectors.starts[i + 1]]
        n = words_read(matrix)
        words.append((n, np.ascontiguousarray(matrix[:n], dtype=np.float16).tobytes()))
    for start in range(0, args.pool, 2000):
        rows = range(start, min(start + 2000, args.pool))
        items = Item.objects.bulk_create(
            Item(project=project, data={"text": examples[index[r]][0]}, search_text=examples[index[r]][0],
                 is_eval=r not in labelled and rng.random() < 0.1, is_done=r in labelled,
                 annotation_count=int(r in labelled)) for r in rows)
        ItemVector.objects.bulk_create(ItemVector(item=item, project=project, encoder_version=version,
                                                  vector=sentences[index[r]]) for item, r in zip(items, rows))
        ItemWordVectors.objects.bulk_create(
            ItemWordVectors(item=item, project=project, encoder_version=version, n_words=words[index[r]][0],
                            vectors=words[index[r]][1]) for item, r in zip(items, rows))
        Annotation.objects.bulk_create(Annotation(item=item, project=project, annotator=user, labels=examples[index[r]][1])
                                       for item, r in zip(items, rows) if r in labelled)
    ActiveLearningState.objects.filter(project=project).update(encoder_version=version)
    stored = sum(words[index[r]][0] for r in range(args.pool))
    print(f"stored {args.pool:,} items ({stored:,} words: {stored * vectors.vectors.shape[1] * 2 / 2**20:.0f} MiB of "
          f"float16 word vectors, {args.pool * vectors.vectors.shape[1] * 2 / 2**20:.0f} MiB of sentence vectors), "
          f"{args.labelled:,} labelled, in {time.perf_counter() - started:.0f} s")
    return project


def evidence_off():
    """The refresh as it was before suggestions carried evidence (no bank of labelled spans, none
    attached), to time the evidence's cost in the same process. Benchmark only."""
    from unittest import mock

    from active_learning import span_evidence, span_refresh

    stack = contextlib.ExitStack()
    stack.enter_context(mock.patch.object(span_refresh, "attach_evidence", lambda suggestion, **_: suggestion))
    stack.enter_context(mock.patch.object(span_evidence.SpanBank, "add", lambda self, **_: None))
    return stack


def remove_earlier_runs() -> int:
    """Projects of earlier runs; their vectors first (delete_bench_projects removes items with
    plain DELETEs, which the vectors' foreign keys would refuse)."""
    from labeller.models import ItemVector, ItemWordVectors

    for model in (ItemWordVectors, ItemVector):
        model.objects.filter(project__name__startswith=PREFIX).delete()
    return _common.delete_bench_projects(PREFIX)


def main() -> int:
    args = parse_args()
    os.environ.setdefault("LABELLOOP_TORCH_THREADS", str(args.threads))
    url = _common.setup_django(args.database_url, recreate=args.recreate_db)
    from active_learning.refresh import refresh_run
    from labeller.models import ActiveLearningState
    from ml.spans import read_conll_file

    print(f"database: {_common.describe_database()}")
    print(f"code: {_common.describe_code()} at {_common.REPO_ROOT}")
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    removed = remove_earlier_runs()
    if removed:
        print(f"removed {removed} project(s) of earlier runs")
    examples = read_conll_file(BTC, limit=args.unique)
    vectors, version = encoded_tweets([text for text, _ in examples], Path(args.cache))
    project = build(args, examples, vectors, version)
    del vectors

    totals = {"with evidence": 0.0, "without evidence": 0.0}
    if args.evidence_cost:  # the first refresh pays for cold caches: not one of the pairs
        print(f"warm-up refresh (not counted): {refresh_run(project=project, seed=args.runs + 1).seconds_total:.1f} s")
    for run in range(args.runs):
        modes = ("with evidence", "without evidence")[::1 if run % 2 == 0 else -1]  # each goes first in turn
        for mode in modes if args.evidence_cost else ("with evidence",):
            with evidence_off() if mode == "without evidence" else contextlib.nullcontext():
                report = refresh_run(project=project, seed=run)
            totals[mode] += report.seconds_total
            print(f"refresh {run + 1}{' ' + mode if args.evidence_cost else ''}: {report.seconds_total:.1f} s "
                  f"(fit {report.seconds_fit:.1f} s on {report.labelled:,} "
                  f"labelled, score + rank {report.seconds_score:.1f} s over {report.pool:,} open, write "
                  f"{report.seconds_write:.1f} s); load average {os.getloadavg()[0]:.1f}")
    if args.evidence_cost:
        added = totals["with evidence"] - totals["without evidence"]
        print(f"evidence: refresh time with / without = {totals['with evidence'] / totals['without evidence']:.3f} "
              f"({added / args.runs:+.2f} s a refresh, mean of {args.runs} pairs after a warm-up, each first in turn)")
    tracemalloc.start()
    refresh_run(project=project, seed=args.runs)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"peak memory allocated by a refresh (tracemalloc): {peak / 2**20:.0f} MiB")
    state = ActiveLearningState.objects.get(project=project)
    print(f"head version {state.head_version}, trained on {state.head_trained_on:,}; database {url.split('@')[-1]}")
    remove_earlier_runs()
    return 0


if __name__ == "__main__":
    sys.exit(main())
