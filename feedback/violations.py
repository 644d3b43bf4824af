"""Counting refused payloads per source, day, field and problem, so a client that starts sending
a renamed field shows up on the monitoring page the day it breaks."""
from __future__ import annotations

from collections import Counter

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from labeller.models import Project

from .models import ApiToken, SchemaViolation
from .schema import MAX_UNKNOWN_REPORTED, Violation

# Fields listed per item in an answer (feedback.schema caps the unknown ones).
MAX_REPORTED = MAX_UNKNOWN_REPORTED
# Rows one request may create or update. A batch whose items each carry other unknown keys would
# otherwise write a row per key (1,000 events x 20 keys); the most frequent fields get their own
# row and the rest are counted together under OTHER_FIELDS, so nothing goes uncounted.
MAX_RECORDED = 20
OTHER_FIELDS = "(other fields)"


def _generic(field: str) -> str:
    """items[3].data.text -> data.text: count by field, not by position in the batch. A NUL byte in
    a field's name (PostgreSQL text cannot hold one) is kept as the four characters \\x00."""
    head, _, rest = field.partition("].")
    return (rest if rest else field).replace("\x00", "\\x00")


def _buckets(violations: list[Violation]) -> Counter:
    counts = Counter()
    for v in violations:
        counts[(_generic(v.field)[:200], v.problem)] += v.count
    if len(counts) <= MAX_RECORDED:
        return counts
    ranked = sorted(counts.items(), key=lambda bucket: (-bucket[1], bucket[0]))
    kept = Counter(dict(ranked[:MAX_RECORDED]))
    for (_, problem), n in ranked[MAX_RECORDED:]:
        kept[(OTHER_FIELDS, problem)] += n
    return kept


def violations_record(*, project: Project, caller, endpoint: str, violations: list[Violation]) -> None:
    if not violations:
        return
    token = caller if isinstance(caller, ApiToken) else None
    source = f"token:{token.id}" if token else f"user:{getattr(caller, 'pk', None)}"
    now = timezone.now()
    for (field, problem), n in _buckets(violations).items():
        key = {"project": project, "source": source, "day": now.date(), "endpoint": endpoint, "field": field, "problem": problem}
        if SchemaViolation.objects.filter(**key).update(count=F("count") + n, last_seen_at=now):
            continue
        try:
            with transaction.atomic():
                SchemaViolation.objects.create(token=token, count=n, last_seen_at=now, **key)
        except IntegrityError:  # created by a concurrent request: add to it
            SchemaViolation.objects.filter(**key).update(count=F("count") + n, last_seen_at=now)
