"""Out-of-scope queries (issue 18): a head version trained on enough labels carries a rule (read
off out-of-fold models) that judges a query far from every label out of scope; the prediction then
abstains, the query goes to the experts' queue, and monitoring counts the rate."""
import pytest

from feedback.models import Prediction
from labeller.models import Item, Label
from labeller.services import annotation_submit
from models_registry import promotion, serving
from tests.banking77 import INTENTS, banking77
from tests.helpers import train_head

pytestmark = pytest.mark.django_db


def labelled_intents(project, expert, *, per_intent: int, eval_every: int):
    """`project` with three Banking77 intents as its labels and `per_intent` labelled queries of
    each, every `eval_every`-th in the evaluation set."""
    Label.objects.filter(project=project).delete()
    Label.objects.bulk_create(Label(project=project, key=k, name=k.replace("_", " "), order=i) for i, k in enumerate(INTENTS))
    rows = banking77(per_intent)
    items = Item.objects.bulk_create(Item(project=project, data={"text": row["text"]}, external_id=str(i),
                                          is_eval=i % eval_every == 0) for i, row in enumerate(rows))
    for item, row in zip(items, rows):
        item.project = project
        annotation_submit(item=item, user=expert, labels=[row["category"]])
    return project


@pytest.fixture
def scoped_project(make_project, expert, owner):
    """Three Banking77 intents, 30 labelled queries each (every fourth in the evaluation set): enough
    for the out-of-scope rule; its head version promoted."""
    project = labelled_intents(make_project(eval_share=0.25), expert, per_intent=30, eval_every=4)
    version = train_head(project)
    promotion.version_promote(version=version, user=owner, reason="first model", override=True)
    serving.forget_aliases()
    return project, version


def test_a_query_like_no_label_is_judged_out_of_scope_abstains_and_is_queued_for_experts(scoped_project, token_client):
    project, version = scoped_project
    rule = version.metrics["out_of_scope"]
    assert set(rule) == {"doubt_mean", "doubt_sd", "distance_mean", "distance_sd", "threshold", "k"}
    in_scope = [row["text"] for row in banking77(3, split="test")]
    outside = ["what will the weather be like in paris tomorrow", "play some relaxing jazz music please",
               "how many calories are in a banana"]
    client = token_client(project, ["predict"])
    response = client.post(f"/api/projects/{project.id}/predict",
                           {"items": [{"data": {"text": t}, "external_id": f"q{i}"} for i, t in enumerate(in_scope + outside)]},
                           format="json")
    assert response.status_code == 200, response.content
    answers = response.json()["predictions"]
    flags = [a["out_of_scope"] for a in answers]
    assert flags[len(in_scope):] == [True] * len(outside), answers
    assert sum(flags[:len(in_scope)]) <= 1  # at most a stray in-scope query: the rule may cost 2 points of accuracy
    assert all(a["abstain"] for a in answers[len(in_scope):])
    queued = Item.objects.filter(project=project, external_id__in=[f"q{i}" for i in range(len(in_scope), len(answers))])
    assert queued.count() == len(outside)
    assert Prediction.objects.filter(project=project, out_of_scope=True).count() == sum(flags)


def test_monitoring_counts_the_out_of_scope_rate_and_alerts_above_its_threshold(scoped_project, token_client):
    from django.utils import timezone

    from feedback import monitoring
    from feedback.models import Alert, ServingPolicy

    project, version = scoped_project
    policy = ServingPolicy.for_project(project)
    policy.min_predictions = 4
    policy.save()
    client = token_client(project, ["predict"])
    texts = ["what will the weather be like in paris tomorrow", "play some relaxing jazz music please",
             "how many calories are in a banana", banking77(1, split="test")[0]["text"]]
    client.post(f"/api/projects/{project.id}/predict", {"items": [{"data": {"text": t}} for t in texts]}, format="json")
    points = monitoring.monitor_project(project=project, now=timezone.now())
    rates = {p.period: p.metrics["out_of_scope_rate"] for p in points if p.version_id == version.id}
    assert set(rates.values()) == {0.75}
    assert Alert.objects.filter(project=project, metric="out_of_scope_rate", status="open").exists()


def test_a_fine_tuned_version_reads_its_rule_off_its_validation_split_and_serves_it(make_project, expert, owner, token_client):
    """A fine-tuned version cannot refit five times: its rule comes from the validation texts it
    held out (ml.finetune._scope_rule). Here half the labelled training texts are held out, and the
    validation split is kept (min_validation lowered to fit a test)."""
    from models_registry import training
    from models_registry.models import TrainingPolicy

    # 300 labelled, 240 for training, ~130 of them held out: at a 1-point budget the rule needs
    # 100 (below that no abstention is allowed and the version has no rule).
    project = labelled_intents(make_project(eval_share=0.2), expert, per_intent=100, eval_every=5)
    TrainingPolicy.objects.update_or_create(project=project, defaults={
        "validation_share": 0.55,
        "finetune": {"epochs": 1, "batch_size": 16, "max_length": 32, "min_validation": 50}})
    (version,) = training.retrain_request(project=project, kinds=["finetuned"])
    version = training.version_train(version=training.version_claim(version_id=version.id))
    assert version.status == "ready", version.error
    assert version.metrics["training"]["early_stopping"] is True
    rule = version.metrics["out_of_scope"]
    assert set(rule) == {"doubt_mean", "doubt_sd", "distance_mean", "distance_sd", "threshold", "k"}
    # The validation texts were scored against a memory without themselves: distances well above 0.
    assert rule["distance_mean"] > 0.1

    promotion.version_promote(version=version, user=owner, reason="first model", override=True)
    serving.forget_aliases()
    outside = ["what will the weather be like in paris tomorrow", "play some relaxing jazz music please",
               "how many calories are in a banana"]
    in_scope = [row["text"] for row in banking77(3, split="test")]
    client = token_client(project, ["predict"])
    response = client.post(f"/api/projects/{project.id}/predict",
                           {"items": [{"data": {"text": t}} for t in in_scope + outside]}, format="json")
    assert response.status_code == 200, response.content
    answers = response.json()["predictions"]
    assert all(a["model_version"] == version.number for a in answers), answers
    flags = [a["out_of_scope"] for a in answers]
    assert flags[len(in_scope):] == [True] * len(outside), answers
    assert sum(flags[:len(in_scope)]) <= 1
    assert all(a["abstain"] for a in answers[len(in_scope):])


def clinc150_out_of_scope(n: int, split: str) -> list[str]:
    """The first `n` out-of-scope queries of CLINC150's `split` (datasets/clinc150, CC BY 3.0)."""
    import csv

    from tests.banking77 import FOLDER

    with open(FOLDER.parent / "clinc150" / f"{split}.csv", encoding="utf-8") as f:
        return [row["text"] for row in csv.DictReader(f) if row["category"] == "oos"][:n]


def test_a_project_with_an_out_of_scope_label_learns_from_its_examples_what_it_does_not_serve(
        make_project, expert, owner, token_client):
    """The same labels trained twice, without and with `out_of_scope_label` naming the label of 40
    out-of-scope examples: with it, the rule knows the class (its doubt and distance read the
    in-scope classes only), catches at least as many unseen out-of-scope queries, and a query the
    version answers with that label is out of scope and abstains."""
    project = labelled_intents(make_project(eval_share=0.25), expert, per_intent=30, eval_every=4)
    Label.objects.create(project=project, key="none_of_these", name="None of these", order=9)
    examples = Item.objects.bulk_create(Item(project=project, data={"text": t}, external_id=f"oos{i}")
                                        for i, t in enumerate(clinc150_out_of_scope(40, "train")))
    for item in examples:
        annotation_submit(item=item, user=expert, labels=["none_of_these"])
    queries = clinc150_out_of_scope(30, "test")
    in_scope = [row["text"] for row in banking77(10, split="test")]
    client = token_client(project, ["predict"])

    def caught(version) -> tuple[list[dict], list[dict]]:
        promotion.version_promote(version=version, user=owner, reason="compare", override=True)
        serving.forget_aliases()
        response = client.post(f"/api/projects/{project.id}/predict",
                               {"items": [{"data": {"text": t}} for t in queries + in_scope]}, format="json")
        assert response.status_code == 200, response.content
        answers = response.json()["predictions"]
        assert all(a["model_version"] == version.number for a in answers)
        return answers[:len(queries)], answers[len(queries):]

    plain = train_head(project)
    assert "oos_class" not in plain.metrics["out_of_scope"]  # a label like any other
    outside_plain, _ = caught(plain)

    project.out_of_scope_label = "none_of_these"
    project.save(update_fields=["out_of_scope_label"])
    version = train_head(project)
    classes = list(project.labels.values_list("key", flat=True))
    assert version.metrics["out_of_scope"]["oos_class"] == classes.index("none_of_these")
    outside, inside = caught(version)
    flagged = sum(a["out_of_scope"] for a in outside)
    assert flagged >= sum(a["out_of_scope"] for a in outside_plain)
    assert flagged >= 0.8 * len(queries), outside
    assert sum(a["out_of_scope"] for a in inside) <= 1, inside
    answered = [a for a in outside if a["labels"] == ["none_of_these"]]
    assert answered and all(a["out_of_scope"] and a["abstain"] for a in answered)
