"""POSTing alerts to a project's webhook, safely: only to allow-listed hosts, never to private,
loopback or link-local addresses (unless LABELLOOP_WEBHOOK_ALLOW_PRIVATE), no redirects."""
from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

import requests
from django.conf import settings

from .models import Alert


class WebhookRefused(ValueError):
    pass


def webhook_check(url: str) -> list[str]:
    """The addresses `url` may be sent to, or WebhookRefused saying why not."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise WebhookRefused("webhook_url: must be an http(s) URL with a host")
    host = parts.hostname.lower()
    allowed = settings.LABELLOOP_WEBHOOK_ALLOWED_HOSTS
    if host not in allowed:
        raise WebhookRefused(f"webhook_url: host '{host}' is not allow-listed (LABELLOOP_WEBHOOK_ALLOWED_HOSTS)")
    try:
        infos = socket.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80), proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise WebhookRefused(f"webhook_url: host '{host}' does not resolve ({exc})") from exc
    addresses = sorted({info[4][0] for info in infos})
    if not settings.LABELLOOP_WEBHOOK_ALLOW_PRIVATE:
        for address in addresses:
            ip = ipaddress.ip_address(address)
            if not ip.is_global:
                raise WebhookRefused(f"webhook_url: '{host}' resolves to a non-public address ({address})")
    return addresses


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
            webhook_check(url)
        except WebhookRefused as exc:
            outcome = f"refused: {exc}"
        else:
            response = requests.post(url, json=alert_payload(alert), timeout=5, allow_redirects=False)
            outcome = f"HTTP {response.status_code}"
    Alert.objects.filter(id=alert.id).update(webhook_status=outcome[:200])
    return outcome
