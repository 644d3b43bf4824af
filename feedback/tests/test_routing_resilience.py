"""Feedback is never lost or stuck: stored events are answered as stored even with the broker down
(beat's route_all_pending routes them later), and one event that cannot be routed is set aside with
its reason while every other event, and every other project, is still routed."""
import pytest

from feedback import review
from feedback.models import FeedbackEvent, FeedbackStatus
from feedback.review import route_pending
from feedback.tasks import route_all_pending

URL = "/api/projects/{}/feedback"
NOW = "2026-11-25T10:00:00Z"


def event(text, user="u-1", **extra):
    return {"data": {"text": text}, "kind": "rejection", "end_user": user, "occurred_at": NOW, **extra}


@pytest.fixture
def poisoned(monkeypatch):
    """Routing fails (as an unexpected bug would) for any event whose item text is 'poison'."""
    real = review.items_for

    def items_for(project, wanted, **kwargs):
        if any(data.get("text") == "poison" for data, _ in wanted):
            raise ValueError("cannot make an item of this event")
        return real(project, wanted, **kwargs)

    monkeypatch.setattr(review, "items_for", items_for)


@pytest.mark.django_db(transaction=True)  # real commits: the routing message is sent inside the request
def test_a_feedback_post_answers_201_with_the_broker_down_and_beat_routes_it_later(project, token_client, broker):
    backend = token_client(project, ["feedback"])
    broker.down = True
    response = backend.post(URL.format(project.id), event("my card never came"), format="json")
    assert response.status_code == 201, response.content
    assert FeedbackEvent.objects.get().status == FeedbackStatus.PENDING

    broker.down = False
    assert route_all_pending() == 1
    assert FeedbackEvent.objects.get().status == FeedbackStatus.REVIEW


@pytest.mark.django_db
def test_one_event_that_cannot_be_routed_is_set_aside_with_its_reason_and_the_others_route(project, token_client, poisoned):
    backend = token_client(project, ["feedback"])
    response = backend.post(URL.format(project.id), {"events": [
        event("my card never came"), event("poison"), event("the rate was wrong")]}, format="json")
    assert response.status_code == 201, response.content

    assert route_pending(project_id=project.id) == 2
    statuses = dict(FeedbackEvent.objects.values_list("data__text", "status"))
    assert statuses == {"my card never came": FeedbackStatus.REVIEW, "poison": FeedbackStatus.FAILED,
                        "the rate was wrong": FeedbackStatus.REVIEW}
    failed = FeedbackEvent.objects.get(status=FeedbackStatus.FAILED)
    assert failed.route_error == "ValueError: cannot make an item of this event" and failed.item is None
    assert route_pending(project_id=project.id) == 0, "a failed event is not tried again on every run"


@pytest.mark.django_db
def test_the_safety_net_routes_the_next_project_when_one_project_fails(make_project, token_client, monkeypatch):
    first, second = make_project(name="First"), make_project(name="Second")
    for p in (first, second):
        token_client(p, ["feedback"]).post(URL.format(p.id), event(f"card of {p.name}"), format="json")
    real = review.route_pending

    def route_pending(*, project_id):
        if project_id == first.id:
            raise RuntimeError("the first project's routing broke")
        return real(project_id=project_id)

    monkeypatch.setattr(review, "route_pending", route_pending)
    route_all_pending()
    assert FeedbackEvent.objects.get(project=first).status == FeedbackStatus.PENDING
    assert FeedbackEvent.objects.get(project=second).status == FeedbackStatus.REVIEW
