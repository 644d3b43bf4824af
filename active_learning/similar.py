"""Find similar: the items of a project nearest to one of its items, or to typed text, by cosine
over the stored vectors (ItemVector, under the project's current encoder).

Reading a million float16 rows from the database takes close to a minute, so each process keeps the
project's vectors in memory (ml.similarity.VectorMatrix: exact float32 below 200k items; above,
float16 rows plus a 96-dimension float32 projection that a search scans before re-scoring its best
candidates exactly), keyed by project and encoder version. It is checked on every search against a
change marker that costs no query: the encoder's heartbeat and count in the project's
ActiveLearningState row, which the search reads anyway (counting a million vectors took 0.7 s on
PostgreSQL, more than the whole search may take). When it moved, only the vectors stored since are
read and appended. The cache is bounded by LABELLOOP_SIMILAR_CACHE_MB per process (about 1.2 KB an
item at 384 dims from 200k items on, 1.5 KB below; 1.1 GiB at 1M); the least recently searched
project goes first.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser

from core.errors import DomainError
from labeller.models import ActiveLearningState, Item, ItemVector, Project
from labeller.selectors import items_open_to_similar_labelling
from ml.similarity import VectorMatrix

from .encoding import encoder_for
from .selectors import state_for

LOAD_CHUNK = 5000


@dataclass
class VectorIndex:
    marker: tuple
    ids: np.ndarray  # item ids, ascending
    matrix: VectorMatrix  # their vectors, in the order of `ids`

    @property
    def nbytes(self) -> int:
        return self.ids.nbytes + self.matrix.nbytes

    def row_of(self, item_id: int) -> int | None:
        row = int(np.searchsorted(self.ids, item_id))
        return row if row < len(self.ids) and self.ids[row] == item_id else None


_indexes: OrderedDict[tuple[int, str], VectorIndex] = OrderedDict()
_lock = threading.Lock()  # one load per project at a time; searches only read a loaded index


def _stored(project_id: int, encoder_version: str):
    return ItemVector.objects.filter(project_id=project_id, encoder_version=encoder_version)


def _marker(state: ActiveLearningState) -> tuple:
    """What changes whenever vectors are written: encode_pending bumps its heartbeat and count
    after every chunk it stores (a row already read by the search: no extra query)."""
    return state.encode_heartbeat_at, state.encode_done


def _load(project_id: int, encoder_version: str, after: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(ids, float16 rows) of the vectors with item id above `after`, read in chunks straight
    into arrays sized by a count first, so no second full-size copy is ever held."""
    stored = _stored(project_id, encoder_version).filter(item_id__gt=after)
    count = stored.count()
    ids, rows, filled = np.zeros(count, dtype=np.int64), None, 0
    extra_ids, extra = [], []  # rows stored between the count and the read
    batch_ids, blobs = [], []

    def flush():
        nonlocal rows, filled
        if rows is None:
            rows = np.zeros((count, len(blobs[0]) // 2), dtype=np.float16)
        chunk = np.frombuffer(b"".join(blobs), dtype=np.float16).reshape(len(blobs), rows.shape[1])
        fits = max(0, min(len(blobs), count - filled))
        ids[filled:filled + fits], rows[filled:filled + fits] = batch_ids[:fits], chunk[:fits]
        filled += fits
        if fits < len(blobs):
            extra_ids.extend(batch_ids[fits:])
            extra.append(chunk[fits:])

    for item_id, blob in stored.order_by("item_id").values_list("item_id", "vector").iterator(chunk_size=LOAD_CHUNK):
        batch_ids.append(item_id)
        blobs.append(bytes(blob))
        if len(blobs) == LOAD_CHUNK:
            flush()
            batch_ids, blobs = [], []
    if blobs:
        flush()
    if rows is None:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float16)
    ids, rows = ids[:filled], rows[:filled]
    if extra:
        ids, rows = np.concatenate([ids, np.array(extra_ids, dtype=np.int64)]), np.concatenate([rows, *extra])
    return ids, rows


def vector_index_for(project: Project, state: ActiveLearningState) -> VectorIndex:
    """The project's vectors under its current encoder, from this process's cache. When the encoder
    has stored vectors since (the marker moved), only those with a higher item id than any cached
    are read and appended: encoding goes in id order and new items get higher ids. Vectors of
    deleted items may linger in the matrix; the search's item query drops them."""
    key = (project.id, state.encoder_version)
    marker = _marker(state)
    with _lock:
        index = _indexes.get(key)
        if index is None or (index.marker != marker and not len(index.ids)):
            ids, rows = _load(project.id, state.encoder_version)
            index = VectorIndex(marker=marker, ids=ids, matrix=VectorMatrix(rows))
        elif index.marker != marker:
            ids, rows = _load(project.id, state.encoder_version, after=int(index.ids[-1]))
            if len(ids):
                index = VectorIndex(marker=marker, ids=np.concatenate([index.ids, ids]), matrix=index.matrix.appended(rows))
            else:
                index = VectorIndex(marker=marker, ids=index.ids, matrix=index.matrix)
        _indexes[key] = index
        _indexes.move_to_end(key)
        budget = settings.LABELLOOP_SIMILAR_CACHE_MB * 1024 * 1024
        while len(_indexes) > 1 and sum(i.nbytes for i in _indexes.values()) > budget:
            _indexes.popitem(last=False)
        return index


def vector_cache_bytes() -> int:
    """Memory held by this process's find-similar cache."""
    return sum(index.nbytes for index in list(_indexes.values()))


def vector_cache_clear() -> None:
    with _lock:
        _indexes.clear()


def similar_items(
    *,
    project: Project,
    item: Item | None = None,
    text: str | None = None,
    k: int = 20,
    min_similarity: float = 0.0,
    unlabelled_only: bool = False,
    open_to_labelling_by: AbstractBaseUser | None = None,
) -> list[tuple[Item, float]]:
    """The project's `k` items nearest to `item` (by its stored vector; the item itself left out)
    or to `text` (embedded by the project's encoder), with cosine >= `min_similarity`, best first.
    `unlabelled_only`: items without a label; `open_to_labelling_by`: items "label similar" may label
    for that expert (labeller.selectors.items_open_to_similar_labelling). Never another project's items."""
    if (item is None) == (text is None):
        raise DomainError("give an item or a text to find similar items to", field="text")
    if item is not None and item.project_id != project.id:
        raise DomainError("no such item in this project", field="item")
    state = state_for(project.id)
    encoder_version = state.encoder_version
    if not encoder_version:
        raise DomainError("this project's items have not been encoded yet", field="item")
    index = vector_index_for(project, state)
    skip = None
    if item is not None:
        skip = index.row_of(item.id)
        if skip is None:
            raise DomainError("this item has no stored vector yet: it is encoded shortly after import", field="item")
        query = index.matrix.row(skip)
    else:
        encoder = encoder_for(project)
        if encoder.version != encoder_version:
            raise DomainError("the items are being re-encoded with a new model; try again once that is done", field="text")
        query = encoder.encode([text])[0]
    candidates = Item.objects.filter(project=project).select_related("project")
    if unlabelled_only:
        candidates = candidates.filter(annotation_count=0)
    if open_to_labelling_by is not None:
        candidates = items_open_to_similar_labelling(candidates, user=open_to_labelling_by)
    filtered = unlabelled_only or open_to_labelling_by is not None
    # Ask the matrix for more than k when the database filter may drop some, and widen until k
    # are found or nothing above the threshold is left.
    top = max(4 * k, k + 50) if filtered else k
    while True:
        rows, sims = index.matrix.nearest(query, top=top, min_similarity=min_similarity, skip=skip)
        ids = index.ids[rows].tolist()
        found = candidates.in_bulk(ids) if ids else {}
        picked = [(found[i], float(s)) for i, s in zip(ids, sims) if i in found][:k]
        exhausted = len(rows) < top or top >= len(index.ids)
        if len(picked) >= k or exhausted or not filtered:
            return picked
        top *= 4
