"""The feedback API: events stored before the answer, all-or-nothing batches, Idempotency-Key,
scopes, and the routing of untrusted and trusted feedback (review queue, training data)."""
import threading

import pytest
from django.test import override_settings
from django.utils import timezone

from feedback import idempotency
from feedback.models import FeedbackEvent, FeedbackStatus, IdempotencyRecord, Prediction
from feedback.review import route_pending, source_reliability
from labeller.models import Annotation, AnnotationSource, Item
from labeller.services import annotation_submit, queue_claim_next
from models_registry.snapshots import snapshot_create

pytestmark = pytest.mark.django_db
URL = "/api/projects/{}/feedback"
NOW = "2026-11-25T10:00:00Z"


def predict(project, client, text="I lost my card on the train", **extra):
    response = client.post(f"/api/projects/{project.id}/predict", {"data": {"text": text}, **extra}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def correction(prediction_id, label, user="u-1", **extra):
    return {"prediction_id": prediction_id, "kind": "correction", "label": label, "end_user": user, "occurred_at": NOW, **extra}


@pytest.fixture
def backend(served_project, token_client):
    return token_client(served_project, ["predict", "feedback"])


def test_an_event_is_stored_before_the_api_answers(served_project, backend):
    answer = predict(served_project, backend)
    response = backend.post(URL.format(served_project.id), correction(answer["prediction_id"], "card_arrival"), format="json")
    assert response.status_code == 201, response.content
    event = FeedbackEvent.objects.get(id=response.json()["event_ids"][0])
    assert event.status == FeedbackStatus.PENDING and event.version.number == 1
    assert event.predicted_labels == ["lost_or_stolen_card"] and event.token == backend.token


def test_a_bulk_post_is_all_or_nothing_with_every_problem_named(served_project, backend):
    answer = predict(served_project, backend)
    events = [correction(answer["prediction_id"], "card_arrival"),
              correction(answer["prediction_id"], "no_such_label"),
              {"prediction_id": answer["prediction_id"], "kind": "like", "end_user": "", "occurred_at": "yesterday"}]
    response = backend.post(URL.format(served_project.id), {"events": events}, format="json")
    assert response.status_code == 422
    errors = response.json()
    assert set(errors) == {"events[1].label", "events[2].kind", "events[2].end_user", "events[2].occurred_at"}
    assert not FeedbackEvent.objects.exists()


def test_a_kind_that_is_not_a_string_is_named_not_a_500(served_project, backend):
    answer = predict(served_project, backend)
    event = {**correction(answer["prediction_id"], "card_arrival"), "kind": {}}  # what the fuzzer sent
    response = backend.post(URL.format(served_project.id), {"events": [event]}, format="json")
    assert response.status_code == 422 and "must be one of" in response.json()["events[0].kind"][0]


def test_another_projects_prediction_id_is_not_found(served_project, make_project, backend, token_client):
    other = make_project(name="Other")
    answer = predict(served_project, backend)
    other_backend = token_client(other, ["feedback"])
    response = other_backend.post(URL.format(other.id), correction(answer["prediction_id"], "card_arrival"), format="json")
    assert response.status_code == 422 and "no prediction with this id" in response.json()["events[0].prediction_id"][0]


def test_events_carrying_item_data_are_checked_against_the_schema(served_project, backend):
    event = {"data": {"txt": "lost card"}, "kind": "rejection", "end_user": "u", "occurred_at": NOW}
    response = backend.post(URL.format(served_project.id), event, format="json")
    assert response.status_code == 422 and "events[0].data.text" in response.json()


def test_an_oversized_bulk_is_413_and_a_predict_only_token_is_403(served_project, backend, token_client):
    answer = predict(served_project, backend)
    with override_settings(LABELLOOP_FEEDBACK_MAX_EVENTS=2):
        response = backend.post(URL.format(served_project.id), {"events": [correction(answer["prediction_id"], "card_arrival")] * 3},
                                format="json")
    assert response.status_code == 413 and "at most 2 events" in response.json()["events"][0]
    predict_only = token_client(served_project, ["predict"])
    assert predict_only.post(URL.format(served_project.id), correction(answer["prediction_id"], "card_arrival"),
                             format="json").status_code == 403


def test_a_retry_with_the_same_idempotency_key_gets_the_first_response_and_stores_nothing_twice(served_project, backend):
    answer = predict(served_project, backend)
    body = {"events": [correction(answer["prediction_id"], "card_arrival")]}
    first = backend.post(URL.format(served_project.id), body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    retry = backend.post(URL.format(served_project.id), body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json() and retry["Idempotent-Replayed"] == "true"
    assert FeedbackEvent.objects.count() == 1


def test_the_same_key_with_a_different_body_is_refused(served_project, backend):
    answer = predict(served_project, backend)
    backend.post(URL.format(served_project.id), correction(answer["prediction_id"], "card_arrival"), format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    other = backend.post(URL.format(served_project.id), correction(answer["prediction_id"], "exchange_rate"), format="json",
                         HTTP_IDEMPOTENCY_KEY="k-2")
    assert other.status_code == 422 and "different request" in other.json()["Idempotency-Key"][0]
    assert FeedbackEvent.objects.count() == 1


def test_a_key_whose_first_request_died_is_free_at_once(served_project, backend):
    """The key's record commits with the work: a first request that dies mid-way leaves nothing."""
    answer = predict(served_project, backend)
    body = correction(answer["prediction_id"], "card_arrival")

    def dies():
        FeedbackEvent.objects.create(project=served_project, kind="confirmation", end_user="x", occurred_at=timezone.now())
        raise RuntimeError("the worker process was killed")

    with pytest.raises(RuntimeError):
        idempotency.run_once(caller=backend.token, key="k-3", request_fingerprint="first", work=dies)
    assert not IdempotencyRecord.objects.exists() and not FeedbackEvent.objects.exists()
    response = backend.post(URL.format(served_project.id), body, format="json", HTTP_IDEMPOTENCY_KEY="k-3")
    assert response.status_code == 201 and FeedbackEvent.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_retry_while_the_first_request_runs_never_runs_twice(owner):
    """Two database connections racing on one key. PostgreSQL: the retry waits IN_FLIGHT_WAIT on
    the first request's uncommitted row, then gets 409, and after the first commits, its
    response. SQLite has one writer at a time: the retry waits for the first and replays it."""
    from django.db import connection, connections

    started, release, results = threading.Event(), threading.Event(), {}

    def first():
        def slow():
            started.set()
            release.wait(10)
            return idempotency.Outcome(201, {"accepted": 1})
        try:
            results["first"] = idempotency.run_once(caller=owner, key="k-race", request_fingerprint="f", work=slow)
        finally:
            connections.close_all()

    def retry():
        return idempotency.run_once(caller=owner, key="k-race", request_fingerprint="f", work=lambda: pytest.fail("ran twice"))

    thread = threading.Thread(target=first)
    thread.start()
    assert started.wait(10)
    if connection.vendor == "postgresql":
        with pytest.raises(idempotency.IdempotencyConflict) as refused:
            retry()
        assert refused.value.status == 409
        release.set()
    else:
        threading.Timer(0.5, release.set).start()  # the retry below blocks on SQLite's write lock until then
    replay = retry()
    thread.join(10)
    assert results["first"].status == 201 and replay.replayed and replay.body == {"accepted": 1}


def test_a_refused_request_stores_no_key_so_a_fixed_retry_can_use_it(served_project, backend):
    answer = predict(served_project, backend)
    bad = backend.post(URL.format(served_project.id), correction(answer["prediction_id"], "nope"), format="json", HTTP_IDEMPOTENCY_KEY="k-4")
    good = backend.post(URL.format(served_project.id), correction(answer["prediction_id"], "card_arrival"), format="json",
                        HTTP_IDEMPOTENCY_KEY="k-4")
    assert bad.status_code == 422 and good.status_code == 201


def test_an_untrusted_correction_that_disagrees_goes_to_expert_review_first_in_the_queue(served_project, backend, expert, client_for):
    answer = predict(served_project, backend, text="my card still has not come", external_id="chat-77")
    backend.post(URL.format(served_project.id), {"events": [correction(answer["prediction_id"], "exchange_rate", user=u)
                                                           for u in ("u-1", "u-2")]}, format="json")
    confirm = {"prediction_id": predict(served_project, backend)["prediction_id"], "kind": "confirmation", "end_user": "u-3",
               "occurred_at": NOW}
    backend.post(URL.format(served_project.id), confirm, format="json")
    assert route_pending(project_id=served_project.id) == 3
    statuses = sorted(FeedbackEvent.objects.values_list("status", flat=True))
    assert statuses == ["agrees", "review", "review"]
    item = Item.objects.get(project=served_project, external_id="chat-77")
    assert item.needs_review and not item.is_done and not item.is_eval
    assert not Annotation.objects.filter(item=item).exists()  # untrusted feedback is not a label

    client = client_for(expert)
    panel = client.get(f"/api/projects/{served_project.id}/review/{item.id}").json()["review"]
    assert panel["model"]["labels"] == [answer["label"]] and panel["model"]["version"] == 1
    assert panel["users"] == [{"says": "exchange_rate", "users": 2,
                               "track_record": {"reviewed": 0, "agreed": 0, "reliability": None}}]
    assert panel["sources"] == ["checkout backend"]

    claimed = queue_claim_next(project=served_project, user=expert)
    assert claimed.id == item.id  # review comes before the active-learning queue
    annotation_submit(item=claimed, user=expert, labels=["card_arrival"])
    item.refresh_from_db()
    assert not item.needs_review
    assert set(FeedbackEvent.objects.filter(item=item).values_list("status", "expert_agrees")) == {("reviewed", False)}
    reliability = {r["name"]: r for r in source_reliability(project=served_project)}["checkout backend"]
    assert reliability["reviewed"] == 2 and reliability["reliability"] == 0.0 and reliability["interval"][1] > 0
    annotation_submit(item=item, user=expert, labels=["exchange_rate"])  # the expert edits: the users were right
    assert set(FeedbackEvent.objects.filter(item=item).values_list("status", "expert_agrees")) == {("reviewed", True)}


def test_trusted_feedback_becomes_training_data_directly(served_project, token_client):
    trusted = token_client(served_project, ["predict", "feedback"], trusted=True, name="support agents")
    answer = predict(served_project, trusted, text="where is the card you sent me", external_id="t-5")
    trusted.post(URL.format(served_project.id), correction(answer["prediction_id"], "card_arrival"), format="json")
    route_pending(project_id=served_project.id)
    event = FeedbackEvent.objects.get()
    assert event.status == FeedbackStatus.TRAINING and not event.item.needs_review
    annotation = Annotation.objects.get(item=event.item)
    assert annotation.source == AnnotationSource.FEEDBACK and annotation.labels == ["card_arrival"]
    snapshot = snapshot_create(project=served_project)
    assert snapshot.source_counts.get("feedback") == 1


def test_feedback_on_an_item_experts_already_labelled_is_judged_at_once(served_project, backend, expert):
    item = Item.objects.filter(project=served_project, annotations__annotator=expert).first()
    truth = item.annotations.get().labels
    event = {"data": item.data, "external_id": item.external_id, "kind": "correction",
             "label": next(k for k in ("card_arrival", "exchange_rate") if [k] != truth), "end_user": "u", "occurred_at": NOW}
    backend.post(URL.format(served_project.id), event, format="json")
    route_pending(project_id=served_project.id)
    stored = FeedbackEvent.objects.get()
    assert stored.status == FeedbackStatus.REVIEWED and stored.expert_agrees is False and stored.item_id == item.id


def test_several_corrections_of_one_prediction_share_one_review_item(served_project, backend):
    """Routed together, events on the same prediction (no external id) must not make an item each."""
    answer = predict(served_project, backend, text="why was I charged twice for my card")
    response = backend.post(URL.format(served_project.id), {"events": [
        correction(answer["prediction_id"], "exchange_rate", user=f"u-{i}") for i in range(5)]}, format="json")
    assert response.status_code == 201
    items_before = Item.objects.filter(project=served_project).count()
    assert route_pending(project_id=served_project.id) == 5
    assert Item.objects.filter(project=served_project).count() == items_before + 1
    (item_id,) = set(FeedbackEvent.objects.values_list("item_id", flat=True))
    assert Item.objects.get(id=item_id).needs_review
    assert Prediction.objects.get(id=answer["prediction_id"]).item_id == item_id


def test_a_label_added_to_the_project_is_accepted_in_corrections_at_once(served_project, backend):
    from labeller.models import Label

    answer = predict(served_project, backend)
    url = URL.format(served_project.id)
    assert backend.post(url, correction(answer["prediction_id"], "card_swallowed"), format="json").status_code == 422
    Label.objects.create(project=served_project, key="card_swallowed", name="Card swallowed")  # the cached keys are dropped
    assert backend.post(url, correction(answer["prediction_id"], "card_swallowed"), format="json").status_code == 201


def test_an_archived_label_is_refused_in_corrections_at_once(served_project, backend):
    from labeller.models import Label
    from labeller.services import label_archive

    answer = predict(served_project, backend)
    label_archive(label=Label.objects.get(project=served_project, key="card_arrival"))  # the cached keys are dropped
    refused = backend.post(URL.format(served_project.id), correction(answer["prediction_id"], "card_arrival"), format="json")
    assert refused.status_code == 422 and "not an archived one" in str(refused.json())


def test_a_checked_token_is_cached_briefly_and_a_revocation_by_another_process_lands_within_the_ttl(
        served_project, token_client, django_assert_num_queries, monkeypatch):
    from feedback import process_cache, tokens
    from feedback.models import ApiToken

    client = token_client(served_project, ["feedback"])
    plain = client._credentials["HTTP_AUTHORIZATION"].split()[1]
    first = tokens.token_check(plain)
    assert first.id == client.token.id and first.project == served_project
    with django_assert_num_queries(0):
        again = tokens.token_check(plain)
    assert again is not first  # each caller its own copy
    ApiToken.objects.filter(id=client.token.id).update(revoked_at=timezone.now())  # as another process would
    assert tokens.token_check(plain) is not None  # still trusted here, for at most TOKEN_TTL
    later = process_cache.time.monotonic() + tokens.TOKEN_TTL + 0.1
    monkeypatch.setattr(process_cache.time, "monotonic", lambda: later)
    assert tokens.token_check(plain) is None


def test_a_members_own_feedback_is_a_source_and_end_users_build_a_track_record(served_project, backend, expert, client_for):
    """Feedback a member posts with their own credentials is attributed to them; once experts
    have reviewed an end user's feedback, the next review shows how often that user was right."""
    member = client_for(expert)
    first = predict(served_project, backend, text="my card still has not come", external_id="chat-1")
    member.post(URL.format(served_project.id), correction(first["prediction_id"], "exchange_rate", user="u-9"), format="json")
    route_pending(project_id=served_project.id)
    assert FeedbackEvent.objects.get().user == expert
    item = Item.objects.get(project=served_project, external_id="chat-1")
    annotation_submit(item=item, user=expert, labels=["exchange_rate"])  # u-9 was right
    rows = {r["name"]: r for r in source_reliability(project=served_project)}
    assert rows["expert (member)"]["reviewed"] == 1 and rows["expert (member)"]["reliability"] == 1.0

    second = predict(served_project, backend, text="how much is a euro in dollars", external_id="chat-2")
    backend.post(URL.format(served_project.id), correction(second["prediction_id"], "card_arrival", user="u-9"), format="json")
    route_pending(project_id=served_project.id)
    item = Item.objects.get(project=served_project, external_id="chat-2")
    panel = member.get(f"/api/projects/{served_project.id}/review/{item.id}").json()["review"]
    assert panel["sources"] == ["checkout backend"]
    assert panel["users"] == [{"says": "card_arrival", "users": 1,
                               "track_record": {"reviewed": 1, "agreed": 1, "reliability": 1.0}}]
