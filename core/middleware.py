"""Refuse request bodies over the limits on their declared size, before anything reads them."""
from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse, JsonResponse

# Room for the multipart envelope around an upload of exactly the limit (boundaries, headers, mode).
MULTIPART_ENVELOPE = 64 * 1024


class BodySizeLimit:
    """Multipart bodies (the import API and the upload page) are held to LABELLOOP_MAX_UPLOAD_BYTES,
    every other body to DATA_UPLOAD_MAX_MEMORY_SIZE.

    It runs first: the CSRF check reads a form's fields, which parses the whole multipart body to
    temporary files, and DRF's parsers read JSON without Django's own size check. A view's check
    comes after both, too late for a 10 GB upload. A body whose length is not declared is read by
    Django up to a length of zero, so it needs no check here."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared and (problem := self.problem(request, declared)):
            return problem
        return self.get_response(request)

    def problem(self, request, declared: int) -> HttpResponse | None:
        if request.META.get("CONTENT_TYPE", "").startswith("multipart/"):
            limit = settings.LABELLOOP_MAX_UPLOAD_BYTES
            if declared > limit + MULTIPART_ENVELOPE:
                return self.too_large(request, "file", f"upload of {declared} bytes exceeds the limit of {limit} bytes")
            return None
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and declared > limit:
            return self.too_large(request, "detail", f"body of {declared} bytes exceeds the limit of {limit} bytes")
        return None

    @staticmethod
    def too_large(request, field: str, message: str) -> HttpResponse:
        if request.path.startswith("/api/"):
            return JsonResponse({field: [message]}, status=413)
        return HttpResponse(f"{field}: {message}", status=413, content_type="text/plain; charset=utf-8")
