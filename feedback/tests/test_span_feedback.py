"""Feedback on a span project's predictions: a user's whole corrected list of spans, or one span
they say is wrong or missing; checked as imports are (each problem by its event and field, the
batch all or nothing); untrusted corrections go to expert review, where the model's spans and the
users' are shown side by side, and the expert's spans settle it; trusted ones train; and the
live disagreement monitoring counts them."""
from datetime import datetime, timedelta, timezone

import pytest

from feedback.models import FeedbackEvent, FeedbackStatus, Prediction, ServedAs
from feedback.monitoring import point_metrics
from feedback.review import review_summary, route_pending
from labeller.models import Annotation, AnnotationSource, Item
from labeller.services import annotation_submit
from models_registry.models import ModelVersion, VersionStatus

pytestmark = pytest.mark.django_db
URL = "/api/projects/{}/feedback"
NOW = "2026-11-25T10:00:00Z"
TEXT = "Donald Trump met Theresa May in Washington"
TRUMP = {"start": 0, "end": 12, "label": "PER"}
MAY = {"start": 17, "end": 28, "label": "PER"}
WASHINGTON = {"start": 32, "end": 42, "label": "LOC"}
WASHINGTON_AS_ORG = {"start": 32, "end": 42, "label": "ORG"}


def spanned(*spans, confidence=0.9):
    return [{**s, "text": TEXT[s["start"]:s["end"]], "confidence": confidence} for s in spans]


@pytest.fixture
def version(btc_project):
    # Feedback checks and routes what the prediction log holds; no model is loaded for it.
    return ModelVersion.objects.create(project=btc_project, number=1, kind="head", status=VersionStatus.READY)


@pytest.fixture
def prediction(btc_project, version):
    """The model found Trump and Washington (as an organisation), and missed May."""
    return Prediction.objects.create(project=btc_project, version=version, served_as=ServedAs.CHAMPION, data={"text": TEXT},
                                     external_id="tweet-1", labels=spanned(TRUMP, WASHINGTON_AS_ORG), confidence=0.62, top=[])


def event(prediction, kind, user="u-1", **extra):
    return {"prediction_id": str(prediction.id), "kind": kind, "end_user": user, "occurred_at": NOW, **extra}


def post(client, project, events):
    return client.post(URL.format(project.id), {"events": events}, format="json")


def test_an_untrusted_span_correction_goes_to_review_with_the_model_and_the_users_side_by_side(
        btc_project, prediction, token_client, expert):
    app = token_client(btc_project, ["feedback"], name="tweet app")
    corrected = spanned(TRUMP, MAY, WASHINGTON)  # the text of each span may come along; it is checked
    response = post(app, btc_project, [event(prediction, "correction", "u-1", spans=corrected),
                                       event(prediction, "correction", "u-2", spans=[TRUMP, MAY, WASHINGTON]),
                                       event(prediction, "span_wrong", "u-3", span=WASHINGTON_AS_ORG),
                                       event(prediction, "span_missing", "u-4", span={**MAY, "text": "Theresa May"})])
    assert response.status_code == 201, response.content
    stored = list(FeedbackEvent.objects.order_by("id"))
    assert stored[0].spans == [TRUMP, MAY, WASHINGTON] and stored[0].label == ""
    assert stored[2].spans == [WASHINGTON_AS_ORG] and stored[3].spans == [MAY]
    assert stored[0].predicted_labels == prediction.labels and stored[0].version == prediction.version

    assert route_pending(project_id=btc_project.id) == 4
    item = Item.objects.get(project=btc_project, external_id="tweet-1")
    assert item.needs_review and not item.is_done and item.predicted == "ORG|PER"
    assert set(FeedbackEvent.objects.values_list("status", flat=True)) == {FeedbackStatus.REVIEW}

    summary = review_summary(item=item)
    assert summary["model"]["spans"] == prediction.labels and summary["model"]["version"] == 1
    users = {u["says"]: u for u in summary["users"]}
    assert set(users) == {"Donald Trump (PER), Theresa May (PER), Washington (LOC)", "wrong: Washington (ORG)",
                          "missing: Theresa May (PER)"}
    whole = users["Donald Trump (PER), Theresa May (PER), Washington (LOC)"]
    assert whole["users"] == 2 and whole["kind"] == "correction"
    assert whole["spans"] == [{**s, "text": TEXT[s["start"]:s["end"]]} for s in (TRUMP, MAY, WASHINGTON)]
    assert users["wrong: Washington (ORG)"]["kind"] == "span_wrong"

    # The expert settles it with spans: the corrections and both span events agree with them.
    annotation_submit(item=item, user=expert, labels=[TRUMP, MAY, WASHINGTON])
    item.refresh_from_db()
    assert not item.needs_review and item.is_done
    assert set(FeedbackEvent.objects.values_list("status", "expert_agrees")) == {(FeedbackStatus.REVIEWED, True)}


def test_the_expert_keeping_a_span_a_user_called_wrong_disagrees_with_that_user(btc_project, prediction, token_client, expert):
    app = token_client(btc_project, ["feedback"])
    post(app, btc_project, [event(prediction, "span_wrong", "u-1", span=TRUMP),
                            event(prediction, "span_missing", "u-2", span=MAY)])
    route_pending(project_id=btc_project.id)
    item = Item.objects.get(project=btc_project, external_id="tweet-1")
    annotation_submit(item=item, user=expert, labels=[TRUMP, WASHINGTON])
    assert dict(FeedbackEvent.objects.values_list("end_user", "expert_agrees")) == {"u-1": False, "u-2": False}


def test_a_trusted_span_correction_trains_and_a_confirmation_trains_on_the_models_spans(btc_project, prediction, version,
                                                                                     token_client):
    backend = token_client(btc_project, ["feedback"], trusted=True)
    other = Prediction.objects.create(project=btc_project, version=version, served_as=ServedAs.CHAMPION,
                                      data={"text": "Paris in spring"}, external_id="tweet-2",
                                      labels=[{"start": 0, "end": 5, "label": "LOC", "text": "Paris", "confidence": 0.97}],
                                      confidence=0.97, top=[])
    response = post(backend, btc_project, [event(prediction, "correction", spans=[TRUMP, MAY, WASHINGTON]),
                                           event(other, "confirmation")])
    assert response.status_code == 201, response.content
    route_pending(project_id=btc_project.id)
    labels = {a.item.external_id: a.labels for a in Annotation.objects.filter(source=AnnotationSource.FEEDBACK)}
    assert labels == {"tweet-1": [TRUMP, MAY, WASHINGTON], "tweet-2": [{"start": 0, "end": 5, "label": "LOC"}]}
    assert set(FeedbackEvent.objects.values_list("status", flat=True)) == {FeedbackStatus.TRAINING}


def test_a_trusted_sources_span_wrong_still_goes_to_review(btc_project, prediction, token_client):
    backend = token_client(btc_project, ["feedback"], trusted=True)
    post(backend, btc_project, [event(prediction, "span_wrong", span=TRUMP)])
    route_pending(project_id=btc_project.id)
    assert FeedbackEvent.objects.get().status == FeedbackStatus.REVIEW
    assert not Annotation.objects.exists()


def test_a_correction_equal_to_the_prediction_agrees_and_is_not_reviewed(btc_project, prediction, token_client):
    app = token_client(btc_project, ["feedback"])
    post(app, btc_project, [event(prediction, "correction", spans=[WASHINGTON_AS_ORG, TRUMP])])
    route_pending(project_id=btc_project.id)
    assert FeedbackEvent.objects.get().status == FeedbackStatus.AGREES
    assert not Item.objects.filter(needs_review=True).exists()


@pytest.mark.parametrize("bad, field, words", [
    ({"kind": "correction", "spans": [{"start": 30, "end": 99, "label": "LOC"}]}, "events[1].spans[0]", "outside the text"),
    ({"kind": "correction", "spans": [TRUMP, {"start": 5, "end": 5, "label": "PER"}]}, "events[1].spans[1]", "before end"),
    ({"kind": "correction", "spans": [{**TRUMP, "label": "DOG"}]}, "events[1].spans[0].label", "unknown label"),
    ({"kind": "correction", "spans": [{**TRUMP, "text": "Donald Duck"}]}, "events[1].spans[0].text", "does not match"),
    ({"kind": "correction", "spans": [TRUMP, {"start": 7, "end": 16, "label": "PER"}]}, "events[1].spans", "overlap"),
    ({"kind": "correction", "spans": [{"start": "0", "end": 12, "label": "PER"}]}, "events[1].spans[0].start", "whole number"),
    ({"kind": "correction"}, "events[1].spans", "required"),
    ({"kind": "correction", "label": "PER", "spans": []}, "events[1].label", "carries spans, not a label"),
    ({"kind": "correction", "spans": {"start": 0}}, "events[1].spans", "list of spans"),
    ({"kind": "span_wrong"}, "events[1].span", "required"),
    ({"kind": "span_wrong", "span": MAY}, "events[1].span", "not one of the prediction's spans"),
    ({"kind": "span_missing", "span": TRUMP}, "events[1].span", "already has this span"),
    ({"kind": "span_missing", "span": [MAY]}, "events[1].span", "must be an object"),
    ({"kind": "span_missing", "span": {"start": 17, "label": "PER"}}, "events[1].span.end", "missing"),
    ({"kind": "confirmation", "spans": [TRUMP]}, "events[1].spans", "neither"),
])
def test_a_bad_span_event_refuses_the_batch_naming_its_index_and_field(btc_project, prediction, token_client, bad, field, words):
    app = token_client(btc_project, ["feedback"])
    response = post(app, btc_project, [event(prediction, "correction", spans=[TRUMP]), event(prediction, **bad)])
    assert response.status_code == 422, response.content
    errors = response.json()
    assert field in errors and words in " ".join(errors[field]), errors
    assert not FeedbackEvent.objects.exists()


def test_span_events_with_the_items_data_instead_of_a_prediction_are_checked_against_that_text(btc_project, token_client):
    app = token_client(btc_project, ["feedback"])
    base = {"data": {"text": "Paris"}, "end_user": "u-1", "occurred_at": NOW}
    good = post(app, btc_project, [{**base, "kind": "span_missing", "span": {"start": 0, "end": 5, "label": "LOC"}}])
    assert good.status_code == 201, good.content
    bad = post(app, btc_project, [{**base, "kind": "span_missing", "span": {"start": 0, "end": 6, "label": "LOC"}}])
    assert bad.status_code == 422 and "events[0].span" in bad.json()


def test_span_kinds_and_spans_are_refused_on_a_classification_project(project, token_client):
    app = token_client(project, ["feedback"])
    base = {"data": {"text": "lost my card"}, "end_user": "u-1", "occurred_at": NOW}
    response = post(app, project, [{**base, "kind": "span_missing", "span": {"start": 0, "end": 4, "label": "card_arrival"}},
                                   {**base, "kind": "correction", "label": "card_arrival", "spans": []}])
    assert response.status_code == 422
    assert {"events[0].kind", "events[0].span", "events[1].spans"} <= set(response.json())


def test_outsiders_cannot_send_span_feedback(btc_project, prediction, token_client, client_for, outsider, make_project, viewer):
    body = {"events": [event(prediction, "span_wrong", span=TRUMP)]}
    other = make_project(name="someone else's")
    assert token_client(other, ["feedback"]).post(URL.format(btc_project.id), body, format="json").status_code == 404
    assert client_for(outsider).post(URL.format(btc_project.id), body, format="json").status_code == 404
    assert token_client(btc_project, ["predict"]).post(URL.format(btc_project.id), body, format="json").status_code == 403
    assert not FeedbackEvent.objects.exists()


def test_live_disagreement_counts_span_corrections_that_differ_from_the_prediction(btc_project, prediction, version,
                                                                                   token_client):
    app = token_client(btc_project, ["feedback"])
    response = post(app, btc_project, [event(prediction, "correction", "u-1", spans=[TRUMP, WASHINGTON_AS_ORG]),  # agrees
                                       event(prediction, "correction", "u-2", spans=[TRUMP, MAY, WASHINGTON]),
                                       event(prediction, "span_missing", "u-3", span=MAY),
                                       event(prediction, "confirmation", "u-4")])
    assert response.status_code == 201, response.content
    start = datetime(2026, 11, 25, 10, tzinfo=timezone.utc)
    _, metrics = point_metrics(project=btc_project, version=version, start=start, end=start + timedelta(hours=1),
                               min_predictions=50)
    assert metrics["feedback"] == 4 and metrics["disagreement_rate"] == 0.5 and metrics["live_accuracy"] == 0.5
