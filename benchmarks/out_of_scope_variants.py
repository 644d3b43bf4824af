"""Out-of-scope rule variants, on validation data only: would another weighting of ml.out_of_scope's
two signals, another k for the distance, distances between centred vectors, or the doubt of the head
without its neighbour vote catch more out-of-scope queries within the 2-point budget on both datasets?

Each variant's score is z(doubt) + w · z(distance), standardised and thresholded (2 points of
in-scope accuracy, ml.out_of_scope.threshold_for) on 5-fold out-of-fold scores of the labelled
in-scope queries, as a head version's rule is read (ml.out_of_scope.rule_out_of_fold); the head is
then fitted on all of them and scored on validation data with out-of-scope queries: CLINC150's
val.csv (100 oos queries), and a fifth of Banking77's training split (a stable hash) with 15 intents
unknown (seeds 100-102), the version fitted on the rest's known intents. No test split is read.
Printed per variant: in-scope accuracy drop (points) and out-of-scope recall on each.

Then, for a project with an out-of-scope label (Project.out_of_scope_label), the same validation
data with labelled out-of-scope examples — CLINC150's 100 training oos queries; Banking77: 100
examples of 5 of its 15 unknown intents (recall also on the 10 never labelled) — comparing the class
alone (abstain when it is the answer) and the class or z(doubt) + z(distance) + w · z(log P(class))
over the in-scope classes and examples (w = 0: the rule unchanged; w = 1: ml.out_of_scope with a class).

    .venv/bin/python benchmarks/out_of_scope_variants.py            # ~6 min on 2 cores, vectors cached
    .venv/bin/python benchmarks/out_of_scope_variants.py --limit 1500 --seeds 1   # smoke
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

from benchmarks.out_of_scope import DATASETS, OOS, encoded, read  # noqa: E402

KS = (5, 10, 25, 50)
WEIGHTS = (0.5, 0.75, 1.0, 1.5, 2.0, 3.0)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--limit", type=int, default=0, help="read a sample of this many rows per file (smoke runs)")
    p.add_argument("--seeds", type=int, default=3, help="Banking77: draws of the unknown intents")
    p.add_argument("--cache", default=str(ROOT / "benchmarks" / "out"))
    p.add_argument("--threads", type=int, default=2)
    return p.parse_args()


def signals(tv: np.ndarray, ty: np.ndarray, qv: np.ndarray, classes: list[str]):
    """Every variant's two signals for the queries `qv` from a head fitted on (tv, ty), and the
    head's answers with and without its neighbour vote."""
    from ml.heads import NeighbourMemory, fit_head
    from ml.out_of_scope import neighbour_distance

    head = fit_head(tv, [[y] for y in ty], classes=classes, c=10.0, seed=0)
    plain = head.predict_proba(qv)
    head.memory = NeighbourMemory.of(tv, np.searchsorted(classes, ty), {})
    voted = head.predict_proba(qv)
    out = {"doubt vote": 1 - voted.max(1), "doubt plain": 1 - plain.max(1)}
    centre = tv.mean(axis=0)

    def centred(v):
        return ((v - centre) / np.linalg.norm(v - centre, axis=1, keepdims=True)).astype(np.float32)

    for k in KS:
        out[f"distance k={k}"] = neighbour_distance(qv, head.memory.vectors, k=k)
        out[f"centred distance k={k}"] = neighbour_distance(centred(qv), centred(tv), k=k)
    answers = {"vote": np.array(classes)[voted.argmax(1)], "plain": np.array(classes)[plain.argmax(1)]}
    return out, answers


def out_of_fold(tv: np.ndarray, ty: np.ndarray, classes: list[str], folds: int = 5):
    fold = np.random.default_rng(0).permutation(len(ty)) % folds
    scores, answers = {}, {}
    for f in range(folds):
        train, held = fold != f, fold == f
        s, a = signals(tv[train], ty[train], tv[held], classes)
        for name, v in s.items():
            scores.setdefault(name, np.zeros(len(ty)))[held] = v
        for name, v in a.items():
            answers.setdefault(name, np.empty(len(ty), dtype=object))[held] = v
    return scores, answers


def variants(tv: np.ndarray, ty: np.ndarray, qv: np.ndarray, qy: np.ndarray) -> dict:
    """(doubt, distance, weight): (in-scope drop in points, out-of-scope recall) on the queries."""
    from ml.out_of_scope import threshold_for

    classes = sorted(set(ty.tolist()))
    fold_scores, fold_answers = out_of_fold(tv, ty, classes)
    scores, answers = signals(tv, ty, qv, classes)
    inscope, oos = qy != OOS, qy == OOS
    out = {}
    for doubt in ("vote", "plain"):
        for distance in [name for name in scores if "distance" in name]:
            a, b = fold_scores[f"doubt {doubt}"], fold_scores[distance]
            for w in WEIGHTS:
                z = (a - a.mean()) / a.std() + w * (b - b.mean()) / b.std()
                threshold = threshold_for(z, fold_answers[doubt] == ty, max_drop=0.02)
                qz = (scores[f"doubt {doubt}"] - a.mean()) / a.std() + w * (scores[distance] - b.mean()) / b.std()
                abstain, right = qz > threshold, answers[doubt] == qy
                out[(doubt, distance, w)] = (100 * (right[inscope].mean() - (right & ~abstain)[inscope].mean()),
                                             abstain[oos].mean())
    return out


def main():
    args = parse_args()
    from ml.draws import stable_fraction

    cache, started = Path(args.cache), time.perf_counter()
    clinc = {s: read(DATASETS / "clinc150" / f"{s}.csv", args.limit) for s in ("train", "val")}
    cv = {s: encoded(x, cache, args.threads) for s, (x, _) in clinc.items()}
    train_y = clinc["train"][1]
    ins = train_y != OOS
    results = {"CLINC150 val.csv": variants(cv["train"][ins], train_y[ins], cv["val"], clinc["val"][1])}
    print(f"CLINC150 done, {time.perf_counter() - started:.0f} s", flush=True)
    bx, by = read(DATASETS / "banking77" / "train.csv", args.limit)
    bv = encoded(bx, cache, args.threads)
    held = np.array([stable_fraction("oos-val", 0, row) < 0.2 for row in range(len(by))])
    intents = sorted(set(by.tolist()))
    for seed in range(100, 100 + args.seeds):
        unknown = np.random.default_rng(seed).choice(intents, size=min(15, len(intents) // 5), replace=False).tolist()
        fit = ~held & ~np.isin(by, unknown)
        results[f"Banking77 seed {seed}"] = variants(bv[fit], by[fit], bv[held], np.where(np.isin(by[held], unknown), OOS, by[held]))
        print(f"Banking77 seed {seed} done, {time.perf_counter() - started:.0f} s", flush=True)
    banks = [name for name in results if name.startswith("Banking77")]
    print("\n| doubt | distance | weight | " + " | ".join(f"{n}: drop, recall" for n in results)
          + " | Banking77 mean recall |\n|---|---|---:|" + "---|" * (len(results) + 1))
    for key in results["CLINC150 val.csv"]:
        cells = " | ".join(f"{r[key][0]:.2f}, {r[key][1]:.3f}" for r in results.values())
        print(f"| {key[0]} | {key[1]} | {key[2]} | {cells} | {np.mean([results[n][key][1] for n in banks]):.3f} |")
    print("(the product's rule: doubt vote, distance k=10, weight 1.0)")
    with_label(cv, clinc, bv, by, held, intents, args.seeds)


def label_signals(tv, ty, qv, classes, oos_class):
    """A head (with its neighbour vote) over every class, the class of the out-of-scope label among
    them: for the queries, the doubt over the in-scope classes, the distance to the in-scope
    examples, log P(out-of-scope class), and the answers."""
    from ml.heads import NeighbourMemory, fit_head
    from ml.out_of_scope import in_scope_memory, neighbour_distance

    targets = np.searchsorted(classes, ty)
    head = fit_head(tv, [[y] for y in ty], classes=classes, c=10.0, seed=0)
    head.memory = NeighbourMemory.of(tv, targets, {})
    probs = head.predict_proba(qv)
    return (1 - np.delete(probs, oos_class, axis=1).max(1), neighbour_distance(qv, in_scope_memory(tv, targets, oos_class)),
            np.log(np.clip(probs[:, oos_class], 1e-6, 1.0)), probs.argmax(1))


def label_variants(tv, ty, qv, qy, subsets: dict[str, np.ndarray]) -> dict:
    """Per subset of the queries (a name and a mask), variant: (in-scope drop in points, out-of-scope
    recall); the threshold read out of fold on the in-scope labels, the share the class takes of
    them spent first (as ml.out_of_scope does). Everything is fitted once for all subsets."""
    from ml.heads import NeighbourMemory, fit_head
    from ml.out_of_scope import threshold_for

    classes = sorted(set(ty.tolist()))
    oos_class = classes.index(OOS)
    targets = np.searchsorted(classes, ty)
    fold = np.random.default_rng(0).permutation(len(ty)) % 5
    folds = [np.zeros(len(ty)) for _ in range(3)] + [np.zeros(len(ty), dtype=int)]
    for f in range(5):
        for part, values in zip(folds, label_signals(tv[fold != f], ty[fold != f], tv[fold == f], classes, oos_class)):
            part[fold == f] = values
    query = label_signals(tv, ty, qv, classes, oos_class)
    # The same labels' version without the class: what the budget is measured from.
    known, inscope_labels = sorted(set(ty[ty != OOS].tolist())), ty != OOS
    plain = fit_head(tv[inscope_labels], [[y] for y in ty[inscope_labels]], classes=known, c=10.0, seed=0)
    plain.memory = NeighbourMemory.of(tv[inscope_labels], np.searchsorted(known, ty[inscope_labels]), {})
    plain_right = np.array(known)[plain.predict_proba(qv).argmax(1)] == qy
    right = np.array(classes)[query[3]] == qy

    def z(values, ref):
        return (values - ref.mean()) / ref.std()

    d, n, lg, a = (part[targets != oos_class] for part in folds)
    rest = a != oos_class
    left = max(0.0, 0.02 - (~rest).mean()) * len(a) / max(rest.sum(), 1)
    answered = query[3] == oos_class
    out = {"class alone": answered}
    for w in (0.0, 0.5, 1.0):
        threshold = threshold_for((z(d, d) + z(n, n) + w * z(lg, lg))[rest], (a == targets[targets != oos_class])[rest],
                                  max_drop=left)
        out[f"class or rule, w = {w}"] = answered | (z(query[0], d) + z(query[1], n) + w * z(query[2], lg) > threshold)
    results = {}
    for name, mask in subsets.items():
        inscope, oos = mask & (qy != OOS), mask & (qy == OOS)
        baseline = plain_right[inscope].mean()
        results[name] = {variant: (100 * (baseline - (right & ~abstain)[inscope].mean()), abstain[oos].mean())
                         for variant, abstain in out.items()}
    return results


def with_label(cv, clinc, bv, by, held, intents, seeds) -> None:
    rows = {}
    val_y = clinc["val"][1]
    rows.update(label_variants(cv["train"], clinc["train"][1], cv["val"], val_y,
                               {"CLINC150 val.csv": np.ones(len(val_y), dtype=bool)}))
    for seed in range(100, 100 + seeds):
        rng = np.random.default_rng(seed)
        unknown = rng.choice(intents, size=min(15, len(intents) // 5), replace=False).tolist()
        seen = unknown[:max(1, len(unknown) // 3)]
        fit = ~held & ~np.isin(by, unknown)
        pool = np.flatnonzero(~held & np.isin(by, seen))
        examples = rng.choice(pool, size=min(100, len(pool)), replace=False)
        tv, ty = np.r_[bv[fit], bv[examples]], np.r_[by[fit], np.full(len(examples), OOS)]
        qv, qy = bv[held], np.where(np.isin(by[held], unknown), OOS, by[held])
        rows.update(label_variants(tv, ty, qv, qy, {f"Banking77 seed {seed}": np.ones(len(qy), dtype=bool),
                                                    f"Banking77 seed {seed}, unlabelled intents": ~np.isin(by[held], seen)}))
    print("\nWith an out-of-scope label (drop in points, out-of-scope recall):\n| variant | " + " | ".join(rows) + " |\n|---|"
          + "---|" * len(rows))
    for name in rows["CLINC150 val.csv"]:
        print(f"| {name} | " + " | ".join(f"{r[name][0]:.2f}, {r[name][1]:.3f}" for r in rows.values()) + " |")


if __name__ == "__main__":
    main()
