"""Counting refused payloads per source, day, field and problem, so a client that starts sending
a renamed field shows up on the monitoring page the day it breaks."""
from __future__ import annotations

from collections import Counter

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from labeller.models import Project

from .models import ApiToken, SchemaViolation
from .schema import Violation


def _generic(field: str) -> str:
    """items[3].data.text -> data.text: count by field, not by position in the batch. A NUL byte in
    a field's name (PostgreSQL text cannot hold one) is kept as the four characters \\x00."""
    head, _, rest = field.partition("].")
    return (rest if rest else field).replace("\x00", "\\x00")


def violations_record(*, project: Project, caller, endpoint: str, violations: list[Violation]) -> None:
    if not violations:
        return
    token = caller if isinstance(caller, ApiToken) else None
    source = f"token:{token.id}" if token else f"user:{getattr(caller, 'pk', None)}"
    now = timezone.now()
    counts = Counter((_generic(v.field), v.problem) for v in violations)
    for (field, problem), n in counts.items():
        key = {"project": project, "source": source, "day": now.date(), "endpoint": endpoint, "field": field[:200], "problem": problem}
        if SchemaViolation.objects.filter(**key).update(count=F("count") + n, last_seen_at=now):
            continue
        try:
            with transaction.atomic():
                SchemaViolation.objects.create(token=token, count=n, last_seen_at=now, **key)
        except IntegrityError:  # created by a concurrent request: add to it
            SchemaViolation.objects.filter(**key).update(count=F("count") + n, last_seen_at=now)
