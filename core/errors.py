"""The one way the domain refuses: a `DomainError` naming the field at fault and saying why.

Services and selectors raise it; the API's exception handler (core.exception_handler) answers
`{field: [message]}` (or `{"detail": message}` when no single field is at fault) with the error's
status, and the pages show it through frontend.errors. Neither splits a string apart again.
"""
from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404


class DomainError(Exception):
    """A request the domain refuses. `status` is the HTTP status it answers with (400 unless a
    subclass or the raiser says otherwise); the domain only picks the kind, never a response."""

    status = 400

    def __init__(self, message: str, *, field: str | None = None, status: int | None = None):
        super().__init__(message)
        self.field = field
        self.message = message
        if status is not None:
            self.status = status

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message

    def as_dict(self) -> dict:
        """The API's error shape for this refusal."""
        return {self.field: [self.message]} if self.field else {"detail": self.message}


class NotFound(DomainError, Http404):
    """Nothing the caller may see has that id. Also an Http404, so a page answers its 404 page."""

    status = 404


class NotAllowed(DomainError, PermissionDenied):
    """The caller's role does not allow this. Also a PermissionDenied, so a page answers 403."""

    status = 403


class Conflict(DomainError):
    """The request is valid but the state of things refuses it now (retry later, or change it)."""

    status = 409
