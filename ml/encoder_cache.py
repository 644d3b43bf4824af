"""One loaded encoder per model per process, shared by everything that encodes: active learning,
training, serving and drift monitoring. Loading a model costs seconds, encoding milliseconds.

Plain Python (no Django), so every layer can import it without a cycle.
"""
from __future__ import annotations

from typing import Callable, TypeVar

from .encoder import Encoder

T = TypeVar("T")
_encoders: dict[str, object] = {}


def cached_encoder(key: str, load: Callable[[], T]) -> T:
    """The encoder stored under `key`, loaded by `load()` the first time it is asked for."""
    if key not in _encoders:
        _encoders[key] = load()
    return _encoders[key]  # type: ignore[return-value]


def base_encoder(model_path: str | None = "") -> Encoder:
    """The frozen base encoder at `model_path` (empty: the shipped all-MiniLM-L6-v2)."""
    path = model_path or ""
    return cached_encoder(path, lambda: Encoder(path or None))
