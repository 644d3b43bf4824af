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
                                                                                   webhook_receiver, connected):
    settings.LABELLOOP_WEBHOOK_ALLOWED_HOSTS = [HOST]
    settings.LABELLOOP_WEBHOOK_ALLOW_PRIVATE = False
    resolving(monkeypatch, HOST, PUBLIC, "127.0.0.1")  # public when checked, loopback from then on
    alert = alert_to(project, f"http://{HOST}:{webhook_receiver.server.server_port}/hook")
    with pytest.raises(requests.ConnectionError):
        webhooks.alert_send(alert=alert)  # the worker would retry, and check again
    assert connected == [PUBLIC] and webhook_receiver.received == []


@pytest.fixture(autouse=True)
def connected(monkeypatch) -> list[str]:
    """Every address a connection is opened to, in order; a public one is refused here, before
    any packet leaves the machine (tests send nothing beyond the loopback address)."""
    import urllib3.util.connection

    real, connected = urllib3.util.connection.create_connection, []

    def create_connection(address, *args, **kwargs):
        connected.append(address[0])
        if address[0] == PUBLIC:
            raise ConnectionRefusedError(f"the test refuses {PUBLIC}")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", create_connection)
    return connected


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


def self_signed(tmp_path, name):
    """A certificate for `name`, signed by itself (so no client trusts it), and its key, as files."""
    from datetime import datetime, timedelta, timezone

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False).sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    return tmp_path / "cert.pem", tmp_path / "key.pem"


def test_https_is_sent_to_the_checked_address_with_the_host_name_for_sni_and_the_certificate(
        project, settings, monkeypatch, tmp_path):
    import ssl
    import threading

    settings.LABELLOOP_WEBHOOK_ALLOWED_HOSTS = [HOST]
    settings.LABELLOOP_WEBHOOK_ALLOW_PRIVATE = True
    resolving(monkeypatch, HOST, "127.0.0.1")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*self_signed(tmp_path, HOST))
    server_names = []
    context.sni_callback = lambda sock, name, ctx: server_names.append(name)
    listener = socket.create_server(("127.0.0.1", 0))

    def accept_one():
        conn, _ = listener.accept()
        try:
            context.wrap_socket(conn, server_side=True).close()
        except (ssl.SSLError, OSError):
            pass  # the client hangs up on a certificate it does not trust
        finally:
            conn.close()

    threading.Thread(target=accept_one, daemon=True).start()
    alert = alert_to(project, f"https://{HOST}:{listener.getsockname()[1]}/hook")
    with pytest.raises(requests.exceptions.SSLError, match="certificate verify failed"):
        webhooks.alert_send(alert=alert)
    listener.close()
    assert server_names == [HOST]
