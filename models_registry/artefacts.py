"""Where model versions live on disk, and loading them safely (safetensors, checksum verified)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from django.conf import settings

from ml import finetune
from ml.heads import LinearHead, NeighbourMemory

from . import store
from .models import ModelKind, ModelVersion


def version_folder(version: ModelVersion) -> Path:
    return settings.LABELLOOP_ARTEFACT_DIR / "models" / str(version.project_id) / f"v{version.number}"


def relative_path(folder: Path) -> str:
    """A version's folder as its artefact_path records it: relative to the artefact store."""
    return str(folder.relative_to(settings.LABELLOOP_ARTEFACT_DIR))


def version_path(version: ModelVersion) -> Path:
    """Where a trained version's files are here, fetched from the remote store first if needed
    (artefact_path is relative to the artefact store). Loading verifies the checksum."""
    return store.fetch(version.artefact_path)


def save_head(head: LinearHead, folder: Path, extra: dict) -> str:
    """A head version: its weights as safetensors, the label map, and a manifest with the checksum."""
    from safetensors.numpy import save_file

    finetune.fresh_folder(folder)
    save_file({"coef": np.ascontiguousarray(head.coef, dtype=np.float32),
               "intercept": np.ascontiguousarray(head.intercept, dtype=np.float32)}, str(folder / finetune.HEAD_FILE))
    (folder / finetune.LABELS_FILE).write_text(json.dumps({"classes": head.classes, "multi_label": head.multi_label, **extra}))
    if head.memory is not None:
        head.memory.save(folder / finetune.MEMORY_FILE)
    return finetune.write_manifest(folder)


def load_head(version: ModelVersion) -> LinearHead:
    """The linear head of any version (a head version's weights, or a fine-tuned model's
    classifier over its own embeddings), with the version's neighbour memory if it has one."""
    from safetensors.numpy import load_file

    folder = version_path(version)
    finetune.verify(folder, version.checksum)
    meta = json.loads((folder / finetune.LABELS_FILE).read_text())
    tensors = load_file(str(folder / finetune.HEAD_FILE))
    coef, intercept = (tensors["coef"], tensors["intercept"]) if version.kind == ModelKind.HEAD else (tensors["weight"], tensors["bias"])
    return LinearHead(meta["classes"], coef, intercept, multi_label=meta.get("multi_label", False),
                      memory=NeighbourMemory.load(folder / finetune.MEMORY_FILE))


class FineTunedEncoder:
    """A fine-tuned version as the encoder active learning ranks with: its own embeddings."""

    def __init__(self, version: ModelVersion):
        folder = version_path(version)
        self.model, self.classes = finetune.load(folder, version.checksum)
        self.model.memory = None  # only its embeddings are used here: the vote would be computed for nothing
        self.version = f"model-v{version.number}@{version.checksum[:12]}"
        self.dim = self.model.head.in_features

    def encode(self, texts, batch_size: int = 64) -> np.ndarray:
        return self.model.predict(list(texts), batch_size=batch_size)[1]
