"""Span labelling on the Broad Twitter Corpus: does the active-learning strategy beat random
order, how good is the fine-tuned token model, and how fast is a refresh?

Simulates an expert who labels every entity of the texts served to them. Features are the
frozen base encoder's per-word vectors (ml.token_model.encode_words), stored once, as the
product would store them; every `--batch` texts the word head is refit on all labels so far and
the pool re-ranked (sequence uncertainty, then a diverse batch on the sentence vectors), as the
product's loop does. Entity F1 (strict, ml.spans.entity_f1) on the test split is printed against
texts labelled and against tokens (words) labelled, per strategy, averaged over seeds.

Then: the fine-tuned token-classification model on all training texts (validated on dev; P, R,
F1 per type on test), and a timed refresh over a `--refresh-pool` pool (training texts tiled).

    .venv/bin/python benchmarks/span_active_learning.py                  # full run (slow: fine-tune)
    .venv/bin/python benchmarks/span_active_learning.py --finetune-epochs 0 --seeds 1   # loop only
    .venv/bin/python benchmarks/span_active_learning.py --limit-train 300 --limit-test 100 --budget 100 \
        --seed-size 20 --batch 20 --eval-every 40 --seeds 1 --refresh-pool 1000 --finetune-max-steps 2  # smoke
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))
DATASET = ROOT / "datasets" / "btc"
LABELS = ["PER", "ORG", "LOC"]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default=str(DATASET), help="a folder with btc.train/dev/test.conll")
    p.add_argument("--strategies", default="random,margin_mean",
                   help="random, or <margin|entropy|entity>_<mean|max|sum|root>: a word uncertainty and its "
                        "reduction over the text (ml.token_model.sequence_uncertainty)")
    p.add_argument("--nodiversity", action="store_true", help="rank by uncertainty alone, no diverse batch")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--seed-size", type=int, default=50, help="random texts before the strategy takes over")
    p.add_argument("--batch", type=int, default=50, help="texts between refits (the project's refresh_every)")
    p.add_argument("--budget", type=int, default=1000)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--head-c", type=float, default=0.3, help="inverse regularisation of the word head")
    p.add_argument("--o-weight", type=float, default=0.5, help="weight of O words in the word head's fit")
    p.add_argument("--casing-weight", type=float, default=None,
                   help="weight of the word head's casing columns (default: the product's "
                        "ml.token_model.CASING_WEIGHT; 0: no casing columns, the head before them)")
    p.add_argument("--eval-split", default="test", choices=["dev", "test"],
                   help="where the curves are measured: choose settings on dev, report test")
    p.add_argument("--skip-full-head", action="store_true", help="no word head on all training texts after the curves")
    p.add_argument("--limit-train", type=int, default=0)
    p.add_argument("--limit-test", type=int, default=0)
    p.add_argument("--cache", default=str(ROOT / "benchmarks" / "out"), help="folder for the stored word vectors")
    p.add_argument("--refresh-pool", type=int, default=20_000, help="pool of the timed refresh (0: skip)")
    p.add_argument("--refresh-labelled", type=int, default=1000, help="labelled texts the timed refresh refits on")
    p.add_argument("--finetune-epochs", type=int, default=5, help="0: skip the fine-tune")
    p.add_argument("--finetune-mode", default="first", choices=["first", "all"])
    p.add_argument("--finetune-lr", type=float, default=5e-5)
    p.add_argument("--no-probe-start", action="store_true")
    p.add_argument("--no-repair", action="store_true")
    p.add_argument("--finetune-limit", type=int, default=0, help="fine-tune on the first N training texts only")
    p.add_argument("--finetune-max-steps", type=int, default=0, help="stop after N steps (timing estimates, smoke)")
    p.add_argument("--finetune-time-limit", type=float, default=3600.0)
    p.add_argument("--threads", type=int, default=2, help="torch threads (the machine is shared)")
    return p.parse_args()


def word_vectors(encoder, texts, cache_dir: Path, name: str):
    """The stored form: float16 per-word vectors, cached on disk by encoder and texts."""
    from ml import token_model as tm

    key = hashlib.sha256((encoder.version + "\x00" + "\x00".join(texts)).encode()).hexdigest()[:12]
    path = cache_dir / f"btc_{name}_{key}.npz"
    if path.exists():
        data = np.load(path)
        return tm.WordVectors(data["vectors"], data["starts"], data["sentences"]), 0.0
    started = time.perf_counter()
    vectors = tm.encode_words(encoder, texts)
    seconds = time.perf_counter() - started
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.savez(path, vectors=vectors.vectors, starts=vectors.starts, sentences=vectors.sentences)
    return vectors, seconds


def rows_of(casings, rows):
    """The casing rows of the given word rows (None: the head reads no casing)."""
    return None if casings is None else casings[rows]


def simulate(strategy, seed, args, train, train_wv, train_tags, test, test_wv, tag_names, train_cas, test_cas):
    """One run: [(texts, tokens, f1)] at every eval point."""
    from ml import strategies as st
    from ml import token_model as tm
    from ml.spans import entity_f1

    rng = np.random.default_rng(seed)
    n = len(train)
    budget = min(args.budget, n)
    labelled = list(rng.choice(n, min(args.seed_size, budget), replace=False))
    words = np.diff(train_wv.starts)
    curve, next_eval = [], args.eval_every
    gold_test = [s for _, s in test]
    test_texts = [t for t, _ in test]
    while True:
        evaluate = len(labelled) >= next_eval or len(labelled) >= budget
        if strategy == "random" and not evaluate:  # random order needs no head between evaluations
            take = min(args.batch, budget - len(labelled))
            labelled += [int(i) for i in rng.choice(np.setdiff1d(np.arange(n), labelled), take, replace=False)]
            continue
        rows = train_wv.rows(labelled)
        head = tm.fit_word_head(train_wv.vectors[rows], [train_tags[r] for r in rows], tag_names,
                                casings=rows_of(train_cas, rows), c=args.head_c,
                                o_weight=args.o_weight, seed=seed)
        if evaluate:
            pred = tm.predict_spans(tm.head_probs(head, test_wv.vectors, test_cas), test_wv.starts, test_texts, tag_names)
            curve.append((len(labelled), int(words[labelled].sum()), entity_f1(gold_test, pred)))
            print(f"    {strategy} seed {seed}: {curve[-1][0]} texts, {curve[-1][1]:,} tokens, F1 {curve[-1][2]:.3f}", flush=True)
            next_eval += args.eval_every
        if len(labelled) >= budget:
            return curve
        take = min(args.batch, budget - len(labelled))
        pool = np.setdiff1d(np.arange(n), labelled)
        if strategy == "random":
            chosen = rng.choice(pool, take, replace=False)
        else:
            word, reduce = strategy.split("_", 1)
            pool_rows = train_wv.rows(pool)
            starts = np.concatenate([[0], np.cumsum(words[pool])])
            scores = tm.sequence_uncertainty(tm.head_probs(head, train_wv.vectors[pool_rows], rows_of(train_cas, pool_rows)),
                                             starts, reduce=reduce,
                                             word=word)
            if args.nodiversity:
                chosen = pool[np.argsort(-scores, kind="stable")[:take]]
            else:
                chosen = pool[st.diverse_batch(scores, train_wv.sentences[pool], batch_size=take, seed=seed)[:take]]
        labelled += [int(i) for i in chosen]


def active_learning(args, train, train_wv, test, test_wv, tag_names, train_cas, test_cas):
    from ml import token_model as tm

    train_tags = tm.gold_word_tags([t for t, _ in train], [s for _, s in train])
    strategies = args.strategies.split(",")
    curves = {}
    for strategy in strategies:
        runs = []
        for seed in range(args.seeds):
            started = time.perf_counter()
            runs.append(simulate(strategy, seed, args, train, train_wv, train_tags, test, test_wv, tag_names,
                                 train_cas, test_cas))
            print(f"  {strategy:<12} seed {seed}: F1 {runs[-1][-1][2]:.3f} at {runs[-1][-1][0]} texts "
                  f"({time.perf_counter() - started:.0f} s)", flush=True)
        points = min(len(r) for r in runs)
        curves[strategy] = [(runs[0][i][0], float(np.mean([r[i][1] for r in runs])), float(np.mean([r[i][2] for r in runs])),
                             float(np.std([r[i][2] for r in runs]))) for i in range(points)]
    print(f"\nentity F1 (strict) on {args.eval_split} against texts labelled, mean over {args.seeds} seed(s) [tokens labelled]")
    print("texts  " + "".join(f"{s:>26}" for s in strategies))
    for i in range(len(curves[strategies[0]])):
        row = f"{curves[strategies[0]][i][0]:>5}  "
        for s in strategies:
            texts, tokens, f1, sd = curves[s][i]
            row += f"{f1:>10.3f} ±{sd:.3f} [{tokens:>7,.0f}]"
        print(row)
    if "random" in curves:
        _, random_tokens, target, _ = curves["random"][-1]
        print(f"\nrandom at {curves['random'][-1][0]} texts: F1 {target:.3f} with {random_tokens:,.0f} tokens")
        for s in strategies:
            if s == "random":
                continue
            reached = next(((t, k, f) for t, k, f, _ in curves[s] if f >= target), None)
            if reached:
                print(f"labels to reach random@budget  {s:<12}: {reached[0]} texts, {reached[1]:,.0f} tokens "
                      f"(F1 {reached[2]:.3f}; {reached[1] / random_tokens:.0%} of random's tokens)")
            else:
                print(f"labels to reach random@budget  {s:<12}: not reached within {curves[s][-1][0]} texts "
                      f"(best F1 {max(f for _, _, f, _ in curves[s]):.3f})")
    return curves


def finetune(args, train, dev, test, tag_names):
    from ml import token_finetune as tf
    from ml.encoder import default_model_path

    data = train[:args.finetune_limit] if args.finetune_limit else train
    config = tf.TokenFineTuneConfig(epochs=args.finetune_epochs, mode=args.finetune_mode, encoder_lr=args.finetune_lr,
                                    probe_start=not args.no_probe_start, repair=not args.no_repair,
                                    max_steps=args.finetune_max_steps, time_limit_s=args.finetune_time_limit,
                                    threads=args.threads)
    tagger = tf.load_base(default_model_path(), tag_names, mode=config.mode)
    print(f"\nfine-tune on {len(data):,} training texts, validated on {len(dev):,} dev texts: {config.as_dict()}", flush=True)
    last = [0.0]

    def progress(p):
        if "val_f1" in p or time.perf_counter() - last[0] > 60:
            last[0] = time.perf_counter()
            print(f"  {p}", flush=True)

    result = tf.fine_tune(tagger, data, dev, config=config, on_progress=progress)
    scores = tf.evaluate(tagger, [t for t, _ in test], [s for _, s in test])
    print(f"fine-tuned ({result.stopped}, best epoch {result.best_epoch}, {result.seconds:.0f} s, "
          f"{result.seconds_per_step:.2f} s/step): test entity F1 {scores['micro']['f1']:.3f} "
          f"P {scores['micro']['precision']:.3f} R {scores['micro']['recall']:.3f}")
    for label, s in scores["per_label"].items():
        print(f"  {label:<4} F1 {s['f1']:.3f}  P {s['precision']:.3f}  R {s['recall']:.3f}  support {s['support']}")
    return scores


def timed_refresh(args, train, train_wv, tag_names, train_cas):
    """A refresh as the product would run it over a pool of `--refresh-pool` texts whose word
    vectors are stored: refit the head on the labelled texts, score every pool word, reduce to a
    score per text, pick a diverse batch."""
    from ml import strategies as st
    from ml import token_model as tm

    n = len(train)
    tiles = -(-args.refresh_pool // n)
    index = np.tile(np.arange(n), tiles)[:args.refresh_pool]
    words = np.diff(train_wv.starts)[index]
    pool = tm.WordVectors(train_wv.vectors[train_wv.rows(index)], np.concatenate([[0], np.cumsum(words)]),
                          train_wv.sentences[index].astype(np.float16))
    pool_cas = rows_of(train_cas, train_wv.rows(index))
    tags = tm.gold_word_tags([train[i][0] for i in index[:args.refresh_labelled]],
                             [train[i][1] for i in index[:args.refresh_labelled]])
    print(f"\nstored form of a {args.refresh_pool:,}-text pool ({int(pool.starts[-1]):,} words): float16 word vectors "
          f"{pool.vectors.nbytes / 2**20:.0f} MiB + sentence vectors {pool.sentences.nbytes / 2**20:.0f} MiB "
          f"(float32 would be {2 * pool.nbytes / 2**20:.0f} MiB)")
    timings = []
    for _ in range(2):
        started = time.perf_counter()
        rows = pool.rows(range(args.refresh_labelled))
        head = tm.fit_word_head(pool.vectors[rows], tags, tag_names, casings=rows_of(pool_cas, rows), c=args.head_c,
                                o_weight=args.o_weight)
        fitted = time.perf_counter()
        scores = tm.sequence_uncertainty(tm.head_probs(head, pool.vectors, pool_cas), pool.starts, reduce=tm.QUEUE_REDUCE)
        scored = time.perf_counter()
        batch = st.diverse_batch(scores, pool.sentences.astype(np.float32), batch_size=args.batch)
        done = time.perf_counter()
        timings.append((done - started, fitted - started, scored - fitted, done - scored))
    total, fit, score, diverse = min(timings)
    print(f"fast refresh over {args.refresh_pool:,} texts ({args.refresh_labelled:,} labelled): {total:.1f} s "
          f"(fit {fit:.1f} s, score {score:.1f} s, diverse batch of {len(batch)} {diverse:.1f} s; target <= 10 s)")
    return total


def main():
    args = parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from ml import token_model as tm
    from ml.encoder import Encoder
    from ml.spans import read_conll_file

    dataset = Path(args.dataset)
    train = read_conll_file(dataset / "btc.train.conll", limit=args.limit_train)
    dev = read_conll_file(dataset / "btc.dev.conll", limit=args.limit_test)
    test = read_conll_file(dataset / "btc.test.conll", limit=args.limit_test)
    tag_names = tm.tag_set(LABELS)
    print(f"BTC: {len(train):,} train, {len(dev):,} dev, {len(test):,} test texts; torch threads {args.threads}")
    needs_vectors = args.seeds > 0 or args.refresh_pool > 0
    train_cas = test_cas = None  # each word's casing row, for the word head (ml.token_model.casing_features)
    if needs_vectors:
        encoder = Encoder(threads=args.threads)
        cache = Path(args.cache)
        train_wv, s1 = word_vectors(encoder, [t for t, _ in train], cache, "train")
        if args.eval_split == "dev":
            test = dev
        test_wv, s2 = word_vectors(encoder, [t for t, _ in test], cache, args.eval_split)
        if args.casing_weight is not None:
            tm.CASING_WEIGHT = args.casing_weight
        if tm.CASING_WEIGHT:
            train_cas, test_cas = tm.casing_features([t for t, _ in train]), tm.casing_features([t for t, _ in test])
        if s1:
            print(f"encoded {len(train):,} training texts' words in {s1:.0f} s ({len(train) / s1:.0f} texts/s)")
        print(f"stored per-word vectors: {int(train_wv.starts[-1]):,} training words, float16, "
              f"{train_wv.vectors.nbytes / 2**20:.1f} MiB")
    if args.seeds > 0:
        print(f"\nactive learning: seed {args.seed_size} random texts, refit every {args.batch}, budget {args.budget}, "
              f"{'no diversity' if args.nodiversity else 'diverse batches'}", flush=True)
        active_learning(args, train, train_wv, test, test_wv, tag_names, train_cas, test_cas)
    if args.seeds > 0 and not args.skip_full_head:
        rows = train_wv.rows(range(len(train)))
        head = tm.fit_word_head(train_wv.vectors[rows], tm.gold_word_tags([t for t, _ in train], [s for _, s in train]),
                                tag_names, casings=rows_of(train_cas, rows), c=args.head_c, o_weight=args.o_weight)
        from ml.spans import entity_scores

        pred = tm.predict_spans(tm.head_probs(head, test_wv.vectors, test_cas), test_wv.starts, [t for t, _ in test], tag_names)
        micro = entity_scores([s for _, s in test], pred)["micro"]
        print(f"word head on all {len(train):,} training texts: {args.eval_split} F1 {micro['f1']:.3f} "
              f"P {micro['precision']:.3f} R {micro['recall']:.3f}")
    if args.refresh_pool > 0:
        timed_refresh(args, train, train_wv, tag_names, train_cas)
    if args.finetune_epochs > 0:
        finetune(args, train, dev, test, tag_names)


if __name__ == "__main__":
    main()
