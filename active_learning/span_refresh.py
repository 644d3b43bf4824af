"""The refresh of a word-level project (spans): refit a word tagger on the labelled items' stored
word vectors, re-rank the expert queue by each text's mean word margin, and precompute the
suggested spans for the head of the queue, each with its evidence (the nearest labelled spans of
its label: span_evidence).

The pieces it shares with classification (the open pool, the evaluation share, the priority
writes, the stored head) are active_learning.pool's; the ML is ml.token_model's. The pool's
word vectors are streamed from the database a chunk of items at a time, so a refresh never holds
the pool's words in float32 (docs/active-learning.md, "Span projects").
"""
from __future__ import annotations

import time

import numpy as np

from labeller.models import Item, ItemWordVectors, Project, SuggestionMode
from labeller.span_suggestions import span_suggestion, word_matrix
from ml import strategies, token_model
from ml.encoder import clip_texts

from .pool import (
    RefreshReport, open_pool, project_vectors, queue_from_scores, refresh_batch, refresh_beat, store_head, suggested_top,
    training_labels, write_queue,
)
from .selectors import state_for
from .span_evidence import SpanBank, attach_evidence
from .suggestions import SUGGESTED_TOP

STREAM_ITEMS = 2000  # items whose word vectors are read and scored per step (~24 MiB of tweets)


def word_rows(project: Project, encoder_version: str, item_ids) -> dict[int, tuple[int, bytes]]:
    """item id -> (n_words, float16 blob) of the given items."""
    rows = ItemWordVectors.objects.filter(project=project, encoder_version=encoder_version, item_id__in=list(item_ids))
    return {item_id: (n, bytes(blob)) for item_id, n, blob in rows.values_list("item_id", "n_words", "vectors")}


def training_words(project: Project, encoder_version: str, labelled: dict[int, list[dict]],
                   labels: set[str]) -> tuple[np.ndarray, np.ndarray, list[str], SpanBank]:
    """The labelled items' word vectors (float32, stacked) and each word's casing row, each word's
    BIO tag from the item's resolved spans (spans of a label the project no longer has are left
    out), and those spans as the evidence bank (span_evidence) from the same rows."""
    matrices, kept, tags, bank = [], [], [], SpanBank()
    ids = sorted(labelled)
    texts = dict(Item.objects.filter(id__in=ids).values_list("id", f"data__{project.text_field}"))
    stored = word_rows(project, encoder_version, ids)
    for item_id in ids:
        if item_id not in stored:
            continue
        n_words, blob = stored[item_id]
        clipped = clip_texts([str(texts.get(item_id) or "")])[0]
        words = token_model.words_of(clipped)[:n_words]
        if len(words) != n_words:  # the text changed since it was encoded: its words no longer line up
            continue
        spans = [span for span in labelled[item_id] if span.get("label") in labels]
        matrix = word_matrix(blob, n_words)
        matrices.append(matrix)
        kept.append((clipped, n_words))
        tags += token_model.word_tags(words, spans)
        bank.add(item_id=item_id, text=str(texts.get(item_id) or ""), words=words, matrix=matrix, spans=spans)
    if not matrices:
        return np.zeros((0, 0), np.float32), np.zeros((0, token_model.CASINGS), np.float32), [], bank
    return np.concatenate(matrices).astype(np.float32), token_model.stored_casings(kept), tags, bank


def pool_uncertainty(project: Project, encoder_version: str, head, pool_ids: list[int]) -> np.ndarray:
    """Each pool item's sequence uncertainty (ml.token_model.sequence_uncertainty with the
    QUEUE_WORD and QUEUE_REDUCE that docs/benchmarks.md chose), read STREAM_ITEMS items at a time."""
    index = {item_id: i for i, item_id in enumerate(pool_ids)}
    scores = np.zeros(len(pool_ids))
    rows = (ItemWordVectors.objects.filter(project=project, encoder_version=encoder_version, item__is_done=False)
            .order_by("item_id").values_list("item_id", "n_words", "vectors", f"item__data__{project.text_field}"))
    chunk: list[tuple[int, int, bytes, str]] = []

    def score(chunk):
        counts = np.array([n for _, n, _, _ in chunk], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(counts)])
        if not starts[-1]:
            return
        matrix = np.frombuffer(b"".join(blob for _, _, blob, _ in chunk), dtype=np.float16).reshape(int(starts[-1]), -1)
        probs = token_model.head_probs(head, matrix, token_model.stored_casings([(text, n) for _, n, _, text in chunk]))
        for (item_id, _, _, _), value in zip(chunk, token_model.sequence_uncertainty(
                probs, starts, reduce=token_model.QUEUE_REDUCE, word=token_model.QUEUE_WORD)):
            scores[index[item_id]] = value

    for item_id, n_words, blob, text in rows.iterator(chunk_size=STREAM_ITEMS):
        if item_id in index:
            chunk.append((item_id, n_words, bytes(blob), text))
        if len(chunk) >= STREAM_ITEMS:
            score(chunk)
            chunk = []
            refresh_beat(project_id=project.id)
    if chunk:
        score(chunk)
    return scores


def span_suggestions(project: Project, head, encoder_version: str, item_ids, head_version: int,
                     bank: SpanBank | None = None) -> list[dict | None]:
    """The suggested spans of each item (None for one without word vectors), each span with its
    evidence from `bank` (the labelled spans nearest to it) when one is given."""
    stored = word_rows(project, encoder_version, [int(i) for i in item_ids])
    texts = dict(Item.objects.filter(id__in=[int(i) for i in item_ids]).values_list("id", f"data__{project.text_field}"))
    out = []
    for item_id in item_ids:
        row = stored.get(int(item_id))
        if row is None:
            out.append(None)
            continue
        text, matrix = str(texts.get(int(item_id)) or ""), word_matrix(row[1], row[0])
        suggestion = span_suggestion(head, matrix, text, head_version)
        if bank is not None:
            words = token_model.words_of(clip_texts([text])[0])[:len(matrix)]
            attach_evidence(suggestion, matrix=matrix, words=words, bank=bank)
        out.append(suggestion)
    return out


def span_refresh_run(*, project: Project, seed: int = 0) -> RefreshReport:
    """Fit the word head on the labelled items' words, score the open pool, write priorities and
    the suggestions for the head of the queue. Cold start (no entity labelled yet) as classification."""
    started = time.perf_counter()
    report = RefreshReport()
    state = state_for(project.id)
    ids, sentences = project_vectors(project, state.encoder_version)
    with_words = set(ItemWordVectors.objects.filter(project=project, encoder_version=state.encoder_version)
                     .values_list("item_id", flat=True).iterator(chunk_size=10000))
    keep = np.array([item_id in with_words for item_id in ids.tolist()], dtype=bool)
    ids, sentences = ids[keep], sentences[keep]
    if len(ids) == 0:
        return report
    position = {item_id: i for i, item_id in enumerate(ids.tolist())}
    labelled = {item_id: spans for item_id, spans in training_labels(project).items() if item_id in position}
    pool_ids, eval_ids = open_pool(project, position)
    report.pool, report.labelled = len(pool_ids) + len(eval_ids), len(labelled)
    label_keys = list(project.labels.values_list("key", flat=True))
    pool_sentences = sentences[[position[i] for i in pool_ids]] if pool_ids else np.zeros((0, sentences.shape[1]), np.float32)
    batch_size = refresh_batch(project)

    t = time.perf_counter()
    head, bank = None, None
    if len(labelled) >= 2:
        x, casings, tags, bank = training_words(project, state.encoder_version, labelled, set(label_keys))
        if any(tag != "O" for tag in tags):  # with no entity yet, every word's answer would be O
            head = token_model.fit_word_head(x, tags, token_model.tag_set(label_keys), casings=casings, seed=seed)
    report.seconds_fit = time.perf_counter() - t
    refresh_beat(project_id=project.id)

    t = time.perf_counter()
    rng = np.random.default_rng(seed + state.head_version)
    if head is None:
        report.cold_start = True
        scores = strategies.cold_start(pool_sentences, batch_size=batch_size, seed=seed)
    elif project.strategy == strategies.RANDOM:
        scores = rng.random(len(pool_ids))
    else:
        scores = pool_uncertainty(project, state.encoder_version, head, pool_ids)
    final = queue_from_scores(project, scores=scores, vectors=pool_sentences, pool_ids=pool_ids, eval_ids=eval_ids,
                              rng=rng, seed=seed, cold_start=head is None)
    report.seconds_score = time.perf_counter() - t
    refresh_beat(project_id=project.id)

    t = time.perf_counter()
    write_queue(project, final)
    top, suggestions = [], []
    if head is not None and project.suggestion_mode != SuggestionMode.OFF:
        candidates = suggested_top(final, eval_ids, SUGGESTED_TOP)
        made = span_suggestions(project, head, state.encoder_version, candidates, state.head_version + 1, bank)
        top = [item_id for item_id, s in zip(candidates, made) if s is not None]
        suggestions = [s for s in made if s is not None]
    store_head(project, head, trained_on=len(labelled), top=top, suggestions=suggestions)
    report.seconds_write = time.perf_counter() - t
    report.seconds_total = time.perf_counter() - started
    return report
