"""Turn service-level refusals into HTTP answers that name the field and the problem."""
from django.db import IntegrityError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from ..import_formats import UnsupportedFile
from ..services import InvalidLabels, LastAdmin, QueueConflict

_STATUS_FOR = {
    InvalidLabels: status.HTTP_400_BAD_REQUEST,
    UnsupportedFile: status.HTTP_400_BAD_REQUEST,
    QueueConflict: status.HTTP_409_CONFLICT,
    LastAdmin: status.HTTP_409_CONFLICT,
}


def exception_handler(exc, context):
    for kind, code in _STATUS_FOR.items():
        if isinstance(exc, kind):
            field, _, message = str(exc).partition(": ")
            return Response({field: [message]} if message else {"detail": str(exc)}, status=code)
    if isinstance(exc, IntegrityError):
        # The net under the services' own handling: a unique row that a concurrent request
        # created first (a double submit) is a conflict to retry, not a server error.
        return Response({"detail": "conflicts with a concurrent change to the same data; retry the request"},
                        status=status.HTTP_409_CONFLICT)
    return drf_exception_handler(exc, context)
