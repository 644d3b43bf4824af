"""Serializer fields for ids and whole numbers read from JSON bodies and query strings."""
import re

from rest_framework import serializers

from .converters import MAX_ID

ASCII_INTEGER = re.compile(r"[+-]?[0-9]+\Z", re.ASCII)


class WholeNumberField(serializers.IntegerField):
    """An integer written with the digits 0-9. DRF's IntegerField takes any Unicode digit
    (int('٣') is 3), which then reads differently where the same parameter is parsed again."""

    def to_internal_value(self, data):
        if isinstance(data, str) and not ASCII_INTEGER.match(data.strip()):
            self.fail("invalid")
        return super().to_internal_value(data)


class IdField(WholeNumberField):
    """A row id: 1 to 2**63 - 1, so a larger one is a 400 rather than a database overflow."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)
