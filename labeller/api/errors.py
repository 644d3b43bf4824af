"""Turn service-level refusals into HTTP answers that name the field and the problem."""
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
    return drf_exception_handler(exc, context)
