"""Single- and multi-label classification: an annotation is a list of the project's label keys.

The two differ in how many labels a value holds, how annotators' values resolve, and whether the
model's probabilities are one softmax over the classes or an independent sigmoid per label; the
ML behind each (heads, fine-tuning, query strategies, metrics) lives in `ml/` and takes the
`multi_label` flag these classes carry.
"""
from __future__ import annotations

from abc import abstractmethod
from typing import Collection, Mapping, Sequence

import numpy as np

from labeller import agreement
from ml import heads, metrics, strategies

from .base import Decision, InvalidValue, TaskType


class Classification(TaskType):
    """What both kinds of classification share; subclasses set `multi_label` and what differs."""

    multi_label: bool

    def validate(self, value: Sequence[str], *, labels: Collection[str], text: str | None = None,
                 overlap: bool = False) -> list[str]:
        if any(not isinstance(key, str) for key in value):
            raise InvalidValue("must be a list of label keys")
        unknown = [key for key in value if key not in labels]
        if unknown:
            raise InvalidValue(f"unknown label key '{unknown[0]}'")
        unique = sorted(set(value))
        self._check_submitted(len(unique))
        return unique

    def read_import(self, chosen: Sequence[str], *, label_by_value: Mapping[str, str], text: str | None = None,
                    overlap: bool = False) -> list[str]:
        unknown = [value for value in chosen if value not in label_by_value]
        if unknown:
            raise InvalidValue(f"unknown label '{unknown[0]}'")
        self._check_imported(len(chosen))
        return sorted({label_by_value[value] for value in chosen})

    def _check_submitted(self, n: int) -> None:
        """InvalidValue if an expert's value may not hold `n` different labels."""

    def _check_imported(self, n: int) -> None:
        """InvalidValue if an imported annotation may not hold `n` labels."""

    def majority(self, values: Sequence[Sequence[str]]) -> tuple[list[str], float | None]:
        return agreement.item_majority(values, multi_label=self.multi_label)

    def alpha(self, units: Sequence[Sequence[Sequence[str]]], *, labels: Sequence[str]) -> float | None:
        return agreement.project_alpha(units, labels=labels, multi_label=self.multi_label)

    def page_config(self, project=None) -> dict:
        return {"multiLabel": self.multi_label}

    def csv_cell(self, value: Sequence[str]) -> str:
        return "|".join(value)

    def label_studio_result(self, value: Sequence[str], *, to_name: str, text: str | None = None) -> list[dict]:
        return [{"from_name": self.label_studio_from_name, "to_name": to_name, "type": "choices",
                 "value": {"choices": value}}]

    def decide(self, classes: Sequence[str], p: np.ndarray, *, top_k: int = 3) -> Decision:
        order = np.argsort(-p)
        labels, confidence = self._chosen(classes, p, order)
        top = [{"label": classes[i], "p": round(float(p[i]), 4)} for i in order[:top_k]]
        return Decision(labels, round(confidence, 4), top)

    @abstractmethod
    def _chosen(self, classes: Sequence[str], p: np.ndarray, order: np.ndarray) -> tuple[list[str], float]:
        """The chosen labels and the confidence, from the probabilities and their order (best first)."""

    def fit_head(self, vectors: np.ndarray, label_sets: Sequence[Sequence[str]], *, classes: Sequence[str], **settings):
        return heads.fit_head(vectors, label_sets, classes=classes, multi_label=self.multi_label, **settings)

    def load_base(self, model_path: str, n_classes: int, *, max_length: int):
        from ml import finetune

        return finetune.load_base(model_path, n_classes, max_length=max_length, multi_label=self.multi_label)

    def fits(self, model) -> bool:
        return model.multi_label == self.multi_label

    def uncertainty(self, probs: np.ndarray, strategy: str, *, rng: np.random.Generator | None = None) -> np.ndarray:
        return strategies.uncertainty(probs, strategy, multi_label=self.multi_label, rng=rng)

    def explained_class(self, classes: Sequence[str], value: Sequence[str]) -> int:
        return list(classes).index(value[0])


class SingleLabel(Classification):
    """One label per item; the model's probabilities are a softmax over the classes."""

    key = "single_label"
    multi_label = False
    label_studio_from_name = "label"  # <Choices name="label" choice="single">
    neighbour_vote = True

    def _check_submitted(self, n: int) -> None:
        if n != 1:
            raise InvalidValue(f"this single-label project needs exactly 1 label, got {n}")

    def _check_imported(self, n: int) -> None:
        if n != 1:
            raise InvalidValue(f"single-label project: expected 1 label, found {n}")

    def trains_on(self, majority: Sequence[str]) -> bool:
        return bool(majority)  # empty: nobody gave a label

    def _chosen(self, classes, p, order):
        return [classes[order[0]]], float(p[order[0]])

    def training_target(self, labels: Sequence[str], index: Mapping[str, int]) -> int:
        return index[labels[0]]

    def head_label_sets(self, targets: Sequence[int], classes: Sequence[str]) -> list[list[str]]:
        return [[classes[i]] for i in targets]

    def finetune_targets(self, targets: Sequence[int], classes: Sequence[str]) -> list:
        return targets

    def evaluate(self, probs: np.ndarray, targets: Sequence[int], classes: Sequence[str]) -> dict:
        return metrics.evaluate_single_label(probs, [classes[i] for i in targets], classes)


class MultiLabel(Classification):
    """Any number of labels per item, each a yes/no question: an independent sigmoid per label."""

    key = "multi_label"
    label_studio_from_name = "labels"  # <Choices name="labels" choice="multiple">
    multi_label = True

    def trains_on(self, majority: Sequence[str]) -> bool:
        return True  # empty: none of the labels applies, which is an answer

    def _chosen(self, classes, p, order):
        labels = [classes[i] for i in order if p[i] >= 0.5] or [classes[order[0]]]
        return labels, float(min(max(x, 1 - x) for x in p))  # the closest call of all the labels

    def training_target(self, labels: Sequence[str], index: Mapping[str, int]) -> list[str]:
        return list(labels)

    def head_label_sets(self, targets: Sequence[list[str]], classes: Sequence[str]) -> list[list[str]]:
        return targets

    def finetune_targets(self, targets: Sequence[list[str]], classes: Sequence[str]) -> list:
        from ml import finetune

        index = {c: i for i, c in enumerate(classes)}
        return list(finetune.multi_hot([[index[label] for label in labels] for labels in targets], len(classes)))

    def evaluate(self, probs: np.ndarray, targets: Sequence[list[str]], classes: Sequence[str]) -> dict:
        return metrics.evaluate_multi_label(probs, targets, classes)


SINGLE_LABEL = SingleLabel()
MULTI_LABEL = MultiLabel()


def classification_of(model) -> Classification:
    """The classification a trained head or model answers, by the flag stored with its weights:
    a version keeps deciding the way it was trained to."""
    return MULTI_LABEL if model.multi_label else SINGLE_LABEL
