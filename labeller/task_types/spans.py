"""Span labelling (named entities): an annotation is a list of spans {"start", "end", "label"} in
the item's text, offsets in Unicode code points, end exclusive, sorted by (start, end, label).

What a span is, offsets, CoNLL/BIO and span metrics are `ml.spans` (plain Python); this module
is the task type the layers above ask. The model side (a token-classification head, its fine-tune,
decisions, uncertainty, evaluation) is not written yet: those methods raise NotImplementedError
with a message that says so.
"""
from __future__ import annotations

from collections import Counter
from itertools import combinations
from typing import Collection, Mapping, Sequence

import numpy as np

from ml import spans as span_ops
from ml import token_model

from .base import Decision, InvalidValue, TaskType

_NO_MODEL = "span labelling has no model yet: the token-classification head and its fine-tune are not written"


def _invalid(exc: span_ops.SpanError) -> InvalidValue:
    """A SpanError as the task type's error, the span's position ("spans[2].end") leading the
    message; the caller names the top-level field."""
    return InvalidValue(exc.message if exc.field == "spans" else f"{exc.field}: {exc.message}")


class SpanTask(TaskType):
    key = "spans"
    label_template = "frontend/label_spans.html"
    # <Labels name="label" toName="text"> over <Text name="text">, as Label Studio's NER template.
    label_studio_from_name = "label"
    # Entity F1 (strict, micro) is what a span version is compared on; accuracy has no meaning here.
    primary_metrics = ("entity_f1",)

    # --- the value ---------------------------------------------------------------------------

    def validate(self, value, *, labels: Collection[str], text: str | None = None, overlap: bool = False) -> list[dict]:
        if text is None:
            raise InvalidValue("span labels need the item's text to check their offsets against")
        try:
            return span_ops.check_spans(value, text, labels=labels, overlap=overlap)
        except span_ops.SpanError as exc:
            raise _invalid(exc) from None

    def read_import(self, chosen, *, label_by_value: Mapping[str, str], text: str | None = None,
                    overlap: bool = False) -> list[dict]:
        """`chosen`: the row's spans, each label as a name or key; offsets already code points."""
        if text is None:
            raise InvalidValue("span labels need the item's text to check their offsets against")
        if not isinstance(chosen, list):
            raise InvalidValue("must be a list of spans")
        mapped = []
        for i, span in enumerate(chosen):
            if isinstance(span, dict) and isinstance(span.get("label"), str):
                if span["label"] not in label_by_value:
                    raise InvalidValue(f"spans[{i}].label: unknown label '{span['label']}'")
                span = {**span, "label": label_by_value[span["label"]]}
            mapped.append(span)
        try:
            return span_ops.check_spans(mapped, text, overlap=overlap)
        except span_ops.SpanError as exc:
            raise _invalid(exc) from None

    def label_keys(self, value: Sequence[dict]) -> list[str]:
        return sorted({span["label"] for span in value})

    def canonical(self, value: Sequence[dict]) -> list:
        return [span_ops.span_key(span) for span in span_ops.sort_spans(value)]

    def suggested_record(self, suggested, *, text: str | None = None) -> list[dict]:
        """The suggested spans as the page showed them, sorted, each with its `confidence` and
        whether the expert kept it unchanged (`accepted`, as the page sent it). Checked against
        the text as an expert's spans are, except that a model's spans may overlap."""
        if text is None:
            raise InvalidValue("span suggestions need the item's text to check their offsets against")
        try:
            span_ops.check_spans(suggested, text, overlap=True)
        except span_ops.SpanError as exc:
            raise _invalid(exc) from None
        for i, span in enumerate(suggested):
            confidence, accepted = span.get("confidence", 0.0), span.get("accepted", False)
            if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 <= confidence <= 1:
                raise InvalidValue(f"span {i}: confidence must be a number from 0 to 1, got {confidence!r}")
            if not isinstance(accepted, bool):
                raise InvalidValue(f"span {i}: accepted must be true or false, got {accepted!r}")
        return [{"start": s["start"], "end": s["end"], "label": s["label"],
                 **{k: s[k] for k in ("confidence", "accepted") if k in s}} for s in span_ops.sort_spans(suggested)]

    # --- agreement ---------------------------------------------------------------------------

    def majority(self, values: Sequence[Sequence[dict]]) -> tuple[list[dict], float | None]:
        """Span voting: a span is kept when more than half of the annotators who labelled the item
        gave exactly it (same start, end and label). Agreement: the mean span F1 (exact) over
        pairs of annotators; 1.0 for one annotator (as classification: one answer agrees with
        itself); None when nobody labelled the item."""
        if not values:
            return [], None
        counts = Counter(key for spans in values for key in {span_ops.span_key(s) for s in spans})
        kept = sorted(key for key, n in counts.items() if n * 2 > len(values))
        majority = [{"start": start, "end": end, "label": label} for start, end, label in kept]
        if len(values) < 2:
            return majority, 1.0
        pairs = [span_ops.pair_f1(a, b) for a, b in combinations(values, 2)]
        return majority, round(sum(pairs) / len(pairs), 4)

    def pair_agreement(self, a: Sequence[dict], b: Sequence[dict]) -> float:
        """Span F1 (exact): two annotators who agree on two spans of three agree 0.8, not 0."""
        return span_ops.pair_f1(a, b)

    def trains_on(self, majority: Sequence[dict]) -> bool:
        return True  # no spans: a text with no entities, which is an answer

    def alpha(self, units, *, labels: Sequence[str]) -> float | None:
        """None: Krippendorff's alpha over spans needs a unitising variant (alpha-u) that this does
        not compute; span agreement is pairwise span F1 (`agreement`)."""
        return None

    def agreement(self, units, *, labels: Sequence[str]) -> dict:
        """Pairwise span F1 between annotators over items two or more labelled: exact match and
        overlap with the same label, per label and over the project (labeller.agreement)."""
        from labeller import agreement

        return {"statistic": "pairwise_span_f1", **agreement.span_agreement(units, labels=labels)}

    # --- display and export ------------------------------------------------------------------

    def page_config(self, project=None) -> dict:
        return {"spans": True, "overlap": bool(getattr(project, "spans_overlap", False))}

    def exported(self, value: Sequence[dict], *, text: str, utf16: bool = False) -> list[dict]:
        """Spans with their `text`, the slice of the item's text; offsets in code points, or in
        UTF-16 code units for a Label Studio file."""
        spans = span_ops.with_text(text, value)
        return span_ops.spans_to_utf16(text, spans) if utf16 else spans

    def csv_cell(self, value: Sequence[dict]) -> str:
        """start:end:label per span, joined by '|' (code points; the JSON exports carry the text)."""
        return "|".join(f"{s['start']}:{s['end']}:{s['label']}" for s in value)

    def label_studio_result(self, value: Sequence[dict], *, to_name: str, text: str | None = None) -> list[dict]:
        """Label Studio `labels` results. Label Studio counts offsets in UTF-16 code units (what
        JavaScript's strings index), so they are converted from code points when the text is
        given; `text` is the span's slice of the original text."""
        results = []
        for i, span in enumerate(self.exported(value, text=text, utf16=True) if text is not None else value):
            item = {key: span[key] for key in ("start", "end", "text") if key in span}
            results.append({"id": f"span{i}", "from_name": self.label_studio_from_name, "to_name": to_name,
                            "type": "labels", "value": {**item, "labels": [span["label"]]}})
        return results

    # --- serving and feedback ----------------------------------------------------------------

    spans_in_text = True
    # Prediction drift counts the entity types predicted, and the texts with none under this name.
    NO_ENTITY = "(no entity)"

    def served(self, decision: Decision) -> dict:
        """Each span with its code-point offsets, text, label and confidence; the text's
        confidence is the answer's own."""
        return {"spans": decision.labels}

    def drift_labels(self, value: Sequence[dict], *, live: bool) -> list[str]:
        return [span["label"] for span in value] or [self.NO_ENTITY]

    def from_prediction(self, value: Sequence[dict]) -> list[dict]:
        return [{"start": s["start"], "end": s["end"], "label": s["label"]} for s in span_ops.sort_spans(value)]

    # --- the model -------------------------------------------------------------------------------

    def decide_text(self, tag_names: Sequence[str], word_probs: np.ndarray, text: str) -> Decision:
        """The decision for one text from its words' tag probabilities (rows in the order of
        `ml.token_model.words_of(text)`; `text` as the model read it, clipped): the spans on the
        most probable valid BIO path, each with its text and confidence, and the text's
        confidence (ml.token_model.text_confidence). What serving answers and what the labelling
        page suggests; `labels` holds the spans (a span project's value), `top` is empty."""
        spans = token_model.decode(word_probs, token_model.words_of(text), tag_names, text=text)
        for span in spans:
            span["confidence"] = round(span["confidence"], 4)
        return Decision(spans, round(token_model.text_confidence(word_probs), 4), [])

    # The fast loop's word tagger is written (active_learning.span_refresh: the refresh tags
    # words with its own head and never calls the methods below); the version methods are not.
    has_model = True

    def decide(self, classes: Sequence[str], p: np.ndarray, *, top_k: int = 3) -> Decision:
        raise NotImplementedError(_NO_MODEL)

    def training_target(self, labels, index):
        """A text's resolved spans are its target as they are (word tags are made from them)."""
        return list(labels)

    def head_label_sets(self, targets, classes):
        raise NotImplementedError(_NO_MODEL)

    def fit_head(self, vectors, label_sets, *, classes, **settings):
        raise NotImplementedError(_NO_MODEL)

    def finetune_targets(self, targets, classes):
        raise NotImplementedError(_NO_MODEL)

    def load_base(self, model_path: str, n_classes: int, *, max_length: int):
        raise NotImplementedError(_NO_MODEL)

    def fits(self, model) -> bool:
        from ml.token_finetune import TokenTagger

        return isinstance(model, TokenTagger)

    def uncertainty(self, probs, strategy, *, rng=None):
        raise NotImplementedError(_NO_MODEL)

    def explained_class(self, classes, value) -> int:
        raise NotImplementedError(_NO_MODEL)

    def evaluate(self, probs, targets, classes) -> dict:
        """Metrics of a span version: `probs` are its predicted spans per evaluation text (with
        their confidence), `targets` the gold spans; strict entity scores per type, micro and
        macro, and calibration of span confidence (ml.span_metrics)."""
        from ml.span_metrics import evaluate_spans

        return evaluate_spans(targets, probs, classes)

    # --- active learning ------------------------------------------------------------------------

    # Encoding stores per-word vectors, the refresh fits a word head over them (BIO tags).
    word_level = True


SPANS = SpanTask()
