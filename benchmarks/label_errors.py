"""Does confident learning find the labels that are wrong, and does CROWDLAB weigh annotators right?

Part 1, likely label errors (issue 17). On Banking77 and CLINC150 (in-scope: `oos` dropped), for each
seed, a share of the training labels is corrupted, either uniformly at random or towards the most
confusable other class (the class the clean labels' out-of-sample predictions confuse it with most
often). `ml.label_errors.find_label_errors` flags items from out-of-sample probabilities of K-fold
heads on the stored (float16) vectors, as the product would. Printed per setting, mean ± sd over
seeds: the flags' precision and recall against the corrupted items, the "predicted label ≠ given
label" baseline's precision and recall, test accuracy of the head trained on the noisy labels, after
a simulated expert re-reviewed the flagged items (answering from ground truth), and on clean labels,
and the items re-reviewed per corrupted item.

Part 2, annotator reliability: five simulated annotators with accuracies 0.95, 0.9, 0.8, 0.7 and 0.5,
three of them (drawn at random) label each of 2,000 Banking77 training items, a wrong label uniform
over the other classes. Consensus accuracy of plain majority vote, Dawid–Skene, and CROWDLAB with
out-of-sample model probabilities (`ml.reliability`), and the mean absolute error of each estimate
of the annotators' accuracies.

With --finetune, instead of both parts: for each chosen dataset, noise, rate and seed, a fine-tuned
version is trained as the registry trains one (ml.finetune's recipe with FineTuneConfig's defaults:
linear probe, then the whole transformer; 10 % of the training rows, by a stable hash, held out for
early stopping, with the labels of the condition; trained on too when under 500) on the noisy, the
re-reviewed and the clean labels, and its test accuracy printed, with the gap clean − re-reviewed.

Sentence vectors come from the base model (all-MiniLM-L6-v2, offline) and are cached under --cache.

    .venv/bin/python benchmarks/label_errors.py                    # full run
    .venv/bin/python benchmarks/label_errors.py --limit-train 1500 --limit-test 300 --seeds 1 --annotator-items 300  # smoke
    .venv/bin/python benchmarks/label_errors.py --finetune --datasets banking77 --noise uniform --rates 0.1 --seeds 1
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import csv
import hashlib
import os
import time

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATASETS = {"banking77": ROOT / "datasets" / "banking77", "clinc150": ROOT / "datasets" / "clinc150"}
CONDITIONS = ("noisy", "reviewed", "clean")  # --finetune's label sets


def read_csv(path: Path, drop=("oos",)) -> tuple[list[str], list[str]]:
    with open(path, encoding="utf-8", newline="") as f:
        rows = [(r["text"], r["category"]) for r in csv.DictReader(f) if r["category"] not in drop]
    return [t for t, _ in rows], [c for _, c in rows]


def stored_vectors(encoder, texts: list[str], cache_dir: Path, name: str) -> np.ndarray:
    """The base model's sentence vectors rounded to float16 as the product stores them, cached on
    disk by encoder and texts."""
    key = hashlib.sha256((encoder.version + "\x00" + "\x00".join(texts)).encode()).hexdigest()[:12]
    path = cache_dir / f"label_errors_{name}_{key}.npy"
    if path.exists():
        return np.load(path).astype(np.float32)
    vectors = encoder.encode(texts).astype(np.float16)
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors.astype(np.float32)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default="banking77,clinc150", help="part 1's datasets ('': part 2 alone)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--first-seed", type=int, default=0, help="part 1's seeds are first-seed .. first-seed + seeds - 1")
    p.add_argument("--rates", default="0.1,0.2", help="shares of training labels corrupted")
    p.add_argument("--noise", default="uniform,confusable")
    p.add_argument("--validation", action="store_true",
                   help="compare the candidate methods on validation data instead (Banking77: 80%% of train "
                        "flagged, the other 20%% scored; CLINC150: train flagged, val.csv scored); no test split is read; "
                        "with --rounds > 1, part 1's rows per round instead of the comparison of filters")
    p.add_argument("--rounds", type=int, default=1,
                   help="audits, each followed by the re-review of its new flags (part 1 and --finetune's re-reviewed labels)")
    p.add_argument("--second-opinion", type=float, default=None,
                   help="each audit after the first also flags what a head on the settled items disagrees with at "
                        "this confidence (ml.label_errors.second_opinion; default: the product's, "
                        "SECOND_OPINION_CONFIDENCE; 0: off, the audit before it was in the product)")
    p.add_argument("--annotator-items", type=int, default=2000, help="items of part 2 (0: skip it)")
    p.add_argument("--limit-train", type=int, default=0, help="use only the first N training rows (smoke runs)")
    p.add_argument("--limit-test", type=int, default=0, help="use only the first N test rows (smoke runs)")
    p.add_argument("--cache", default=str(ROOT / "benchmarks" / "out"), help="folder for the cached vectors")
    p.add_argument("--threads", type=int, default=2, help="torch threads for encoding (the machine is shared)")
    p.add_argument("--finetune", action="store_true",
                   help="fine-tune a version on the noisy, re-reviewed and clean labels of each chosen setting (no parts 1, 2)")
    p.add_argument("--finetune-conditions", default=",".join(CONDITIONS), help="which of noisy,reviewed,clean to fine-tune on")
    p.add_argument("--finetune-epochs", type=int, default=0,
                   help="epochs (also those of a validation split too small to stop on); 0: FineTuneConfig's defaults")
    p.add_argument("--finetune-threads", type=int, default=2, help="torch threads for fine-tuning")
    p.add_argument("--finetune-time-limit", type=float, default=0,
                   help="FineTuneConfig.time_limit_s; 0: none (the registry's 1800 s would cut a loaded CPU run short)")
    args = p.parse_args()
    if args.second_opinion is None:
        from ml.label_errors import SECOND_OPINION_CONFIDENCE

        args.second_opinion = SECOND_OPINION_CONFIDENCE
    unknown = set(args.finetune_conditions.split(",")) - set(CONDITIONS)
    if unknown:
        p.error(f"--finetune-conditions: unknown {', '.join(sorted(unknown))}; known: {', '.join(CONDITIONS)}")
    return args


def load(name: str, args, encoder, validation: bool, texts: bool = False):
    """(train vectors, train labels, scored vectors, scored labels, classes), and with `texts` the
    training and scored texts in the same order: the scored split is test.csv, or under
    --validation the held-out part of train (Banking77) or val.csv (CLINC150)."""
    folder, cache = DATASETS[name], Path(args.cache)
    train_texts, train_labels = read_csv(folder / "train.csv")
    limit_train, limit_test = args.limit_train or None, args.limit_test or None
    train_texts, train_labels = train_texts[:limit_train], train_labels[:limit_train]
    x_train = stored_vectors(encoder, train_texts, cache, f"{name}_train")
    if validation and not (folder / "val.csv").exists():  # a seeded 20 % of train held out
        order = np.random.default_rng(12345).permutation(len(train_texts))
        cut = int(0.8 * len(order))
        test_labels, x_test = [train_labels[i] for i in order[cut:]][:limit_test], x_train[order[cut:]][:limit_test]
        test_texts = [train_texts[i] for i in order[cut:]][:limit_test]
        train_labels, x_train = [train_labels[i] for i in order[:cut]], x_train[order[:cut]]
        train_texts = [train_texts[i] for i in order[:cut]]
    else:
        split = "val" if validation else "test"
        test_texts, test_labels = read_csv(folder / f"{split}.csv")
        test_texts, test_labels = test_texts[:limit_test], test_labels[:limit_test]
        x_test = stored_vectors(encoder, test_texts, cache, f"{name}_{split}")
    classes = sorted(set(train_labels))
    index = {c: i for i, c in enumerate(classes)}
    keep = [i for i, label in enumerate(test_labels) if label in index]
    loaded = (x_train, np.array([index[c] for c in train_labels]), x_test[keep],
              np.array([index[test_labels[i]] for i in keep]), classes)
    return loaded + (train_texts, [test_texts[i] for i in keep]) if texts else loaded


def most_confusable(x, y, classes, seed=0) -> tuple[np.ndarray, np.ndarray]:
    """For each class, the other class its clean items are most often predicted as out of sample
    (ties and classes never confused: the other class whose centroid is most similar); also the
    out-of-sample probabilities, for the benchmark's other uses."""
    from ml.label_errors import out_of_sample_probabilities

    probs = out_of_sample_probabilities(x, [[classes[i]] for i in y], classes, seed=seed)
    k = len(classes)
    confusion = np.zeros((k, k))
    np.add.at(confusion, (y, probs.argmax(axis=1)), 1)
    np.fill_diagonal(confusion, -1)
    centroids = np.stack([x[y == c].mean(axis=0) for c in range(k)])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    similarity = centroids @ centroids.T
    np.fill_diagonal(similarity, -np.inf)
    # Counts first; the centroid similarity (below 1) only breaks ties and fills classes never confused.
    target = (np.maximum(confusion, 0) + 0.5 * (similarity + 1) / 2).argmax(axis=1)
    return target, probs


def corrupt(y, n_classes, rate, mode, confusable, rng) -> tuple[np.ndarray, np.ndarray]:
    """(noisy labels, the corrupted rows): `rate` of the rows, drawn at random, get a label that is
    another class uniformly at random or their class's most confusable other class."""
    rows = np.sort(rng.choice(len(y), size=int(round(rate * len(y))), replace=False))
    noisy = y.copy()
    if mode == "uniform":
        shift = rng.integers(1, n_classes, size=len(rows))  # any class but the true one, uniformly
        noisy[rows] = (y[rows] + shift) % n_classes
    else:
        noisy[rows] = confusable[y[rows]]
    return noisy, rows


def corrupt_and_review(x, y, classes, rate, mode, confusable, seed, rounds=1, second_opinion=0.0):
    """(noisy labels, corrupted rows, the first audit's out-of-sample probabilities, rounds) of one
    setting, `rounds` holding (every item flagged so far, the labels after its re-review) per round:
    ml.label_errors' defaults flag items, and the simulated expert gives every flagged item its true
    label. Each round after the first audits the re-reviewed labels again, as the product's audit
    does once more labels arrived, and flags only items not re-reviewed before (a second opinion
    settles an item: active_learning.label_errors never flags it again). With `second_opinion` (a
    confidence), each audit after the first also flags the unsettled items a head fitted on the
    settled ones confidently disagrees with (ml.label_errors.second_opinion)."""
    from ml.label_errors import find_label_errors, out_of_sample_probabilities
    from ml.label_errors import second_opinion as settled_opinion

    noisy, corrupted = corrupt(y, len(classes), rate, mode, confusable, np.random.default_rng(seed))
    reviewed, settled, history, first = noisy.copy(), np.zeros(len(y), dtype=bool), [], None
    for _ in range(rounds):
        label_sets = [[classes[i]] for i in reviewed]
        probs = out_of_sample_probabilities(x, label_sets, classes, seed=seed)
        first = probs if first is None else first
        flagged = np.array([e.flagged for e in find_label_errors(label_sets, classes, probs)]) & ~settled
        if second_opinion and settled.any():
            flagged |= settled_opinion(x, reviewed, settled, classes, confidence=second_opinion, seed=seed)[0]
        reviewed = reviewed.copy()
        reviewed[flagged] = y[flagged]  # the simulated expert answers from ground truth
        settled |= flagged
        history.append((settled.copy(), reviewed))
    return noisy, corrupted, first, history


def head_accuracy(x, y, x_test, y_test, classes, seed=0) -> float:
    """Test accuracy of the head the refresh fits (ml.heads.fit_head, C=10) on these labels."""
    from ml.heads import fit_head

    head = fit_head(x, [[classes[i]] for i in y], classes=classes, seed=seed)
    return float((head.predict_proba(x_test).argmax(axis=1) == y_test).mean())


def precision_recall(flagged: np.ndarray, corrupted_rows: np.ndarray) -> tuple[float, float]:
    truth = np.zeros(len(flagged), dtype=bool)
    truth[corrupted_rows] = True
    hits = int((flagged & truth).sum())
    return hits / max(int(flagged.sum()), 1), hits / max(int(truth.sum()), 1)


def mean_sd(values) -> str:
    values = np.asarray(values, dtype=float)
    return f"{values.mean():.3f}±{values.std():.3f}"


# What --validation compares: out-of-sample probabilities (C; the neighbour vote's weight, mixed
# into the same fold fits), each with cleanlab's filters. The defaults of ml.label_errors are the
# pick (docs/label-errors.md).
PROBABILITY_VARIANTS = {  # name: (C, vote weight)
    "5-fold C=10": (10.0, 0.0),
    "5-fold C=10 +vote 0.4": (10.0, 0.4),
    "5-fold C=10 +vote 0.6": (10.0, 0.6),
    "5-fold C=1 +vote 0.4": (1.0, 0.4),
}
FILTERS = ("prune_by_noise_rate", "prune_by_class", "both", "confident_learning", "low_normalized_margin",
           "low_self_confidence", "low_self_confidence, calibrated count", "predicted_neq_given")


def filter_settings(name: str) -> dict:
    """find_label_errors' arguments for a FILTERS entry: the ranking filters with cleanlab's plain
    count unless the name says calibrated."""
    if name.endswith(", calibrated count"):
        return {"filter_by": name.split(",")[0], "count": "off_diagonal_calibrated"}
    return {"filter_by": name, "count": "off_diagonal"}


def validation(args, encoder):
    """Every candidate on validation data, a row per setting as soon as it is measured."""
    from ml.label_errors import find_label_errors, out_of_sample_parts

    for name in args.datasets.split(","):
        x, y, x_val, y_val, classes = load(name, args, encoder, validation=True)
        print(f"\n{name} (validation): {len(y)} flagged, {len(y_val)} scored, {len(classes)} classes; "
              f"head on clean labels: val accuracy {head_accuracy(x, y, x_val, y_val, classes):.4f}", flush=True)
        confusable, _ = most_confusable(x, y, classes)
        print("seed noise       rate variant                filter                                precision recall "
              "reviewed/corrupted")
        for seed in range(100, 100 + args.seeds):  # other seeds than the benchmark's
            for rate in [float(r) for r in args.rates.split(",")]:
                for mode in args.noise.split(","):
                    noisy, corrupted = corrupt(y, len(classes), rate, mode, confusable, np.random.default_rng(seed))
                    label_sets = [[classes[i]] for i in noisy]
                    parts = {}
                    for variant, (c, weight) in PROBABILITY_VARIANTS.items():
                        if c not in parts:
                            parts[c] = out_of_sample_parts(x, label_sets, classes, c=c, seed=seed)
                        linear, vote = parts[c]
                        probs = (1 - weight) * linear + weight * vote
                        for filter_by in FILTERS:
                            flagged = np.array([e.flagged for e in find_label_errors(label_sets, classes, probs,
                                                                                      **filter_settings(filter_by))])
                            p, r = precision_recall(flagged, corrupted)
                            line = (f"{seed:<4} {mode:11s} {rate:.0%}  {variant:22s} {filter_by:37s} {p:.3f}     {r:.3f}  "
                                    f"{flagged.sum() / len(corrupted):.3f}")
                            if (variant, filter_by) == ("5-fold C=10 +vote 0.4", "low_self_confidence, calibrated count"):
                                fixed = noisy.copy()
                                fixed[flagged] = y[flagged]
                                line += f"  val acc after re-review {head_accuracy(x, fixed, x_val, y_val, classes):.4f}"
                            print(line, flush=True)


HEADER = ("dataset    noise       rate round  flags: precision  recall       pred≠given: precision  recall       "
          "acc noisy     acc re-reviewed  acc clean  gap (points)  re-reviewed/corrupted")


def summary_row(name, mode, rate, round_, runs) -> str:
    cols = list(zip(*runs))
    gap = 100 * (np.array(cols[6]) - np.array(cols[5]))
    return (f"{name:10s} {mode:11s} {rate:.0%}   {round_:<5} {mean_sd(cols[0])}  {mean_sd(cols[1])}  "
            f"{mean_sd(cols[2])}           {mean_sd(cols[3])}  {mean_sd(cols[4])}  {mean_sd(cols[5])}     "
            f"{np.mean(cols[6]):.4f}     {gap.mean():+.2f}±{gap.std():.2f}    {mean_sd(cols[7])}")


def label_errors(args, encoder, validation=False):
    """Part 1 on the test splits (`validation`: on the validation data instead), with the settings
    ml.label_errors defaults to; a row per round of audit and re-review (--rounds)."""
    table = []
    for name in args.datasets.split(","):
        x, y, x_test, y_test, classes = load(name, args, encoder, validation=validation)
        started = time.perf_counter()
        # Only confusable noise needs the confusion (5 more fits).
        confusable = most_confusable(x, y, classes)[0] if "confusable" in args.noise else None
        clean = head_accuracy(x, y, x_test, y_test, classes)
        scored = "validation" if validation else "test"
        print(f"\n{name}: {len(y)} training labels, {len(y_test)} {scored} items, {len(classes)} classes; "
              f"head on clean labels: {scored} accuracy {clean:.4f}", flush=True)
        for mode in args.noise.split(","):
            for rate in [float(r) for r in args.rates.split(",")]:
                runs = [[] for _ in range(args.rounds)]
                for seed in range(args.first_seed, args.first_seed + args.seeds):
                    noisy, corrupted, probs, rounds = corrupt_and_review(x, y, classes, rate, mode, confusable, seed,
                                                                         args.rounds, args.second_opinion)
                    bp, br = precision_recall(probs.argmax(axis=1) != noisy, corrupted)
                    noisy_accuracy = head_accuracy(x, noisy, x_test, y_test, classes, seed)
                    for k, (flagged, fixed) in enumerate(rounds):
                        p, r = precision_recall(flagged, corrupted)
                        runs[k].append((p, r, bp, br, noisy_accuracy, head_accuracy(x, fixed, x_test, y_test, classes, seed),
                                        clean, flagged.sum() / len(corrupted)))
                        print(f"  seed {seed} ({time.perf_counter() - started:.0f} s): "
                              + summary_row(name, mode, rate, k + 1, runs[k][-1:]), flush=True)
                for k, round_runs in enumerate(runs):
                    table.append((name, mode, rate, k + 1, round_runs))
                    print("  " + HEADER + "\n  " + summary_row(*table[-1]), flush=True)
    print("\nlikely label errors (mean ± sd over seeds; accuracy: the head fitted on the training labels, on test; "
          "round k: k audits, each followed by the re-review of its new flags)")
    print(HEADER)
    for row in table:
        print(summary_row(*row))
    print("(confusable noise: each corrupted label becomes the other class its true class is most often predicted as, "
          "out of sample, by 5-fold heads on the clean labels; the fine-tuned version: --finetune)")


def finetune_accuracy(train_texts, y, test_texts, y_test, classes, args) -> tuple[float, float, str]:
    """(test accuracy, seconds, how it trained) of a version fine-tuned on these labels as the
    registry fine-tunes one (benchmarks._common.registry_fine_tune)."""
    from benchmarks._common import fine_tune_progress, registry_fine_tune

    started = time.perf_counter()
    model, result, trained_on, held_out = registry_fine_tune(
        list(train_texts), y, len(classes), epochs=args.finetune_epochs, threads=args.finetune_threads,
        time_limit_s=args.finetune_time_limit, on_progress=fine_tune_progress())
    accuracy = float((model.predict(list(test_texts))[0].argmax(axis=1) == y_test).mean())
    seconds = time.perf_counter() - started
    how = (f"{trained_on} trained on, {held_out} for early stopping, {len(result.history)} epochs run, "
           f"best epoch {result.best_epoch}, {result.stopped}, {result.examples_per_second:.1f} ex/s")
    return accuracy, seconds, how


def finetune_comparison(args, encoder):
    """--finetune: for each chosen setting, the flags as part 1 computes them, then a version
    fine-tuned on each condition's labels, scored on test."""
    conditions = [c for c in CONDITIONS if c in args.finetune_conditions.split(",")]
    rows = []
    for name in args.datasets.split(","):
        x, y, x_test, y_test, classes, train_texts, test_texts = load(name, args, encoder, validation=False, texts=True)
        confusable = most_confusable(x, y, classes)[0] if "confusable" in args.noise else None
        print(f"\n{name}: {len(y)} training labels, {len(y_test)} test items, {len(classes)} classes; fine-tuning on "
              f"{', '.join(conditions)} labels, {args.finetune_threads} threads", flush=True)
        for mode in args.noise.split(","):
            for rate in [float(r) for r in args.rates.split(",")]:
                for seed in range(args.first_seed, args.first_seed + args.seeds):
                    noisy, corrupted, _, rounds = corrupt_and_review(x, y, classes, rate, mode, confusable, seed, args.rounds,
                                                                     args.second_opinion)
                    flagged, reviewed = rounds[-1]
                    p, r = precision_recall(flagged, corrupted)
                    print(f"  {mode} {rate:.0%} seed {seed}: {len(corrupted)} corrupted, {int(flagged.sum())} flagged "
                          f"(precision {p:.3f}, recall {r:.3f}); {int((reviewed != y).sum())} labels still wrong "
                          f"after re-review", flush=True)
                    labels = {"noisy": noisy, "reviewed": reviewed, "clean": y}
                    accuracy = {}
                    for condition in conditions:
                        head = head_accuracy(x, labels[condition], x_test, y_test, classes, seed)
                        acc, seconds, how = finetune_accuracy(train_texts, labels[condition], test_texts, y_test, classes, args)
                        accuracy[condition] = acc
                        print(f"  fine-tuned on {condition:8s} labels: test accuracy {acc:.4f}  (head {head:.4f})  "
                              f"{seconds:.0f} s  [{how}]", flush=True)
                    rows.append((name, mode, rate, seed, accuracy))
    print("\nfine-tuned versions (ml.finetune, FineTuneConfig defaults"
          + (f", {args.finetune_epochs} epochs" if args.finetune_epochs else "") + "), test accuracy")
    print("dataset    noise       rate  seed  " + "  ".join(f"acc {c:8s}" for c in conditions) + "  gap clean − re-reviewed (points)")
    for name, mode, rate, seed, accuracy in rows:
        gap = (f"{100 * (accuracy['clean'] - accuracy['reviewed']):+.2f}" if {"clean", "reviewed"} <= accuracy.keys()
               else "n/a")
        print(f"{name:10s} {mode:11s} {rate:.0%}   {seed:<4}  " + "  ".join(f"{accuracy[c]:.4f}      " for c in conditions)
              + f"  {gap}")


ANNOTATOR_ACCURACIES = (0.95, 0.9, 0.8, 0.7, 0.5)


def simulate_annotators(y, n_classes, accuracies, per_item, rng) -> np.ndarray:
    """(items x annotators) labels, -1 where missing: `per_item` annotators drawn at random label each
    item, right with their accuracy, else a class drawn uniformly from the others."""
    from ml.reliability import MISSING

    matrix = np.full((len(y), len(accuracies)), MISSING)
    for i, truth in enumerate(y):
        for j in rng.choice(len(accuracies), size=per_item, replace=False):
            right = rng.random() < accuracies[j]
            matrix[i, j] = truth if right else (truth + rng.integers(1, n_classes)) % n_classes
    return matrix


def annotator_reliability(args, encoder):
    """Part 2: consensus accuracy and annotator-accuracy error of each estimate."""
    from ml import reliability
    from ml.label_errors import out_of_sample_probabilities

    x, y, _, _, classes = load("banking77", args, encoder, validation=False)  # training rows only
    results: dict[str, list] = {}
    for seed in range(args.seeds):
        rng = np.random.default_rng(1000 + seed)
        items = rng.choice(len(y), size=min(args.annotator_items, len(y)), replace=False)
        truth = y[items]
        matrix = simulate_annotators(truth, len(classes), ANNOTATOR_ACCURACIES, 3, rng)
        given = matrix != reliability.MISSING
        realised = np.array([(matrix[given[:, j], j] == truth[given[:, j]]).mean() for j in range(matrix.shape[1])])
        majority = reliability.majority_vote(matrix, len(classes), seed=seed)
        # The model the product would have: K-fold heads on the majority labels of the same items.
        probs = out_of_sample_probabilities(x[items], [[classes[i]] for i in majority.labels], classes, seed=seed)
        estimates = {
            "majority vote": majority,
            "Dawid-Skene (one-coin)": reliability.dawid_skene(matrix, len(classes)),
            "Dawid-Skene, model prior": reliability.dawid_skene(matrix, len(classes), prior=probs),
            "CROWDLAB": reliability.crowdlab(matrix, probs),
        }
        model_accuracy = float((probs.argmax(axis=1) == truth).mean())
        for method, consensus in estimates.items():
            results.setdefault(method, []).append((float((consensus.labels == truth).mean()),
                                                   float(np.abs(consensus.annotator_accuracy - realised).mean()),
                                                   consensus.annotator_accuracy, realised, model_accuracy))
    print(f"\nannotator reliability: {min(args.annotator_items, len(y))} Banking77 training items, 3 labels each from "
          f"5 simulated annotators (accuracies {', '.join(map(str, ANNOTATOR_ACCURACIES))}), {args.seeds} seeds")
    print(f"out-of-sample model (5-fold heads on the majority labels) alone: accuracy "
          f"{mean_sd([r[4] for r in results['CROWDLAB']])}")
    print("method                      consensus accuracy  annotator accuracy MAE  estimated accuracies (seed 0; realised: "
          + ", ".join(f"{a:.3f}" for a in results["CROWDLAB"][0][3]) + ")")
    for method, runs in results.items():
        print(f"{method:27s} {mean_sd([r[0] for r in runs])}         {mean_sd([r[1] for r in runs])}             "
              + ", ".join(f"{a:.3f}" for a in runs[0][2]))


def main():
    args = parse_args()
    from ml.encoder import Encoder

    encoder = Encoder(threads=args.threads)
    print(f"cores {os.cpu_count()}  encoder {encoder.version}")
    if args.validation and args.rounds > 1:  # how many audits: part 1's rows on validation data
        label_errors(args, encoder, validation=True)
        return
    if args.validation:
        validation(args, encoder)
        return
    if args.finetune:
        finetune_comparison(args, encoder)
        return
    if args.datasets:
        label_errors(args, encoder)
    if args.annotator_items:
        annotator_reliability(args, encoder)


if __name__ == "__main__":
    main()
