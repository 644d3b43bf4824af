"""Project API tokens for product backends: created once (the secret is shown once), stored
hashed, scoped to predict and/or feedback, revocable, and throttled per token."""
from __future__ import annotations

import copy
import hashlib
import hmac
import secrets
import time

from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import authentication, exceptions, throttling

from core.errors import DomainError
from labeller.models import Project

from .models import ApiToken, Scope
from .process_cache import ProcessCache

PREFIX = "ll_"
TOKEN_TTL = 2.0  # seconds another process may still accept a token revoked here
PREFIX_ATTEMPTS = 5
LAST_USED_EVERY = 60.0  # seconds between writes of a token's last_used_at

# Checked tokens, by (prefix, secret hash): at hundreds of requests a second the token's query (with
# its project) is a large share of a feedback request (see docs/benchmarks.md, section "Feedback
# ingest"). Only valid tokens are kept.
_active_tokens: ProcessCache[ApiToken] = ProcessCache(TOKEN_TTL)
_last_used_written: dict[int, float] = {}


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def token_create(*, project: Project, name: str, scopes: list[str], trusted: bool = False, user=None) -> tuple[ApiToken, str]:
    """A new token and its plain text, `ll_<prefix>_<secret>`; only the hash is kept."""
    unknown = sorted(set(scopes) - set(Scope.values))
    if unknown or not scopes:
        raise DomainError(f"choose from {', '.join(Scope.values)}", field="scopes")
    secret = secrets.token_urlsafe(32)
    for attempt in range(PREFIX_ATTEMPTS):
        # The prefix is unique and random (32 bits): a collision, however rare, picks another
        # rather than failing the request with a duplicate key.
        prefix = secrets.token_hex(4)
        try:
            with transaction.atomic():
                token = ApiToken.objects.create(project=project, name=name, prefix=prefix, secret_hash=_hash(secret),
                                                scopes=sorted(set(scopes)), trusted=trusted, created_by=user)
            return token, f"{PREFIX}{prefix}_{secret}"
        except IntegrityError:
            if attempt == PREFIX_ATTEMPTS - 1:
                raise


def token_revoke(*, token: ApiToken) -> None:
    """Refused at once by this process, and by every other within TOKEN_TTL seconds."""
    ApiToken.objects.filter(id=token.id, revoked_at=None).update(revoked_at=timezone.now())
    _active_tokens.forget(lambda key, cached: cached.id == token.id)


def forget_tokens() -> None:
    """Forget every checked token (tests: token ids are reused after a rollback)."""
    _active_tokens.forget()
    _last_used_written.clear()


def token_check(plain: str) -> ApiToken | None:
    """The active token this text names (with its project), or None. Each caller gets its own
    copy, so a request never sees another request's changes to the instance."""
    if not plain.startswith(PREFIX) or plain.count("_") < 2:
        return None
    prefix, _, secret = plain[len(PREFIX):].partition("_")
    secret_hash = _hash(secret)
    token = _active_tokens.get((prefix, secret_hash), lambda: _token_load(prefix, secret_hash))
    return copy.deepcopy(token) if token is not None else None


def _token_load(prefix: str, secret_hash: str) -> ApiToken | None:
    token = ApiToken.objects.select_related("project").filter(prefix=prefix, revoked_at=None).first()
    if token is None or not hmac.compare_digest(token.secret_hash, secret_hash):
        return None
    return token


def token_mark_used(token: ApiToken) -> None:
    """Record when a token was last used, at most once a minute per token and process."""
    now = time.monotonic()
    if now - _last_used_written.get(token.id, -LAST_USED_EVERY) < LAST_USED_EVERY:
        return
    _last_used_written[token.id] = now
    stamp = timezone.now()
    if token.last_used_at is None or (stamp - token.last_used_at).total_seconds() > LAST_USED_EVERY:
        ApiToken.objects.filter(id=token.id).update(last_used_at=stamp)


class TokenCaller:
    """The request.user of a call made with a project token: authenticated, member of nothing."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = is_superuser = False
    pk = id = None

    def __init__(self, token: ApiToken):
        self.token = token

    def __str__(self) -> str:
        return f"token {self.token.prefix}"


class ProjectTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer ll_…`. A bad or revoked token is a 401, never a fallback."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode(errors="replace")
        scheme, _, plain = header.partition(" ")
        if scheme != self.keyword or not plain.startswith(PREFIX):
            return None
        token = token_check(plain.strip())
        if token is None:
            raise exceptions.AuthenticationFailed("Authorization: unknown or revoked project token")
        token_mark_used(token)
        return TokenCaller(token), token

    def authenticate_header(self, request):
        return self.keyword


class ProjectTokenThrottle(throttling.SimpleRateThrottle):
    """Requests per project token (the rate is the LABELLOOP_TOKEN_RATE setting), counted in fixed
    windows with one atomic increment per request. DRF's sliding window stores every request's
    time in one cached list, which at hundreds of requests a second costs more than the request."""

    scope = "project_token"

    def allow_request(self, request, view):
        if not isinstance(request.auth, ApiToken):
            return True  # people are not throttled here
        now = time.time()
        window = int(now // self.duration)
        key = f"throttle:token:{request.auth.id}:{self.duration}:{window}"
        try:
            count = self.cache.incr(key)
        except ValueError:  # the window's first request (or the cache lost the key)
            count = 1 if self.cache.add(key, 1, self.duration + 1) else self.cache.incr(key)
        self.wait_seconds = (window + 1) * self.duration - now
        return count <= self.num_requests

    def wait(self):
        return self.wait_seconds
