"""The artefact store: dataset snapshots and model versions, shared between machines.

Every process reads and writes artefacts in its local `LABELLOOP_ARTEFACT_DIR`. When a remote
store is configured (Django's `STORAGES["artefacts"]`: S3-compatible object storage through
django-storages, or a shared folder; see config/settings.py), a worker publishes what it wrote
there, and a process that lacks an artefact locally fetches it before use. Files are addressed by
the same relative path locally and remotely. Nothing fetched is trusted: model versions are
checked against their checksum when loaded, snapshots against their content hash.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import storages


def remote():
    """The configured remote store, or None (artefacts stay on this machine)."""
    return storages["artefacts"] if "artefacts" in settings.STORAGES else None


def publish(relative: str) -> int:
    """Upload the file or folder at `relative` (under the artefact dir); returns files uploaded."""
    store = remote()
    if store is None:
        return 0
    local = Path(settings.LABELLOOP_ARTEFACT_DIR) / relative
    files = [local] if local.is_file() else sorted(p for p in local.rglob("*") if p.is_file())
    for path in files:
        key = path.relative_to(settings.LABELLOOP_ARTEFACT_DIR).as_posix()
        if store.exists(key):
            store.delete(key)  # artefacts are immutable; a re-run writes the same bytes
        with open(path, "rb") as f:
            store.save(key, File(f))
    return len(files)


def fetch(relative: str) -> Path:
    """The local path of the artefact at `relative`, downloaded from the remote store first if it
    is not here. A folder is downloaded whole into a temporary folder, then moved into place."""
    local = Path(settings.LABELLOOP_ARTEFACT_DIR) / relative
    store = remote()
    if local.exists() or store is None:
        return local
    keys = _keys(store, relative)
    if not keys:
        return local  # not there either: the caller reports the missing file
    local.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=local.parent) as scratch:
        staged = Path(scratch) / local.name
        for key in keys:
            target = staged / Path(key).relative_to(relative) if key != relative else staged
            target.parent.mkdir(parents=True, exist_ok=True)
            with store.open(key, "rb") as source, open(target, "wb") as out:
                shutil.copyfileobj(source, out)
        if not local.exists():  # another process may have fetched it meanwhile
            staged.replace(local)
    return local


def _keys(store, relative: str) -> list[str]:
    if store.exists(relative) and not _is_folder(store, relative):
        return [relative]
    keys, folders = [], [relative]
    while folders:
        folder = folders.pop()
        try:
            subfolders, files = store.listdir(folder)
        except FileNotFoundError:
            continue
        keys += [f"{folder}/{name}" for name in files]
        folders += [f"{folder}/{name}" for name in subfolders]
    return sorted(keys)


def _is_folder(store, relative: str) -> bool:
    try:
        subfolders, files = store.listdir(relative)
    except (FileNotFoundError, NotADirectoryError):
        return False
    return bool(subfolders or files)
