"""Background jobs that a lost message or a killed worker would leave `queued` or `running` forever.

Every job row keeps a heartbeat: set when the job is queued, when a worker claims it and as it
makes progress. One reaper (`jobs_reap`, run by beat every minute) finds jobs whose heartbeat is
older than their kind's timeout. A job whose claim makes a second delivery a no-op (encode,
refresh, export, a training version still queued) is sent again, at most
LABELLOOP_JOB_MAX_ATTEMPTS times; after that, or for a job that must not silently run twice (a
training run: it may have been killed for running out of memory), it is failed with the reason.

Each kind's reaper lives beside its service; each app adds its own with `reaper_register` (a
dotted path, so registering imports nothing heavy).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string

log = logging.getLogger(__name__)


@dataclass
class Reaped:
    requeued: int = 0
    failed: int = 0


# kind -> "module.function" taking timeout_s (None: the kind's own setting) and returning Reaped.
# Each app adds its kinds from its AppConfig.ready().
_reapers: dict[str, str] = {}


def reaper_register(kind: str, path: str) -> None:
    _reapers[kind] = path


def jobs_reap(*, timeout_s: int | None = None) -> dict[str, Reaped]:
    """Run every kind's reaper; one kind failing does not stop the others."""
    out = {}
    for kind, path in _reapers.items():
        try:
            out[kind] = import_string(path)(timeout_s=timeout_s)
        except Exception:
            log.exception("reaping stuck %s jobs failed", kind)
            out[kind] = Reaped()
    return out


def job_timeout(timeout_s: int | None) -> int:
    return settings.LABELLOOP_JOB_HEARTBEAT_TIMEOUT if timeout_s is None else timeout_s


def may_retry(attempts: int) -> bool:
    return attempts < settings.LABELLOOP_JOB_MAX_ATTEMPTS


def stuck_reason(*, timeout_s: int, attempts: int, queue: str) -> str:
    return (f"no heartbeat for more than {timeout_s} s after {attempts + 1} attempt(s): the message was lost or "
            f"the worker was killed (out of memory?); is a worker consuming the '{queue}' queue?")


def send_after_commit(send: Callable[[], object]) -> None:
    """Enqueue once the reaper's update is committed. A broker that is down is logged, not raised:
    the row already says `queued` with a fresh heartbeat, so the next reap sends it again."""
    transaction.on_commit(send, robust=True)
