"""Send a signal once the current transaction commits, so a receiver never reads rows that are not
there yet, and never turns a committed write into an error (a receiver's failure is logged)."""
from __future__ import annotations

from django.db import transaction
from django.dispatch import Signal


def send_on_commit(signal: Signal, *, sender, **kwargs) -> None:
    def send() -> None:  # a named function: Django's robust on_commit logs a failure by __qualname__
        signal.send(sender=sender, **kwargs)

    transaction.on_commit(send, robust=True)
