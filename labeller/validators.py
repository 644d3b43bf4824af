"""Rules that the API's serializers and the pages' forms share, so each is written once. Each
raises a DomainError naming the field; a serializer or a form turns it into its own field error."""
from django.conf import settings

from core.errors import DomainError


def upload_size_check(*, size: int) -> None:
    limit = settings.LABELLOOP_MAX_UPLOAD_BYTES
    if size > limit:
        raise DomainError(f"is {size} bytes; the limit is {limit} bytes", field="file")
