"""The serving policy's rules and its one write, shared by the API and the monitoring page.
Each check raises a DomainError naming the field; `serving_policy_update` saves checked values."""
from __future__ import annotations

from core.errors import DomainError

from .models import ServingPolicy
from .monitoring import DEFAULT_THRESHOLDS
from .webhooks import webhook_check


def abstain_below_check(value: float) -> float:
    if not 0 <= value <= 1:
        raise DomainError("must be between 0 and 1", field="abstain_below")
    return value


def challenger_percent_check(value: int) -> int:
    if value > 100:
        raise DomainError("must be between 0 and 100", field="challenger_percent")
    return value


def thresholds_check(value) -> dict:
    if not isinstance(value, dict):
        raise DomainError("must be an object of {figure: threshold}", field="thresholds")
    unknown = sorted(set(value) - set(DEFAULT_THRESHOLDS))
    if unknown:
        raise DomainError(f"unknown figure '{unknown[0]}'; known: {', '.join(DEFAULT_THRESHOLDS)}", field="thresholds")
    for name, limit in value.items():
        if isinstance(limit, bool) or not isinstance(limit, (int, float)) or limit < 0:
            raise DomainError(f"{name}: must be a non-negative number", field="thresholds")
    return value


def webhook_url_check(value: str) -> str:
    if value:
        webhook_check(value)  # WebhookRefused, a DomainError naming webhook_url
    return value


def serving_policy_update(*, policy: ServingPolicy, **changes) -> ServingPolicy:
    """Save checked `changes` to the policy."""
    for name, value in changes.items():
        setattr(policy, name, value)
    policy.save()
    return policy
