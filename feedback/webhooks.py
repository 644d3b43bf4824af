"""POSTing alerts to a project's webhook, safely: only to allow-listed hosts, never to private,
loopback or link-local addresses (unless LABELLOOP_WEBHOOK_ALLOW_PRIVATE), no redirects.

The URL is parsed once, here, and anything two parsers could read differently is refused
(backslashes, user info, spaces and control characters, non-ASCII). The host is resolved once and
the POST goes to an address that was checked, so a name that resolves elsewhere at send time (DNS
rebinding) cannot redirect it; HTTPS still verifies the certificate against the host's name."""
from __future__ import annotations

import ipaddress
import json
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from celery import shared_task
from django.conf import settings
from requests.adapters import HTTPAdapter

from .models import Alert

TIMEOUT_SECONDS = 5
_UNSAFE = re.compile(r"[\x00-\x20\x7f]")


class WebhookRefused(ValueError):
    pass


@dataclass(frozen=True)
class WebhookTarget:
    scheme: str
    host: str
    port: int
    path: str  # path and query, as sent
    addresses: list[str]

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        name = f"[{self.host}]" if ":" in self.host else self.host  # an IPv6 literal
        return name if self.port == default else f"{name}:{self.port}"

    def url_for(self, address: str) -> str:
        literal = f"[{address}]" if ":" in address else address
        return f"{self.scheme}://{literal}:{self.port}{self.path}"


def webhook_target(url: str) -> WebhookTarget:
    """Where `url` may be sent: its parts and checked addresses, or WebhookRefused saying why not."""
    if "\\" in url:
        raise WebhookRefused("webhook_url: must not contain a backslash")
    if _UNSAFE.search(url):
        raise WebhookRefused("webhook_url: must not contain spaces or control characters")
    if not url.isascii():
        raise WebhookRefused("webhook_url: must be ASCII (write an international host name in its xn-- form)")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise WebhookRefused("webhook_url: must be an http(s) URL with a host")
    if "@" in parts.netloc:
        raise WebhookRefused("webhook_url: must not carry a user name or password")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise WebhookRefused("webhook_url: the port must be a number from 1 to 65535") from exc
    host = parts.hostname.lower()
    allowed = settings.LABELLOOP_WEBHOOK_ALLOWED_HOSTS
    if host not in allowed:
        raise WebhookRefused(f"webhook_url: host '{host}' is not allow-listed (LABELLOOP_WEBHOOK_ALLOWED_HOSTS)")
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise WebhookRefused(f"webhook_url: host '{host}' does not resolve ({exc})") from exc
    addresses = sorted({info[4][0] for info in infos})
    if not settings.LABELLOOP_WEBHOOK_ALLOW_PRIVATE:
        for address in addresses:
            ip = ipaddress.ip_address(address)
            if not ip.is_global:
                raise WebhookRefused(f"webhook_url: '{host}' resolves to a non-public address ({address})")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return WebhookTarget(scheme=parts.scheme, host=host, port=port, path=path, addresses=addresses)


def webhook_check(url: str) -> list[str]:
    """The addresses `url` may be sent to, or WebhookRefused saying why not."""
    return webhook_target(url).addresses


class _PinnedAddress(HTTPAdapter):
    """Connects to the checked address in the URL while TLS sends the host's name (SNI) and
    verifies the certificate against it, as it would have for the name."""

    def __init__(self, host: str):
        self.host = host
        super().__init__(max_retries=0)

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        if host_params["scheme"] == "https":
            pool_kwargs["server_hostname"] = self.host
            pool_kwargs["assert_hostname"] = self.host
        return host_params, pool_kwargs


def webhook_post(target: WebhookTarget, payload: dict) -> requests.Response:
    """POST `payload` to the first checked address that answers. Network errors raise (the task retries)."""
    with requests.Session() as session:
        session.trust_env = False  # a proxy from the environment would resolve the name again
        session.mount(f"{target.scheme}://", _PinnedAddress(target.host))
        headers = {"Host": target.host_header, "Content-Type": "application/json"}
        body = json.dumps(payload).encode()
        for i, address in enumerate(target.addresses):
            try:
                return session.post(target.url_for(address), data=body, headers=headers, timeout=TIMEOUT_SECONDS,
                                    allow_redirects=False)
            except requests.ConnectionError:
                if i == len(target.addresses) - 1:
                    raise


def alert_payload(alert: Alert) -> dict:
    return {
        "project": alert.project_id, "alert": alert.id, "metric": alert.metric, "value": alert.value,
        "threshold": alert.threshold, "model_version": alert.version.number if alert.version else None,
        "message": alert.message, "created_at": alert.created_at.isoformat(),
    }


def alert_send(*, alert: Alert) -> str:
    """POST the alert; returns (and stores) what happened. Network errors raise, for a retry."""
    url = alert.project.serving_policy.webhook_url if hasattr(alert.project, "serving_policy") else ""
    if not url:
        outcome = "no webhook configured"
    else:
        try:
            target = webhook_target(url)
        except WebhookRefused as exc:
            outcome = f"refused: {exc}"
        else:
            outcome = f"HTTP {webhook_post(target, alert_payload(alert)).status_code}"
    Alert.objects.filter(id=alert.id).update(webhook_status=outcome[:200])
    return outcome


# Beside the service it runs, so monitoring enqueues it without a tasks module importing it back;
# the name predates this module (routes, messages already queued).
@shared_task(name="feedback.tasks.send_alert_webhook", autoretry_for=(requests.RequestException,),
             retry_backoff=True, max_retries=5)
def send_alert_webhook(alert_id: int) -> str:
    return alert_send(alert=Alert.objects.select_related("project", "version").get(id=alert_id))
