"""Path converters. `id` is Django's `int` bounded to what a 64-bit primary key can hold: a longer
number names nothing, so it is a 404 rather than an overflow in the database driver."""
from django.urls import register_converter

MAX_ID = 2**63 - 1


class IdConverter:
    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if number > MAX_ID:
            raise ValueError("beyond a 64-bit id")  # Django treats this as no match: 404
        return number

    def to_url(self, value) -> str:
        return str(value)


register_converter(IdConverter, "id")
