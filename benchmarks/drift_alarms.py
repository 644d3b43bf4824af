"""Drift alarms that do not cry wolf: how often does monitoring raise a drift alert on in-domain
traffic (false alarms), and how often on traffic from elsewhere (detections)?

A project serves half the intents of Banking77 or of CLINC150 (drawn once); its
pool is their training queries. A head version (logistic regression on frozen all-MiniLM-L6-v2
vectors, C = 10) is trained on 50, 200 and 1,000 labels chosen by active learning (cold start,
then margin uncertainty, the product's default), so its labelled set is skewed as a product's is.
The drift reference is the product's (models_registry.drift_reference, ml.drift.reference_build):
1,000 pool items drawn at random, the version's predictions on them, the vocabulary of the
training texts and half the sample, the OOV baseline on the other half less the labelled items.

Traffic is replayed in windows of 50 and 200 queries (one monitoring check each):
- in-domain: unseen queries of the project's intents;
- other-intents: the dataset's other intents;
- out-of-scope: CLINC150's `oos` queries;
- other-dataset: the other intent dataset's queries (CLINC150 for Banking77 and back);
- tweets: Broad Twitter Corpus tweets.
An alarm is a figure over both its threshold and its critical value (ml.drift: what a window of
that size from the reference's own domain exceeds by chance 1 % of the time). Printed per figure
and for any of them: the false-alarm rate on in-domain windows and the detection rate per shift.
Targets: false alarms <= 5 % of checks, detection of another domain (other-dataset, tweets) >= 95 %.

`--split tune` replays held-out training queries (Banking77: a fifth of the project's training
queries kept out of the pool; CLINC150: val.csv) and the other sets' train/val/dev texts: the
thresholds were chosen there. `--split test` (the default) replays the test splits only.

    .venv/bin/python benchmarks/drift_alarms.py                          # full run (vectors cached in benchmarks/out)
    .venv/bin/python benchmarks/drift_alarms.py --split tune
    .venv/bin/python benchmarks/drift_alarms.py --seeds 1 --windows 10 --labels 50   # smoke
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))
DATASETS = ROOT / "datasets"
from benchmarks.out_of_scope import encoded, read as read_csv  # noqa: E402  (the same reading and vector cache)
OOS = "oos"
FIGURES = ("prediction_js", "oov_rate_increase", "domain_auc")
SHIFTS = ("other-intents", "out-of-scope", "other-dataset", "tweets")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--split", choices=("test", "tune"), default="test")
    p.add_argument("--datasets", default="banking77,clinc150")
    p.add_argument("--labels", default="50,200,1000", help="actively chosen labels per version")
    p.add_argument("--sizes", default="50,200", help="predictions per monitoring window")
    p.add_argument("--windows", type=int, default=40, help="windows per traffic kind, size and seed")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--thresholds", default="", help="overrides, e.g. domain_auc=0.7,oov_rate_increase=0.05")
    p.add_argument("--pool", type=int, default=2000, help="pool queries of the project (drawn once)")
    p.add_argument("--traffic", type=int, default=600, help="queries per traffic kind (drawn once)")
    p.add_argument("--limit", type=int, default=0, help="read a sample of this many rows per file (smoke runs)")
    p.add_argument("--cache", default=str(ROOT / "benchmarks" / "out"), help="where encoded vectors are kept")
    p.add_argument("--threads", type=int, default=2)
    return p.parse_args()


def read_tweets(path: Path, limit: int) -> list[str]:
    from ml.spans import read_conll_file

    return [text for text, _ in read_conll_file(path, limit=limit)]


class Texts:
    """Texts with their labels (and, once `encode`d, their vectors); `take(mask)` keeps some."""

    def __init__(self, texts, labels, vectors=None):
        self.texts, self.labels, self.vectors = list(texts), np.asarray(labels), vectors

    def take(self, mask, cap: int = 0, seed: int = 0) -> "Texts":
        """The rows of `mask` (booleans or indices); at most `cap` of them, drawn at random."""
        index = np.flatnonzero(mask) if np.asarray(mask).dtype == bool else np.asarray(mask)
        if cap and len(index) > cap:
            index = np.sort(np.random.default_rng(seed).choice(index, cap, replace=False))
        return Texts([self.texts[i] for i in index], self.labels[index],
                     None if self.vectors is None else self.vectors[index])

    def encode(self, args) -> "Texts":
        self.vectors = encoded(self.texts, Path(args.cache), args.threads)
        return self

    def __len__(self):
        return len(self.texts)


def load(args) -> dict:
    data = {}
    for name, splits in (("banking77", ("train", "test")), ("clinc150", ("train", "val", "test"))):
        for split in splits:
            data[name, split] = Texts(*read_csv(DATASETS / name / f"{split}.csv", args.limit))
    for split in ("dev", "test"):
        texts = read_tweets(DATASETS / "btc" / f"btc.{split}.conll", args.limit)
        data["btc", split] = Texts(texts, ["tweet"] * len(texts))
    return data


def project_intents(data: dict, dataset: str) -> list[str]:
    """Half the dataset's intents, drawn once (seed 0): the project's labels."""
    intents = sorted(set(data[dataset, "train"].labels.tolist()) - {OOS})
    return sorted(np.random.default_rng(0).choice(intents, len(intents) // 2, replace=False).tolist())


def traffic_for(args, data: dict, dataset: str, intents: list[str]) -> tuple[Texts, dict[str, Texts]]:
    """(pool, {traffic kind: texts}) for a project serving `intents` of `dataset`, encoded; each set
    at most --pool or --traffic texts (drawn once), so that the vectors are few and cached."""
    other = "clinc150" if dataset == "banking77" else "banking77"
    cap = args.traffic
    train = data[dataset, "train"]
    mine = np.isin(train.labels, intents)
    clinc_train, clinc_val, clinc_test = data["clinc150", "train"], data["clinc150", "val"], data["clinc150", "test"]
    if dataset == "banking77":  # no validation split: a fifth of the project's training queries is held out
        held = mine & (np.random.default_rng(1000).random(len(train)) < 0.2)
        pool, tune_in, tune_other = train.take(mine & ~held, args.pool), train.take(held, cap), train.take(~mine, cap)
    else:
        val = data[dataset, "val"]
        pool = train.take(mine, args.pool)
        tune_in = val.take(np.isin(val.labels, intents), cap)
        tune_other = val.take(~np.isin(val.labels, intents) & (val.labels != OOS), cap)
    if args.split == "tune":
        other_texts = data[other, "train"] if other == "banking77" else clinc_val
        kinds = {"in-domain": tune_in, "other-intents": tune_other,
                 "out-of-scope": (clinc_val if dataset == "banking77" else clinc_train).take(
                     (clinc_val if dataset == "banking77" else clinc_train).labels == OOS, cap),
                 "other-dataset": other_texts.take(other_texts.labels != OOS, cap), "tweets": data["btc", "dev"].take(np.arange(len(data["btc", "dev"])), cap)}
    else:
        test, other_test = data[dataset, "test"], data[other, "test"]
        kinds = {"in-domain": test.take(np.isin(test.labels, intents), cap),
                 "other-intents": test.take(~np.isin(test.labels, intents) & (test.labels != OOS), cap),
                 "out-of-scope": clinc_test.take(clinc_test.labels == OOS, cap),
                 "other-dataset": other_test.take(other_test.labels != OOS, cap),
                 "tweets": data["btc", "test"].take(np.arange(len(data["btc", "test"])), cap)}
    for texts in (pool, *kinds.values()):
        texts.encode(args)
    return pool, kinds


def actively_labelled(pool: Texts, classes: list[str], budgets: list[int], seed: int) -> dict[int, np.ndarray]:
    """Pool indices labelled at each budget: a cold-start batch of 10, then the most uncertain
    (margin) items in batches of a tenth of the labels so far (at least 10), as a refresh would."""
    from ml.heads import fit_head
    from ml.strategies import MARGIN, cold_start, uncertainty

    chosen = list(np.argsort(-cold_start(pool.vectors, batch_size=10, seed=seed), kind="stable")[:10])
    out = {}
    while len(chosen) < max(budgets):
        head = fit_head(pool.vectors[chosen], [[pool.labels[i]] for i in chosen], classes=classes, seed=seed)
        scores = uncertainty(head.predict_proba(pool.vectors), MARGIN)
        scores[chosen] = -np.inf
        batch = min(max(10, len(chosen) // 10), max(budgets) - len(chosen))
        chosen += list(np.argsort(-scores, kind="stable")[:batch])
        for budget in budgets:
            if budget not in out and len(chosen) >= budget:
                out[budget] = np.array(chosen[:budget])
    return out


def alarm(figure: str, value, critical: dict, thresholds: dict) -> bool:
    """What feedback.monitoring.alerts_check decides for a drift figure."""
    return value is not None and value > thresholds[figure] and value > critical.get(figure, -np.inf)


def main() -> None:
    args = parse_args()
    import os

    from ml import drift
    from ml.heads import fit_head

    thresholds = dict(drift.THRESHOLDS)
    for pair in filter(None, args.thresholds.split(",")):
        name, value = pair.split("=")
        thresholds[name] = float(value)
    budgets = [int(b) for b in args.labels.split(",")]
    sizes = [int(n) for n in args.sizes.split(",")]
    started = time.perf_counter()
    data = load(args)
    print(f"split {args.split}; thresholds {thresholds}; alpha {drift.ALPHA}; {args.seeds} seeds, {args.windows} "
          f"windows per traffic kind and size; load average {os.getloadavg()[0]:.2f}", flush=True)
    counts = defaultdict(lambda: [0, 0])  # (dataset, budget, kind, size, figure) -> [alarms, checks]
    values = defaultdict(list)  # (dataset, kind, size, figure) -> (value, critical) of each check
    for dataset in args.datasets.split(","):
        classes = project_intents(data, dataset)
        pool, kinds = traffic_for(args, data, dataset, classes)
        for seed in range(args.seeds):
            rng = np.random.default_rng(seed)
            labelled = actively_labelled(pool, classes, budgets, seed)
            sample = np.sort(rng.choice(len(pool), min(1000, len(pool)), replace=False))
            windows = {(kind, size): [rng.choice(len(texts), min(size, len(texts)), replace=False) for _ in range(args.windows)]
                       for kind, texts in kinds.items() for size in sizes}
            aucs = {}  # the domain classifier does not depend on the version
            for (kind, size), chosen in windows.items():
                for w, index in enumerate(chosen):
                    live = kinds[kind].vectors[index]
                    aucs[kind, size, w] = (drift.domain_classifier_auc(pool.vectors[sample], live),
                                           drift.auc_critical(len(sample), len(live)))
            for budget in budgets:
                chosen_items = labelled[budget]
                head = fit_head(pool.vectors[chosen_items], [[pool.labels[i]] for i in chosen_items], classes=classes, seed=seed)
                predicted = lambda vectors: [[head.classes[k]] for k in head.predict_proba(vectors).argmax(axis=1)]  # noqa: E731
                reference = drift.reference_build(
                    texts=[pool.texts[i] for i in sample], trained=np.isin(sample, chosen_items).tolist(),
                    labels=predicted(pool.vectors[sample]), embeddings=None,
                    training_texts=[pool.texts[i] for i in chosen_items])
                for (kind, size), chosen in windows.items():
                    texts = kinds[kind]
                    for w, index in enumerate(chosen):
                        figures = reference.compare([texts.texts[i] for i in index], None, predicted(texts.vectors[index]),
                                                    seed=w)
                        figures["domain_auc"], figures["critical"]["domain_auc"] = aucs[kind, size, w]
                        fired = False
                        for figure in FIGURES:
                            hit = alarm(figure, figures[figure], figures["critical"], thresholds)
                            fired |= hit
                            counts[dataset, budget, kind, size, figure][0] += hit
                            counts[dataset, budget, kind, size, figure][1] += 1
                            values[dataset, kind, size, figure].append((figures[figure], figures["critical"].get(figure)))
                        counts[dataset, budget, kind, size, "any"][0] += fired
                        counts[dataset, budget, kind, size, "any"][1] += 1
            print(f"{dataset} seed {seed}: {len(classes)} intents, pool {len(pool)}, reference {len(sample)} "
                  f"({time.perf_counter() - started:.0f} s)", flush=True)
    report(args, counts, values, budgets, sizes)
    print(f"\n{time.perf_counter() - started:.0f} s; load average {os.getloadavg()[0]:.2f}")


def report(args, counts, values, budgets, sizes) -> None:
    columns = ("prediction_js", "oov_rate_increase", "domain_auc", "any")
    print("\nAlarm rate (% of checks): false alarms on in-domain traffic, detections on the shifts")
    print(f"{'dataset':10} {'labels':>6} {'window':>6} {'traffic':14} " + " ".join(f"{c:>17}" for c in columns))
    for dataset in args.datasets.split(","):
        for budget in budgets:
            for size in sizes:
                for kind in ("in-domain", *SHIFTS):
                    cells = []
                    for figure in columns:
                        hits, n = counts[dataset, budget, kind, size, figure]
                        cells.append(f"{100 * hits / max(n, 1):16.1f}%")
                    print(f"{dataset:10} {budget:6d} {size:6d} {kind:14} " + " ".join(cells))
    print("\nMedian figure (and median critical value) over all versions' checks")
    print(f"{'dataset':10} {'window':>6} {'traffic':14} " + " ".join(f"{c:>19}" for c in FIGURES))
    for dataset in args.datasets.split(","):
        for size in sizes:
            for kind in ("in-domain", *SHIFTS):
                cells = []
                for figure in FIGURES:
                    pairs = [(v, c) for v, c in values[dataset, kind, size, figure] if v is not None]
                    if pairs:
                        cells.append(f"{np.median([v for v, _ in pairs]):8.3f} ({np.median([c for _, c in pairs if c is not None]):7.3f})")
                    else:
                        cells.append(f"{'-':>19}")
                print(f"{dataset:10} {size:6d} {kind:14} " + " ".join(cells))
    print("\nSummary over datasets, versions and window sizes")
    for figure in columns:
        fa = [counts[k] for k in counts if k[2] == "in-domain" and k[4] == figure]
        line = f"  {figure:18} false alarms {100 * sum(h for h, _ in fa) / max(sum(n for _, n in fa), 1):5.1f}%"
        for kind in SHIFTS:
            hit = [counts[k] for k in counts if k[2] == kind and k[4] == figure]
            line += f"  {kind} {100 * sum(h for h, _ in hit) / max(sum(n for _, n in hit), 1):5.1f}%"
        print(line)


if __name__ == "__main__":
    main()
