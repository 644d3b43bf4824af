"""The alert webhook's URL: parsed once, ambiguous forms refused, and sent to the address that
was checked (never re-resolved), so neither a URL trick nor DNS rebinding reaches a local service."""
import socket

import pytest
import requests

from feedback import webhooks
from feedback.models import Alert, ServingPolicy

pytestmark = pytest.mark.django_db
HOST = "hooks.example.com"
PUBLIC = "93.184.216.34"


def resolving(monkeypatch, host, *answers):
    """socket.getaddrinfo answers `host` with each of `answers` in turn, then the last one for
    good; every other name resolves for real."""
    real, answers = socket.getaddrinfo, list(answers)

    def getaddrinfo(name, port, *args, **kwargs):
        if name != host:
            return real(name, port, *args, **kwargs)
        address = answers.pop(0) if len(answers) > 1 else answers[0]
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, int(port or 0)))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def alert_to(project, url):
    # Written directly, as a row saved before validation was tightened would be.
    ServingPolicy.objects.update_or_create(project=project, defaults={"webhook_url": url})
    return Alert.objects.create(project=project, metric="domain_auc", key="domain_auc:v1", value=0.97, threshold=0.8,
                                message="v1: domain auc is 0.970")


@pytest.mark.parametrize("url, problem", [
    ("http://127.0.0.1:8080\\@hooks.example.com/", "backslash"),
    ("http://hooks.example.com\\@127.0.0.1/", "backslash"),
    ("http://user:secret@hooks.example.com/hook", "user name or password"),
    ("http://127.0.0.1@hooks.example.com/hook", "user name or password"),
    ("http://hooks.example.com /hook", "spaces or control characters"),
    ("http://hooks.example.com/ho\tok", "spaces or control characters"),
    ("http://hooks.example.com/hook\r\nX-Injected: 1", "spaces or control characters"),
    ("http://hooks.example.com/h\x00", "spaces or control characters"),
    ("http://hooks.éxample.com/hook", "ASCII"),
    ("http://hooks.example.com:99999/hook", "port"),
    ("http://hooks.example.com:80:80/hook", "port"),
    ("gopher://hooks.example.com/hook", "http"),
    ("//hooks.example.com/hook", "http"),
    ("http:///hook", "host"),
])
def test_it_refuses_ambiguous_urls(settings, monkeypatch, url, problem):
    settings.LABELLOOP_WEBHOOK_ALLOWED_HOSTS = [HOST, "127.0.0.1"]
    settings.LABELLOOP_WEBHOOK_ALLOW_PRIVATE = True
    resolving(monkeypatch, HOST, PUBLIC)
    with pytest.raises(webhooks.WebhookRefused, match=problem):
        webhooks.webhook_check(url)


def test_a_backslash_url_never_reaches_the_address_before_it(project, settings, monkeypatch, webhook_receiver):
    settings.LABELLOOP_WEBHOOK_ALLOWED_HOSTS = [HOST]
    resolving(monkeypatch, HOST, PUBLIC)
    alert = alert_to(project, f"http://127.0.0.1:{webhook_receiver.server.server_port}\\@{HOST}/")
    assert webhooks.alert_send(alert=alert).startswith("refused: webhook_url: ")
    assert webhook_receiver.received == []


def test_a_host_that_resolves_elsewhere_at_send_time_never_reaches_a_local_address(project, settings, monkeypatch,
                                                                                   webhook_receiver):
    settings.LABELLOOP_WEBHOOK_ALLOWED_HOSTS = [HOST]
    settings.LABELLOOP_WEBHOOK_ALLOW_PRIVATE = False
    resolving(monkeypatch, HOST, PUBLIC, "127.0.0.1")  # public when checked, loopback from then on
    monkeypatch.setattr(webhooks, "TIMEOUT_SECONDS", 2, raising=False)
    alert = alert_to(project, f"http://{HOST}:{webhook_receiver.server.server_port}/hook")
    try:
        webhooks.alert_send(alert=alert)
    except requests.RequestException:
        pass  # nothing listens at the public address: the worker would retry, and check again
    assert webhook_receiver.received == []


def test_an_allow_listed_host_receives_the_alert_under_its_own_name(project, settings, monkeypatch, webhook_receiver):
    settings.LABELLOOP_WEBHOOK_ALLOWED_HOSTS = [HOST]
    resolving(monkeypatch, HOST, "127.0.0.1")
    port = webhook_receiver.server.server_port
    alert = alert_to(project, f"http://{HOST}:{port}/hooks/labelloop?team=ml")
    assert webhooks.alert_send(alert=alert) == "HTTP 204"
    assert webhook_receiver.received == [webhooks.alert_payload(alert)]
    assert webhook_receiver.hosts == [f"{HOST}:{port}"]


def test_saving_an_ambiguous_webhook_url_answers_400_naming_the_field(project, client_for, owner, settings, monkeypatch):
    settings.LABELLOOP_WEBHOOK_ALLOWED_HOSTS = [HOST]
    resolving(monkeypatch, HOST, PUBLIC)
    url = f"/api/projects/{project.id}/serving-policy"
    refused = client_for(owner).patch(url, {"webhook_url": f"http://127.0.0.1:8080\\@{HOST}/"}, format="json")
    assert refused.status_code == 400 and "backslash" in refused.json()["webhook_url"][0]
    saved = client_for(owner).patch(url, {"webhook_url": f"https://{HOST}/hook"}, format="json")
    assert saved.status_code == 200 and saved.json()["webhook_url"] == f"https://{HOST}/hook"
