"""Fine-tune the base encoder for token classification (BIO tags over words; ml/token_model.py).
Plain PyTorch and transformers, no Django.

The recipe, against the plain one (3 epochs, first sub-token labelled, lr 5e-5, batch 16, a
random classifier): the classifier starts from a logistic regression on the frozen encoder's
sub-token vectors (probe start, as ml/finetune.py does for sentence classification), a linear
schedule with warm-up over more epochs, the best epoch kept by entity F1 on a validation split,
and decoding by the most probable valid BIO path (ml.token_model.viterbi). Which sub-tokens carry
a target ("first" or "all") is a setting; docs/benchmarks.md has what each measured.

Casing (`casing`): the base encoder is uncased, so a tweet's "Apple" and "apple" look the same to
it, though capitals are the strongest cue for a name. With the setting on, each sub-token's token
type is its word's casing (ml.token_model.casing): the encoder's token-type embedding grows from
its two rows to one per casing, each starting as the row every input uses (so training starts
from the base model exactly) and learning at the head's rate, as new parameters do. The model
stays a plain transformers model; serving passes the same types to the ONNX export.
"""
from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from . import token_model as tm
from .spans import entity_scores


@dataclass
class TokenFineTuneConfig:
    epochs: int = 5
    batch_size: int = 16
    encoder_lr: float = 5e-5
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_length: int = 128
    mode: str = tm.FIRST  # sub-tokens with a target: "first" of each word, or "all"
    probe_start: bool = True
    probe_c: float = 1.0
    probe_sample: int = 60_000  # sub-token vectors the probe is fitted on, at most
    repair: bool = True  # Viterbi decoding over valid BIO paths
    # Each sub-token's token type is its word's casing (the module's docstring). Chosen on btc.dev:
    # entity F1 0.769 against 0.760 without (3 epochs, docs/benchmarks.md "Casing").
    casing: bool = True
    o_weight: float = 1.0  # weight of O targets in the loss (<1: more recall)
    label_smoothing: float = 0.0
    # >1: the kept weights are the mean of the best epoch's and those before it. 2, chosen on btc.dev
    # (docs/benchmarks.md, "choosing the fine-tune recipe"): the average beat each single epoch
    # (dev entity F1 0.760 against 0.747 at epoch 2, 0.751 against 0.747 at epoch 3).
    average_last: int = 2
    o_scale: float = 1.0  # decoding: P(O) times this before the BIO path is chosen (<1: more spans)
    time_limit_s: float = 3600.0
    max_steps: int = 0  # >0: stop after this many steps (timing estimates)
    seed: int = 0
    threads: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class TokenFineTuneResult:
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    stopped: str = "completed"
    seconds: float = 0.0
    seconds_per_step: float = 0.0


class TokenTagger:
    """A token-classification model with its tag set: `predict` gives spans per text."""

    def __init__(self, model, tokenizer, tag_names: Sequence[str], *, max_length: int = 128, mode: str = tm.FIRST,
                 repair: bool = True, o_scale: float = 1.0, casing: bool = False):
        self.model, self.tokenizer, self.tag_names = model, tokenizer, list(tag_names)
        self.max_length, self.mode, self.repair, self.o_scale = max_length, mode, repair, o_scale
        self.casing = casing  # token types carry each word's casing (enable_casing)
        self._hidden_states = None  # serve_with: the encoder run elsewhere (ONNX Runtime)

    def serve_with(self, hidden_states: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]) -> None:
        """Answer from now on with `hidden_states(ids, mask, token_types)` (the model's encoder,
        e.g. in ONNX Runtime: ml.onnx_serving's `hidden` export of `self.model.base_model`) and the
        model's own classifier applied here, in numpy (in eval its dropout is the identity).
        Inference only."""
        self._hidden_states = hidden_states
        self._classifier = (self.model.classifier.weight.detach().numpy().T.astype(np.float32),
                            self.model.classifier.bias.detach().numpy().astype(np.float32))

    def _batch(self, aligned: Sequence[tm.Aligned], targets: Sequence[Sequence[int]] | None = None):
        import torch

        longest = max(len(a.input_ids) for a in aligned)
        pad = self.tokenizer.pad_token_id or 0
        ids = torch.full((len(aligned), longest), pad, dtype=torch.long)
        mask = torch.zeros((len(aligned), longest), dtype=torch.long)
        labels = torch.full((len(aligned), longest), tm.IGNORE, dtype=torch.long)
        types = torch.zeros((len(aligned), longest), dtype=torch.long)  # zeros: what the base model reads
        for row, a in enumerate(aligned):
            ids[row, :len(a.input_ids)] = torch.tensor(a.input_ids)
            mask[row, :len(a.input_ids)] = 1
            if targets is not None:
                labels[row, :len(a.input_ids)] = torch.tensor(targets[row])
            if self.casing:
                types[row, :len(a.input_ids)] = torch.tensor(a.token_casing)
        return ids, mask, labels, types

    def token_probs(self, aligned: Sequence[tm.Aligned], *, batch_size: int = 64) -> list[np.ndarray]:
        import torch

        self.model.eval()
        out: list[np.ndarray] = [np.zeros(0)] * len(aligned)
        order = np.argsort([len(a.input_ids) for a in aligned], kind="stable")
        with torch.inference_mode():
            for s in range(0, len(order), batch_size):
                idx = order[s:s + batch_size]
                ids, mask, _, types = self._batch([aligned[i] for i in idx])
                if self._hidden_states is not None:
                    weight, bias = self._classifier
                    logits = self._hidden_states(ids.numpy(), mask.numpy(), types.numpy()) @ weight + bias
                    logits -= logits.max(axis=-1, keepdims=True)
                    probs = np.exp(logits)
                    probs /= probs.sum(axis=-1, keepdims=True)
                else:
                    logits = self.model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits
                    probs = torch.softmax(logits, dim=-1).numpy()
                for row, i in enumerate(idx):
                    out[i] = probs[row, :len(aligned[i].input_ids)]
        return out

    def word_probabilities(self, texts: Sequence[str], *, batch_size: int = 64) -> list[np.ndarray]:
        """Per text, (n_words, n_tags) tag probabilities, rows in the order of
        ml.token_model.words_of(the text clipped as ml.encoder.clip_texts clips it)."""
        aligned = tm.align(self.tokenizer, texts, max_length=self.max_length)
        return [tm.word_probs(a, p) for a, p in zip(aligned, self.token_probs(aligned, batch_size=batch_size))]

    def predict(self, texts: Sequence[str], *, batch_size: int = 64) -> list[list[dict]]:
        """Spans per text ({"start", "end", "label", "confidence", "text"}), code-point offsets."""
        probs = self.word_probabilities(texts, batch_size=batch_size)
        return [tm.decode(p, tm.words_of(text), self.tag_names, repair=self.repair, text=text, o_scale=self.o_scale)
                for p, text in zip(probs, tm.clip_texts(texts))]


def load_base(model_path: str, tag_names: Sequence[str], *, max_length: int = 128, mode: str = tm.FIRST) -> TokenTagger:
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path, local_files_only=True)
    model = AutoModelForTokenClassification.from_pretrained(
        model_path, num_labels=len(tag_names), local_files_only=True, use_safetensors=True,
        id2label=dict(enumerate(tag_names)), label2id={t: i for i, t in enumerate(tag_names)})
    return TokenTagger(model, tokenizer, tag_names, max_length=max_length, mode=mode)


def casing_embeddings(model):
    """The encoder's token-type embedding, or None for an architecture without one."""
    return getattr(getattr(model.base_model, "embeddings", None), "token_type_embeddings", None)


def enable_casing(tagger: TokenTagger) -> bool:
    """Give the tagger's encoder one token type per casing, each a copy of type 0 (the one every
    input has used), so the model answers as before until training moves them apart; False (and
    casing stays off) for an encoder without token types."""
    import torch

    embeddings = casing_embeddings(tagger.model)
    if embeddings is None:
        return False
    if embeddings.num_embeddings < tm.CASINGS:
        grown = torch.nn.Embedding(tm.CASINGS, embeddings.embedding_dim)
        with torch.no_grad():
            grown.weight.copy_(embeddings.weight[:1].expand(tm.CASINGS, -1))
        tagger.model.base_model.embeddings.token_type_embeddings = grown
        tagger.model.config.type_vocab_size = tm.CASINGS
    tagger.casing = True
    return True


def save(tagger: TokenTagger, folder: Path, extra: dict | None = None) -> str:
    """Write the model (safetensors), its tokenizer and its tag names and settings; return the
    checksum over every file (ml.finetune's manifest)."""
    from .finetune import LABELS_FILE, fresh_folder, write_manifest

    fresh_folder(folder)
    tagger.model.save_pretrained(folder, safe_serialization=True)
    tagger.tokenizer.save_pretrained(folder)
    (folder / LABELS_FILE).write_text(json.dumps({"tag_names": tagger.tag_names, "max_length": tagger.max_length,
                                                  "mode": tagger.mode, "repair": tagger.repair, "o_scale": tagger.o_scale,
                                                  "casing": tagger.casing, **(extra or {})}))
    return write_manifest(folder)


def load(folder: Path, checksum: str) -> TokenTagger:
    """A saved tagger, after verifying its checksum; weights come only from safetensors."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from .finetune import LABELS_FILE, verify

    verify(folder, checksum)
    meta = json.loads((folder / LABELS_FILE).read_text())
    model = AutoModelForTokenClassification.from_pretrained(folder, local_files_only=True, use_safetensors=True)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model.eval()
    return TokenTagger(model, tokenizer, meta["tag_names"], max_length=meta["max_length"], mode=meta["mode"],
                       repair=meta["repair"], o_scale=meta.get("o_scale", 1.0), casing=meta.get("casing", False))


def _probe_init(tagger: TokenTagger, aligned, targets, config: TokenFineTuneConfig) -> None:
    """The classifier from a logistic regression on the frozen encoder's sub-token vectors, on
    the sub-tokens that carry a target (a seeded sample of at most probe_sample)."""
    import torch

    from .heads import fit_head

    encoder = tagger.model.base_model
    vectors, ys = [], []
    order = np.argsort([len(a.input_ids) for a in aligned], kind="stable")
    tagger.model.eval()
    with torch.inference_mode():
        for s in range(0, len(order), 64):
            idx = order[s:s + 64]
            ids, mask, labels, types = tagger._batch([aligned[i] for i in idx], [targets[i] for i in idx])
            hidden = encoder(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
            keep = labels != tm.IGNORE
            vectors.append(hidden[keep].numpy())
            ys.append(labels[keep].numpy())
    x, y = np.concatenate(vectors), np.concatenate(ys)
    if len(x) > config.probe_sample:
        pick = np.random.default_rng(config.seed).choice(len(x), config.probe_sample, replace=False)
        x, y = x[pick], y[pick]
    head = fit_head(x, [[tagger.tag_names[i]] for i in y], classes=tagger.tag_names, c=config.probe_c, seed=config.seed)
    with torch.no_grad():
        tagger.model.classifier.weight.copy_(torch.from_numpy(head.coef))
        tagger.model.classifier.bias.copy_(torch.from_numpy(head.intercept))


def evaluate(tagger: TokenTagger, texts: Sequence[str], gold: Sequence[Sequence[dict]]) -> dict:
    return entity_scores(gold, tagger.predict(texts))


def fine_tune(tagger: TokenTagger, train: Sequence[tuple[str, list[dict]]], val: Sequence[tuple[str, list[dict]]],
              *, config: TokenFineTuneConfig, on_progress: Callable[[dict], None] = lambda p: None,
              should_stop: Callable[[], bool] = lambda: False,
              on_epoch: Callable[[int, object], None] = lambda epoch, model: None) -> TokenFineTuneResult:
    """Train in place on (text, spans) pairs, keeping the weights of the epoch with the best
    validation entity F1 (the last epoch when `val` is empty), averaged with the epochs before it
    when `average_last` > 1. ml.finetune.Cancelled when `should_stop()` says so (asked before each
    step). `on_epoch(epoch, model)` is called after each epoch's training (benchmarks keep
    checkpoints with it)."""
    import torch

    from .finetune import Cancelled, set_seed

    if config.threads:
        torch.set_num_threads(config.threads)
    set_seed(config.seed)
    started = time.perf_counter()
    tagger.mode, tagger.repair, tagger.o_scale = config.mode, config.repair, config.o_scale
    index = {t: i for i, t in enumerate(tagger.tag_names)}
    texts = [t for t, _ in train]
    aligned = tm.align(tagger.tokenizer, texts, max_length=config.max_length)
    targets = [tm.token_targets(a, tm.word_tags(a.words, spans), index, mode=config.mode)
               for a, (_, spans) in zip(aligned, train)]
    if config.casing:
        enable_casing(tagger)
    if config.probe_start:
        _probe_init(tagger, aligned, targets, config)
    result = TokenFineTuneResult()
    model = tagger.model
    head_params = list(model.classifier.parameters())
    if tagger.casing:  # new parameters, as the classifier is: they learn at the head's rate
        head_params.append(casing_embeddings(model).weight)
    head_ids = {id(p) for p in head_params}
    optimizer = torch.optim.AdamW(
        [{"params": [p for p in model.parameters() if id(p) not in head_ids], "lr": config.encoder_lr},
         {"params": head_params, "lr": config.head_lr}], weight_decay=config.weight_decay)
    steps_per_epoch = math.ceil(len(train) / config.batch_size)
    total = steps_per_epoch * config.epochs
    warmup = max(1, int(total * config.warmup_ratio))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, (total - s) / max(1, total - warmup)))
    weights = torch.ones(len(tagger.tag_names))
    weights[tagger.tag_names.index("O")] = config.o_weight
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights, ignore_index=tm.IGNORE, label_smoothing=config.label_smoothing)
    rng = np.random.default_rng(config.seed)
    best_f1, best_state, step = -1.0, None, 0
    states: list[dict] = []  # the last `average_last` epochs' weights
    train_started = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        model.train()
        order = rng.permutation(len(train))
        chunk = config.batch_size * 50  # length-bucketed batches: less padding
        batches = []
        for s in range(0, len(order), chunk):
            part = sorted(order[s:s + chunk], key=lambda i: len(aligned[i].input_ids))
            batches += [part[i:i + config.batch_size] for i in range(0, len(part), config.batch_size)]
        rng.shuffle(batches)
        running = 0.0
        for n, idx in enumerate(batches, start=1):
            if should_stop():
                raise Cancelled()
            ids, mask, labels, types = tagger._batch([aligned[i] for i in idx], [targets[i] for i in idx])
            logits = model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits
            loss = loss_fn(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            step += 1
            running += float(loss.detach())
            if n % 20 == 0:
                elapsed = time.perf_counter() - train_started
                on_progress({"epoch": epoch, "step": step, "steps": total, "loss": running / n,
                             "eta_s": elapsed / step * (total - step)})
            if (config.max_steps and step >= config.max_steps) or time.perf_counter() - started > config.time_limit_s:
                result.stopped = "max_steps" if config.max_steps and step >= config.max_steps else "time_limit"
                break
        result.seconds_per_step = (time.perf_counter() - train_started) / max(1, step)
        entry = {"epoch": epoch, "loss": running / max(1, n), "seconds": time.perf_counter() - started}
        on_epoch(epoch, model)
        if config.average_last > 1:
            states = (states + [copy.deepcopy(model.state_dict())])[-config.average_last:]
            trained = copy.deepcopy(model.state_dict())
            model.load_state_dict(average_states(states))
        if val:
            scores = evaluate(tagger, [t for t, _ in val], [s for _, s in val])["micro"]
            entry["val_f1"] = scores["f1"]
            if scores["f1"] > best_f1:
                best_f1, result.best_epoch = scores["f1"], epoch
                best_state = copy.deepcopy(model.state_dict())
        else:
            result.best_epoch = epoch
        if config.average_last > 1:
            model.load_state_dict(trained)  # training goes on from this epoch's own weights
            if not val:
                best_state = average_states(states)
        result.history.append(entry)
        on_progress(entry)
        if result.stopped != "completed":
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    result.seconds = time.perf_counter() - started
    return result


def average_states(states: Sequence[dict]) -> dict:
    """The element-wise mean of model state dicts (floating tensors; the rest from the last)."""
    out = {}
    for key, value in states[-1].items():
        out[key] = sum(s[key] for s in states) / len(states) if value.is_floating_point() else value.clone()
    return out
