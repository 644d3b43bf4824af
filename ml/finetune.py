"""Fine-tune a sentence encoder with a classification head: linear probe first, then the whole
transformer. Plain PyTorch and transformers, no Django; artefacts are safetensors only.

Why probe first: with ~13 examples per class a randomly initialised head drags the encoder
around for the first epochs; initialising it from a logistic regression on frozen embeddings
starts fine-tuning from the probe's accuracy (see docs/benchmarks.md, section "Training").
"""
from __future__ import annotations

import hashlib
import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .encoder import clip_texts
from .heads import KNN_DEFAULTS, NeighbourMemory
from .out_of_scope import FINETUNED_MAX_DROP, MIN_LABELLED, ScopeRule, in_scope_memory, servable

HEAD_FILE = "head.safetensors"
LABELS_FILE = "labels.json"
MANIFEST_FILE = "manifest.json"
MEMORY_FILE = "memory.safetensors"  # the neighbour vote's examples (ml.heads.NeighbourMemory)


class Cancelled(Exception):
    """The run was cancelled from outside (the registry's Cancel button)."""


@dataclass
class FineTuneConfig:
    epochs: int = 3
    batch_size: int = 16
    encoder_lr: float = 2e-5
    head_lr: float = 2e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_length: int = 64
    class_weighting: bool = True
    patience: int = 1  # epochs without validation improvement before stopping
    time_limit_s: float = 1800.0
    seed: int = 0
    probe_c: float = 10.0
    logit_scale: float = 1.0
    # Supervised contrastive term on the embeddings (SetFit-like): pulls same-label texts together.
    contrastive_weight: float = 0.0
    contrastive_temperature: float = 0.05
    per_class: int = 0  # >0: class-balanced batches of batch_size // per_class labels x per_class texts
    refit_head: bool = False  # refit the linear head by logistic regression on the tuned embeddings
    # With fewer validation examples than this, stopping on them is noise: they are trained on too,
    # for small_data_epochs (see docs/benchmarks.md, section "Training", "no early stopping on a
    # tiny validation split").
    min_validation: int = 500
    small_data_epochs: int = 5
    device: str = "auto"  # "auto": CUDA when torch sees a GPU, else the CPU; or "cpu", "cuda", "cuda:1"
    start_from: str = "base"  # "base" model, or the current fine-tuned "champion" (same labels: its head too)
    # Predictions mix in a vote of the k most similar training examples (single-label; 0 turns it
    # off; ml.heads.NeighbourMemory).
    knn_k: int = KNN_DEFAULTS["knn_k"]
    knn_temperature: float = KNN_DEFAULTS["knn_temperature"]
    knn_weight: float = KNN_DEFAULTS["knn_weight"]

    def as_dict(self) -> dict:
        return asdict(self)


def override_problems(config_type, overrides, *, field: str = "finetune") -> list[str]:
    """Problems with a dict of overrides of a config dataclass (FineTuneConfig, or
    ml.token_finetune.TokenFineTuneConfig), each naming `field.key`: unknown keys, values of the
    wrong type, and counts, rates and lengths out of range. Empty when they are fine."""
    from dataclasses import fields

    if not isinstance(overrides, dict):
        return [f"{field}: must be an object of settings"]
    known = {f.name: f for f in fields(config_type)}
    defaults = config_type()
    problems = []
    for key, value in overrides.items():
        where = f"{field}.{key}"
        if key not in known:
            problems.append(f"{where}: unknown setting; known: {', '.join(sorted(known))}")
            continue
        default = getattr(defaults, key)
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        elif isinstance(default, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
        else:
            ok = isinstance(value, type(default))
        if not ok:
            problems.append(f"{where}: must be {_kind_of(default)}, got {value!r}")
        elif key in ("epochs", "batch_size", "max_length") and not 1 <= value <= (512 if key == "max_length" else 10_000):
            problems.append(f"{where}: must be between 1 and {512 if key == 'max_length' else 10_000}")
        elif key in ("encoder_lr", "head_lr") and not 0 < value <= 1:
            problems.append(f"{where}: must be a learning rate above 0 and at most 1")
        elif key == "warmup_ratio" and not 0 <= value <= 1:
            problems.append(f"{where}: must be between 0 and 1")
        elif key in ("o_weight", "o_scale") and not 0 < value <= 10:
            problems.append(f"{where}: must be above 0 and at most 10")
        elif key == "label_smoothing" and not 0 <= value < 1:
            problems.append(f"{where}: must be 0 or more and below 1")
        elif key == "average_last" and not 1 <= value <= 10:
            problems.append(f"{where}: must be between 1 and 10")
        elif key in _CHOICES and value not in _CHOICES[key]:
            problems.append(f"{where}: must be one of {', '.join(_CHOICES[key])}, got {value!r}")
    return problems


# String settings with a fixed set of values (ml.token_model's FIRST and ALL for `mode`).
_CHOICES = {"mode": ("first", "all"), "start_from": ("base", "champion")}


def _kind_of(default) -> str:
    if isinstance(default, bool):
        return "true or false"
    if isinstance(default, int):
        return "a whole number, 0 or more"
    if isinstance(default, float):
        return "a number, 0 or more"
    return "a string"


@dataclass
class Progress:
    epoch: int
    epochs: int
    step: int
    steps: int
    loss: float
    eta_s: float
    val_accuracy: float | None = None


@dataclass
class FineTuneResult:
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    stopped: str = "completed"  # completed | early_stopping | time_limit
    seconds: float = 0.0
    examples_per_second: float = 0.0
    device: str = "cpu"
    scope: ScopeRule | None = None  # the out-of-scope rule, when a validation split was held out


def fold_small_validation(train_texts: list, train_ids: list, val_texts: list, val_ids: list,
                          config: FineTuneConfig) -> tuple[list, list, list, list, FineTuneConfig]:
    """Below `config.min_validation` validation examples, train on them too, for a fixed
    `config.small_data_epochs` epochs without early stopping: a split that small picks the epoch
    by noise (see docs/benchmarks.md, section "Training", "no early stopping on a tiny validation
    split")."""
    from dataclasses import replace

    if len(val_texts) >= config.min_validation:
        return train_texts, train_ids, val_texts, val_ids, config
    return (list(train_texts) + list(val_texts), list(train_ids) + list(val_ids), [], [],
            replace(config, epochs=config.small_data_epochs))


def set_seed(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


class SentenceClassifier:
    """An encoder, mean pooling over tokens, L2 normalisation and a linear head (softmax over
    classes, or a sigmoid per label for multi-label projects)."""

    def __init__(self, encoder, tokenizer, n_classes: int, *, max_length: int = 64, multi_label: bool = False):
        import torch

        self.encoder, self.tokenizer, self.max_length = encoder, tokenizer, max_length
        self.head = torch.nn.Linear(encoder.config.hidden_size, n_classes)
        # Multi-label: an independent sigmoid per label (binary cross-entropy), not a softmax.
        self.multi_label = multi_label
        self.memory: NeighbourMemory | None = None  # set at the end of fine_tune, saved and loaded with the model
        self.device = "cpu"

    def to(self, device: str) -> "SentenceClassifier":
        self.encoder.to(device)
        self.head.to(device)
        self.device = device
        return self

    def parameters(self):
        return list(self.encoder.parameters()) + list(self.head.parameters())

    def train(self, mode: bool = True):
        self.encoder.train(mode)
        self.head.train(mode)

    def tokenize(self, texts: Sequence[str]):
        batch = self.tokenizer(clip_texts(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        return batch.to(self.device) if self.device != "cpu" else batch

    def embed(self, batch):
        import torch

        hidden = self.encoder(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1)

    def logits(self, batch):
        return self.head(self.embed(batch))

    def predict(self, texts: Sequence[str], *, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities, embeddings) for `texts`, in order; length-sorted batches, no autograd."""
        import torch

        self.train(False)
        order = np.argsort([len(t) for t in texts], kind="stable")
        probs = np.zeros((len(texts), self.head.out_features), dtype=np.float32)
        vectors = np.zeros((len(texts), self.head.in_features), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                idx = order[start:start + batch_size]
                batch = self.tokenize([texts[i] for i in idx])
                embedded = self.embed(batch)
                logits = self.head(embedded)
                probs[idx] = (torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, dim=-1)).cpu().numpy()
                vectors[idx] = embedded.cpu().numpy()
        if self.memory is not None and not self.multi_label:
            probs = self.memory.mix(probs, vectors)
        return probs, vectors


def load_base(model_path: str, n_classes: int, *, max_length: int = 64, multi_label: bool = False) -> SentenceClassifier:
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path, local_files_only=True)
    encoder = AutoModel.from_pretrained(model_path, local_files_only=True, use_safetensors=True)
    return SentenceClassifier(encoder, tokenizer, n_classes, max_length=max_length, multi_label=multi_label)


def multi_hot(label_lists: Sequence[Sequence[int]], n_classes: int) -> np.ndarray:
    """Targets of a multi-label model: one row per text, 1.0 for each of its labels."""
    out = np.zeros((len(label_lists), n_classes), dtype=np.float32)
    for row, labels in enumerate(label_lists):
        out[row, list(labels)] = 1.0
    return out


def probe_init(model: SentenceClassifier, texts, targets: np.ndarray, n_classes: int, *, c: float, seed: int) -> None:
    """Initialise the head from a logistic regression on the frozen encoder's embeddings (one per
    label for a multi-label model, whose `targets` are multi-hot rows)."""
    import torch

    from .heads import fit_head

    _, vectors = model.predict(texts)
    classes = [str(i) for i in range(n_classes)]
    if model.multi_label:
        label_sets = [[str(i) for i in np.flatnonzero(row)] for row in np.asarray(targets)]
    else:
        label_sets = [[str(i)] for i in targets]
    head = fit_head(vectors, label_sets, classes=classes, multi_label=model.multi_label, c=c, seed=seed)
    with torch.no_grad():
        model.head.weight.copy_(torch.from_numpy(head.coef))
        model.head.bias.copy_(torch.from_numpy(head.intercept))


def supervised_contrastive(embeddings, label_ids, temperature: float):
    """SupCon (Khosla et al., 2020) over one batch of unit embeddings; 0 if no positive pairs."""
    import torch

    similarity = embeddings @ embeddings.T / temperature
    n = len(label_ids)
    eye = torch.eye(n, dtype=torch.bool)
    positives = (label_ids[:, None] == label_ids[None, :]) & ~eye
    if not positives.any():
        return similarity.sum() * 0.0
    similarity = similarity.masked_fill(eye, float("-inf"))
    log_prob = similarity - torch.logsumexp(similarity, dim=1, keepdim=True)
    has = positives.any(dim=1)
    mean_positive = (log_prob.masked_fill(~positives, 0.0).sum(1)[has]) / positives.sum(1)[has]
    return -mean_positive.mean()


def _balanced_batches(label_ids: np.ndarray, batch_size: int, per_class: int, rng) -> list[list[int]]:
    """Batches of `batch_size // per_class` labels with `per_class` examples each, covering every
    example once per epoch (classes with fewer examples are topped up by resampling)."""
    by_class: dict[int, list[int]] = {}
    for i in rng.permutation(len(label_ids)):
        by_class.setdefault(int(label_ids[i]), []).append(int(i))
    groups = []
    for members in by_class.values():
        for start in range(0, len(members), per_class):
            group = members[start:start + per_class]
            while len(group) < per_class and len(members) > 1:
                group.append(members[int(rng.integers(len(members)))])
            groups.append(group)
    order = rng.permutation(len(groups))
    per_batch = max(1, batch_size // per_class)
    return [sum((groups[g] for g in order[i:i + per_batch]), []) for i in range(0, len(order), per_batch)]


def fine_tune(
    model: SentenceClassifier,
    train_texts: Sequence[str],
    train_ids: Sequence[int],
    val_texts: Sequence[str],
    val_ids: Sequence[int],
    *,
    config: FineTuneConfig,
    on_progress: Callable[[Progress], None] = lambda p: None,
    should_stop: Callable[[], bool] = lambda: False,
    oos_class: int | None = None,
) -> FineTuneResult:
    """Train in place, keeping the weights of the best validation epoch. Targets are class ids,
    or multi-hot rows (`multi_hot`) for a multi-label model; validation accuracy is then the
    share of texts whose whole label set is predicted (each label at probability >= 0.5).
    `oos_class`: the class of the project's out-of-scope label, if it has one (ml.out_of_scope)."""
    import copy
    from dataclasses import replace

    import torch

    set_seed(config.seed)
    n_classes = model.head.out_features
    train_ids = np.asarray(train_ids)
    model.memory = None  # a champion's memory holds its own embeddings: rebuilt below from the tuned ones
    started = time.perf_counter()
    device = resolve_device(config.device)
    model.to(device)
    if model.multi_label:  # train_ids are multi-hot rows; no class weighting, no SupCon batches
        loss_fn = torch.nn.BCEWithLogitsLoss()
        config = replace(config, contrastive_weight=0.0, per_class=0)
    elif config.class_weighting:
        counts = np.bincount(train_ids, minlength=n_classes).astype(np.float64)
        weights = np.where(counts > 0, len(train_ids) / (n_classes * np.maximum(counts, 1)), 0.0)
        loss_fn = torch.nn.CrossEntropyLoss(weight=torch.tensor(weights, dtype=torch.float32, device=device))
    else:
        loss_fn = torch.nn.CrossEntropyLoss()
    head_params = list(model.head.parameters())
    optimizer = torch.optim.AdamW(
        [{"params": list(model.encoder.parameters()), "lr": config.encoder_lr},
         {"params": head_params, "lr": config.head_lr}],
        weight_decay=config.weight_decay,
    )
    steps_per_epoch = math.ceil(len(train_texts) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    warmup = max(1, int(total_steps * config.warmup_ratio))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / warmup) * max(0.0, (total_steps - step) / max(1, total_steps - warmup))
    )
    result = FineTuneResult()
    best_accuracy, best_state, since_best, step = -1.0, None, 0, 0
    rng = np.random.default_rng(config.seed)
    seen = 0
    for epoch in range(1, config.epochs + 1):
        model.train(True)
        if config.per_class:
            batches = _balanced_batches(train_ids, config.batch_size, config.per_class, rng)
        else:
            order = rng.permutation(len(train_texts))
            # Length-bucketed batches: shuffle, then sort within chunks of 50 batches (less padding).
            chunk = config.batch_size * 50
            batches = []
            for start in range(0, len(order), chunk):
                part = sorted(order[start:start + chunk], key=lambda i: len(train_texts[i]))
                batches += [part[i:i + config.batch_size] for i in range(0, len(part), config.batch_size)]
            rng.shuffle(batches)
        running = 0.0
        for n, idx in enumerate(batches, start=1):
            if should_stop():
                raise Cancelled()
            batch = model.tokenize([train_texts[i] for i in idx])
            targets = (torch.from_numpy(train_ids[idx]) if model.multi_label else torch.tensor(train_ids[idx])).to(device)
            embedded = model.embed(batch)
            loss = loss_fn(model.head(embedded) * config.logit_scale, targets)
            if config.contrastive_weight:
                loss = loss + config.contrastive_weight * supervised_contrastive(
                    embedded, targets, config.contrastive_temperature)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            step += 1
            seen += len(idx)
            running += float(loss.detach())
            if n % 10 == 0 or n == len(batches):
                elapsed = time.perf_counter() - started
                on_progress(Progress(epoch, config.epochs, step, total_steps, running / n,
                                     elapsed / step * (total_steps - step)))
            if time.perf_counter() - started > config.time_limit_s:
                result.stopped = "time_limit"
                break
        val_accuracy = _accuracy(model, val_texts, val_ids) if len(val_texts) else None
        result.history.append({"epoch": epoch, "loss": running / max(1, len(batches)), "val_accuracy": val_accuracy})
        on_progress(Progress(epoch, config.epochs, step, total_steps, running / max(1, len(batches)),
                             (time.perf_counter() - started) / step * (total_steps - step), val_accuracy))
        if val_accuracy is None:  # nothing to choose on: the last epoch is the model
            result.best_epoch = epoch
        elif val_accuracy > best_accuracy:
            best_accuracy, since_best, result.best_epoch = val_accuracy, 0, epoch
            best_state = (copy.deepcopy(model.encoder.state_dict()), copy.deepcopy(model.head.state_dict()))
        else:
            since_best += 1
            if since_best > config.patience:
                result.stopped = "early_stopping"
                break
        if result.stopped == "time_limit":
            break
    if best_state is not None:
        model.encoder.load_state_dict(best_state[0])
        model.head.load_state_dict(best_state[1])
    if config.refit_head:
        probe_init(model, train_texts, train_ids, n_classes, c=config.probe_c, seed=config.seed)
    if not model.multi_label and config.knn_weight:
        train_vectors = model.predict(train_texts)[1]
        val_probs, val_vectors = model.predict(val_texts) if len(val_texts) else (None, train_vectors[:0])
        val_ids = np.asarray(val_ids, dtype=np.int64)
        result.scope = _scope_rule(NeighbourMemory.of(train_vectors, train_ids, config.as_dict()), val_probs, val_vectors, val_ids,
                                   oos_class)
        model.memory = NeighbourMemory.of(np.concatenate([train_vectors, val_vectors]), np.concatenate([train_ids, val_ids]),
                                          config.as_dict())
    result.seconds = time.perf_counter() - started
    result.examples_per_second = seen / result.seconds if result.seconds else 0.0
    result.device = device
    model.train(False)
    model.to("cpu")  # saved, exported to ONNX and served from the CPU
    return result


def _scope_rule(seen: NeighbourMemory | None, val_probs, val_vectors: np.ndarray, val_ids: np.ndarray,
                oos_class: int | None = None) -> ScopeRule | None:
    """The out-of-scope rule of a fine-tuned version (ml.out_of_scope), read off its validation
    split: texts it did not learn from, answered as an unseen query would be (the head, and the vote
    of a memory of the training texts only; the served memory holds the validation texts too, and
    each would be its own nearest neighbour). None without such a memory or with too few texts."""
    # Below 1 / FINETUNED_MAX_DROP texts the budget allows no abstention at all.
    if seen is None or len(val_ids) < max(MIN_LABELLED, math.ceil(1 / FINETUNED_MAX_DROP)):
        return None
    probs = seen.mix(val_probs, val_vectors)
    return servable(ScopeRule.fit(probs, val_vectors, in_scope_memory(seen.vectors, seen.labels, oos_class), val_ids,
                                  max_drop=FINETUNED_MAX_DROP, oos_class=oos_class))


def _accuracy(model: SentenceClassifier, texts, targets) -> float:
    probs = model.predict(texts)[0]
    if model.multi_label:
        return float(((probs >= 0.5) == (np.asarray(targets) >= 0.5)).all(axis=1).mean())
    return float((probs.argmax(axis=1) == np.asarray(targets)).mean())


# --- artefacts: safetensors only, checksummed ---------------------------------------------------

def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fresh_folder(folder: Path) -> None:
    """An empty folder for one version's files: nothing left from an earlier write may slip into
    its manifest (a test database reset reuses project ids and version numbers)."""
    import shutil

    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)


def save(model: SentenceClassifier, folder: Path, classes: Sequence[str], extra: dict | None = None) -> str:
    """Write encoder, tokenizer, head and label map; return the checksum over every file."""
    from safetensors.torch import save_file

    fresh_folder(folder)
    model.encoder.save_pretrained(folder, safe_serialization=True)
    model.tokenizer.save_pretrained(folder)
    save_file({k: v.contiguous() for k, v in model.head.state_dict().items()}, str(folder / HEAD_FILE))
    (folder / LABELS_FILE).write_text(json.dumps({"classes": list(classes), "max_length": model.max_length,
                                                  "multi_label": model.multi_label, **(extra or {})}))
    if model.memory is not None:
        model.memory.save(folder / MEMORY_FILE)
    return write_manifest(folder)


def _file_hashes(folder: Path) -> dict[str, str]:
    return {p.name: _sha256(p) for p in sorted(folder.iterdir()) if p.is_file() and p.name != MANIFEST_FILE}


def _checksum(files: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()


def write_manifest(folder: Path) -> str:
    """Record the SHA-256 of every file in `folder`; the hash of that list is the checksum."""
    files = _file_hashes(folder)
    checksum = _checksum(files)
    (folder / MANIFEST_FILE).write_text(json.dumps({"files": files, "checksum": checksum}, indent=1))
    return checksum


class ChecksumMismatch(Exception):
    pass


def verify(folder: Path, checksum: str) -> None:
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    files = _file_hashes(folder)
    if files != manifest["files"] or _checksum(files) != checksum:
        raise ChecksumMismatch(f"model files in {folder} do not match checksum {checksum[:12]}")
    if any(name.endswith((".bin", ".pt", ".pth", ".pkl", ".ckpt")) for name in files):
        raise ChecksumMismatch("pickled weights are never loaded")


def load(folder: Path, checksum: str) -> tuple[SentenceClassifier, list[str]]:
    """Load a saved model after verifying its checksum; weights come only from safetensors."""
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoTokenizer

    verify(folder, checksum)
    meta = json.loads((folder / LABELS_FILE).read_text())
    encoder = AutoModel.from_pretrained(folder, local_files_only=True, use_safetensors=True)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = SentenceClassifier(encoder, tokenizer, len(meta["classes"]), max_length=meta["max_length"],
                               multi_label=meta.get("multi_label", False))
    model.head.load_state_dict(load_file(str(folder / HEAD_FILE)))
    model.memory = NeighbourMemory.load(folder / MEMORY_FILE)
    model.train(False)
    return model, meta["classes"]
