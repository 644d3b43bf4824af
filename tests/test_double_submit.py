"""Double submits: the same request sent twice, one after the other and at the same moment from two
connections, gets an idempotent answer or a 4xx (409 for a conflict), never a duplicate-key 500.
The concurrent cases matter on PostgreSQL (row locks, READ COMMITTED); SQLite serialises writers."""
import threading

import pytest
from django.db import IntegrityError, connection
from rest_framework.test import APIClient

from feedback.models import ApiToken, FeedbackEvent, IdempotencyRecord
from feedback.tokens import token_create
from labeller.models import Annotation, Label

THREADS = 6
EVENT = {"data": {"text": "my card is late"}, "kind": "rejection", "end_user": "u-1", "occurred_at": "2026-02-20T10:00:00Z"}


def at_once(user, send, n=THREADS):
    """Run `send(client)` from n threads released together, each with its own connection."""
    barrier, responses, errors = threading.Barrier(n), [], []

    def run():
        client = APIClient()
        client.force_authenticate(user)
        try:
            barrier.wait(10)
            responses.append(send(client))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return responses


def annotate(project, item, labels=("card_arrival",)):
    return lambda client: client.post(f"/api/projects/{project.id}/items/{item.id}/annotations",
                                      {"labels": list(labels)}, format="json")


@pytest.mark.django_db
def test_submitting_the_same_label_twice_keeps_one_annotation(client_for, expert, project, add_items):
    (item,) = add_items(project, ["where is my card"])
    client = client_for(expert)
    first, second = annotate(project, item)(client), annotate(project, item)(client)
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["id"] == second.json()["id"] and Annotation.objects.count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("labels_per_item", [1, 2])
def test_a_label_submitted_from_two_connections_at_once_is_stored_once(labels_per_item, expert, make_project, add_items):
    project = make_project(labels_per_item=labels_per_item)
    (item,) = add_items(project, ["where is my card"])
    responses = at_once(expert, annotate(project, item))
    assert [r.status_code for r in responses] == [201] * THREADS, [r.content for r in responses]
    assert {r.json()["id"] for r in responses} == {Annotation.objects.get().id}


@pytest.mark.django_db
def test_a_second_label_with_the_same_key_is_400_naming_the_key(client_for, owner, project):
    client = client_for(owner)
    url = f"/api/projects/{project.id}/labels/"
    assert client.post(url, {"key": "refund", "name": "Refund"}, format="json").status_code == 201
    again = client.post(url, {"key": "refund", "name": "Refund"}, format="json")
    assert again.status_code == 400 and "already exists" in again.json()["key"][0]


@pytest.mark.django_db(transaction=True)
def test_labels_with_the_same_key_created_at_once_make_one_label_and_4xx_for_the_rest(owner, project):
    url = f"/api/projects/{project.id}/labels/"
    responses = at_once(owner, lambda client: client.post(url, {"key": "refund", "name": "Refund"}, format="json"))
    codes = sorted(r.status_code for r in responses)
    assert codes[0] == 201 and set(codes[1:]) <= {400, 409}, [r.content for r in responses]
    assert all("key" in r.json() for r in responses if r.status_code != 201)
    assert Label.objects.filter(project=project, key="refund").count() == 1


@pytest.mark.django_db(transaction=True)
def test_feedback_with_one_idempotency_key_sent_at_once_is_stored_once(owner, project):
    url = f"/api/projects/{project.id}/feedback"
    responses = at_once(owner, lambda client: client.post(url, EVENT, format="json", HTTP_IDEMPOTENCY_KEY="k-once"))
    codes = [r.status_code for r in responses]
    assert set(codes) <= {201, 409} and 201 in codes, [r.content for r in responses]
    assert {tuple(r.json()["event_ids"]) for r in responses if r.status_code == 201} == {(FeedbackEvent.objects.get().id,)}
    assert IdempotencyRecord.objects.count() == 1


@pytest.mark.django_db
def test_a_token_whose_random_prefix_is_taken_gets_another(project, monkeypatch):
    """Prefixes are 8 random hex characters, unique: a collision picks a new one, not a 500."""
    import secrets

    taken, _ = token_create(project=project, name="first", scopes=["predict"])
    prefixes = iter([taken.prefix, "0badcafe"])
    monkeypatch.setattr(secrets, "token_hex", lambda n: next(prefixes))
    token, plain = token_create(project=project, name="second", scopes=["predict"])
    assert token.prefix == "0badcafe" and plain.startswith("ll_0badcafe_")
    assert ApiToken.objects.count() == 2


@pytest.mark.django_db
def test_any_other_duplicate_key_reaching_the_api_is_409_not_500(client_for, owner, project, monkeypatch):
    """The exception handler's net under the fixes above: an IntegrityError is a conflict."""
    from labeller.api import views

    def collide(**kwargs):
        raise IntegrityError('duplicate key value violates unique constraint "membership_unique_user_per_project"')

    monkeypatch.setattr(views.services, "membership_set", collide)
    response = client_for(owner).post(f"/api/projects/{project.id}/members/", {"username": "owner", "role": "expert"},
                                      format="json")
    assert response.status_code == 409 and "retry" in response.json()["detail"]
