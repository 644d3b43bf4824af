"""Entity-level precision, recall and F1 with strict matching (same start, end and label), per
type and micro-averaged over all types, as seqeval's default mode scores BIO output. Plain Python.
(ml/spans.py, written in parallel, has its own; the lead keeps one at merge.)
"""
from __future__ import annotations

from collections import Counter
from typing import Sequence


def _prf(tp: int, n_pred: int, n_gold: int) -> dict:
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "support": n_gold, "predicted": n_pred}


def entity_scores(gold: Sequence[Sequence[dict]], predicted: Sequence[Sequence[dict]]) -> dict:
    """{"micro": {...}, "per_type": {label: {...}}}, each with precision, recall, f1, support (gold
    entities) and predicted; one list of spans per text, in the same order on both sides."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold texts but {len(predicted)} predicted")
    tp, n_gold, n_pred = Counter(), Counter(), Counter()
    for gold_spans, pred_spans in zip(gold, predicted):
        g = {(s["start"], s["end"], s["label"]) for s in gold_spans}
        p = {(s["start"], s["end"], s["label"]) for s in pred_spans}
        for key in g:
            n_gold[key[2]] += 1
        for key in p:
            n_pred[key[2]] += 1
            if key in g:
                tp[key[2]] += 1
    labels = sorted(set(n_gold) | set(n_pred))
    return {"micro": _prf(sum(tp.values()), sum(n_pred.values()), sum(n_gold.values())),
            "per_type": {label: _prf(tp[label], n_pred[label], n_gold[label]) for label in labels}}


def entity_f1(gold: Sequence[Sequence[dict]], predicted: Sequence[Sequence[dict]]) -> float:
    return entity_scores(gold, predicted)["micro"]["f1"]
