"""The API's exception handler (REST_FRAMEWORK["EXCEPTION_HANDLER"]): a DomainError becomes its
4xx answer; DRF's own exceptions are answered as DRF does."""
from django.db import IntegrityError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from .errors import DomainError

CONCURRENT_CHANGE = "conflicts with a concurrent change to the same data; retry the request"


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        set_rollback()
        return Response(exc.as_dict(), status=exc.status)
    if isinstance(exc, IntegrityError):
        # The net under the services' own handling: a unique row that a concurrent request
        # created first (a double submit) is a conflict to retry, not a server error.
        return Response({"detail": CONCURRENT_CHANGE}, status=status.HTTP_409_CONFLICT)
    return drf_exception_handler(exc, context)
