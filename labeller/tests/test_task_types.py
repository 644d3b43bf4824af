"""The task type interface, on its two classification implementations: plain Python, no database
except where a service is checked to raise through it."""
import numpy as np
import pytest

from labeller.models import TaskType as TaskTypeChoice
from labeller.task_types import Decision, InvalidValue, TaskType, classification_of, task_type_for
from labeller.task_types.classification import MULTI_LABEL, SINGLE_LABEL, MultiLabel, SingleLabel
from ml.heads import LinearHead

CLASSES = ["card_arrival", "card_linking", "exchange_rate", "top_up"]


def test_every_project_task_type_has_an_implementation():
    assert {task_type_for(key).key for key in TaskTypeChoice.values} == set(TaskTypeChoice.values)
    assert isinstance(task_type_for(TaskTypeChoice.SINGLE_LABEL), SingleLabel)
    assert isinstance(task_type_for(TaskTypeChoice.MULTI_LABEL), MultiLabel)


def test_it_looks_up_a_project_by_its_task_type():
    class Project:
        task_type = TaskTypeChoice.MULTI_LABEL

    assert task_type_for(Project()) is MULTI_LABEL
    assert task_type_for("single_label") is SINGLE_LABEL


def test_it_refuses_an_unknown_task_type():
    with pytest.raises(LookupError, match="unknown task type 'relations'"):
        task_type_for("relations")


def test_every_task_type_implements_the_whole_interface():
    from labeller.task_types.spans import SPANS

    for task_type in (SINGLE_LABEL, MULTI_LABEL, SPANS):
        assert isinstance(task_type, TaskType)
        assert not getattr(type(task_type), "__abstractmethods__", None)


def test_a_model_decides_the_way_its_stored_flag_says():
    assert classification_of(LinearHead(CLASSES, np.zeros((4, 2)), np.zeros(4), multi_label=True)) is MULTI_LABEL
    assert classification_of(LinearHead(CLASSES, np.zeros((4, 2)), np.zeros(4))) is SINGLE_LABEL


# --- validation -----------------------------------------------------------------------------------

def test_single_label_takes_exactly_one_known_label():
    assert SINGLE_LABEL.validate(["top_up"], labels=CLASSES) == ["top_up"]
    assert SINGLE_LABEL.validate(["top_up", "top_up"], labels=CLASSES) == ["top_up"]


def test_single_label_rejects_two_labels_or_none():
    with pytest.raises(InvalidValue, match=r"^this single-label project needs exactly 1 label, got 2$"):
        SINGLE_LABEL.validate(["top_up", "card_arrival"], labels=CLASSES)
    with pytest.raises(InvalidValue, match=r"^this single-label project needs exactly 1 label, got 0$"):
        SINGLE_LABEL.validate([], labels=CLASSES)


def test_it_rejects_an_unknown_label_key_first():
    for task_type in (SINGLE_LABEL, MULTI_LABEL):
        with pytest.raises(InvalidValue, match=r"^unknown label key 'nope'$"):
            task_type.validate(["top_up", "nope", "other"], labels=CLASSES)


def test_multi_label_takes_any_number_sorted_and_unique():
    assert MULTI_LABEL.validate(["top_up", "card_arrival", "top_up"], labels=CLASSES) == ["card_arrival", "top_up"]
    assert MULTI_LABEL.validate([], labels=CLASSES) == []


def test_an_import_maps_names_to_keys_with_the_import_report_wording():
    by_value = {"Top up": "top_up", "top_up": "top_up", "card_arrival": "card_arrival"}
    assert MULTI_LABEL.read_import(["top_up", "Top up", "card_arrival"], label_by_value=by_value) == ["card_arrival", "top_up"]
    assert SINGLE_LABEL.read_import(["Top up"], label_by_value=by_value) == ["top_up"]
    with pytest.raises(InvalidValue, match=r"^unknown label 'x'$"):
        SINGLE_LABEL.read_import(["x"], label_by_value=by_value)
    with pytest.raises(InvalidValue, match=r"^single-label project: expected 1 label, found 2$"):
        SINGLE_LABEL.read_import(["top_up", "Top up"], label_by_value=by_value)


@pytest.mark.django_db
def test_the_service_raises_its_error_with_todays_messages(make_project):
    from labeller.services import InvalidLabels, labels_validate

    single, multi = make_project(), make_project(task_type="multi_label")
    known = list(single.labels.values_list("key", flat=True))
    with pytest.raises(InvalidLabels) as error:
        labels_validate(project=single, labels=known[:2])
    assert str(error.value) == "labels: this single-label project needs exactly 1 label, got 2"
    with pytest.raises(InvalidLabels) as error:
        labels_validate(project=multi, labels=["nope"])
    assert str(error.value) == "labels: unknown label key 'nope'"
    assert labels_validate(project=multi, labels=known[::-1]) == sorted(known)


# --- majority and agreement -----------------------------------------------------------------------

def test_single_label_majority_breaks_ties_alphabetically():
    assert SINGLE_LABEL.majority([["b"], ["a"]]) == (["a"], 0.5)
    assert SINGLE_LABEL.majority([["b"], ["b"], ["a"]]) == (["b"], pytest.approx(2 / 3))
    assert SINGLE_LABEL.majority([]) == ([], None)


def test_multi_label_majority_keeps_labels_chosen_by_more_than_half():
    assert MULTI_LABEL.majority([["a", "b"], ["a"], ["b", "a"]]) == (["a", "b"], pytest.approx(2 / 3))
    assert MULTI_LABEL.majority([["a"], ["b"]]) == ([], 0.0)


def test_an_empty_majority_trains_only_a_multi_label_head():
    assert not SINGLE_LABEL.trains_on([]) and SINGLE_LABEL.trains_on(["a"])
    assert MULTI_LABEL.trains_on([]) and MULTI_LABEL.trains_on(["a"])


def test_alpha_is_nominal_for_single_label_and_per_label_for_multi_label():
    from labeller.agreement import krippendorff_alpha_nominal

    units = [[["a"], ["a"]], [["b"], ["b"]], [["a"], ["b"]]]
    assert SINGLE_LABEL.alpha(units, labels=["a", "b"]) == krippendorff_alpha_nominal([["a", "a"], ["b", "b"], ["a", "b"]])
    assert MULTI_LABEL.alpha([[["a", "b"], ["a", "b"]], [["a"], ["a"]]], labels=["a", "b"]) == 1.0


# --- display and export ---------------------------------------------------------------------------

def test_the_page_is_told_whether_several_labels_may_be_chosen():
    assert SINGLE_LABEL.page_config() == {"multiLabel": False}
    assert MULTI_LABEL.page_config() == {"multiLabel": True}
    assert SINGLE_LABEL.label_template == MULTI_LABEL.label_template == "frontend/label.html"


def test_values_export_as_a_csv_cell_and_label_studio_choices():
    assert MULTI_LABEL.csv_cell(["a", "b"]) == "a|b" and SINGLE_LABEL.csv_cell([]) == ""
    assert SINGLE_LABEL.label_studio_result(["a"], to_name="text") == [
        {"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": ["a"]}}]


# --- the decision ---------------------------------------------------------------------------------

def _suggestion_before(classes, p, multi_label):
    """labeller/suggestions.suggestion_dict's decision as it was written before the seam."""
    order = np.argsort(-p)
    if multi_label:
        labels = [classes[i] for i in order if p[i] >= 0.5] or [classes[order[0]]]
        confidence = float(np.min([max(p[i], 1 - p[i]) for i in range(len(p))]))
    else:
        labels = [classes[order[0]]]
        confidence = float(p[order[0]])
    return {"labels": labels, "confidence": round(confidence, 4),
            "top": [{"label": classes[i], "p": round(float(p[i]), 4)} for i in order[:3]]}


def _serving_before(classes, p, multi_label, top_k):
    """models_registry/serving.answers' decision as it was written before the seam."""
    order = np.argsort(-p)
    if multi_label:
        labels = [classes[i] for i in order if p[i] >= 0.5] or [classes[order[0]]]
        confidence = float(min(max(x, 1 - x) for x in p))
    else:
        labels, confidence = [classes[order[0]]], float(p[order[0]])
    return {"labels": labels, "confidence": round(confidence, 4),
            "top": [{"label": classes[i], "p": round(float(p[i]), 4)} for i in order[:top_k]]}


def _probability_rows(multi_label: bool):
    rng = np.random.default_rng(7)
    rows = []
    for n_classes in (1, 2, 4, 17, 77):
        for dtype in (np.float32, np.float64):
            for _ in range(20):
                z = rng.normal(scale=3.0, size=n_classes)
                p = 1 / (1 + np.exp(-z)) if multi_label else np.exp(z) / np.exp(z).sum()
                rows.append(p.astype(dtype))
            # ties, including past 16 classes where argsort stops being an insertion sort
            rows.append(np.full(n_classes, 1 / n_classes if not multi_label else 0.5, dtype=dtype))
            rows.append(np.round(rng.random(n_classes), 1).astype(dtype))
    rows.append(np.array([0.2, 0.4, 0.4], dtype=np.float32))
    rows.append(np.array([0.49999, 0.5, 0.50001], dtype=np.float64))
    return rows


@pytest.mark.parametrize("task_type", [SINGLE_LABEL, MULTI_LABEL], ids=["single", "multi"])
def test_the_decision_is_bit_for_bit_the_one_suggestions_and_serving_made(task_type):
    for p in _probability_rows(task_type.multi_label):
        classes = [f"c{i:02d}" for i in range(len(p))]
        decision = task_type.decide(classes, p, top_k=3).as_dict()
        assert decision == _suggestion_before(classes, p, task_type.multi_label)
        assert decision == _serving_before(classes, p, task_type.multi_label, 3)
        for top_k in (1, 5):
            assert task_type.decide(classes, p, top_k=top_k).as_dict() == _serving_before(classes, p, task_type.multi_label, top_k)


@pytest.mark.parametrize("multi_label", [False, True])
def test_the_labelling_page_suggestion_is_the_decision(multi_label):
    from labeller.suggestions import suggestion_dict

    task_type = MULTI_LABEL if multi_label else SINGLE_LABEL
    head = LinearHead(CLASSES, np.zeros((4, 2)), np.zeros(4), multi_label=multi_label)
    for p in _probability_rows(multi_label):
        if len(p) != len(CLASSES):
            continue
        suggestion = suggestion_dict(head, p, [], 3)
        assert suggestion == {**task_type.decide(CLASSES, p).as_dict(), "neighbours": [], "words": [], "head_version": 3}


@pytest.mark.parametrize("multi_label", [False, True])
def test_serving_answers_with_the_decision_of_the_version_it_loaded(multi_label):
    from models_registry import serving

    head = LinearHead(CLASSES, np.random.default_rng(1).normal(size=(4, 3)), np.zeros(4), multi_label=multi_label)

    class Loaded(serving.Predictor):  # a loaded version without its files: the decisions are serving's own
        classes = CLASSES
        task_type = classification_of(head)

        def __init__(self):
            pass

        def probabilities(self, texts):
            return head.predict_proba(np.random.default_rng(2).normal(size=(len(texts), 3)))

    answers = serving.answers(Loaded(), ["a", "b"], 2)
    probs = Loaded().probabilities(["a", "b"])
    assert [a.as_dict() for a in answers] == [_serving_before(CLASSES, p, multi_label, 2) for p in probs]
    assert all(isinstance(a, Decision) for a in answers)


def test_single_label_confidence_is_the_top_probability_and_multi_label_the_closest_call():
    p = np.array([0.1, 0.7, 0.2])
    assert SINGLE_LABEL.decide(["a", "b", "c"], p) == Decision(["b"], 0.7, [
        {"label": "b", "p": 0.7}, {"label": "c", "p": 0.2}, {"label": "a", "p": 0.1}])
    q = np.array([0.9, 0.45, 0.6])
    assert MULTI_LABEL.decide(["a", "b", "c"], q, top_k=1) == Decision(["a", "c"], 0.55, [{"label": "a", "p": 0.9}])
    assert MULTI_LABEL.decide(["a", "b"], np.array([0.2, 0.3])).labels == ["b"]  # none reaches 0.5: the likeliest


# --- training, scoring, explaining, evaluating ----------------------------------------------------

def test_training_targets_are_class_indices_or_label_lists():
    index = {c: i for i, c in enumerate(CLASSES)}
    assert SINGLE_LABEL.training_target(["top_up"], index) == 3
    assert MULTI_LABEL.training_target(("top_up", "card_arrival"), index) == ["top_up", "card_arrival"]
    assert SINGLE_LABEL.head_label_sets([3, 0], CLASSES) == [["top_up"], ["card_arrival"]]
    assert MULTI_LABEL.head_label_sets([["top_up"]], CLASSES) == [["top_up"]]
    assert SINGLE_LABEL.finetune_targets([3, 0], CLASSES) == [3, 0]
    rows = MULTI_LABEL.finetune_targets([["top_up", "card_arrival"], []], CLASSES)
    assert [row.tolist() for row in rows] == [[1.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]]
    assert SINGLE_LABEL.neighbour_vote and not MULTI_LABEL.neighbour_vote


def test_heads_are_fitted_with_the_task_types_flag():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(8, 5)).astype(np.float32)
    label_sets = [["top_up"], ["card_arrival"]] * 4
    for task_type in (SINGLE_LABEL, MULTI_LABEL):
        head = task_type.fit_head(vectors, label_sets, classes=CLASSES, seed=0)
        assert head.multi_label == task_type.multi_label and task_type.fits(head)
        assert classification_of(head) is task_type


def test_uncertainty_and_evaluation_delegate_to_ml():
    from ml import metrics, strategies

    probs = np.array([[0.6, 0.3, 0.1, 0.0], [0.25, 0.25, 0.25, 0.25]])
    for task_type in (SINGLE_LABEL, MULTI_LABEL):
        assert np.array_equal(task_type.uncertainty(probs, "margin"),
                              strategies.uncertainty(probs, "margin", multi_label=task_type.multi_label))
    assert SINGLE_LABEL.evaluate(probs, [0, 1], CLASSES) == metrics.evaluate_single_label(probs, CLASSES[:2], CLASSES)
    truth = [["card_arrival"], ["card_arrival", "top_up"]]
    assert MULTI_LABEL.evaluate(probs, truth, CLASSES) == metrics.evaluate_multi_label(probs, truth, CLASSES)


def test_a_word_attribution_follows_the_first_suggested_label():
    assert SINGLE_LABEL.explained_class(CLASSES, ["exchange_rate"]) == 2
    assert MULTI_LABEL.explained_class(CLASSES, ["top_up", "card_arrival"]) == 3
