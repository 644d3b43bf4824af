"""`Idempotency-Key` as Stripe documents it, for POSTs that create things.

- The first request with a key runs; its response (2xx or a 4xx it produced) is stored.
- A retry with the same key and the same body gets the stored response back, unchanged.
- The same key with a different body is refused (422): keys cannot be reused for other requests.
- A retry while the first is still running gets 409; the client retries later.
- A request refused before it ran (bad JSON, authentication) stores nothing, so it is safe to retry.

The in-flight marker is committed before the work starts, so concurrent requests see it; the
work and the stored response commit together, so a crash leaves no half-done request behind
(the marker of a crashed request expires after STALE and the key can then be used again).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable

from django.db import IntegrityError, transaction
from django.utils import timezone

from .models import ApiToken, IdempotencyRecord

HEADER = "Idempotency-Key"
STALE = timedelta(minutes=2)
KEEP = timedelta(hours=24)


@dataclass
class Outcome:
    status: int
    body: dict | list
    replayed: bool = False


class IdempotencyConflict(Exception):
    """The key is in use by a request still running (409) or by a different request (422)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def fingerprint(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b"\0" + path.encode() + b"\0" + body).hexdigest()


def _owner(caller) -> dict:
    return {"token": caller} if isinstance(caller, ApiToken) else {"user": caller}


def run_once(*, caller, key: str, request_fingerprint: str, work: Callable[[], Outcome]) -> Outcome:
    """Run `work` at most once per (caller, key); `work` runs inside the transaction that stores
    its response. A response with status >= 500 is not stored."""
    if not key or len(key) > 255:
        raise IdempotencyConflict(422, f"{HEADER}: must be 1 to 255 characters")
    owner = _owner(caller)
    try:
        with transaction.atomic():
            record = IdempotencyRecord.objects.create(key=key, fingerprint=request_fingerprint, **owner)
    except IntegrityError:
        record = _existing(owner, key, request_fingerprint)
        if isinstance(record, Outcome):
            return record
    try:
        with transaction.atomic():
            outcome = work()
            if outcome.status < 500:
                IdempotencyRecord.objects.filter(id=record.id).update(
                    completed=True, response_status=outcome.status, response_body=outcome.body)
            else:
                IdempotencyRecord.objects.filter(id=record.id).delete()
        return outcome
    except BaseException:
        IdempotencyRecord.objects.filter(id=record.id, completed=False).delete()
        raise


def _existing(owner: dict, key: str, request_fingerprint: str) -> IdempotencyRecord | Outcome:
    record = IdempotencyRecord.objects.get(key=key, **owner)
    if record.fingerprint != request_fingerprint:
        raise IdempotencyConflict(422, f"{HEADER}: this key was used with a different request; use a new key")
    if record.completed:
        return Outcome(record.response_status, record.response_body, replayed=True)
    if timezone.now() - record.created_at < STALE:
        raise IdempotencyConflict(409, f"{HEADER}: a request with this key is still in progress; retry later")
    # The first request died without answering (its work rolled back): this one takes the key over.
    taken = IdempotencyRecord.objects.filter(id=record.id, completed=False, created_at=record.created_at).update(
        created_at=timezone.now())
    if not taken:
        raise IdempotencyConflict(409, f"{HEADER}: a request with this key is still in progress; retry later")
    return record


def expire_old() -> int:
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=timezone.now() - KEEP).delete()
    return deleted
