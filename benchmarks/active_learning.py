"""Does active learning beat random order, on data it was not tuned on, with the product's defaults?

A simulated expert answers from ground truth. Every setting not given on the command line is read
from the product: the refresh interval (`Project.refresh_every`), the strategy and the diversity
step (`Project.strategy`, `Project.diversity`), the batch the diversity step picks
(`active_learning.pool.refresh_batch`) and the warm-up (`Project.warm_up`: until the project has a
label per class, the most typical item of each k-means cluster no label covers yet; no seed set, so
a new project's first refresh has no labels). So the curve it prints is the one a new project gets
(`default-nowarmup`: the default before the warm-up, a cold start then margin). `--seed-size N`
labels N random items first instead (the old protocol).

Two paths drive the same loop:

- `--path product` drives the production services: items imported with `items_import`, served by
  `queue_claim_next`, labelled with `annotation_submit`, and every `refresh_every` labels the
  Celery refresh task runs (eagerly, in process) exactly as a worker would run it.
- `--path fast` (the default) calls the ML functions that refresh calls, with the same settings
  and inputs: float16-rounded vectors in import order, `ml.heads.fit_head` on the labels in the
  order they were given, `ml.strategies.uncertainty` with the refresh's random generator,
  `ml.strategies.rank_pool` / `cold_start`; no database. 3 seeds x 1,600 labels x a refresh every
  10 labels on two datasets is hours through the services on 2 shared cores, minutes this way.
  `--check N` runs both paths for N labels and says whether they chose the same items in the
  same order.

Datasets (`--dataset banking77|clinc150|all`, or a folder with train.csv/test.csv and
optionally val.csv): CLINC150's in-scope intents only (`oos` dropped: it is no intent one labels
towards); Banking77 has no validation split, so a seeded 10 % of train.csv is held out as one
(`VALIDATION_SEED`) and the pool is the other 90 %. Each seed imports the pool in a different
seeded order (the refresh's own seed is fixed, as in production). At each checkpoint the head the
refresh stores (fitted on the labels, self-trained on the open pool) is scored on the validation
split (where settings are chosen) and on the test split (what is reported).

Prints per dataset the learning curves (mean and seed std, validation and test), their areas, the
labels each strategy needs to reach random's accuracy at the largest budget, and the worst gap to
random along the curve with its noise. Writes one PNG per dataset.

    .venv/bin/python benchmarks/active_learning.py                                   # both datasets, 3 seeds
    .venv/bin/python benchmarks/active_learning.py --dataset clinc150 --strategies random,margin
    .venv/bin/python benchmarks/active_learning.py --check 200 --limit-train 2000    # both paths agree?
    .venv/bin/python benchmarks/active_learning.py --path product --dataset banking77 --champion-at 800
"""
from __future__ import annotations

import sys
from pathlib import Path

# benchmarks/queue.py would shadow the standard library's `queue`: run from the repository root.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import csv
import io
import os
import tempfile
import time

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATASETS = {"banking77": ROOT / "datasets" / "banking77", "clinc150": ROOT / "datasets" / "clinc150"}
OUT_OF_SCOPE = "oos"
VALIDATION_SEED = 12345  # Banking77's validation split: a seeded 10 % of train.csv
DEFAULT_CHECKPOINTS = "10,20,50,100,150,200,300,400,500,600,700,800,1000,1200,1400,1600"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="all", help="banking77, clinc150, all, or a folder with train.csv/test.csv")
    p.add_argument("--path", choices=("fast", "product"), default="fast",
                   help="fast: the refresh's ML functions, no database; product: the production services")
    p.add_argument("--check", type=int, default=0,
                   help="run both paths for this many labels (seed 0, first strategy) and compare the items chosen")
    p.add_argument("--text-column", default="text")
    p.add_argument("--label-column", default="category")
    p.add_argument("--strategies", default="default,random",
                   help="comma-separated: default (the product's strategy, diversity and warm-up), random, margin, "
                        "least_confidence, entropy; a -nodiversity suffix turns the diversity step off; a -warmup "
                        "suffix adds the warm-up, a -nowarmup suffix takes it off (default-nowarmup: the default "
                        "before the warm-up)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--seed-size", type=int, default=0, help="random labels before the strategy takes over "
                   "(0, the product's way: a cold start)")
    p.add_argument("--batch", type=int, default=0, help="labels between refreshes (0: the product's refresh_every)")
    p.add_argument("--budget", type=int, default=1600)
    p.add_argument("--checkpoints", default=DEFAULT_CHECKPOINTS, help="labels at which the head is scored")
    p.add_argument("--champion-at", type=int, default=0,
                   help="product path: at this many labels, retrain a fine-tuned version and promote it, as an admin "
                        "would; the pool is re-encoded with its embeddings and the loop goes on there (0: never)")
    p.add_argument("--finetune", default="", help="product path: also fine-tune on the labels these strategies "
                   "chose (seed 0) and on random's")
    p.add_argument("--refresh-pool", type=int, default=0, help="pool size of a fast-refresh timing (0: skip)")
    p.add_argument("--limit-train", type=int, default=0, help="use only a seeded sample of N pool rows (smoke runs)")
    p.add_argument("--limit-test", type=int, default=0, help="use only the first N test and validation rows (smoke runs)")
    p.add_argument("--database-url", default=None, help="product path; default: a fresh SQLite file in a temp dir")
    p.add_argument("--plot", default=str(ROOT / "benchmarks" / "out" / "active_learning_{dataset}.png"))
    return p.parse_args()


def read_csv(path, text_column="text", label_column="category"):
    with open(path, newline="", encoding="utf-8") as f:
        rows = [(r[text_column], r[label_column]) for r in csv.DictReader(f)]
    return [t for t, _ in rows], [l for _, l in rows]


class Split:
    """Texts and labels of one split (rows of one file), out-of-scope queries dropped; `vectors`
    are filled in by load_dataset."""

    def __init__(self, path, texts, labels, rows=None):
        rows = range(len(texts)) if rows is None else rows
        self.path, self.file_texts = path, texts
        self.rows = np.array([r for r in rows if labels[r] != OUT_OF_SCOPE], dtype=np.int64)
        self.texts = [texts[r] for r in self.rows]
        self.labels = np.array([labels[r] for r in self.rows])
        self.vectors = None

    def take(self, positions) -> "Split":
        out = Split.__new__(Split)
        out.path, out.file_texts, out.rows = self.path, self.file_texts, self.rows[positions]
        out.texts, out.labels, out.vectors = [self.texts[p] for p in positions], self.labels[positions], None
        return out


def load_dataset(folder: Path, args) -> tuple[Split, Split, Split]:
    """(pool, validation, test) of a dataset, out-of-scope queries dropped. The base encoder's
    vectors of each whole file are cached under benchmarks/out keyed by its texts' hash
    (`benchmarks._common.cached_vectors`); a smoke run with --limit-* encodes only its rows."""
    from benchmarks._common import cached_vectors, vector_cache_path

    def split(name):
        return Split(folder / name, *read_csv(folder / name, args.text_column, args.label_column))

    train, test = split("train.csv"), split("test.csv")
    if (folder / "val.csv").exists():
        validation = split("val.csv")
    else:  # no validation split: hold a seeded 10 % of train.csv out as one, never the test split
        order = np.random.default_rng(VALIDATION_SEED).permutation(len(train.texts))
        held = len(order) // 10
        validation, train = train.take(np.sort(order[:held])), train.take(np.sort(order[held:]))
    limited = bool(args.limit_train or args.limit_test)
    if args.limit_train and args.limit_train < len(train.texts):  # a seeded sample: every intent still in it
        train = train.take(np.sort(np.random.default_rng(0).permutation(len(train.texts))[: args.limit_train]))
    if args.limit_test:
        validation, test = (s.take(np.arange(min(args.limit_test, len(s.texts)))) for s in (validation, test))
    for s in (train, validation, test):  # a smoke run reuses the whole file's vectors if they are cached
        whole = not limited or vector_cache_path(s.file_texts).exists()
        s.vectors = cached_vectors(s.file_texts)[s.rows] if whole else cached_vectors(s.texts)
    check_vectors(train, validation)
    return train, validation, test


def check_vectors(pool: Split, validation: Split, n: int = 300) -> None:
    """Refuse vectors that do not match their texts: the nearest pool text of a validation query
    shares its intent far more often than chance. (Once, a cached file encoded while the
    environment was being reinstalled held vectors unrelated to their texts: 1-NN 0.04.)"""
    nearest = (validation.vectors[:n] @ pool.vectors.T).argmax(axis=1)
    agreement = float((pool.labels[nearest] == validation.labels[:n]).mean())
    if agreement < 0.3 and len(pool.texts) >= 1000:
        raise SystemExit(f"the cached vectors look wrong (nearest-neighbour agreement {agreement:.2f}): delete "
                         f"benchmarks/out/vectors-*.npy of {pool.path.parent.name} and run again")


def setup_django(database_url, migrate=True):
    data_dir = tempfile.mkdtemp(prefix="labelloop-al-bench-")
    os.environ["LABELLOOP_DATA_DIR"] = data_dir
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "true"  # tasks run in process, through the same code
    os.environ.pop("DATABASE_URL", None)
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)


class Settings:
    """The active-learning settings a new project gets, read from the product's model defaults."""

    def __init__(self, args):
        from active_learning.pool import refresh_batch
        from labeller.models import Project

        project = Project()  # unsaved: every field at its default
        self.strategy, self.diversity, self.warm_up = project.strategy, project.diversity, project.warm_up
        self.refresh_every = args.batch or project.refresh_every
        self.batch = refresh_batch(Project(refresh_every=self.refresh_every))  # the diverse batch / cold-start k
        self.seed_size = args.seed_size

    def of(self, name: str) -> tuple[str, bool, bool]:
        """(strategy, diversity, warm-up) of a strategy name on the command line. `default` is the
        product's, warm-up included (`Project.warm_up`); a named strategy has no warm-up unless it
        ends in `-warmup` (`ml.strategies.cover_start` until the project has one label per class,
        then the strategy); `-nowarmup` takes it off (`default-nowarmup`: the default before it)."""
        warm_up = None
        for suffix, value in (("-warmup", True), ("-nowarmup", False)):
            if name.endswith(suffix):
                name, warm_up = name.removesuffix(suffix), value
        if name == "default":
            return self.strategy, self.diversity, self.warm_up if warm_up is None else warm_up
        return name.removesuffix("-nodiversity"), not name.endswith("-nodiversity"), bool(warm_up)

    def describe(self) -> str:
        start = f"{self.seed_size} random seed labels, then " if self.seed_size else ""
        start += ("the warm-up (a representative of each cluster no label covers, until a label per class)"
                  if self.warm_up else "cold start (k-means representatives)")
        return (f"product defaults: strategy {self.strategy}, diversity {'on' if self.diversity else 'off'}, "
                f"refresh every {self.refresh_every} labels, diverse batch {self.batch}, {start}")


class CachedEncoder:
    """Wraps the real encoder so later runs reuse the vectors the first run computed: the
    services still call `encode`, but the same text is not pushed through the model twice."""

    def __init__(self, encoder):
        self.inner, self.version, self.dim = encoder, encoder.version, encoder.dim
        self.cache: dict[str, np.ndarray] = {}

    def __getattr__(self, name):  # model_path and the rest, for the services that read them
        return getattr(self.inner, name)

    def encode(self, texts, batch_size=64):
        missing = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if missing:
            for text, vector in zip(missing, self.inner.encode(missing, batch_size=batch_size)):
                self.cache[text] = vector
        return np.stack([self.cache[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)


def evaluate(head_vectors, head_labels, splits, classes, seed=0, unlabelled=None):
    """Accuracy on each of `splits` ([(vectors, labels)]) of the head the refresh fits: on these
    labels, self-trained on the `unlabelled` pool as the refresh does (None: the labels alone)."""
    from ml.heads import fit_head, self_train

    label_sets = [[l] for l in head_labels]
    head = fit_head(head_vectors, label_sets, classes=classes, seed=seed)
    if unlabelled is not None:
        head = self_train(head, head_vectors, label_sets, unlabelled, seed=seed)
    names = np.array(classes)
    return [float((names[head.predict_proba(vectors).argmax(axis=1)] == np.asarray(labels)).mean())
            for vectors, labels in splits]


def import_order(n: int, seed: int) -> np.ndarray:
    """The order a seed imports the pool in (item ids follow it, and so do the refresh's inputs)."""
    return np.random.default_rng(seed).permutation(n)


def checkpoints_of(args) -> list[int]:
    return sorted({int(c) for c in args.checkpoints.split(",") if int(c) <= args.budget} | {args.budget})


def promote_fine_tuned_champion(project, owner):
    """What an admin's Retrain and Promote buttons do, with the tasks eager: the fine-tuned version
    trains on a snapshot of the labels so far, and promotion re-encodes the pool with its
    embeddings and refreshes the queue there."""
    from models_registry import promotion, training
    from models_registry.selectors import champion_for

    (version,) = training.retrain_request(project=project, kinds=["finetuned"], user=owner)  # trains (eager task)
    version.refresh_from_db()
    if version.status != "ready":
        raise RuntimeError(f"the fine-tune failed: {version.error}")
    if champion_for(project=project) != version:  # no evaluation items here, so no gate to pass
        promotion.version_promote(version=version, user=owner, reason="benchmark: fine-tuned champion", override=True)
    return version


def run_product(name, seed, args, settings, pool, splits, classes, owner):
    """The loop through the production services. Returns (curve, the pool rows labelled in order,
    accuracy of the labels-alone head at the end, the all-label head under a champion or None)."""
    from active_learning import encoding, refresh, selectors
    from labeller.importing import items_import
    from labeller.models import Item
    from labeller.services import annotation_submit, project_create, queue_claim_next

    strategy, diversity, warm_up = settings.of(name)
    project = project_create(
        user=owner, labels=[{"key": c, "name": c} for c in classes], name=f"{name} seed {seed}",
        strategy=strategy, diversity=diversity, warm_up=warm_up, refresh_every=settings.refresh_every, eval_share=0.0,
        suggestion_mode="off",
    )
    order = import_order(len(pool.texts), seed)
    # Quotes escaped as CSV does, so the services import (and encode) the very texts the fast path
    # has vectors of: a text with `"` once went in with `'`, and its vector moved the warm-up's k-means.
    body = io.StringIO()
    writer = csv.writer(body, lineterminator="\n")
    writer.writerow(["external_id", "text"])
    writer.writerows([row, pool.texts[row]] for row in order)
    body = body.getvalue()
    # Encodes (eager task), then the encoder requests the first refresh: a cold start.
    items_import(project=project, stream=io.BytesIO(body.encode()), filename="train.csv")
    row_of_item = {item_id: int(ext) for item_id, ext in Item.objects.filter(project=project).values_list("id", "external_id")}
    truth = {item_id: pool.labels[row] for item_id, row in row_of_item.items()}
    vectors_ids, vectors = refresh.project_vectors(project, selectors.state_for(project.id).encoder_version)
    row_of = {item_id: i for i, item_id in enumerate(vectors_ids.tolist())}

    labelled: list[int] = []
    if settings.seed_size:  # the old protocol: a random seed set, then the strategy's first refresh
        for item_id in np.random.default_rng(seed).choice(sorted(truth), size=settings.seed_size, replace=False):
            annotation_submit(item=Item.objects.select_related("project").get(id=item_id), user=owner,
                              labels=[truth[item_id]])
            labelled.append(int(item_id))
        refresh.refresh_request(project_id=project.id)
    curve, champion = [], None
    for target in [c for c in checkpoints_of(args) if c >= len(labelled)]:
        while len(labelled) < target:
            item = queue_claim_next(project=project, user=owner)
            if item is None:
                break
            annotation_submit(item=item, user=owner, labels=[truth[item.id]])  # a refresh every refresh_every labels
            labelled.append(item.id)
        if args.champion_at and champion is None and len(labelled) >= args.champion_at:
            started = time.perf_counter()
            champion = promote_fine_tuned_champion(project, owner)
            vectors_ids, vectors = refresh.project_vectors(project, selectors.state_for(project.id).encoder_version)
            row_of = {item_id: i for i, item_id in enumerate(vectors_ids.tolist())}
            embed = encoding.encoder_for(project).encode  # computed live, as predictions are
            splits = [(embed(list(texts)), labels) for (_, labels), texts in zip(splits, args.split_texts)]
            print(f"    champion v{champion.number} (fine-tuned on {champion.snapshot.n_train + champion.snapshot.n_validation} "
                  f"labels) promoted, pool re-encoded: {time.perf_counter() - started:.0f} s", flush=True)
        rows = [row_of[i] for i in labelled]
        # The refresh's pool: every item not labelled yet (the benchmark has no evaluation items).
        unlabelled = np.delete(vectors, rows, axis=0)
        curve.append((len(labelled), *evaluate(vectors[rows], [truth[i] for i in labelled], splits, classes, 0, unlabelled)))
    labels_only = evaluate(vectors[rows], [truth[i] for i in labelled], splits[-1:], classes, 0)[0]
    # The same head on every training label, in the champion's embeddings (else main() has it).
    all_labels = evaluate(vectors, [truth[i] for i in vectors_ids.tolist()], splits[-1:], classes, 0)[0] \
        if champion is not None else None
    return curve, [row_of_item[i] for i in labelled], labels_only, all_labels


def run_fast(name, seed, args, settings, pool, splits, classes):
    """The same loop without the database: what `refresh_run` computes, fed what it would read.

    The refresh reads the stored (float16) vectors in item-id order, i.e. import order, the
    resolved labels in the order they were given (annotation ids), and the open pool in item-id
    order; it fits `fit_head` on the labels (seed 0), scores the pool with `uncertainty` and a
    generator seeded with its head version, and orders it with `rank_pool` (`cold_start` with no
    head). The expert then takes the queue from its head until the next refresh. With the warm-up
    (the product's default; `Project.warm_up`) it serves `cover_start` while there are fewer labels
    than classes, over every vector in memory, as the refresh's streamed form does
    (`active_learning.refresh.warm_up_scan`; `--check` compares them).
    """
    from ml import strategies
    from ml.heads import fit_head

    strategy, diversity, warm_up = settings.of(name)
    order = import_order(len(pool.texts), seed)
    vectors = pool.vectors[order].astype(np.float16).astype(np.float32)  # as stored, in item-id order
    truth = pool.labels[order]
    is_open = np.ones(len(order), dtype=bool)
    labelled: list[int] = []
    head_version = 0

    def refresh() -> np.ndarray:
        nonlocal head_version
        pool_rows = np.flatnonzero(is_open)
        pool_vectors = vectors[pool_rows]
        rng = np.random.default_rng(0 + head_version)
        head_version += 1
        if warm_up and strategy != strategies.RANDOM and len(labelled) < strategies.warm_up_labels(len(classes)):
            clusters = strategies.warm_up_clusters(n_classes=len(classes), batch_size=settings.batch,
                                                   n_vectors=len(vectors))
            scores = strategies.cover_start(vectors, np.array(labelled, dtype=np.int64), pool_rows, clusters=clusters,
                                            seed=0)
            ranked = np.argsort(-scores, kind="stable")
        elif len(labelled) >= 2 and len(set(truth[labelled])) >= 2:
            if strategy == strategies.RANDOM:  # the head's answer does not move a random score: skip the fit
                probs = np.zeros((len(pool_rows), len(classes)))
            else:
                ranking = fit_head(vectors[labelled], [[t] for t in truth[labelled]], classes=classes, seed=0)
                probs = ranking.predict_proba(pool_vectors)
            scores = strategies.uncertainty(probs, strategy, rng=rng)
            ranked = strategies.rank_pool(scores, pool_vectors, batch_size=settings.batch,
                                          diverse=diversity and strategy != strategies.RANDOM, seed=0)
        else:
            ranked = np.argsort(-strategies.cold_start(pool_vectors, batch_size=settings.batch, seed=0), kind="stable")
        return pool_rows[ranked]

    if settings.seed_size:
        labelled += [int(r) for r in np.random.default_rng(seed).choice(len(order), settings.seed_size, replace=False)]
        is_open[labelled] = False
    queue, served, since, curve = refresh(), 0, 0, []
    checkpoints = [c for c in checkpoints_of(args) if c >= len(labelled)]
    while len(labelled) < args.budget and is_open.any():
        while not is_open[queue[served]]:
            served += 1
        row = int(queue[served])
        is_open[row] = False
        labelled.append(row)
        since += 1
        if len(labelled) in checkpoints:
            curve.append((len(labelled), *evaluate(vectors[labelled], truth[labelled], splits, classes, 0, vectors[is_open])))
        if since >= settings.refresh_every:
            queue, served, since = refresh(), 0, 0
    labels_only = evaluate(vectors[labelled], truth[labelled], splits[-1:], classes, 0)[0]
    return curve, [int(order[r]) for r in labelled], labels_only, None


def finetune_accuracy(rows, train_texts, train_labels, test_texts, test_labels, classes, seed=0):
    """Fine-tune the base model on these training rows as a fine-tuned version is trained (linear
    probe, then the whole transformer; 10% held out for early stopping, or trained on too when
    that is under 500 examples); test accuracy."""
    from ml import finetune
    from ml.encoder import default_model_path

    index = {c: i for i, c in enumerate(classes)}
    rows = list(np.random.default_rng(seed).permutation(rows))
    n_val = max(1, len(rows) // 10)
    val, train = rows[:n_val], rows[n_val:]
    tr_texts, tr_ids, val_texts, val_ids, config = finetune.fold_small_validation(
        [train_texts[r] for r in train], [index[train_labels[r]] for r in train],
        [train_texts[r] for r in val], [index[train_labels[r]] for r in val], finetune.FineTuneConfig(seed=seed))
    model = finetune.load_base(default_model_path(), len(classes), max_length=config.max_length)
    finetune.set_seed(seed)
    finetune.probe_init(model, tr_texts, np.array(tr_ids), len(classes), c=config.probe_c, seed=seed)
    finetune.fine_tune(model, tr_texts, tr_ids, val_texts, val_ids, config=config)
    predicted = model.predict(list(test_texts))[0].argmax(axis=1)
    return float((predicted == np.array([index[l] for l in test_labels])).mean())


def labels_to_reach(points, accuracy):
    """The fewest labels at which the curve [(labels, accuracy)] reaches `accuracy` (None: never)."""
    for n, acc in points:
        if acc >= accuracy - 1e-12:
            return n
    return None


def area(points):
    """Area under the curve [(labels, accuracy)] over its label range, normalised to [0, 1]."""
    xs = np.array([n for n, _ in points], dtype=float)
    ys = np.array([a for _, a in points])
    return float(np.trapezoid(ys, xs) / (xs[-1] - xs[0])) if len(xs) > 1 else float(ys[0])


def summarise(curves: dict[str, list], column: int) -> dict[str, dict]:
    """Per strategy: labels, mean and seed std of one accuracy column of its curves."""
    out = {}
    for name, runs in curves.items():
        n = min(len(c) for c in runs)
        acc = np.array([[point[column] for point in c[:n]] for c in runs])
        out[name] = {"labels": [p[0] for p in runs[0][:n]], "mean": acc.mean(axis=0), "std": acc.std(axis=0), "runs": acc}
    return out


def compare_to_random(summary: dict[str, dict]) -> dict[str, dict]:
    """Per strategy against random: area, labels to reach random's final accuracy, and the worst
    point of (strategy - random), with the noise there (the two seed stds combined)."""
    random = summary.get("random")
    out = {}
    for name, s in summary.items():
        points = list(zip(s["labels"], s["mean"]))
        row = {"area": area(points), "final": s["mean"][-1], "final_std": s["std"][-1]}
        if random is not None:
            row["reach"] = labels_to_reach(points, random["mean"][-1])
            gap = s["mean"] - random["mean"]
            noise = np.sqrt(s["std"] ** 2 + random["std"] ** 2)
            worst = int(np.argmin(gap))
            row.update(worst_labels=s["labels"][worst], worst_gap=gap[worst], worst_noise=noise[worst],
                       below_noise=[n for n, g, e in zip(s["labels"], gap, noise) if g < -max(e, 1e-9)],
                       random_area=area(list(zip(random["labels"], random["mean"]))))
        out[name] = row
    return out


def print_report(dataset: str, split: str, summary: dict, compared: dict) -> None:
    print(f"\n{dataset}, {split} split: accuracy of the stored (self-trained) head, mean ± seed std")
    names = list(summary)
    print("labels".ljust(8) + "".join(name[:20].rjust(22) for name in names))
    for i, n in enumerate(summary[names[0]]["labels"]):
        print(str(n).ljust(8) + "".join(f"{summary[m]['mean'][i]:.4f} ± {summary[m]['std'][i]:.4f}".rjust(22) for m in names))
    print(f"{'strategy':22s} {'AUC':>7s} {'final':>16s} {'labels to reach random@end':>27s} {'worst gap to random (labels, noise)':>38s}  below random by more than noise at")
    for name, row in compared.items():
        reach = row.get("reach")
        worst = (f"{100 * row['worst_gap']:+.2f} pts at {row['worst_labels']} (noise {100 * row['worst_noise']:.2f})"
                 if "worst_gap" in row else "no random run")
        print(f"{name:22s} {row['area']:.4f} {row['final']:.4f} ± {row['final_std']:.4f} "
              f"{(str(reach) if reach else 'not reached'):>27s} {worst:>38s}  {row.get('below_noise') or 'never'}")


def fast_refresh_timing(pool, train_vectors, train_labels, classes, owner, labelled=1600):
    """A refresh over `pool` stored vectors with `labelled` labels: fit + score + priority write."""
    from django.db import transaction

    from active_learning import refresh
    from labeller.models import ActiveLearningState, Annotation, Item, ItemVector
    from labeller.services import project_create
    from ml.encoder import to_float16_bytes

    project = project_create(user=owner, labels=[{"key": c, "name": c} for c in classes], name="refresh timing",
                             refresh_every=50, eval_share=0.1)
    rng = np.random.default_rng(0)
    source = rng.integers(0, len(train_vectors), size=pool)
    noisy = train_vectors[source] + rng.normal(scale=0.02, size=(pool, train_vectors.shape[1])).astype(np.float32)
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    with transaction.atomic():
        items = Item.objects.bulk_create(
            (Item(project=project, data={"text": f"item {i}"}, is_eval=rng.random() < 0.1) for i in range(pool)),
            batch_size=5000,
        )
        ItemVector.objects.bulk_create(
            (ItemVector(item=item, project=project, encoder_version="bench", vector=blob)
             for item, blob in zip(items, to_float16_bytes(noisy))), batch_size=5000,
        )
        chosen = [i for i in rng.permutation(pool) if not items[i].is_eval][:labelled]
        Annotation.objects.bulk_create(
            Annotation(item=items[i], project=project, annotator=owner, labels=[train_labels[source[i]]]) for i in chosen
        )
        Item.objects.filter(id__in=[items[i].id for i in chosen]).update(is_done=True, annotation_count=1)
        ActiveLearningState.objects.filter(project=project).update(encoder_version="bench")
    refresh.refresh_run(project=project)  # warm-up (imports, first KMeans)
    return refresh.refresh_run(project=project)


def check_paths(args, settings, pool, splits, classes, owner, dataset):
    """Both paths, seed 0, the first strategy, `--check` labels: the same items in the same order?"""
    name = args.strategies.split(",")[0]
    args.budget = args.check
    args.checkpoints = str(args.check)
    started = time.perf_counter()
    fast_curve, fast_rows, _, _ = run_fast(name, 0, args, settings, pool, splits, classes)
    fast_s = time.perf_counter() - started
    started = time.perf_counter()
    product_curve, product_rows, _, _ = run_product(name, 0, args, settings, pool, splits, classes, owner)
    product_s = time.perf_counter() - started
    same = next((i for i, (a, b) in enumerate(zip(fast_rows, product_rows)) if a != b), None)
    print(f"check, {dataset}, {name}, {len(pool.texts)} pool items, {args.check} labels: "
          + ("the same items in the same order" if same is None and len(fast_rows) == len(product_rows)
             else f"first difference at label {same}")
          + f"; test accuracy fast {fast_curve[-1][-1]:.4f} product {product_curve[-1][-1]:.4f}; "
            f"fast path {fast_s:.0f} s, product path {product_s:.0f} s", flush=True)
    return same is None


def main():
    args = parse_args()
    setup_django(args.database_url, migrate=args.path == "product" or bool(args.check))
    settings = Settings(args)
    owner = None
    if args.path == "product" or args.check:
        from django.contrib.auth import get_user_model

        from ml import encoder_cache
        from ml.encoder import Encoder

        owner, _ = get_user_model().objects.get_or_create(username="simulated-expert")
        encoder_cache._encoders[""] = cached = CachedEncoder(Encoder())
    print(settings.describe())
    print(f"cores {os.cpu_count()}, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    names = ["banking77", "clinc150"] if args.dataset == "all" else [args.dataset]
    for dataset in names:
        folder = DATASETS.get(dataset, Path(dataset))
        pool, validation, test = load_dataset(folder, args)
        classes = sorted(set(pool.labels))
        splits = [(validation.vectors, validation.labels), (test.vectors, test.labels)]
        args.split_texts = [validation.texts, test.texts]
        if owner is not None:  # the services encode through the cache: the same vectors, not computed again
            cached.cache.update(zip(pool.texts + validation.texts + test.texts,
                                    np.vstack([pool.vectors, validation.vectors, test.vectors])))
        print(f"\n== {folder.name}: pool {len(pool.texts)}, validation {len(validation.texts)}, test {len(test.texts)}, "
              f"{len(classes)} intents" + (" (out-of-scope queries dropped)" if folder.name == "clinc150" else ""))
        if args.check:
            check_paths(args, settings, pool, splits, classes, owner, folder.name)
            continue
        stored = pool.vectors.astype(np.float16).astype(np.float32)
        full = evaluate(stored, pool.labels, splits, classes, 0)
        print(f"head on all {len(pool.texts)} pool labels: validation {full[0]:.4f}, test {full[1]:.4f}")
        curves, chosen = {}, {}
        for name in args.strategies.split(","):
            for seed in range(args.seeds):
                started = time.perf_counter()
                if args.path == "fast":
                    curve, rows, alone, champion_all = run_fast(name, seed, args, settings, pool, splits, classes)
                else:
                    curve, rows, alone, champion_all = run_product(name, seed, args, settings, pool, splits, classes, owner)
                curves.setdefault(name, []).append(curve)
                chosen.setdefault(name, rows)
                print(f"  {name:20s} seed {seed}: @{curve[-1][0]} validation {curve[-1][1]:.4f} test {curve[-1][2]:.4f} "
                      f"(labels alone {alone:.4f})  {time.perf_counter() - started:.0f} s, "
                      f"load {os.getloadavg()[0]:.1f}" + (f"  | same head, all labels, champion's embeddings: "
                                                          f"{champion_all:.4f}" if champion_all is not None else ""),
                      flush=True)
        summaries = {}
        for column, split in ((1, "validation"), (2, "test")):
            summaries[split] = summarise(curves, column)
            print_report(folder.name, split, summaries[split], compare_to_random(summaries[split]))
        plot(args.plot.format(dataset=folder.name), folder.name, summaries["test"], full[1], args, len(pool.texts))
        if args.finetune:
            print("\nfine-tuned on the labels each strategy chose (seed 0) vs the same number at random:")
            for name in [n for n in ("random", *args.finetune.split(",")) if n in chosen]:
                acc = finetune_accuracy(chosen[name], pool.texts, list(pool.labels), test.texts, list(test.labels), classes)
                print(f"  {name:28s} {len(chosen[name])} labels: fine-tuned test accuracy {acc:.4f}", flush=True)
    if args.refresh_pool and args.path == "product":
        report = fast_refresh_timing(args.refresh_pool, pool.vectors, list(pool.labels), classes, owner)
        print(f"\nfast refresh, {report.pool} open items, {report.labelled} labels: fit {report.seconds_fit:.2f} s, "
              f"score+rank {report.seconds_score:.2f} s, write {report.seconds_write:.2f} s, "
              f"total {report.seconds_total:.2f} s")


def plot(path, dataset, summary, full_acc, args, pool_size):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(8, 5))
    for name, s in summary.items():
        mean, std = np.array(s["mean"]), np.array(s["std"])
        ax.plot(s["labels"], mean, label=name, marker=".")
        ax.fill_between(s["labels"], mean - std, mean + std, alpha=0.2)
    ax.axhline(full_acc, color="grey", linestyle="--", label=f"all {pool_size} pool labels")
    if args.champion_at:
        ax.axvline(args.champion_at, color="grey", linestyle=":", label="fine-tuned champion promoted")
    ax.set_xlabel("labels")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"Active learning on {dataset}, product defaults ({args.seeds} seeds, ± seed std)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    print(f"plot: {path}")


if __name__ == "__main__":
    main()
