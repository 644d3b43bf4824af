"""Span labelling (named entities) as token classification: BIO targets from code-point spans,
decoding of per-word probabilities back into spans with a confidence each, sequence-level
uncertainty for the active-learning queue, the frozen-encoder features and the fast head.
Plain numpy, transformers and scikit-learn; no Django. Fine-tuning is in ml/token_finetune.py.

Words. A "word" is a run of non-whitespace characters: the unit a span snaps to (the labelling
screen snaps to tokens the same way) and the unit the model tags. A word is read by its
sub-tokens from the fast tokenizer's offset_mapping, whose offsets index the Python str, i.e. are
code points: an emoji, a flag (two code points) or a CJK character never shifts an offset. A word
the tokenizer drops entirely (or one past the model's max length) gets no vector and is tagged O.

Contract: spans are [{"start", "end", "label"}] in code points, end exclusive.
"""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .encoder import clip_texts
from .spans import bio_to_spans

IGNORE = -100  # a target the loss skips (torch's CrossEntropyLoss default ignore_index)
FIRST, ALL = "first", "all"  # which sub-tokens of a word carry a training target
_WORD = re.compile(r"\S+")


def tag_set(labels: Sequence[str]) -> list[str]:
    """["O", "B-<label>", "I-<label>", ...] in the labels' order."""
    return ["O"] + [f"{prefix}-{label}" for label in labels for prefix in ("B", "I")]


def words_of(text: str) -> list[tuple[int, int]]:
    """(start, end) code-point offsets of each whitespace-separated word."""
    return [m.span() for m in _WORD.finditer(text)]


def word_tags(words: Sequence[tuple[int, int]], spans: Sequence[dict]) -> list[str]:
    """One BIO tag per word: a word that overlaps a span takes its label, B- for the span's first
    word. A span that starts or ends inside a word is widened to the whole word."""
    tags = ["O"] * len(words)
    starts = [w[0] for w in words]
    for span in sorted(spans, key=lambda s: (s["start"], s["end"])):
        first = max(0, bisect.bisect_right(starts, span["start"]) - 1)
        inside = [i for i in range(first, len(words)) if words[i][0] < span["end"] and words[i][1] > span["start"]]
        for n, i in enumerate(inside):
            tags[i] = ("B-" if n == 0 else "I-") + span["label"]
    return tags


# A word's casing, the cue an uncased encoder never sees (all-MiniLM-L6-v2 lower-cases its input,
# so "Apple" and "apple" reach it as the same ids). A fine-tuned tagger with `casing` on feeds it
# in as each sub-token's token type (ml.token_finetune). LOWER also covers words without letters.
LOWER, TITLE, UPPER, MIXED = range(4)
CASINGS = 4


def casing(word: str) -> int:
    """LOWER ("apple", "2024", "😀"), TITLE ("Apple", "#Apple", "I"), UPPER ("NASA", "#NFL") or
    MIXED ("iPhone", "@BarackObama"), from the word's cased letters. The str methods run in C: a
    refresh reads the casing of every word of its pool."""
    if word.islower():  # every cased letter small (most words)
        return LOWER
    capitals = sum(map(str.isupper, word))
    if capitals == 0:  # no cased letter at all
        return LOWER
    if word.isupper():
        return UPPER if capitals > 1 else TITLE
    if capitals == 1:
        for c in word:  # the first cased letter decides: "Apple" against "iPhone"
            if c.isupper():
                return TITLE
            if c.islower():
                return MIXED
    return MIXED


@dataclass
class Aligned:
    """One text as the model sees it: sub-token ids, each sub-token's word (-1: special token or
    whitespace), each word's offsets and first sub-token (-1: none), and each sub-token's word's
    casing (LOWER for special tokens)."""
    input_ids: list[int]
    token_word: list[int]
    words: list[tuple[int, int]]
    first_token: list[int]
    token_casing: list[int]


def align(tokenizer, texts: Sequence[str], *, max_length: int = 128) -> list[Aligned]:
    texts = clip_texts(texts)
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length, return_offsets_mapping=True)
    out = []
    for text, ids, offsets in zip(texts, encoded["input_ids"], encoded["offset_mapping"]):
        words = words_of(text)
        starts = [w[0] for w in words]
        token_word, first_token = [], [-1] * len(words)
        for t, (start, end) in enumerate(offsets):
            w = bisect.bisect_right(starts, start) - 1 if end > start else -1
            if w >= 0 and start >= words[w][1]:
                w = -1
            token_word.append(w)
            if w >= 0 and first_token[w] < 0:
                first_token[w] = t
        casings = [casing(text[start:end]) for start, end in words]
        out.append(Aligned(list(ids), token_word, words, first_token, [casings[w] if w >= 0 else LOWER for w in token_word]))
    return out


def token_targets(aligned: Aligned, tags: Sequence[str], tag_index: dict[str, int], *, mode: str = FIRST) -> list[int]:
    """A target per sub-token: the word's tag on its first sub-token; the rest IGNORE ("first"),
    or I- of the word's type ("all"; O stays O)."""
    targets = []
    for t, w in enumerate(aligned.token_word):
        if w < 0:
            targets.append(IGNORE)
        elif aligned.first_token[w] == t:
            targets.append(tag_index[tags[w]])
        elif mode == ALL:
            tag = tags[w]
            targets.append(tag_index["O" if tag == "O" else "I-" + tag[2:]])
        else:
            targets.append(IGNORE)
    return targets


def word_probs(aligned: Aligned, token_probs: np.ndarray) -> np.ndarray:
    """(n_words, n_tags) from (n_tokens, n_tags): each word's first sub-token's row, whichever
    sub-tokens were trained (token_targets' `mode`): in "all" the later ones learn I- of the word's
    type, so a mean over them would read a name that starts a span as one that continues the span
    before it. A word without sub-tokens (cut by the max length) is O with probability 1."""
    out = np.zeros((len(aligned.words), token_probs.shape[1]), dtype=np.float32)
    out[:, 0] = 1.0
    for w, t in enumerate(aligned.first_token):
        if 0 <= t < len(token_probs):
            out[w] = token_probs[t]
    return out


def _allowed(tags: Sequence[str]) -> np.ndarray:
    """allowed[i, j]: tag j may follow tag i (I-X only after B-X or I-X)."""
    n = len(tags)
    allowed = np.ones((n, n), dtype=bool)
    for j, tag in enumerate(tags):
        if tag.startswith("I-"):
            for i, before in enumerate(tags):
                allowed[i, j] = before[2:] == tag[2:] and before[0] in "BI"
    return allowed


def viterbi(probs: np.ndarray, tags: Sequence[str]) -> list[int]:
    """The most probable valid BIO path under the words' independent probabilities: a CRF-free
    repair (no I-X after O or after another type; no I- first)."""
    if len(probs) == 0:
        return []
    allowed = _allowed(tags)
    log_p = np.log(np.clip(probs, 1e-9, 1.0))
    start_ok = np.array([not t.startswith("I-") for t in tags])
    score = np.where(start_ok, log_p[0], -np.inf)
    back = np.zeros((len(probs), len(tags)), dtype=int)
    transition = np.where(allowed, 0.0, -np.inf)
    for w in range(1, len(probs)):
        total = score[:, None] + transition
        back[w] = total.argmax(axis=0)
        score = total.max(axis=0) + log_p[w]
    path = [int(score.argmax())]
    for w in range(len(probs) - 1, 0, -1):
        path.append(int(back[w, path[-1]]))
    return path[::-1]


def decode(probs: np.ndarray, words: Sequence[tuple[int, int]], tags: Sequence[str], *, repair: bool = True,
           text: str | None = None, o_scale: float = 1.0) -> list[dict]:
    """Spans from per-word tag probabilities, each with `confidence`: the mean over its words of
    the probability of the tag chosen for the word (and `text`, if the text is given). The path is
    chosen with P(O) multiplied by `o_scale` (< 1 trades precision for recall; tags[0] is O)."""
    if len(words) == 0:
        return []
    scaled = probs
    if o_scale != 1.0:
        scaled = probs.copy()
        scaled[:, 0] *= o_scale
    path = viterbi(scaled, tags) if repair else [int(i) for i in scaled.argmax(axis=1)]
    chosen = [tags[i] for i in path]
    spans = bio_to_spans(words, chosen)
    starts = [w[0] for w in words]
    for span in spans:
        first = bisect.bisect_left(starts, span["start"])
        last = bisect.bisect_left(starts, span["end"])  # words whose start is before the span's end
        rows = range(first, last)
        span["confidence"] = float(np.mean([probs[w, path[w]] for w in rows]))
        if text is not None:
            span["text"] = text[span["start"]:span["end"]]
    return spans


def text_confidence(probs: np.ndarray) -> float:
    """How sure the model is of a whole text's tagging: the top probability of its least sure
    word (1.0 for a text with no words). A likely entity the model left out lowers it too, which a
    mean over the spans it did predict would not show; serving abstains on it."""
    return float(probs.max(axis=1).min()) if len(probs) else 1.0


# --- sequence-level uncertainty -----------------------------------------------------------------

MEAN, MAX, SUM, ROOT = "mean", "max", "sum", "root"
MARGIN, ENTROPY, ENTITY = "margin", "entropy", "entity"


def word_margins(probs: np.ndarray) -> np.ndarray:
    """1 - (p1 - p2) per word: 0 when sure, 1 when torn between two tags."""
    if len(probs) == 0:
        return np.zeros(0)
    top2 = np.partition(probs, -2, axis=1)[:, -2:]
    return 1.0 - (top2[:, 1] - top2[:, 0])


# The expert queue's sequence score (active_learning.span_refresh): the word margins' sum over the
# square root of the words, between the mean (which favours short texts) and the sum (long ones).
# Chosen on btc.dev with the casing head (docs/benchmarks.md, "Casing"): 500 texts ranked so
# reached random order's F1 at 1,000 with 62 % of its tokens; the mean did not.
QUEUE_WORD, QUEUE_REDUCE = MARGIN, ROOT


def word_uncertainty(probs: np.ndarray, *, word: str = MARGIN) -> np.ndarray:
    """Per word, higher = more unsure: "margin" (word_margins), "entropy" (normalised to [0, 1]),
    or "entity": the margin times the probability that the word is part of an entity (1 - P(O),
    tags[0] is O), so that a close call between two entity types counts and one between O and a
    barely likely entity counts less."""
    if word == MARGIN:
        return word_margins(probs)
    if word == ENTROPY:
        p = np.clip(probs, 1e-12, 1.0)
        return -(p * np.log(p)).sum(axis=1) / np.log(max(2, probs.shape[1])) if len(probs) else np.zeros(0)
    if word == ENTITY:
        return word_margins(probs) * (1.0 - probs[:, 0]) if len(probs) else np.zeros(0)
    raise ValueError(f"unknown word uncertainty {word!r}; choose margin, entropy or entity")


def sequence_uncertainty(probs: np.ndarray, starts: np.ndarray, *, reduce: str = MEAN, word: str = MARGIN) -> np.ndarray:
    """One score per text, higher = more unsure, from stacked word probabilities (`probs`, rows of
    text i at starts[i]:starts[i+1]) and a word uncertainty (word_uncertainty). "mean" divides by
    the text's words (length-normalised: a long text is not first for being long); "max" is its
    closest call; "sum" grows with length, as token-counting uncertainty does; "root" divides
    the sum by the square root of the words (between mean and sum). A text with no words scores 0."""
    margins = word_uncertainty(probs, word=word)
    sums = np.add.reduceat(np.concatenate([margins, [0.0]]), starts[:-1]) if len(starts) > 1 else np.zeros(0)
    counts = np.diff(starts)
    sums = np.where(counts > 0, sums, 0.0)
    if reduce == SUM:
        return sums
    if reduce == MEAN:
        return sums / np.maximum(counts, 1)
    if reduce == ROOT:
        return sums / np.sqrt(np.maximum(counts, 1))
    if reduce == MAX:
        out = np.zeros(len(counts))
        has = counts > 0
        out[has] = np.maximum.reduceat(np.concatenate([margins, [0.0]]), starts[:-1][has])
        return out
    raise ValueError(f"unknown reduction {reduce!r}; choose mean, max, sum or root")


# --- frozen features and the fast head ------------------------------------------------------------

@dataclass
class WordVectors:
    """Per-word vectors of many texts stacked (the rows of text i are starts[i]:starts[i+1]) and a
    unit sentence vector per text (for batch diversity). float16 halves what is stored."""
    vectors: np.ndarray
    starts: np.ndarray
    sentences: np.ndarray

    def rows(self, text_indices: Sequence[int]) -> np.ndarray:
        return np.concatenate([np.arange(self.starts[i], self.starts[i + 1]) for i in text_indices] or [np.zeros(0, int)])

    @property
    def nbytes(self) -> int:
        return self.vectors.nbytes + self.starts.nbytes + self.sentences.nbytes


def encode_words(encoder, texts: Sequence[str], *, batch_size: int = 64, dtype=np.float16,
                 hidden_states: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None) -> WordVectors:
    """Frozen base-encoder features: each word's first sub-token hidden state (a word without
    sub-tokens gets zeros), and the mean-pooled unit sentence vector. `encoder` is an
    ml.encoder.Encoder (its tokenizer, max length and dimension); `hidden_states(ids, mask)` runs
    the forward pass, by default its torch model (serving passes an ONNX Runtime copy,
    ml.onnx_serving.OnnxEncoder.hidden_states)."""
    forward = hidden_states or _torch_hidden_states(encoder)
    aligned = align(encoder.tokenizer, texts, max_length=encoder.max_length)
    counts = np.array([len(a.words) for a in aligned])
    starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    vectors = np.zeros((int(starts[-1]), encoder.dim), dtype=dtype)
    sentences = np.zeros((len(texts), encoder.dim), dtype=np.float32)
    order = np.argsort([len(a.input_ids) for a in aligned], kind="stable")
    pad = encoder.tokenizer.pad_token_id or 0
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        longest = max(len(aligned[i].input_ids) for i in idx)
        ids = np.full((len(idx), longest), pad, dtype=np.int64)
        mask = np.zeros((len(idx), longest), dtype=np.int64)
        for row, i in enumerate(idx):
            n = len(aligned[i].input_ids)
            ids[row, :n] = aligned[i].input_ids
            mask[row, :n] = 1
        hidden = forward(ids, mask)
        m = mask[:, :, None].astype(hidden.dtype)
        pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
        sentences[idx] = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        for row, i in enumerate(idx):
            first = np.array(aligned[i].first_token, dtype=np.int64)
            has = first >= 0
            vectors[starts[i] + np.flatnonzero(has)] = hidden[row, first[has]]
    return WordVectors(vectors, starts, sentences)


def _torch_hidden_states(encoder) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    def forward(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return encoder.model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).last_hidden_state.numpy()

    return forward


# The word head's settings, chosen on btc.dev (never test) with 500 and 1,000 random training
# texts: stronger regularisation than classification's C = 10, and O words (84 % of BTC's words)
# weighted half, which trades a little precision for much recall: dev entity F1 0.526 -> 0.554 at
# 1,000 texts, 0.473 -> 0.506 at 500 (docs/benchmarks.md, "Span labelling").
HEAD_C = 0.3
O_WEIGHT = 0.5
# The head also reads each word's casing (casing_features), the capitals the uncased encoder's word
# vectors lack: one-hot columns times this weight, appended to the word vector (a larger weight is
# a weaker prior on them under the head's C). Chosen on btc.dev among 1, 3 and 10
# (docs/benchmarks.md, "Casing"): it lifted the queue's strategy more than random order.
CASING_WEIGHT = 3.0


def head_inputs(vectors: np.ndarray, casings: np.ndarray | None) -> np.ndarray:
    """What the word head reads: float32 word vectors, with the casing columns when given."""
    x = np.asarray(vectors, dtype=np.float32)
    if casings is None:
        return x
    if len(casings) != len(x):
        raise ValueError(f"{len(casings)} casing rows for {len(x)} word vectors")
    return np.hstack([x, CASING_WEIGHT * np.asarray(casings, dtype=np.float32)])


def fit_word_head(vectors: np.ndarray, tags: Sequence[str], tag_names: Sequence[str], *,
                  casings: np.ndarray | None = None, c: float = HEAD_C, o_weight: float = O_WEIGHT, seed: int = 0):
    """A logistic-regression head over word vectors (ml.heads.LinearHead), and over each word's
    casing when `casings` (casing_features rows, one per vector) are given: fit in about a second on
    a thousand labelled texts' words; tags never seen yet get probability ~0."""
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    from .heads import _as_head, fit_head

    x = head_inputs(vectors, casings)
    y = np.asarray(tags)
    if len(set(tags)) < 2:  # nothing to weigh: fit_head's one-class head
        return fit_head(x, [[t] for t in tags], classes=list(tag_names), c=c, seed=seed)
    with threadpool_limits(limits=1, user_api="blas"):  # as ml.heads.fit_head (lbfgs is faster so)
        model = LogisticRegression(C=c, max_iter=300, random_state=seed)
        model.fit(x, y, sample_weight=np.where(y == "O", o_weight, 1.0))
    return _as_head(model, list(tag_names))


def head_probs(head, vectors: np.ndarray, casings: np.ndarray | None = None, *, chunk: int = 65536) -> np.ndarray:
    """Softmax probabilities of `head` over word vectors (with their casing rows for a head that
    reads them), in chunks (float16 rows are widened a chunk at a time, never the whole pool)."""
    out = np.empty((len(vectors), len(head.classes)), dtype=np.float32)
    if len(vectors) == 0:
        return out
    with_casing = head.coef.shape[1] == np.shape(vectors)[1] + CASINGS
    if with_casing and casings is None:
        raise ValueError("this word head reads casing: pass each word's casing row")
    for s in range(0, len(vectors), chunk):
        out[s:s + chunk] = head.predict_proba(head_inputs(vectors[s:s + chunk], casings[s:s + chunk] if with_casing else None))
    return out


def _one_hot_casings(codes: list[int]) -> np.ndarray:
    return np.eye(CASINGS, dtype=np.float32)[np.asarray(codes, dtype=np.int64)]


def casing_features(texts: Sequence[str]) -> np.ndarray:
    """(n_words, CASINGS) one-hot casing of every word of every (clipped) text, stacked in the
    row order of WordVectors: the capitals the frozen, uncased word vectors cannot carry."""
    return _one_hot_casings([casing(text[a:b]) for text in clip_texts(texts) for a, b in words_of(text)])


def stored_casings(items: Sequence[tuple[str | None, int]]) -> np.ndarray:
    """The casing rows of items' stored words, stacked: for each (text, n_words), its (clipped)
    text's first n_words words, padded with lower case should the text have changed since it was
    encoded (its rows no longer line up either; the next encoding replaces them)."""
    codes: list[int] = []
    for text, n_words in items:
        clipped = clip_texts([str(text or "")])[0]
        mine = [casing(clipped[a:b]) for a, b in words_of(clipped)[:n_words]]
        codes += mine + [LOWER] * (n_words - len(mine))
    return _one_hot_casings(codes)


def gold_word_tags(texts: Sequence[str], spans: Sequence[Sequence[dict]]) -> list[str]:
    """Stacked word tags of many texts, in the row order of WordVectors."""
    out: list[str] = []
    for text, text_spans in zip(texts, spans):
        out += word_tags(words_of(text), text_spans)
    return out


def predict_spans(probs: np.ndarray, starts: np.ndarray, texts: Sequence[str], tag_names: Sequence[str],
                  *, repair: bool = True) -> list[list[dict]]:
    """Spans for every text from stacked word probabilities."""
    return [decode(probs[starts[i]:starts[i + 1]], words_of(text), tag_names, repair=repair)
            for i, text in enumerate(clip_texts(texts))]
