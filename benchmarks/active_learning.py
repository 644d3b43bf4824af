"""Does active learning beat random order, on real data?

Simulates an expert who answers from ground truth, driving the production services: items are
imported with `items_import`, encoded by `encode_pending`, served by `queue_claim_next`, labelled
with `annotation_submit`, and every `--batch` labels the Celery refresh task runs (eagerly, in
process) exactly as a worker would run it. After a random seed set, each strategy labels up to
`--budget`; the same head the refresh fits (self-trained on the unlabelled rest of the pool) is
then scored on the test split, and also the same head fitted on the labels alone.

Prints the learning curves (accuracy and macro-F1 against labels), their area, the labels each
strategy needs to reach random's accuracy at the largest budget, the head on all training
labels, encoding throughput against the raw model forward pass, and a fast refresh over a
100,000-item pool. Writes the plot as a PNG.

    .venv/bin/python benchmarks/active_learning.py                       # full run (Banking77)
    .venv/bin/python benchmarks/active_learning.py --budget 200 --seeds 1 --strategies random,margin  # smoke
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
DATASET = ROOT / "datasets" / "banking77"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train", default=str(DATASET / "train.csv"))
    p.add_argument("--test", default=str(DATASET / "test.csv"))
    p.add_argument("--text-column", default="text")
    p.add_argument("--label-column", default="category")
    p.add_argument("--strategies", default="random,least_confidence,entropy,margin,margin-nodiversity")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--seed-size", type=int, default=100, help="random labels before the strategy takes over")
    p.add_argument("--batch", type=int, default=50, help="labels between refreshes (the project's refresh_every)")
    p.add_argument("--budget", type=int, default=1600)
    p.add_argument("--eval-every", type=int, default=100, help="labels between points of the learning curve")
    p.add_argument("--champion-at", type=int, default=0,
                   help="at this many labels, retrain a fine-tuned version and promote it, as an admin would; "
                        "the pool is re-encoded with its embeddings and the loop goes on there (0: never)")
    p.add_argument("--finetune", default="", help="also fine-tune on the labels these strategies chose (seed 0) and on random's")
    p.add_argument("--refresh-pool", type=int, default=100_000, help="pool size of the fast-refresh timing (0: skip)")
    p.add_argument("--limit-train", type=int, default=0, help="use only the first N training rows (smoke runs)")
    p.add_argument("--limit-test", type=int, default=0, help="use only the first N test rows (smoke runs)")
    p.add_argument("--database-url", default=None, help="default: a fresh SQLite file in a temp dir")
    p.add_argument("--plot", default=str(ROOT / "benchmarks" / "out" / "active_learning.png"))
    return p.parse_args()


def read_csv(path, text_column, label_column):
    with open(path, encoding="utf-8") as f:
        rows = [(r[text_column], r[label_column]) for r in csv.DictReader(f)]
    return [t for t, _ in rows], [l for _, l in rows]


def setup_django(database_url):
    data_dir = tempfile.mkdtemp(prefix="labelloop-al-bench-")
    os.environ["LABELLOOP_DATA_DIR"] = data_dir
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "true"  # tasks run in process, through the same code
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


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


def evaluate(head_vectors, head_labels, test_vectors, test_labels, classes, seed, unlabelled=None):
    """Test accuracy and macro-F1 of the head the refresh fits: on these labels, self-trained on
    the `unlabelled` pool as the refresh does (None: the labels alone)."""
    from sklearn.metrics import accuracy_score, f1_score

    from ml.heads import fit_head, self_train

    label_sets = [[l] for l in head_labels]
    head = fit_head(head_vectors, label_sets, classes=classes, seed=seed)
    if unlabelled is not None:
        head = self_train(head, head_vectors, label_sets, unlabelled, seed=seed)
    predicted = [classes[i] for i in head.predict_proba(test_vectors).argmax(axis=1)]
    return accuracy_score(test_labels, predicted), f1_score(test_labels, predicted, average="macro")


def promote_fine_tuned_champion(project, owner):
    """What an admin's Retrain and Promote buttons do, with the tasks eager: the fine-tuned version
    trains on a snapshot of the labels so far, and promotion re-encodes the pool with its
    embeddings and refreshes the queue there."""
    from models_registry import promotion, training

    (version,) = training.retrain_request(project=project, kinds=["finetuned"], user=owner)  # trains (eager task)
    version.refresh_from_db()
    if version.status != "ready":
        raise RuntimeError(f"the fine-tune failed: {version.error}")
    if training.champion_of(project) != version:  # no evaluation items here, so no gate to pass
        promotion.version_promote(version=version, user=owner, reason="benchmark: fine-tuned champion", override=True)
    return version


def run_strategy(name, seed, args, train_texts, train_labels, classes, test_texts, test_vectors, test_labels, owner):
    from active_learning import encoding, refresh, selectors
    from labeller.importing import items_import
    from labeller.models import Item
    from labeller.services import annotation_submit, project_create, queue_claim_next

    strategy, diversity = name.replace("-nodiversity", ""), not name.endswith("-nodiversity")
    project = project_create(
        user=owner, labels=[{"key": c, "name": c} for c in classes], name=f"{name} seed {seed}",
        strategy=strategy, diversity=diversity, refresh_every=args.batch, eval_share=0.0, suggestion_mode="off",
    )
    body = "external_id,text\n" + "".join(f'{i},"{t.replace(chr(34), chr(39))}"\n' for i, t in enumerate(train_texts))
    items_import(project=project, stream=io.BytesIO(body.encode()), filename="train.csv")  # encodes (eager task)
    row_of_item = {item_id: int(ext) for item_id, ext in Item.objects.filter(project=project).values_list("id", "external_id")}
    truth = {item_id: train_labels[row] for item_id, row in row_of_item.items()}
    vectors_ids, vectors = refresh.project_vectors(project, selectors.state_for(project.id).encoder_version)
    row_of = {item_id: i for i, item_id in enumerate(vectors_ids.tolist())}

    rng = np.random.default_rng(seed)
    seed_items = rng.choice(sorted(truth), size=args.seed_size, replace=False)
    labelled: list[int] = []
    for item_id in seed_items:  # the small seed set, labelled before the strategy takes over
        annotation_submit(item=Item.objects.select_related("project").get(id=item_id), user=owner,
                          labels=[truth[item_id]])
        labelled.append(int(item_id))
    refresh.refresh_request(project_id=project.id)  # the refresh a worker would run now (eager)
    curve, refresh_seconds, champion = [], [], None
    checkpoints = sorted({args.seed_size, *range(args.eval_every, args.budget + 1, args.eval_every), args.budget} - set(range(args.seed_size)))
    for target in checkpoints:
        while len(labelled) < target:
            item = queue_claim_next(project=project, user=owner)
            if item is None:
                break
            annotation_submit(item=item, user=owner, labels=[truth[item.id]])  # refresh every --batch labels
            labelled.append(item.id)
        if args.champion_at and champion is None and len(labelled) >= args.champion_at:
            started = time.perf_counter()
            champion = promote_fine_tuned_champion(project, owner)
            vectors_ids, vectors = refresh.project_vectors(project, selectors.state_for(project.id).encoder_version)
            row_of = {item_id: i for i, item_id in enumerate(vectors_ids.tolist())}
            test_vectors = encoding.encoder_for(project).encode(list(test_texts))  # computed live, as predictions are
            print(f"    champion v{champion.number} (fine-tuned on {champion.snapshot.n_train + champion.snapshot.n_validation} "
                  f"labels) promoted, pool re-encoded: {time.perf_counter() - started:.0f} s", flush=True)
        state = selectors.state_for(project.id)
        if state.last_refresh_seconds:
            refresh_seconds.append(state.last_refresh_seconds)
        rows = [row_of[i] for i in labelled]
        # The refresh's pool: every item not labelled yet (the benchmark has no evaluation items).
        unlabelled = np.delete(vectors, rows, axis=0)
        acc, f1 = evaluate(vectors[rows], [truth[i] for i in labelled], test_vectors, test_labels, classes, 0, unlabelled)
        curve.append((len(labelled), acc, f1))
    labels_only, _ = evaluate(vectors[rows], [truth[i] for i in labelled], test_vectors, test_labels, classes, 0)
    chosen_rows = [row_of_item[i] for i in labelled]
    # The same head on every training label, in the representation the loop ended in (under a
    # champion, its embeddings; else the base encoder's, which main() scores once).
    all_labels = evaluate(vectors, [truth[i] for i in vectors_ids.tolist()], test_vectors, test_labels, classes, 0)[0] \
        if champion is not None else None
    return curve, float(np.median(refresh_seconds)) if refresh_seconds else None, chosen_rows, labels_only, all_labels


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


def labels_to_reach(curve, accuracy):
    for n, acc, _ in curve:
        if acc >= accuracy:
            return n
    return None


def area(curve):
    xs = np.array([n for n, _, _ in curve], dtype=float)
    ys = np.array([a for _, a, _ in curve])
    return float(np.trapezoid(ys, xs) / (xs[-1] - xs[0])) if len(xs) > 1 else float(ys[0])


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


def main():
    args = parse_args()
    setup_django(args.database_url)
    from django.contrib.auth import get_user_model

    from ml import encoder_cache
    from ml.encoder import Encoder

    train_texts, train_labels = read_csv(args.train, args.text_column, args.label_column)
    test_texts, test_labels = read_csv(args.test, args.text_column, args.label_column)
    if args.limit_train:
        train_texts, train_labels = train_texts[: args.limit_train], train_labels[: args.limit_train]
    if args.limit_test:
        test_texts, test_labels = test_texts[: args.limit_test], test_labels[: args.limit_test]
    classes = sorted(set(train_labels))
    owner, _ = get_user_model().objects.get_or_create(username="simulated-expert")
    print(f"train {len(train_texts)}  test {len(test_texts)}  classes {len(classes)}  cores {os.cpu_count()}")

    encoder = Encoder()
    raw = encoder.raw_forward_throughput(train_texts)
    print(f"raw model forward: {raw.per_second:.0f} texts/s ({raw.texts} texts, {raw.seconds:.1f} s)")
    cached = CachedEncoder(encoder)
    encoder_cache._encoders[""] = cached
    # The first import encodes the pool through the production service (eager encode task).
    from labeller.importing import items_import
    from labeller.services import project_create

    warm = project_create(user=owner, labels=[{"key": c, "name": c} for c in classes], name="encode timing",
                          suggestion_mode="off")
    body = "text\n" + "".join(f'"{t.replace(chr(34), chr(39))}"\n' for t in train_texts)
    started = time.perf_counter()
    items_import(project=warm, stream=io.BytesIO(body.encode()), filename="train.csv")
    pipeline = len(train_texts) / (time.perf_counter() - started)
    print(f"encode pipeline (import + encode service + float16 store): {pipeline:.0f} texts/s = "
          f"{100 * pipeline / raw.per_second:.0f}% of raw forward")
    test_vectors = cached.encode(test_texts)
    train_vectors = cached.encode(train_texts)

    # Rounded to float16 as the app stores them: the strategies' heads are fitted on stored vectors.
    stored = train_vectors.astype(np.float16).astype(np.float32)
    full_acc, full_f1 = evaluate(stored, train_labels, test_vectors, test_labels, classes, 0)
    print(f"head on all {len(train_texts)} training labels (no unlabelled items left to self-train on): "
          f"accuracy {full_acc:.4f}  macro-F1 {full_f1:.4f}")

    results, chosen, labels_only, all_labels = {}, {}, {}, {}
    for name in args.strategies.split(","):
        for seed in range(args.seeds):
            started = time.perf_counter()
            curve, refresh, chosen_rows, plain, full = run_strategy(
                name, seed, args, train_texts, train_labels, classes, test_texts, test_vectors, test_labels, owner)
            results.setdefault(name, []).append(curve)
            chosen.setdefault(name, chosen_rows)
            labels_only.setdefault(name, []).append(plain)
            all_labels.setdefault(name, []).append(full if full is not None else full_acc)
            print(f"  {name:28s} seed {seed}: acc@{curve[-1][0]} {curve[-1][1]:.4f} (labels alone {plain:.4f})  "
                  f"median refresh {refresh or 0:.2f} s  run {time.perf_counter() - started:.0f} s"
                  + (f"  | same head, all labels, champion's embeddings: {full:.4f}" if full is not None else ""), flush=True)

    print("\nlearning curves (mean over seeds): labels -> accuracy / macro-F1")
    budgets = [n for n, _, _ in results[next(iter(results))][0]]
    print("labels".ljust(8) + "".join(name[:22].rjust(24) for name in results))
    mean = {name: [(n, np.mean([c[i][1] for c in curves]), np.mean([c[i][2] for c in curves]))
                   for i, (n, _, _) in enumerate(curves[0])] for name, curves in results.items()}
    for i, n in enumerate(budgets):
        print(str(n).ljust(8) + "".join(f"{mean[name][i][1]:.4f} / {mean[name][i][2]:.4f}".rjust(24) for name in results))
    print("\nstrategy                     AUC(acc)  acc@budget     labels alone@budget  all labels  gap (points)  labels to reach random@budget")
    random_final = mean["random"][-1][1] if "random" in mean else None
    for name, curve in mean.items():
        reach = labels_to_reach(curve, random_final) if random_final is not None else "no random run"
        std = np.std([c[-1][1] for c in results[name]])
        reference = np.mean(all_labels[name])
        print(f"{name:28s} {area(curve):.4f}    {curve[-1][1]:.4f}±{std:.4f}  {np.mean(labels_only[name]):.4f}"
              f"               {reference:.4f}      {100 * (reference - curve[-1][1]):.2f}"
              f"          {reach if reach else 'not reached'}")
    print(f"(head on all labels: {full_acc:.4f}; random at {budgets[-1]}: {random_final}; 'labels alone': the same "
          "logistic regression without self-training on the pool; 'all labels': the same head on every training label "
          "in the representation the run ended in" + (f", the fine-tuned champion's from {args.champion_at} labels on"
                                                      if args.champion_at else "") + ")")

    Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for name, curve in mean.items():
        ax.plot([n for n, _, _ in curve], [a for _, a, _ in curve], label=name, marker=".")
    ax.axhline(full_acc, color="grey", linestyle="--", label=f"all {len(train_texts)} labels")
    if args.champion_at:
        ax.axvline(args.champion_at, color="grey", linestyle=":", label="fine-tuned champion promoted")
        for i, name in enumerate(results):
            ax.axhline(np.mean(all_labels[name]), color="grey", linestyle="-.", linewidth=0.8,
                       label="all labels, each run's champion's embeddings" if i == 0 else None)
    ax.set_xlabel("labels")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"Active learning on {Path(args.train).parent.name} ({args.seeds} seeds)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.savefig(args.plot, dpi=120, bbox_inches="tight")
    print(f"plot: {args.plot}")

    if args.finetune:
        print("\nfine-tuned on the labels each strategy chose (seed 0) vs the same number at random:")
        for name in [n for n in ("random", *args.finetune.split(",")) if n in chosen]:
            acc = finetune_accuracy(chosen[name], train_texts, train_labels, test_texts, test_labels, classes)
            print(f"  {name:28s} {len(chosen[name])} labels: fine-tuned test accuracy {acc:.4f}", flush=True)

    if args.refresh_pool:
        report = fast_refresh_timing(args.refresh_pool, train_vectors, train_labels, classes, owner)
        print(f"\nfast refresh, {report.pool} open items, {report.labelled} labels: fit {report.seconds_fit:.2f} s, "
              f"score+rank {report.seconds_score:.2f} s, write {report.seconds_write:.2f} s, "
              f"total {report.seconds_total:.2f} s")


if __name__ == "__main__":
    main()
