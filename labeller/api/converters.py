"""URL path converters for ids, so an id no column can hold is a 404, not a database error.

`<int:...>` takes any run of digits; 99999999999999999999 then overflowed SQLite's integer
(OverflowError) or PostgreSQL's bigint (DataError), a 500. A converter's ValueError makes Django
try the next pattern, and with none left, answer 404."""
from django.urls import register_converter

MAX_ID = 2**63 - 1  # BigAutoField: ids of projects, items, annotations
MAX_NUMBER = 2**31 - 1  # PositiveIntegerField: model version numbers


class _Bounded:
    regex = "[0-9]{1,19}"
    maximum: int

    def to_python(self, value: str) -> int:
        number = int(value)
        if number > self.maximum:
            raise ValueError(f"{value} is beyond {self.maximum}")
        return number

    def to_url(self, value) -> str:
        return str(int(value))


class IdConverter(_Bounded):
    maximum = MAX_ID


class NumberConverter(_Bounded):
    maximum = MAX_NUMBER


register_converter(IdConverter, "id")
register_converter(NumberConverter, "number")
