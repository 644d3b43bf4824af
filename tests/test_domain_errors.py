"""One way to fail: a DomainError raised by a service is answered by the API's one exception
handler with its status and {field: [message]}, or {"detail": message} when no field is at fault."""
import pytest
from rest_framework.test import APIRequestFactory

from core.errors import Conflict, DomainError, NotAllowed, NotFound
from core.exception_handler import exception_handler
from labeller.services import membership_set
from labeller.models import Role

pytestmark = pytest.mark.django_db


def answer(exc):
    response = exception_handler(exc, {"request": APIRequestFactory().get("/")})
    return response.status_code, response.data


def test_it_answers_a_refusal_with_400_naming_the_field():
    assert answer(DomainError("unknown label key 'x'", field="labels")) == (400, {"labels": ["unknown label key 'x'"]})


def test_it_answers_a_refusal_without_a_field_with_detail():
    assert answer(Conflict("v1 is queued; retry later")) == (409, {"detail": "v1 is queued; retry later"})


def test_it_answers_not_found_and_not_allowed_as_the_api_always_did():
    assert answer(NotFound("No such project.")) == (404, {"detail": "No such project."})
    assert answer(NotAllowed("needs admin")) == (403, {"detail": "needs admin"})


def test_it_takes_the_status_the_raiser_gives():
    assert answer(DomainError("used with a different request", field="Idempotency-Key", status=422)) == (
        422, {"Idempotency-Key": ["used with a different request"]})


def test_the_error_reads_as_field_and_message():
    error = DomainError("an override needs a reason", field="reason")
    assert (error.field, error.message, str(error)) == ("reason", "an override needs a reason",
                                                       "reason: an override needs a reason")


def test_a_service_refusal_becomes_the_documented_409(client_for, owner, project):
    response = client_for(owner).post(f"/api/projects/{project.id}/members/", {"username": owner.username, "role": Role.EXPERT},
                                      format="json")
    assert response.status_code == 409
    assert response.json() == {"role": ["the project needs at least one admin; make another member admin first"]}


def test_a_service_refusal_becomes_the_documented_400(client_for, owner, project):
    response = client_for(owner).post(f"/api/projects/{project.id}/models/", {}, format="json")
    assert response.status_code == 400 and response.json() == {"project": ["no labelled items to train on yet"]}
    assert "409" in client_for(owner).get("/api/schema/?format=json").json()["paths"][
        "/api/projects/{project_id}/members/"]["post"]["responses"]


def test_the_service_raises_the_domain_error_it_is_answered_from(owner, project):
    from labeller.services import LastAdmin

    with pytest.raises(LastAdmin) as refused:
        membership_set(project=project, user=owner, role=Role.EXPERT)
    assert isinstance(refused.value, Conflict) and refused.value.field == "role"
