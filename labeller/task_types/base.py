"""What a task type implements: the one place that knows what an annotation is for a kind of
project, and what a model does with it. Plain Python over numpy; the ML itself lives in `ml/`.

Every layer asks the project's task type (`task_type_for(project)`) instead of branching on the
task: services validate values with it, agreement and exports resolve and write them with it,
training fits and evaluates through it, serving and active learning turn probabilities into a
decision with it. docs/task-types.md says where each method is called.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Any, Collection, Mapping, Sequence

import numpy as np

# An annotation value as stored on Annotation.labels (classification: a list of label keys).
Value = Any


class InvalidValue(ValueError):
    """A value the task type refuses; the message says why, for the person who sent it. The
    caller names the field."""


@dataclass
class Decision:
    """What a model says about one item: the chosen value, how sure it is (0 to 1, 4 decimals)
    and the best candidates with their probabilities, best first."""

    labels: list[str]
    confidence: float
    top: list[dict]

    def as_dict(self) -> dict:
        return asdict(self)


class TaskType(ABC):
    """One kind of labelling task. Subclasses are stateless singletons, looked up by `key` (the
    value stored in Project.task_type)."""

    key: str

    # --- the value -------------------------------------------------------------------------------

    @abstractmethod
    def validate(self, value: Value, *, labels: Collection[str], text: str | None = None, overlap: bool = False) -> Value:
        """The value an expert submitted, checked against the project's label keys and
        normalised for storage. InvalidValue if it is not acceptable. Task types over positions in
        the text (spans) also need the item's `text` and the project's `overlap` setting
        (Project.spans_overlap); the others ignore both."""

    @abstractmethod
    def read_import(self, chosen: Sequence[Any], *, label_by_value: Mapping[str, str], text: str | None = None,
                    overlap: bool = False) -> Value:
        """An imported row's annotation (label names or keys, as the file gives them), as the
        stored value. InvalidValue, with the import report's wording, if it is not acceptable.
        `text` and `overlap` as for `validate`."""

    def label_keys(self, value: Value) -> list[str]:
        """The label keys a value uses, sorted: what the data manager's majority column holds and
        what the archived-label check reads."""
        return sorted(set(value))

    def canonical(self, value: Value) -> Any:
        """A value in a form that compares equal exactly when two answers are the same."""
        return sorted(set(value))

    def suggested_record(self, suggested: Sequence[Any], *, text: str | None = None) -> Any:
        """The model's suggestion as the labelling page showed it, checked, as stored beside the
        expert's annotation (`Annotation.suggested_labels`). Whether the expert accepted it is
        `canonical(suggested) == canonical(value)`. InvalidValue if it is not of this task's shape."""
        if not all(isinstance(key, str) for key in suggested):
            raise InvalidValue("must be a list of label keys")
        return sorted(set(suggested))

    # --- agreement -------------------------------------------------------------------------------

    @abstractmethod
    def majority(self, values: Sequence[Value]) -> tuple[Value, float | None]:
        """The item's resolved value from its annotators' values, and the share who agree with
        it (None when nobody labelled it)."""

    @abstractmethod
    def trains_on(self, majority: Value) -> bool:
        """Whether a resolved value teaches the refresh's head something (an empty one may mean
        'no answer' or 'none of the labels', depending on the task)."""

    @abstractmethod
    def alpha(self, units: Sequence[Sequence[Value]], *, labels: Sequence[str]) -> float | None:
        """Krippendorff's alpha over items labelled by two or more annotators."""

    def pair_agreement(self, a: Value, b: Value) -> float:
        """How much two annotators' answers on one item agree, 0 to 1 (annotator quality's
        agreement with others): by default 1 when they are the same answer."""
        return float(self.canonical(a) == self.canonical(b))

    def agreement(self, units: Sequence[Sequence[Value]], *, labels: Sequence[str]) -> dict:
        """The project's agreement figures over items labelled by two or more annotators (the
        agreement API's body, less the item count)."""
        return {"statistic": "krippendorff_alpha_nominal", "alpha": self.alpha(units, labels=labels)}

    # --- display and export ----------------------------------------------------------------------

    label_template: str = "frontend/label.html"

    @abstractmethod
    def page_config(self, project=None) -> dict:
        """Flags the labelling page's script reads from its config (merged into it); `project`
        for the settings a task type shows (spans: whether they may overlap)."""

    def exported(self, value: Value, *, text: str, utf16: bool = False) -> Any:
        """A value as the JSON exports write it (`text`: the item's text; `utf16`: offsets as
        Label Studio counts them, for task types with offsets). Classification: as stored."""
        return value

    @abstractmethod
    def csv_cell(self, value: Value) -> str:
        """A value as one CSV cell (the export's majority and labels columns)."""

    # The Label Studio control tag's name for this task's answers (a result's `from_name`); the
    # object tag is named after the project's text field (`to_name`). docs/task-types.md gives
    # the labelling config these names match.
    label_studio_from_name: str = "label"

    @abstractmethod
    def label_studio_result(self, value: Value, *, to_name: str, text: str | None = None) -> list[dict]:
        """A value as a Label Studio annotation's `result` list (`text`: the item's text, for
        task types whose results point into it)."""

    # --- serving and feedback --------------------------------------------------------------------

    # Whether a value is spans in the item's text: the predict API answers `spans`, and product
    # feedback corrects with spans (or says one span is wrong or missing) instead of a label.
    spans_in_text: bool = False

    def served(self, decision: Decision) -> dict:
        """A decision as the predict API answers it, beside its prediction_id, confidence,
        abstain and version: the labels, the first of them and the top candidates."""
        return {"labels": decision.labels, "label": decision.labels[0] if decision.labels else None,
                "top": decision.top}

    def drift_labels(self, value: Value, *, live: bool) -> list[str]:
        """What prediction drift counts of one value: the served label of a live prediction, every
        label of a training example."""
        return list(value[:1]) if live else list(value)

    def from_prediction(self, value: Value) -> Value:
        """A logged prediction's value as an annotation stores it (a trusted source's confirmation
        trains on what the model said)."""
        return list(value)

    # --- the model -------------------------------------------------------------------------------

    # The primary metrics a project of this task may compare versions on (its training policy's
    # primary_metric; the first is a new project's default). Names of keys in `evaluate`'s metrics.
    primary_metrics: tuple[str, ...] = ("accuracy", "macro_f1")

    # Whether the labelling loop has a model to refresh: a task type without one requests no
    # refresh after labels.
    has_model: bool = True

    # Whether active learning works on words rather than whole texts: encoding then stores each
    # item's per-word vectors beside its sentence vector (always under the frozen base encoder),
    # and the refresh and suggestions fit and apply a word tagger (active_learning.span_refresh,
    # labeller.span_suggestions) instead of `fit_head` / `uncertainty` / `decide`.
    word_level: bool = False

    @abstractmethod
    def decide(self, classes: Sequence[str], p: np.ndarray, *, top_k: int = 3) -> Decision:
        """The decision for one item from its row of class probabilities: what serving answers
        and what the labelling page suggests. The only place this rule is written."""

    @abstractmethod
    def training_target(self, labels: Sequence[str], index: Mapping[str, int]) -> Any:
        """A resolved value as a training target (`index`: class key -> column)."""

    @abstractmethod
    def head_label_sets(self, targets: Sequence[Any], classes: Sequence[str]) -> list[list[str]]:
        """Training targets back as the label sets a light head is fitted on."""

    @abstractmethod
    def fit_head(self, vectors: np.ndarray, label_sets: Sequence[Sequence[str]], *, classes: Sequence[str], **settings):
        """A light head fitted on stored embeddings (ml.heads), for this task."""

    # Whether registered head versions mix in the neighbour vote (ml.heads.NeighbourMemory).
    neighbour_vote: bool = False

    @abstractmethod
    def finetune_targets(self, targets: Sequence[Any], classes: Sequence[str]) -> list:
        """Training targets in the form ml.finetune trains on."""

    @abstractmethod
    def load_base(self, model_path: str, n_classes: int, *, max_length: int):
        """A base model to fine-tune for this task (ml.finetune)."""

    @abstractmethod
    def fits(self, model) -> bool:
        """Whether a loaded model (a fine-tuned champion) answers this task, so fine-tuning may
        start from it."""

    @abstractmethod
    def uncertainty(self, probs: np.ndarray, strategy: str, *, rng: np.random.Generator | None = None) -> np.ndarray:
        """Active learning's score per pool row, higher = more unsure (ml.strategies)."""

    @abstractmethod
    def explained_class(self, classes: Sequence[str], value: Value) -> int:
        """The class whose probability a word attribution follows for a suggested value."""

    @abstractmethod
    def evaluate(self, probs: np.ndarray, targets: Sequence[Any], classes: Sequence[str]) -> dict:
        """Metrics of a version on the evaluation split (ml.metrics), from its training targets."""
