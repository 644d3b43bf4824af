"""Send Celery tasks without ever failing a write the database has committed.

A request whose rows are committed must answer as committed: a broker that is down must not turn
it into a 500 that the client retries into duplicates. So a refused send is logged, not raised.
Nothing is lost by it: every job leaves its state in the database first (an encode queued, a
refresh requested, an export or a version queued, feedback pending), and beat sends again what has
waited too long: labeller.tasks.reap_stuck_jobs (every job kind, see core.jobs) and
feedback.tasks.route_all_pending. Each task claims its job before working, so a message sent
twice is a no-op.
"""
from __future__ import annotations

import logging

from django.db import transaction

log = logging.getLogger(__name__)


def enqueue(task, *args, **options) -> bool:
    """Send `task(*args)` now; False, logged, if the broker refused it."""
    try:
        task.apply_async(args, **options)
    except Exception:  # kombu's OperationalError, a Redis error, a full disk under the filesystem broker
        log.exception("could not send %s%r; beat sends it again later", getattr(task, "name", task), args)
        return False
    return True


def enqueue_on_commit(task, *args, **options) -> None:
    """Send `task(*args)` once the current transaction commits (at once outside one), so a worker
    never reads a row that is not there yet; a refused send never reaches the caller."""
    def send() -> None:  # a named function: Django's robust on_commit logs a failure by __qualname__
        enqueue(task, *args, **options)

    transaction.on_commit(send, robust=True)
