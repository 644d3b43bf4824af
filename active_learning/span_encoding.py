"""Encoding for word-level task types (spans): one forward pass of the frozen base encoder per
chunk gives each item both its sentence vector (ItemVector: similarity, diversity and the data
manager read it as for any project) and its per-word vectors (ItemWordVectors: the span refresh's
word head is fitted on them and scores the pool with them). See docs/active-learning.md, "Span
projects".
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from django.db.models import QuerySet

from labeller.models import Item, ItemVector, ItemWordVectors, Project
from ml import token_model
from ml.encoder import to_float16_bytes


def pending_items(project: Project) -> QuerySet:
    """Items without word vectors under the current encoder (their sentence vector may be there:
    a project encoded before its word vectors were stored gets them on the next encode)."""
    return Item.objects.filter(project=project, word_vectors__isnull=True)


def drop_other_versions(project: Project, encoder_version: str) -> None:
    ItemWordVectors.objects.filter(project=project).exclude(encoder_version=encoder_version).delete()


def words_read(matrix: np.ndarray) -> int:
    """How many leading words the model read: the words past the tokenizer's 128 sub-tokens have
    no vector (zero rows) and are not stored; the refresh and suggestions count them O."""
    nonzero = np.flatnonzero(np.any(matrix != 0, axis=1))
    return int(nonzero[-1]) + 1 if len(nonzero) else 0


def encode(encoder, texts: Sequence[str]) -> token_model.WordVectors:
    """One forward pass: each text's sentence vector and its word matrix (before any write, so no
    transaction is held while the model runs)."""
    return token_model.encode_words(encoder, texts)


def store_chunk(project: Project, encoder_version: str, item_ids: Sequence[int], encoded: token_model.WordVectors) -> None:
    """Store each item's sentence vector and word matrix (float16) from `encode`."""
    sentences = to_float16_bytes(encoded.sentences)
    ItemVector.objects.bulk_create(
        [ItemVector(item_id=item_id, project=project, encoder_version=encoder_version, vector=blob)
         for item_id, blob in zip(item_ids, sentences)],
        ignore_conflicts=True,  # kept from an encode before word vectors were stored: same encoder
    )
    rows = []
    for i, item_id in enumerate(item_ids):
        matrix = encoded.vectors[encoded.starts[i]:encoded.starts[i + 1]]
        n = words_read(matrix)
        rows.append(ItemWordVectors(item_id=item_id, project=project, encoder_version=encoder_version, n_words=n,
                                    vectors=np.ascontiguousarray(matrix[:n], dtype=np.float16).tobytes()))
    ItemWordVectors.objects.bulk_create(rows, ignore_conflicts=True)
