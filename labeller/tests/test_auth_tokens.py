"""User API tokens (POST /api/auth/token, `Authorization: Token …`): stored hashed, expiring,
revocable one by one (logout) or all at once (logout-all), and scoped like the user."""
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def token_for(username: str) -> dict:
    response = APIClient().post("/api/auth/token", {"username": username, "password": f"{username}-password"}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def client_with(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def every_text_in_the_database() -> str:
    """Every value of every column of every table, as text: where a plain token could hide."""
    texts = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            texts.extend(str(value) for row in cursor.fetchall() for value in row)
    return "\n".join(texts)


def test_a_token_works_and_says_when_it_expires(owner, project):
    answer = token_for("owner")
    assert set(answer) == {"token", "expiry"}
    response = client_with(answer["token"]).get("/api/projects/")
    assert [p["id"] for p in response.json()["results"]] == [project.id]


def test_the_token_is_stored_hashed_never_in_plain_text(owner):
    token = token_for("owner")["token"]
    assert len(token) >= 32
    assert token not in every_text_in_the_database()


def test_an_expired_token_is_refused(owner):
    from knox.models import AuthToken

    token = token_for("owner")["token"]
    AuthToken.objects.filter(user=owner).update(expiry=timezone.now() - timedelta(seconds=1))
    assert client_with(token).get("/api/projects/").status_code == 401


def test_a_token_expires_after_the_configured_time(owner, settings):
    from knox.models import AuthToken

    before = timezone.now()
    token_for("owner")
    expiry = AuthToken.objects.get(user=owner).expiry
    ttl = timedelta(hours=settings.LABELLOOP_API_TOKEN_TTL_HOURS)
    assert before + ttl <= expiry <= timezone.now() + ttl


def test_logout_revokes_this_token_only(owner):
    first, second = token_for("owner")["token"], token_for("owner")["token"]
    assert client_with(first).post("/api/auth/logout").status_code == 204
    assert client_with(first).get("/api/projects/").status_code == 401
    assert client_with(second).get("/api/projects/").status_code == 200


def test_logout_all_revokes_every_token_of_the_user_and_no_one_elses(owner, expert):
    first, second = token_for("owner")["token"], token_for("owner")["token"]
    experts = token_for("expert")["token"]
    assert client_with(first).post("/api/auth/logout-all").status_code == 204
    for token in (first, second):
        assert client_with(token).get("/api/projects/").status_code == 401
    assert client_with(experts).get("/api/projects/").status_code == 200


def test_a_made_up_token_is_refused(owner):
    assert client_with("0" * 64).get("/api/projects/").status_code == 401


def test_an_outsiders_token_sees_none_of_the_owners_projects(owner, outsider, project):
    client = client_with(token_for("outsider")["token"])
    assert client.get("/api/projects/").json()["results"] == []
    assert client.get(f"/api/projects/{project.id}/").status_code == 404
    assert client.get(f"/api/projects/{project.id}/members/").status_code == 404


def test_wrong_credentials_get_a_400_that_does_not_say_which_part_was_wrong(owner):
    unknown = APIClient().post("/api/auth/token", {"username": "nobody", "password": "x"}, format="json")
    wrong = APIClient().post("/api/auth/token", {"username": "owner", "password": "x"}, format="json")
    assert unknown.status_code == wrong.status_code == 400
    assert unknown.json() == wrong.json()
