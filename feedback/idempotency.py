"""`Idempotency-Key` as Stripe documents it, for POSTs that create things.

- The first request with a key runs; its response (2xx or a 4xx it produced) is stored.
- A retry with the same key and the same body gets the stored response back, unchanged.
- The same key with a different body is refused (422): keys cannot be reused for other requests.
- A retry while the first is still running gets 409; the client retries later.
- A request refused before it ran (bad JSON, authentication) stores nothing, so it is safe to retry.

The key's record, the work and the stored response commit in one transaction. A concurrent retry's
insert of the same key waits on the first request's uncommitted row (PostgreSQL's unique index;
SQLite's single writer): when the first commits, the retry replays its response; when it rolls
back or its process dies (the database aborts a dead connection's transaction), the retry runs at
once. So a crash never locks a key. On PostgreSQL the wait is capped at IN_FLIGHT_WAIT, after
which the retry gets 409; SQLite waits for its lock like every other writer.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable

from django.db import OperationalError, connection, transaction
from django.utils import timezone

from core.errors import DomainError

from .models import ApiToken, IdempotencyRecord

HEADER = "Idempotency-Key"
IN_FLIGHT_WAIT = "1s"  # PostgreSQL lock_timeout for a retry racing the first request
KEEP = timedelta(hours=24)
IN_PROGRESS = "a request with this key is still in progress; retry later"


@dataclass
class Outcome:
    status: int
    body: dict | list
    replayed: bool = False


class IdempotencyConflict(DomainError):
    """The key is in use by a request still running (409) or by a different request (422)."""

    def __init__(self, status: int, message: str):
        super().__init__(message, field=HEADER, status=status)


def fingerprint(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b"\0" + path.encode() + b"\0" + body).hexdigest()


def _owner(caller) -> dict:
    return {"token": caller} if isinstance(caller, ApiToken) else {"user": caller}


def run_once(*, caller, key: str, request_fingerprint: str, work: Callable[[], Outcome]) -> Outcome:
    """Run `work` at most once per (caller, key), in the transaction that stores its response.
    A response with status >= 500 is not stored (the key stays free for a retry)."""
    if not key or len(key) > 255:
        raise IdempotencyConflict(422, "must be 1 to 255 characters")
    owner = _owner(caller)
    with transaction.atomic():
        record_id = _claim(owner, key, request_fingerprint)
        if record_id is None:  # the first request committed: answer as it did
            return _replay(owner, key, request_fingerprint)
        outcome = work()
        if outcome.status < 500:
            IdempotencyRecord.objects.filter(id=record_id).update(
                completed=True, response_status=outcome.status, response_body=outcome.body)
        else:
            IdempotencyRecord.objects.filter(id=record_id).delete()
        return outcome


def _claim(owner: dict, key: str, request_fingerprint: str) -> int | None:
    """Insert the key's record and return its id, or None when a committed record holds the key.

    `ON CONFLICT DO NOTHING` waits on an uncommitted record of the same key exactly as a plain
    insert would, but a conflict is not an error, so no savepoint is needed (two round trips
    fewer on every keyed request)."""
    postgres = connection.vendor == "postgresql"
    quote = connection.ops.quote_name
    (owner_name, who), = owner.items()
    columns = ", ".join(quote(c) for c in (f"{owner_name}_id", "key", "fingerprint", "completed", "created_at"))
    with connection.cursor() as cursor:
        if postgres:
            cursor.execute(f"SET LOCAL lock_timeout = '{IN_FLIGHT_WAIT}'")
        try:
            cursor.execute(f"INSERT INTO {quote(IdempotencyRecord._meta.db_table)} ({columns}) "
                           f"VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING {quote('id')}",
                           [who.pk, key, request_fingerprint, False, timezone.now()])
        except OperationalError as exc:  # still waiting on the first request's row: it is running
            if postgres and getattr(exc.__cause__, "sqlstate", None) == "55P03":
                raise IdempotencyConflict(409, IN_PROGRESS) from exc
            raise
        row = cursor.fetchone()
        if postgres:
            cursor.execute("SET LOCAL lock_timeout = 0")  # the work below waits as usual
    return row[0] if row else None


def _replay(owner: dict, key: str, request_fingerprint: str) -> Outcome:
    record = IdempotencyRecord.objects.get(key=key, **owner)
    if record.fingerprint != request_fingerprint:
        raise IdempotencyConflict(422, "this key was used with a different request; use a new key")
    if not record.completed:  # not written by this code (it commits records completed); be safe
        raise IdempotencyConflict(409, IN_PROGRESS)
    return Outcome(record.response_status, record.response_body, replayed=True)


def expire_old() -> int:
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=timezone.now() - KEEP).delete()
    return deleted
