"""Choosing the token fine-tune's recipe on btc.dev (never on test), then scoring the chosen one.

`run`: one fine-tune (ml.token_finetune) on the BTC training texts with the given settings; after
every epoch the dev split's per-word tag probabilities are stored, for that epoch's weights and
for the mean of its weights and the previous epoch's (checkpoint averaging), together with the
weights themselves. `choose`: over every stored run, epoch, averaging and decoding O scale, the
dev entity F1 (strict); prints the table and the best. `test`: the test split's P / R / F1 of
one stored checkpoint with one O scale, once the recipe is chosen. `knn`: for one stored
checkpoint, a vote of the nearest training sub-tokens (their tags; kNN-NER, Wang et al. 2022, the
token form of the classification versions' neighbour vote) mixed into its tag probabilities, dev
entity F1 over a grid of neighbours, temperature and weight (with --split test: one setting, once).

    .venv/bin/python benchmarks/span_finetune_dev.py run --name lr3e5_o05 --lr 3e-5 --epochs 3 --o-weight 0.5
    .venv/bin/python benchmarks/span_finetune_dev.py choose
    .venv/bin/python benchmarks/span_finetune_dev.py test --name lr3e5_o05 --epoch 3 --average --o-scale 0.5
    .venv/bin/python benchmarks/span_finetune_dev.py run --name small500 --limit-random 500 ... --test-o-scale 0.5
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))
DATASET = ROOT / "datasets" / "btc"
LABELS = ["PER", "ORG", "LOC"]
O_SCALES = (1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=["run", "choose", "test", "knn", "soup"])
    p.add_argument("--name", default="")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "span_finetune"))
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--mode", default="first", choices=["first", "all"])
    p.add_argument("--o-weight", type=float, default=1.0)
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--warmup", type=float, default=0.1)
    p.add_argument("--no-probe-start", action="store_true")
    p.add_argument("--casing", action="store_true", help="token types carry each word's casing")
    p.add_argument("--seed", type=int, default=0, help="run: the fine-tune's seed (data order, dropout)")
    p.add_argument("--names", default="", help="soup: the runs whose checkpoints are averaged, comma-separated")
    p.add_argument("--limit-random", type=int, default=0, help="train on N random training texts (seed 0)")
    p.add_argument("--limit-eval", type=int, default=0, help="only the first N dev and test texts (smoke runs)")
    p.add_argument("--epoch", type=int, default=0)
    p.add_argument("--average", action="store_true")
    p.add_argument("--o-scale", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--split", default="dev", choices=["dev", "test"], help="knn: dev (the grid) or test (one setting)")
    p.add_argument("--knn-k", type=int, default=16)
    p.add_argument("--knn-temperature", type=float, default=0.05)
    p.add_argument("--knn-weight", type=float, default=0.4)
    return p.parse_args()


def data(args):
    from ml.spans import read_conll_file

    return [read_conll_file(DATASET / f"btc.{split}.conll", limit=0 if split == "train" else args.limit_eval)
            for split in ("train", "dev", "test")]


def scores_for(tag_names, texts, gold, probs, o_scale):
    from ml import token_model as tm
    from ml.spans import entity_scores

    pred = [tm.decode(p, tm.words_of(t), tag_names, text=t, o_scale=o_scale) for p, t in zip(probs, tm.clip_texts(texts))]
    return entity_scores(gold, pred)


def run(args):
    import torch

    from ml import token_finetune as tf
    from ml import token_model as tm
    from ml.encoder import default_model_path

    torch.set_num_threads(args.threads)
    train, dev, test = data(args)
    if args.limit_random:
        pick = np.random.default_rng(0).choice(len(train), args.limit_random, replace=False)
        train = [train[i] for i in sorted(pick)]
    tag_names = tm.tag_set(LABELS)
    out = Path(args.out) / args.name
    out.mkdir(parents=True, exist_ok=True)
    config = tf.TokenFineTuneConfig(epochs=args.epochs, encoder_lr=args.lr, mode=args.mode, o_weight=args.o_weight,
                                    label_smoothing=args.label_smoothing, warmup_ratio=args.warmup,
                                    probe_start=not args.no_probe_start, casing=args.casing, threads=args.threads,
                                    seed=args.seed,
                                    time_limit_s=1e9)
    (out / "config.json").write_text(json.dumps({**config.as_dict(), "train_texts": len(train)}))
    tagger = tf.load_base(default_model_path(), tag_names, mode=config.mode)
    dev_texts = [t for t, _ in dev]
    previous = [None]
    started = time.perf_counter()

    def on_epoch(epoch, model):
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        torch.save(state, out / f"epoch{epoch}.pt")
        np.savez(out / f"dev_epoch{epoch}.npz", *tagger.word_probabilities(dev_texts))
        if previous[0] is not None:
            model.load_state_dict(tf.average_states([previous[0], state]))
            np.savez(out / f"dev_epoch{epoch}_avg.npz", *tagger.word_probabilities(dev_texts))
            model.load_state_dict(state)
            model.train()
        previous[0] = state
        print(f"  epoch {epoch} stored ({time.perf_counter() - started:.0f} s)", flush=True)

    def progress(p):
        if "val_f1" in p or p.get("step", 0) % 100 == 0:
            print(f"  {p}", flush=True)

    result = tf.fine_tune(tagger, train, [], config=config, on_progress=progress, on_epoch=on_epoch)
    summary = {"seconds": result.seconds, "seconds_per_step": result.seconds_per_step, "history": result.history}
    (out / "result.json").write_text(json.dumps(summary))
    print(f"{args.name}: {result.seconds:.0f} s, {result.seconds_per_step:.2f} s/step", flush=True)


def choose(args):
    from ml import token_model as tm

    _, dev, _ = data(args)
    tag_names = tm.tag_set(LABELS)
    texts, gold = [t for t, _ in dev], [s for _, s in dev]
    best = (-1.0, None)
    print(f"{'run':<22}{'checkpoint':<14}" + "".join(f"O×{s:<6}" for s in O_SCALES))
    for folder in sorted(Path(args.out).iterdir()):
        for path in sorted(folder.glob("dev_epoch*.npz")):
            probs = list(np.load(path).values())
            row = []
            for o_scale in O_SCALES:
                micro = scores_for(tag_names, texts, gold, probs, o_scale)["micro"]
                row.append(micro["f1"])
                if micro["f1"] > best[0]:
                    best = (micro["f1"], (folder.name, path.stem, o_scale, micro))
            print(f"{folder.name:<22}{path.stem[4:]:<14}" + "".join(f"{f:<8.3f}" for f in row), flush=True)
    print(f"\nbest on dev: {best[1]}")


def checkpoint(args):
    """The tagger with one stored checkpoint (--name, --epoch, --average) loaded."""
    import torch

    from ml import token_finetune as tf
    from ml import token_model as tm
    from ml.encoder import default_model_path

    folder = Path(args.out) / args.name
    config = json.loads((folder / "config.json").read_text())
    tagger = tf.load_base(default_model_path(), tm.tag_set(LABELS), mode=config["mode"])
    if config.get("casing"):
        tf.enable_casing(tagger)
    state = torch.load(folder / f"epoch{args.epoch}.pt")
    if args.average:
        state = tf.average_states([torch.load(folder / f"epoch{args.epoch - 1}.pt"), state])
    tagger.model.load_state_dict(state)
    return tagger


def hidden_and_probs(tagger, aligned, batch_size: int = 64):
    """Per text, the encoder's unit-normalised sub-token vectors and the tag probabilities."""
    import torch

    encoder, classifier = tagger.model.base_model, tagger.model.classifier
    tagger.model.eval()
    vectors, probs = [None] * len(aligned), [None] * len(aligned)
    order = np.argsort([len(a.input_ids) for a in aligned], kind="stable")
    with torch.inference_mode():
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            ids, mask, _, types = tagger._batch([aligned[i] for i in idx])
            hidden = encoder(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
            p = torch.softmax(classifier(hidden), dim=-1).numpy()
            h = torch.nn.functional.normalize(hidden, dim=-1).numpy()
            for row, i in enumerate(idx):
                n = len(aligned[i].input_ids)
                vectors[i], probs[i] = h[row, :n], p[row, :n]
    return vectors, probs


def knn(args):
    import torch

    from ml import token_model as tm
    from ml.spans import entity_scores

    torch.set_num_threads(args.threads)
    train, dev, test_split = data(args)
    evaluated = test_split if args.split == "test" else dev
    tag_names = tm.tag_set(LABELS)
    index = {t: i for i, t in enumerate(tag_names)}
    tagger = checkpoint(args)
    started = time.perf_counter()
    aligned = tm.align(tagger.tokenizer, [t for t, _ in train], max_length=tagger.max_length)
    targets = [np.array(tm.token_targets(a, tm.word_tags(a.words, spans), index, mode=tagger.mode))
               for a, (_, spans) in zip(aligned, train)]
    vectors, _ = hidden_and_probs(tagger, aligned)
    memory = np.concatenate([v[t != tm.IGNORE] for v, t in zip(vectors, targets)]).astype(np.float32)
    memory_tags = np.concatenate([t[t != tm.IGNORE] for t in targets])
    texts = [t for t, _ in evaluated]
    eval_aligned = tm.align(tagger.tokenizer, texts, max_length=tagger.max_length)
    eval_vectors, eval_probs = hidden_and_probs(tagger, eval_aligned)
    queries = np.concatenate(eval_vectors)
    top = 32
    sims, tags = np.empty((len(queries), top), np.float32), np.empty((len(queries), top), np.int64)
    for s in range(0, len(queries), 256):
        sim = queries[s:s + 256] @ memory.T
        part = np.argpartition(-sim, top - 1, axis=1)[:, :top]
        part_sim = np.take_along_axis(sim, part, axis=1)
        order = np.argsort(-part_sim, axis=1)
        sims[s:s + 256], tags[s:s + 256] = np.take_along_axis(part_sim, order, axis=1), memory_tags[np.take_along_axis(part, order, axis=1)]
    print(f"{args.name} epoch {args.epoch}{' averaged' if args.average else ''}: memory of {len(memory):,} training "
          f"sub-tokens, {len(queries):,} {args.split} sub-tokens, neighbours in {time.perf_counter() - started:.0f} s", flush=True)
    bounds = np.cumsum([0] + [len(v) for v in eval_vectors])
    gold = [s for _, s in evaluated]

    def f1(k: int, temperature: float, weight: float) -> dict:
        w = np.exp((sims[:, :k] - sims[:, :1]) / temperature)
        vote = np.zeros((len(queries), len(tag_names)))
        np.add.at(vote, (np.repeat(np.arange(len(queries)), k), tags[:, :k].ravel()), w.ravel())
        vote /= vote.sum(axis=1, keepdims=True)
        probs = [(1 - weight) * p + weight * vote[bounds[i]:bounds[i + 1]] for i, p in enumerate(eval_probs)]
        words = [tm.word_probs(a, p) for a, p in zip(eval_aligned, probs)]
        pred = [tm.decode(p, tm.words_of(t), tag_names, text=t, o_scale=args.o_scale) for p, t in zip(words, tm.clip_texts(texts))]
        return entity_scores(gold, pred)

    if args.split == "test":
        scores = f1(args.knn_k, args.knn_temperature, args.knn_weight)
        m = scores["micro"]
        print(f"test, k {args.knn_k} temperature {args.knn_temperature} weight {args.knn_weight}: entity F1 {m['f1']:.3f} "
              f"P {m['precision']:.3f} R {m['recall']:.3f}")
        for label, s in scores["per_label"].items():
            print(f"  {label:<4} F1 {s['f1']:.3f}  P {s['precision']:.3f}  R {s['recall']:.3f}  support {s['support']}")
        return
    print(f"weight 0 (the model alone): dev F1 {f1(1, 1.0, 0.0)['micro']['f1']:.3f}")
    best = (-1.0, None)
    for k in (8, 16, 32):
        for temperature in (0.02, 0.05, 0.1):
            row = []
            for weight in (0.2, 0.3, 0.4, 0.5, 0.6):
                value = f1(k, temperature, weight)["micro"]["f1"]
                row.append(f"{value:.3f}")
                best = max(best, (value, (k, temperature, weight)))
            print(f"k {k:>2} temperature {temperature:<5} weights 0.2-0.6: " + "  ".join(row), flush=True)
    print(f"best on dev: F1 {best[0]:.3f} at k, temperature, weight = {best[1]}")


def soup(args):
    """A uniform soup (Wortsman et al. 2022): the same checkpoint (--epoch, --average) of runs
    that differ only in their seed, weights averaged into one model (no cost when serving).
    Written as run "soup_<names>" epoch 1 (its dev probabilities for `choose`; `test --epoch 1`)."""
    import torch

    from ml import token_finetune as tf

    torch.set_num_threads(args.threads)
    _, dev, _ = data(args)
    names = args.names.split(",")
    states = []
    for name in names:
        args.name = name
        tagger = checkpoint(args)
        states.append({k: v.clone() for k, v in tagger.model.state_dict().items()})
    tagger.model.load_state_dict(tf.average_states(states))  # the last run's tagger, the soup's weights
    out = Path(args.out) / ("soup_" + "+".join(names))
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text((Path(args.out) / names[0] / "config.json").read_text())
    torch.save(tagger.model.state_dict(), out / "epoch1.pt")
    np.savez(out / "dev_epoch1.npz", *tagger.word_probabilities([t for t, _ in dev]))
    print(f"{out.name}: epoch {args.epoch}{' averaged' if args.average else ''} of {len(names)} runs, stored")


def test(args):
    import torch

    from ml import token_finetune as tf

    torch.set_num_threads(args.threads)
    _, _, test_split = data(args)
    tagger = checkpoint(args)
    tagger.o_scale = args.o_scale
    scores = tf.evaluate(tagger, [t for t, _ in test_split], [s for _, s in test_split])
    m = scores["micro"]
    print(f"{args.name} epoch {args.epoch}{' averaged with the one before' if args.average else ''}, O scale "
          f"{args.o_scale}: test entity F1 {m['f1']:.3f} P {m['precision']:.3f} R {m['recall']:.3f}")
    for label, s in scores["per_label"].items():
        print(f"  {label:<4} F1 {s['f1']:.3f}  P {s['precision']:.3f}  R {s['recall']:.3f}  support {s['support']}")


if __name__ == "__main__":
    arguments = parse_args()
    {"run": run, "choose": choose, "test": test, "knn": knn, "soup": soup}[arguments.action](arguments)
