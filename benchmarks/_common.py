"""Helpers shared by the benchmark scripts: Django set-up against a benchmark database,
the banking77 texts, percentiles and fast removal of earlier benchmark projects.

Not a benchmark itself. The scripts import it as `benchmarks._common` after putting the
repository root (not benchmarks/) on sys.path, because benchmarks/queue.py would otherwise
shadow the standard library's `queue` module.
"""
from __future__ import annotations

import csv
import os
import sys
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/labelloop_bench"
# Banking77 ships with the repository (CC BY 4.0, see datasets/banking77/LICENSE); --dataset points a
# script at another folder of the same shape (train.csv and test.csv with text,category; categories.json).
BANKING77_DIR = REPO_ROOT / "datasets" / "banking77"


def add_dataset_flag(parser) -> None:
    parser.add_argument("--dataset", default=str(BANKING77_DIR),
                        help="a folder with train.csv, test.csv (text,category) and categories.json")


def use_dataset(args) -> None:
    """Point the helpers below at --dataset."""
    global BANKING77_DIR
    BANKING77_DIR = Path(args.dataset)
BENCH_PROJECT_PREFIX = "bench-"
VECTOR_CACHE_DIR = REPO_ROOT / "benchmarks" / "out"  # gitignored


def vector_cache_path(texts: list[str], cache: Path = VECTOR_CACHE_DIR) -> Path:
    import hashlib

    return Path(cache) / f"vectors-{hashlib.sha256(chr(10).join(texts).encode()).hexdigest()[:16]}.npy"


def cached_vectors(texts: list[str], cache: Path = VECTOR_CACHE_DIR, threads: int | None = None):
    """The base encoder's float32 vectors of `texts`, cached on disk keyed by their content (the
    same file name benchmarks/out_of_scope.py uses, so either script's encoding serves both)."""
    import numpy as np

    path = vector_cache_path(texts, cache)
    if path.exists():
        return np.load(path)
    from ml.encoder import Encoder

    vectors = Encoder(threads=threads).encode(texts, batch_size=64).astype(np.float32)
    Path(cache).mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def ensure_postgres_database(url: str, recreate: bool = False) -> bool:
    """Create the database named in a postgres:// URL if it does not exist (dropping it first
    if `recreate`). True if created."""
    import psycopg

    parsed = urlparse(url)
    name = unquote(parsed.path.lstrip("/"))
    conninfo = {
        "host": parsed.hostname or "127.0.0.1",
        "port": parsed.port or 5432,
        "user": unquote(parsed.username or "postgres"),
        "dbname": "postgres",
    }
    if parsed.password:
        conninfo["password"] = unquote(parsed.password)
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists and recreate:
            conn.execute(f'DROP DATABASE "{name}"')
            exists = None
        if exists:
            return False
        conn.execute(f'CREATE DATABASE "{name}"')
        return True


def setup_django(database_url: str | None, recreate: bool = False) -> str:
    """Point Django at the benchmark database, create it if needed (drop and create it again if
    `recreate`), migrate, and return its URL."""
    url = database_url or os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    os.environ["DATABASE_URL"] = url
    # Keep the benchmark's secret key, broker and export folders out of the project's data/.
    os.environ.setdefault("LABELLOOP_DATA_DIR", str(Path(tempfile.gettempdir()) / "labelloop_bench_data"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    parsed = urlparse(url)
    if parsed.scheme.startswith("postgres"):
        if ensure_postgres_database(url, recreate=recreate):
            print(f"created database {parsed.path.lstrip('/')}")
    elif parsed.scheme == "sqlite" and recreate:
        path = Path(parsed.path[1:])  # sqlite:////abs/path and sqlite:///relative/path
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    import django

    django.setup()
    import logging

    # items_import and annotation_submit enqueue active-learning tasks on the (filesystem) broker
    # in LABELLOOP_DATA_DIR; no worker runs here, and kombu's "No hostname was supplied" is noise.
    logging.getLogger("kombu").setLevel(logging.ERROR)
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    return url


def describe_code() -> str:
    """The git commit the project is at, and whether labeller/ has uncommitted changes."""
    import subprocess

    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "labeller", "config"], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git)"
    return f"git {head or '?'}{' + uncommitted changes in labeller/ or config/' if dirty else ''}"


def describe_database() -> str:
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT version()")
            version = cursor.fetchone()[0].split(" on ")[0]
            settings = {}
            for name in ("shared_buffers", "autovacuum", "synchronous_commit", "max_connections"):
                cursor.execute(f"SHOW {name}")
                settings[name] = cursor.fetchone()[0]
        shown = ", ".join(f"{k}={v}" for k, v in settings.items())
        return f"{version} ({connection.settings_dict['NAME']}; {shown})"
    return f"{connection.vendor} {connection.settings_dict['NAME']}"


def banking77_texts(limit: int | None = None) -> list[str]:
    """The banking77 training texts; synthetic sentences if the data set is not there."""
    path = BANKING77_DIR / "train.csv"
    texts: list[str] = []
    if path.exists():
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                texts.append(row["text"])
                if limit and len(texts) >= limit:
                    break
    if not texts:
        print(f"warning: {path} not found; using synthetic texts", file=sys.stderr)
        texts = [f"synthetic banking question number {i} about my card" for i in range(1000)]
    return texts


def banking77_labels() -> list[dict]:
    """Label definitions for a project: the 77 banking77 intents (a few if the file is missing)."""
    import json

    path = BANKING77_DIR / "categories.json"
    keys = json.loads(path.read_text()) if path.exists() else ["card_arrival", "exchange_rate", "lost_or_stolen_card"]
    return [{"key": key, "name": key.replace("_", " ").capitalize()} for key in keys]


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list (0 if empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), int(-(-fraction * len(sorted_values) // 1))))
    return sorted_values[rank - 1]


def latency_line(name: str, seconds: list[float]) -> str:
    values = sorted(seconds)
    if not values:
        return f"{name:<12} n=0"
    ms = [v * 1000 for v in values]
    mean = sum(ms) / len(ms)
    return (
        f"{name:<12} n={len(ms):<7} mean={mean:7.2f} ms  p50={percentile(ms, .50):7.2f}  p95={percentile(ms, .95):7.2f}"
        f"  p99={percentile(ms, .99):7.2f}  max={ms[-1]:8.2f} ms"
    )


def delete_bench_projects(prefix: str) -> int:
    """Remove projects left by earlier benchmark runs (name starts with `prefix`).

    Items and annotations go with plain DELETEs: Django's cascade would load a million ids.
    """
    from django.db import connection, transaction

    from labeller.models import Annotation, Item, Project

    ids = list(Project.objects.filter(name__startswith=prefix).values_list("id", flat=True))
    if not ids:
        return 0
    marks = ", ".join(["%s"] * len(ids))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {Annotation._meta.db_table} WHERE project_id IN ({marks})", ids)
        cursor.execute(f"DELETE FROM {Item._meta.db_table} WHERE project_id IN ({marks})", ids)
        Project.objects.filter(id__in=ids).delete()
    return len(ids)


def vacuum_analyze(*tables: str) -> None:
    """VACUUM ANALYZE (PostgreSQL) or ANALYZE (SQLite) the given tables."""
    from django.db import connection

    with connection.cursor() as cursor:
        for table in tables:
            if connection.vendor == "postgresql":
                cursor.execute(f"VACUUM ANALYZE {table}")  # autocommit mode: allowed outside a transaction
            else:
                cursor.execute(f"ANALYZE {table}")


REGISTRY_VALIDATION_SHARE = 0.1  # models_registry.models.TrainingPolicy.validation_share's default


def registry_config(*, epochs: int = 0, time_limit_s: float = 0.0, min_validation: int = 0):
    """FineTuneConfig as registry_fine_tune uses it: its defaults, `epochs` > 0 overriding the
    epochs (small-data ones too), no time limit unless given (the registry's limit would measure
    this machine's load, not the recipe), `min_validation` > 0 overriding the config's (smoke runs)."""
    from dataclasses import replace

    from ml import finetune

    config = finetune.FineTuneConfig()
    if epochs:
        config = replace(config, epochs=epochs, small_data_epochs=epochs)
    return replace(config, time_limit_s=time_limit_s or float("inf"), min_validation=min_validation or config.min_validation)


def registry_split(texts: list[str], targets, config):
    """(train texts, train ids, validation texts, validation ids, config) as the registry splits a
    snapshot: the rows a stable hash puts in the validation split are held out for early stopping
    (folded into training, and the config adjusted, when too few)."""
    import numpy as np

    from ml import finetune
    from ml.draws import stable_fraction

    targets = np.asarray(targets)
    val = np.array([stable_fraction("val", 0, row) < REGISTRY_VALIDATION_SHARE for row in range(len(targets))])
    return finetune.fold_small_validation(
        [t for t, v in zip(texts, val) if not v], [int(i) for i in targets[~val]],
        [t for t, v in zip(texts, val) if v], [int(i) for i in targets[val]], config)


def registry_fine_tune(texts: list[str], targets, n_classes: int, *, epochs: int = 0, threads: int = 2,
                       time_limit_s: float = 0.0, min_validation: int = 0, on_progress=None, oos_class=None):
    """A version fine-tuned from the base model as the registry fine-tunes one
    (models_registry.training._train_finetuned): registry_config's settings on registry_split's
    split, a probe-initialised head, then the whole transformer; `oos_class`: the class of the
    project's out-of-scope label, if any. Returns (model, FineTuneResult, trained on, held out)."""
    import numpy as np
    import torch

    from ml import finetune
    from ml.encoder import default_model_path

    config = registry_config(epochs=epochs, time_limit_s=time_limit_s, min_validation=min_validation)
    tr_texts, tr_ids, val_texts, val_ids, config = registry_split(texts, targets, config)
    torch.set_num_threads(threads)
    model = finetune.load_base(default_model_path(), n_classes, max_length=config.max_length)
    finetune.set_seed(config.seed)
    finetune.probe_init(model, tr_texts, np.array(tr_ids), n_classes, c=config.probe_c, seed=config.seed)
    result = finetune.fine_tune(model, tr_texts, tr_ids, val_texts, val_ids, config=config,
                                on_progress=on_progress or (lambda p: None), oos_class=oos_class)
    return model, result, len(tr_ids), len(val_ids)


def fine_tune_progress():
    """An on_progress for ml.finetune that prints a line a minute and one per epoch (the log
    shows the pace)."""
    import time

    started = last = time.perf_counter()
    printed = [-1]

    def on_progress(p) -> None:
        nonlocal last
        now = time.perf_counter()
        if (now - last >= 60 or p.step % (p.steps // p.epochs or 1) == 0) and (p.step, p.val_accuracy) != (printed[0], None):
            last, printed[0] = now, p.step
            print(f"    epoch {p.epoch}/{p.epochs} step {p.step}/{p.steps} loss {p.loss:.3f} "
                  f"{(now - started) / max(p.step, 1):.2f} s/step, {p.eta_s / 60:.0f} min to go"
                  + (f", val accuracy {p.val_accuracy:.4f}" if p.val_accuracy is not None else ""), flush=True)

    return on_progress
