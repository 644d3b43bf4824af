"""Out-of-scope queries: how many does each signal catch at the abstain threshold a project would
use, and what does it cost the in-scope queries? On CLINC150 (its `oos` queries) and on Banking77
with a fifth of its intents held out as unknown (so no setting rests on one dataset).

The product's recipe: frozen base-encoder sentence vectors, a logistic-regression head (C = 10)
with the neighbour vote of a registered head version (ml.heads). Each signal scores every query,
higher = more out of scope:

- maxprob      1 − the version's top probability (what the abstain threshold reads today)
- energy       −logsumexp of the head's logits
- knn          1 − mean cosine similarity to the 10 nearest labelled queries
- mahalanobis  squared Mahalanobis distance to the nearest intent's mean (one Ledoit–Wolf covariance)
- maxprob+knn  the two standardised and summed: ml.out_of_scope.ScopeRule, what the product uses
- energy+knn   energy and knn the same way (best on CLINC150 alone; a comparison)
- oos_class    (CLINC150) the head trained with `oos` as a 151st intent on train's 100 out-of-scope
               queries; abstains when it predicts oos, no threshold
- oos_label    the product's rule for a project with an out-of-scope label (Project.out_of_scope_label):
               that class trained on labelled out-of-scope examples, its log probability a third
               signal, its answers out of scope (ml.out_of_scope). CLINC150: train's 100 oos
               queries; Banking77: 100 examples of 5 of the 15 unknown intents (recall on all 15,
               and on the 10 never seen)

The threshold is chosen without out-of-scope examples, on labelled in-scope queries alone
(ml.out_of_scope.threshold_for: the in-scope accuracy, abstentions counted wrong, may fall by at
most --max-drop): on CLINC150's val.csv in-scope queries with all its training labels; otherwise
on the labelled set's own 5-fold out-of-fold scores, as a project with only those labels could.
Test split: in-scope accuracy without and with abstention, out-of-scope recall and precision.

    .venv/bin/python benchmarks/out_of_scope.py              # full run (encodes the queries once; cached)
    .venv/bin/python benchmarks/out_of_scope.py --limit 1500 --few 300 --seeds 1 --held-out 5   # smoke
    .venv/bin/python benchmarks/out_of_scope.py --finetuned      # a fine-tuned version's rule instead (~20 min on 2 cores)
    .venv/bin/python benchmarks/out_of_scope.py --finetuned --oos-label   # ... fine-tuned with CLINC150's out-of-scope label
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))
DATASETS = ROOT / "datasets"
OOS = "oos"
SIGNALS = ["maxprob", "energy", "knn", "mahalanobis", "maxprob+knn", "energy+knn"]
SUMS = {"maxprob+knn": ("maxprob", "knn"), "energy+knn": ("energy", "knn")}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clinc", default=str(DATASETS / "clinc150"), help="train.csv, val.csv, test.csv (text,category)")
    p.add_argument("--banking", default=str(DATASETS / "banking77"), help="train.csv, test.csv (text,category)")
    p.add_argument("--max-drop", type=float, default=0.02, help="in-scope accuracy the threshold may cost")
    p.add_argument("--few", default="1000,3000", help="CLINC150: labelled in-scope subsets to report beside all")
    p.add_argument("--held-out", type=int, default=15, help="Banking77: intents held out as unknown per seed")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--limit", type=int, default=0, help="read a sample of this many rows per file (smoke runs)")
    p.add_argument("--cache", default=str(ROOT / "benchmarks" / "out"), help="where encoded vectors are kept")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--finetuned", action="store_true",
                   help="instead of the heads: a version fine-tuned on CLINC150's in-scope training queries as the "
                        "registry fine-tunes one, with the rule read off its own validation split, scored on test")
    p.add_argument("--oos-label", action="store_true",
                   help="with --finetuned: CLINC150 only, train's 100 oos queries labelled as the project's "
                        "out-of-scope label (Project.out_of_scope_label), the version's own rule scored")
    p.add_argument("--finetuned-datasets", default="clinc150", help="with --finetuned: clinc150, banking77 or both")
    p.add_argument("--max-drops", default="0.01,0.0125,0.015,0.0175,0.02",
                   help="with --finetuned: budgets for the rule read off the version's split, chosen on validation data")
    p.add_argument("--finetune-epochs", type=int, default=0, help="with --finetuned: 0 for FineTuneConfig's default")
    p.add_argument("--finetune-min-validation", type=int, default=0,
                   help="with --finetuned: hold the validation split out from this many texts (0: FineTuneConfig's; smoke runs)")
    return p.parse_args()


def read(path: Path, limit: int) -> tuple[list[str], np.ndarray]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if limit and len(rows) > limit:  # a seeded sample, so that a small run still sees every label
        rows = random.Random(0).sample(rows, limit)
    return [r["text"] for r in rows], np.array([r["category"] for r in rows])


def encoded(texts: list[str], cache: Path, threads: int) -> np.ndarray:
    """The base encoder's vectors of `texts`, cached on disk by their content."""
    key = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    path = cache / f"vectors-{key}.npy"
    if path.exists():
        return np.load(path)
    from ml.encoder import Encoder

    vectors = Encoder(threads=threads).encode(texts, batch_size=64).astype(np.float32)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def mahalanobis_fit(vectors: np.ndarray, labels: np.ndarray, classes: list[str]):
    """Intent means and a shared Ledoit–Wolf precision: a comparison only, not used by the product."""
    from sklearn.covariance import LedoitWolf

    means = np.stack([vectors[labels == c].mean(axis=0) for c in classes])
    centred = vectors - means[np.searchsorted(classes, labels)]
    precision = LedoitWolf(assume_centered=True).fit(centred).precision_.astype(np.float32)
    projected = means @ precision
    constant = np.einsum("cd,cd->c", projected, means)

    def distance(x: np.ndarray) -> np.ndarray:
        return (np.einsum("nd,nd->n", x @ precision, x)[:, None] - 2 * x @ projected.T + constant[None, :]).min(axis=1)

    return distance


class Model:
    """A head version as the registry trains it (LR + neighbour vote), with every signal."""

    def __init__(self, vectors: np.ndarray, labels: np.ndarray, seed: int = 0):
        from ml.heads import NeighbourMemory, fit_head

        self.classes = sorted(set(labels.tolist()))
        self.head = fit_head(vectors, [[y] for y in labels], classes=self.classes, c=10.0, seed=seed)
        self.head.memory = NeighbourMemory.of(vectors, np.searchsorted(self.classes, labels), {})
        self.mahalanobis = mahalanobis_fit(vectors, labels, self.classes)

    def predict(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        from ml import out_of_scope

        probs = self.head.predict_proba(vectors)
        logits = self.head.logits(vectors)
        scores = {"maxprob": 1 - probs.max(axis=1), "energy": out_of_scope.energy(logits),
                  "knn": out_of_scope.neighbour_distance(vectors, self.head.memory.vectors),
                  "mahalanobis": self.mahalanobis(vectors)}
        return np.array(self.classes)[probs.argmax(axis=1)], logits, scores


def out_of_fold(vectors: np.ndarray, labels: np.ndarray, seed: int, folds: int = 5):
    """Each labelled item's prediction and scores from a model fitted without it."""
    fold = np.random.default_rng(seed).permutation(len(labels)) % folds
    predicted = np.empty(len(labels), dtype=object)
    scores = {name: np.zeros(len(labels)) for name in SIGNALS[:4]}
    for k in range(folds):
        train, held = fold != k, fold == k
        p, _, sc = Model(vectors[train], labels[train], seed).predict(vectors[held])
        predicted[held] = p
        for name in sc:
            scores[name][held] = sc[name]
    return predicted, scores


def thresholds(pick_scores: dict, correct: np.ndarray, max_drop: float) -> dict:
    """Per signal, (standardisation, threshold) chosen on the pick set; the product's sum through
    ml.out_of_scope.ScopeRule itself, the other sum the same way."""
    from ml.out_of_scope import ScopeRule, threshold_for

    out = {name: (None, threshold_for(pick_scores[name], correct, max_drop=max_drop)) for name in SIGNALS[:4]}
    for name, (a, b) in SUMS.items():
        rule = ScopeRule.from_signals(pick_scores[a], pick_scores[b], correct, max_drop=max_drop)
        out[name] = ({a: (rule.doubt_mean, rule.doubt_sd), b: (rule.distance_mean, rule.distance_sd)}, rule.threshold)
    return out


def figures(right: np.ndarray, abstain: np.ndarray, labels: np.ndarray, *, mask: np.ndarray | None = None,
            baseline_right: np.ndarray | None = None) -> dict:
    """Over the queries in `mask` (default: all): in-scope accuracy without abstention (of
    `baseline_right`'s answers, default `right`'s) and with it, out-of-scope recall and precision,
    and the share abstained."""
    mask = np.ones(len(labels), dtype=bool) if mask is None else mask
    inscope, oos = mask & (labels != OOS), mask & (labels == OOS)
    baseline = right if baseline_right is None else baseline_right
    return {"acc_all": baseline[inscope].mean(), "acc": (right & ~abstain)[inscope].mean(), "oos_recall": abstain[oos].mean(),
            "oos_precision": (abstain & oos).sum() / max((abstain & mask).sum(), 1), "abstain": abstain[mask].mean()}


def evaluate(model: Model, chosen: dict, test_v: np.ndarray, test_y: np.ndarray) -> list[dict]:
    predicted, _, scores = model.predict(test_v)
    for name in SUMS:
        scores[name] = sum((scores[part] - mean) / sd for part, (mean, sd) in chosen[name][0].items())
    return [{"signal": name, **figures(predicted == test_y, scores[name] > chosen[name][1], test_y)} for name in SIGNALS]


def show(dataset: str, labels: str, where: str, runs: list[list[dict]]) -> None:
    for i in range(len(SIGNALS)):
        show_rows(dataset, labels, where, [rows[i] for rows in runs])


class FineTunedCase:
    """One dataset's fine-tuned version and what its out-of-scope rule is read off: the version as
    the registry fine-tunes it on the known intents, and the signals of its own validation split
    (the head alone, and the vote of a memory of the training texts only, as ml.finetune._scope_rule
    reads them), so that rules with other budgets can be read off the same split."""

    def __init__(self, name: str, texts: list[str], labels: np.ndarray, args):
        from benchmarks._common import fine_tune_progress, registry_config, registry_fine_tune, registry_split
        from ml.heads import NeighbourMemory
        from ml.out_of_scope import doubt, neighbour_distance

        self.name = name
        self.classes = sorted(set(labels.tolist()))
        targets = np.searchsorted(self.classes, labels)
        started = time.perf_counter()
        self.model, self.result, trained_on, held_out = registry_fine_tune(
            texts, targets, len(self.classes), epochs=args.finetune_epochs, threads=args.threads,
            min_validation=args.finetune_min_validation, on_progress=fine_tune_progress())
        self.labelled = trained_on + held_out
        print(f"{name}: fine-tuned on {trained_on:,} in-scope queries of {len(self.classes)} intents, {held_out:,} held out "
              f"for early stopping and the rule; {len(self.result.history)} epochs run, best {self.result.best_epoch}, "
              f"{time.perf_counter() - started:.0f} s", flush=True)
        if self.result.scope is None:
            return
        config = registry_config(epochs=args.finetune_epochs, min_validation=args.finetune_min_validation)
        tr_texts, tr_ids, val_texts, val_ids, config = registry_split(texts, targets, config)
        served, self.model.memory = self.model.memory, None  # the head alone, as fine_tune reads the split
        tr_vectors = self.model.predict(tr_texts)[1]
        val_probs, val_vectors = self.model.predict(val_texts)
        self.model.memory = served
        seen = NeighbourMemory.of(tr_vectors, tr_ids, config.as_dict())
        mixed = seen.mix(val_probs, val_vectors)
        self.signals = (doubt(mixed), neighbour_distance(val_vectors, seen.vectors), mixed.argmax(axis=1) == np.asarray(val_ids))

    def rule(self, max_drop: float):
        from ml.out_of_scope import ScopeRule

        doubts, distances, correct = self.signals
        return ScopeRule.from_signals(doubts, distances, correct, max_drop=max_drop)

    def score(self, rule, texts: list[str], labels: np.ndarray) -> dict:
        probs, vectors = self.model.predict(texts)
        abstain = rule.out_of_scope(probs, vectors, self.model.memory.vectors)
        return figures(np.array(self.classes)[probs.argmax(axis=1)] == labels, abstain, labels)


def finetuned(args) -> None:
    """--finetuned: the rule of a fine-tuned version (ml.finetune._scope_rule: read off the
    validation split its fine-tune holds out, no out-of-scope example seen, at ml.out_of_scope's
    FINETUNED_MAX_DROP). That split also chose the epoch, so the budget it allows may not hold on
    new queries: rules with each of --max-drops are read off the same split and scored on validation
    data with out-of-scope queries, never test (CLINC150's val.csv; with banking77 in
    --finetuned-datasets, a fifth of Banking77's training split with 15 of its intents unknown,
    the version fine-tuned on the rest's known intents); the largest budget whose validation drop
    stays within --max-drop on every dataset is scored on test beside the product's."""
    from ml.out_of_scope import FINETUNED_MAX_DROP as PRODUCT

    budgets = sorted({float(x) for x in args.max_drops.split(",")} | {PRODUCT})
    cases, validation, test = [], {}, {}
    for dataset in args.finetuned_datasets.split(","):
        if dataset == "clinc150":
            (train_x, train_y), val, tst = (read(Path(args.clinc) / f"{s}.csv", args.limit) for s in ("train", "val", "test"))
            ins = train_y != OOS
            case = FineTunedCase("CLINC150", [t for t, keep in zip(train_x, ins) if keep], train_y[ins], args)
        elif dataset == "banking77":
            from ml.draws import stable_fraction

            (train_x, train_y), tst = (read(Path(args.banking) / f"{s}.csv", args.limit) for s in ("train", "test"))
            intents = sorted(set(train_y.tolist()))
            unknown = np.random.default_rng(100).choice(intents, size=args.held_out, replace=False).tolist()
            held = np.array([stable_fraction("oos-val", 0, row) < 0.2 for row in range(len(train_y))])
            fit = ~held & ~np.isin(train_y, unknown)
            val = ([t for t, h in zip(train_x, held) if h], np.where(np.isin(train_y[held], unknown), OOS, train_y[held]))
            tst = (tst[0], np.where(np.isin(tst[1], unknown), OOS, tst[1]))
            case = FineTunedCase(f"Banking77, {args.held_out} intents unknown", [t for t, f in zip(train_x, fit) if f],
                                 train_y[fit], args)
        else:
            raise SystemExit(f"--finetuned-datasets: unknown dataset {dataset!r} (clinc150, banking77)")
        if case.result.scope is None:
            print(f"{case.name}: no out-of-scope rule (the validation split was too small to hold out)")
            continue
        product = case.rule(PRODUCT)
        print(f"{case.name}: the product's rule reproduced from the split: "
              f"{'yes' if np.isclose(product.threshold, case.result.scope.threshold) else 'NO'} "
              f"(threshold {product.threshold:.4f} / {case.result.scope.threshold:.4f})")
        cases.append(case)
        validation[case.name] = {d: case.score(case.rule(d), *val) for d in budgets}
        test[case.name] = tst

    header = ("| dataset | labels | budget on its split | scored on | in-scope acc, no abstention | in-scope acc | drop (pts) | "
              "oos recall | oos precision | abstains |\n|---|---:|---:|---|---:|---:|---:|---:|---:|---:|")

    def row(case, budget, where, m) -> str:
        return (f"| {case.name} | {case.labelled:,} | {budget:.4f} | {where} | {m['acc_all']:.3f} | {m['acc']:.3f} | "
                f"{100 * (m['acc_all'] - m['acc']):.2f} | {m['oos_recall']:.3f} | {m['oos_precision']:.3f} | {m['abstain']:.3f} |")

    print("\n" + header)
    for case in cases:
        for d in budgets:
            print(row(case, d, "validation", validation[case.name][d]))
    within = [d for d in budgets if all(v[d]["acc_all"] - v[d]["acc"] <= args.max_drop + 1e-9 for v in validation.values())]
    chosen = max(within) if within else min(budgets)
    print(f"\nchosen on validation: budget {chosen} (the largest whose validation drop is within {args.max_drop} on "
          f"{', '.join(validation) or 'no dataset'}{'' if within else '; none was: the smallest'})")
    print("\n" + header)
    for case in cases:
        for d in sorted({PRODUCT, chosen}):
            where = ", ".join(w for w, budget in (("product", PRODUCT), ("chosen", chosen)) if d == budget)
            print(row(case, d, f"test ({where})", case.score(case.rule(d), *test[case.name])))


def finetuned_with_label(args) -> None:
    """--finetuned --oos-label: a version fine-tuned as the registry fine-tunes one for a project
    with an out-of-scope label: CLINC150's training queries, train's 100 oos ones as a class of
    their own (ml.finetune with oos_class). Its own rule (read off its validation split at
    FINETUNED_MAX_DROP, the class's answers out of scope) is scored on val.csv and on test; "no
    abstention" answers with the best in-scope class, as a version without the label would."""
    from benchmarks._common import fine_tune_progress, registry_fine_tune

    (train_x, train_y), val, tst = (read(Path(args.clinc) / f"{s}.csv", args.limit) for s in ("train", "val", "test"))
    classes = sorted(set(train_y.tolist()))
    oos_class = classes.index(OOS)
    started = time.perf_counter()
    model, result, trained_on, held_out = registry_fine_tune(
        train_x, np.searchsorted(classes, train_y), len(classes), epochs=args.finetune_epochs, threads=args.threads,
        min_validation=args.finetune_min_validation, on_progress=fine_tune_progress(), oos_class=oos_class)
    print(f"CLINC150 with the out-of-scope label: fine-tuned on {trained_on:,} queries of {len(classes)} classes "
          f"({(train_y == OOS).sum()} labelled oos), {held_out:,} held out for early stopping and the rule; "
          f"{len(result.history)} epochs run, best {result.best_epoch}, {time.perf_counter() - started:.0f} s", flush=True)
    rule = result.scope
    if rule is None:
        print("no out-of-scope rule (the validation split was too small to hold out)")
        return
    print(f"its rule: threshold {rule.threshold:.4f}{' (the class alone judges)' if rule.threshold >= 1e11 else ''}")
    memory = rule.in_scope_memory(model.memory.vectors, model.memory.labels)
    print("\n| scored on | in-scope acc, no abstention | in-scope acc | drop (pts) | oos recall | oos precision | abstains |"
          "\n|---|---:|---:|---:|---:|---:|---:|")
    for where, (texts, labels) in (("validation", val), ("test", tst)):
        probs, vectors = model.predict(texts)
        outside = rule.out_of_scope(probs, vectors, memory)
        in_scope_only = probs.copy()
        in_scope_only[:, oos_class] = -1.0
        m = figures(np.array(classes)[in_scope_only.argmax(axis=1)] == labels, outside, labels)
        print(f"| {where} | {m['acc_all']:.3f} | {m['acc']:.3f} | {100 * (m['acc_all'] - m['acc']):.2f} | {m['oos_recall']:.3f} | "
              f"{m['oos_precision']:.3f} | {m['abstain']:.3f} |", flush=True)


def labelled_model(vectors: np.ndarray, labels: np.ndarray, seed: int = 0):
    """A head version with the out-of-scope class OOS among its classes, and the fit the
    out-of-fold rule refits (as models_registry.training._train_head does)."""
    from ml.heads import NeighbourMemory, fit_head

    classes = sorted(set(labels.tolist()))

    def fit(v: np.ndarray, targets: np.ndarray):
        head = fit_head(v, [[classes[t]] for t in targets], classes=classes, c=10.0, seed=seed)
        head.memory = NeighbourMemory.of(v, targets, {})
        return head

    return classes, fit


def label_rows(head, classes: list[str], rule, test_v: np.ndarray, test_y: np.ndarray, baseline_right: np.ndarray,
               subsets: list[np.ndarray]) -> list[dict]:
    """Scores of a version with an out-of-scope class on each subset (a mask) of the test queries;
    `baseline_right`: whether the same labels' version without the class answers each query right
    (its in-scope accuracy with no abstention is what the 2-point budget is measured from)."""
    probs = head.predict_proba(test_v)
    if rule is None:  # too few labels for a rule: the version judges nothing out of scope
        abstain = np.zeros(len(test_v), dtype=bool)
    else:
        abstain = rule.out_of_scope(probs, test_v, rule.in_scope_memory(head.memory.vectors, head.memory.labels))
    right = np.array(classes)[probs.argmax(axis=1)] == test_y
    return [{"signal": "oos_label", **figures(right, abstain, test_y, mask=mask, baseline_right=baseline_right)}
            for mask in subsets]


def with_label(args, vectors: dict, clinc: dict, bank: dict) -> None:
    """The oos_label rows: CLINC150 with its 100 labelled oos queries (threshold on val.csv's in-scope
    queries, and out of fold as a head version reads it, with all and with few in-scope labels), and
    Banking77 with 100 labelled examples of a third of its unknown intents."""
    from ml.out_of_scope import ScopeRule, in_scope_memory, rule_out_of_fold

    def one(seed, tv, ty, test_v, test_y, pick=None, subsets=None) -> list[dict]:
        """The rows of one fitted version, for each subset of the test queries (default: all)."""
        classes, fit = labelled_model(tv, ty, seed)
        targets = np.searchsorted(classes, ty)
        head, oos_class = fit(tv, targets), classes.index(OOS)
        if pick is None:
            rule = rule_out_of_fold(tv, targets, fit, seed=seed, max_drop=args.max_drop, oos_class=oos_class)
        else:
            pv, py = pick
            memory = in_scope_memory(head.memory.vectors, head.memory.labels, oos_class)
            rule = ScopeRule.fit(head.predict_proba(pv), pv, memory, np.searchsorted(classes, py), max_drop=args.max_drop,
                                 oos_class=oos_class)
        inscope = ty != OOS
        baseline_right = Model(tv[inscope], ty[inscope], seed).predict(test_v)[0] == test_y
        return label_rows(head, classes, rule, test_v, test_y, baseline_right,
                          [np.ones(len(test_y), dtype=bool)] if subsets is None else subsets)

    train_y, val_y, test_y = clinc["train"][1], clinc["val"][1], clinc["test"][1]
    tv, test_v = vectors["clinc", "train"], vectors["clinc", "test"]
    vin = val_y != OOS
    oos_rows = np.flatnonzero(train_y == OOS)
    ins_rows = np.flatnonzero(train_y != OOS)
    show_rows("CLINC150", f"{len(ins_rows):,} + {len(oos_rows)} oos", "val.csv in-scope",
             one(0, tv, train_y, test_v, test_y, pick=(vectors["clinc", "val"][vin], val_y[vin])))
    show_rows("CLINC150", f"{len(ins_rows):,} + {len(oos_rows)} oos", "5-fold out-of-fold", one(0, tv, train_y, test_v, test_y))
    for n in [int(x) for x in args.few.split(",") if x]:
        runs = []
        for seed in range(args.seeds):
            pick = np.r_[np.random.default_rng(seed).choice(ins_rows, size=min(n, len(ins_rows)), replace=False), oos_rows]
            runs += one(seed, tv[pick], train_y[pick], test_v, test_y)
        show_rows("CLINC150", f"{n:,} + {len(oos_rows)} oos", "5-fold out-of-fold", runs)

    (_, bank_train_y), (_, bank_test_y) = bank["train"], bank["test"]
    intents = sorted(set(bank_train_y.tolist()))
    runs, unseen_runs = [], []
    for seed in range(args.seeds):
        rng = np.random.default_rng(100 + seed)  # the unknown intents of the rows below, as they draw them
        unknown = rng.choice(intents, size=args.held_out, replace=False).tolist()
        seen = unknown[:max(1, args.held_out // 3)]
        known = ~np.isin(bank_train_y, unknown)
        pool = np.flatnonzero(np.isin(bank_train_y, seen))
        examples = np.random.default_rng(200 + seed).choice(pool, size=min(100, len(pool)), replace=False)
        bv = np.concatenate([vectors["bank", "train"][known], vectors["bank", "train"][examples]])
        by = np.concatenate([bank_train_y[known], np.full(len(examples), OOS)])
        test_labels = np.where(np.isin(bank_test_y, unknown), OOS, bank_test_y)
        every, never = one(seed, bv, by, vectors["bank", "test"], test_labels,
                           subsets=[np.ones(len(test_labels), dtype=bool), ~np.isin(bank_test_y, seen)])
        runs.append(every)
        unseen_runs.append(never)
    show_rows(f"Banking77, {args.held_out} intents unknown", f"{int(known.sum()):,} + {len(examples)} oos of {len(seen)} intents",
             "5-fold out-of-fold", runs)
    show_rows(f"Banking77, the {args.held_out - len(seen)} unknown intents never labelled", f"{int(known.sum()):,} + {len(examples)} oos",
             "5-fold out-of-fold", unseen_runs)


def show_rows(dataset: str, labels: str, where: str, runs: list[dict]) -> None:
    """One table row: one signal's figures, the mean over runs (± the spread of recall)."""
    m = {k: np.mean([r[k] for r in runs]) for k in ("acc_all", "acc", "oos_recall", "oos_precision", "abstain")}
    sd = f" ±{np.std([r['oos_recall'] for r in runs]):.3f}" if len(runs) > 1 else ""
    print(f"| {dataset} | {labels} | {runs[0]['signal']} | {where} | {m['acc_all']:.3f} | {m['acc']:.3f} | {m['oos_recall']:.3f}{sd} | "
          f"{m['oos_precision']:.3f} | {m['abstain']:.3f} |", flush=True)


def main():
    args = parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.finetuned:
        return finetuned_with_label(args) if args.oos_label else finetuned(args)
    from ml.heads import fit_head

    cache = Path(args.cache)
    started = time.perf_counter()
    clinc = {split: read(Path(args.clinc) / f"{split}.csv", args.limit) for split in ("train", "val", "test")}
    bank = {split: read(Path(args.banking) / f"{split}.csv", args.limit) for split in ("train", "test")}
    vectors = {("clinc", s): encoded(x, cache, args.threads) for s, (x, _) in clinc.items()}
    vectors.update({("bank", s): encoded(x, cache, args.threads) for s, (x, _) in bank.items()})
    print(f"CLINC150 {', '.join(f'{s} {len(y):,} ({(y == OOS).sum()} oos)' for s, (_, y) in clinc.items())}; Banking77 "
          f"{', '.join(f'{s} {len(y):,}' for s, (_, y) in bank.items())}, {args.held_out} intents held out per seed; "
          f"vectors ready in {time.perf_counter() - started:.0f} s; max in-scope accuracy drop {args.max_drop}")
    print("\n| dataset | labels | signal | threshold chosen on | in-scope acc, no abstention | in-scope acc | oos recall | "
          "oos precision | abstains |")
    print("|---|---:|---|---|---:|---:|---:|---:|---:|")

    train_y, val_y, test_y = clinc["train"][1], clinc["val"][1], clinc["test"][1]
    ins, vin = train_y != OOS, val_y != OOS
    tv, ty = vectors["clinc", "train"][ins], train_y[ins]
    model = Model(tv, ty)
    val_pred, _, val_scores = model.predict(vectors["clinc", "val"][vin])
    chosen = thresholds(val_scores, val_pred == val_y[vin], args.max_drop)
    show("CLINC150", f"{len(ty):,}", "val.csv in-scope", [evaluate(model, chosen, vectors["clinc", "test"], test_y)])
    show("CLINC150 val (check)", f"{len(ty):,}", "val.csv in-scope", [evaluate(model, chosen, vectors["clinc", "val"], val_y)])
    oos_head = fit_head(vectors["clinc", "train"], [[y] for y in train_y], classes=sorted(set(train_y.tolist())), c=10.0)
    predicted = np.array(oos_head.classes)[oos_head.predict_proba(vectors["clinc", "test"]).argmax(axis=1)]
    right = (predicted == test_y)[test_y != OOS].mean()
    print(f"| CLINC150 | {len(train_y):,} | oos_class | none | {right:.3f} | {right:.3f} | {(predicted == OOS)[test_y == OOS].mean():.3f} | "
          f"{(test_y[predicted == OOS] == OOS).mean():.3f} | {(predicted == OOS).mean():.3f} |")

    for n in [int(x) for x in args.few.split(",") if x]:
        runs = []
        for seed in range(args.seeds):
            pick = np.random.default_rng(seed).choice(len(ty), size=min(n, len(ty)), replace=False)
            sv, sy = tv[pick], ty[pick]
            oof_pred, oof_scores = out_of_fold(sv, sy, seed)
            runs.append(evaluate(Model(sv, sy, seed), thresholds(oof_scores, oof_pred == sy, args.max_drop),
                                 vectors["clinc", "test"], test_y))
        show("CLINC150", f"{n:,}", "5-fold out-of-fold", runs)

    with_label(args, vectors, clinc, bank)
    (_, bank_train_y), (_, bank_test_y) = bank["train"], bank["test"]
    intents = sorted(set(bank_train_y.tolist()))
    runs = []
    for seed in range(args.seeds):
        unknown = set(np.random.default_rng(100 + seed).choice(intents, size=args.held_out, replace=False).tolist())
        known = ~np.isin(bank_train_y, list(unknown))
        bv, by = vectors["bank", "train"][known], bank_train_y[known]
        oof_pred, oof_scores = out_of_fold(bv, by, seed)
        test_labels = np.where(np.isin(bank_test_y, list(unknown)), OOS, bank_test_y)
        runs.append(evaluate(Model(bv, by, seed), thresholds(oof_scores, oof_pred == by, args.max_drop),
                             vectors["bank", "test"], test_labels))
    show(f"Banking77, {args.held_out} intents unknown", f"{int(known.sum()):,}", "5-fold out-of-fold", runs)
    print(f"\n{time.perf_counter() - started:.0f} s in all")


if __name__ == "__main__":
    main()
