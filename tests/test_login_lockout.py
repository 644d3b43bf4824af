"""Guessing passwords is stopped: after LABELLOOP_LOGIN_FAILURE_LIMIT failures for one username
from one address, the login page, the admin login and the token endpoint refuse that username from
that address, even with the right password, until the cool-off has passed. Others are unaffected."""
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.utils import timezone
from django.test import Client
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def page_login(username, password):
    return Client().post("/login/", {"username": username, "password": password})


def admin_login(username, password):
    return Client().post("/admin/login/", {"username": username, "password": password, "next": "/admin/"})


def token_login(username, password):
    return APIClient().post("/api/auth/token", {"username": username, "password": password}, format="json")


def logged_in(door, response) -> bool:
    if door is token_login:
        return response.status_code == 200 and "token" in response.json()
    return response.status_code == 302 and "login" not in response.url


@pytest.fixture
def staff(make_user, expert):
    """Two staff users (the admin login needs staff); passwords are `<name>-password`."""
    user = make_user("staffer")
    for each in (user, expert):
        each.is_staff = each.is_superuser = True
        each.save()
    return user


def cool_off_passes():
    # Move the recorded failures back in time rather than waiting: the cool-off is minutes long.
    AccessAttempt.objects.update(attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1))


@pytest.mark.parametrize("door", [page_login, admin_login, token_login], ids=["page", "admin", "token"])
def test_it_locks_a_username_out_after_the_failure_limit_even_with_the_right_password(door, staff):
    limit = settings.AXES_FAILURE_LIMIT
    for _ in range(limit - 1):
        response = door("staffer", "wrong")
        assert response.status_code in (200, 400), response.status_code  # an ordinary failure, not yet locked
    locked = door("staffer", "wrong")
    assert locked.status_code == 429
    assert door("staffer", "staffer-password").status_code == 429
    if door is token_login:
        assert "try again" in locked.json()["detail"]
    assert logged_in(door, door("expert", "expert-password"))  # another user, from the same address
    cool_off_passes()
    assert logged_in(door, door("staffer", "staffer-password"))


def test_a_lockout_on_one_door_holds_on_the_others(staff):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        page_login("staffer", "wrong")
    assert token_login("staffer", "staffer-password").status_code == 429
    assert admin_login("staffer", "staffer-password").status_code == 429


def test_a_successful_login_resets_the_count_of_failures(expert):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        page_login("expert", "wrong")
    assert logged_in(page_login, page_login("expert", "expert-password"))
    assert page_login("expert", "wrong").status_code == 200  # counting starts again


def test_the_token_endpoint_names_the_missing_field():
    response = APIClient().post("/api/auth/token", {"username": "expert"}, format="json")
    assert response.status_code == 400 and "password" in response.json()


def test_the_token_endpoint_limits_requests_per_address_whatever_the_username(monkeypatch, expert):
    """The lockout is per username; guessing one password for many usernames meets this limit."""
    from labeller.api.auth import LoginRateThrottle

    monkeypatch.setattr(LoginRateThrottle, "THROTTLE_RATES", {"login": "3/min"})
    for username in ("alice", "bob", "carol"):
        assert token_login(username, "Summer2024!").status_code == 400
    refused = token_login("expert", "expert-password")
    assert refused.status_code == 429 and "Retry-After" in refused


def test_a_forged_forwarded_for_header_does_not_escape_the_login_rate_limit(monkeypatch, expert):
    from labeller.api.auth import LoginRateThrottle

    monkeypatch.setattr(LoginRateThrottle, "THROTTLE_RATES", {"login": "3/min"})
    for n, username in enumerate(("alice", "bob", "carol")):
        response = APIClient().post("/api/auth/token", {"username": username, "password": "x"}, format="json",
                                    HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")
        assert response.status_code == 400
    refused = APIClient().post("/api/auth/token", {"username": "expert", "password": "expert-password"},
                               format="json", HTTP_X_FORWARDED_FOR="198.51.100.99")
    assert refused.status_code == 429


def test_behind_a_trusted_proxy_the_lockout_tells_clients_apart(settings, staff):
    settings.LABELLOOP_PROXY_COUNT = 1

    def login_from(forwarded_for, password):
        return Client().post("/login/", {"username": "staffer", "password": password},
                             REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded_for)

    for _ in range(settings.AXES_FAILURE_LIMIT):
        login_from("203.0.113.1", "wrong")
    assert login_from("203.0.113.1", "staffer-password").status_code == 429
    # What the client itself wrote to the left of the proxy's entry changes nothing.
    assert login_from("192.0.2.7, 203.0.113.1", "staffer-password").status_code == 429
    assert logged_in(page_login, login_from("203.0.113.2", "staffer-password"))
