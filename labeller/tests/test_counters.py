"""Counters that grow with use must hold any realistic value on every database."""
import pytest

from labeller.models import Item

pytestmark = pytest.mark.django_db


def test_an_items_annotation_count_holds_more_than_a_small_integer(project, add_items):
    """Trusted feedback adds one annotation per event to the same item, without a bound: a small
    integer column (at most 32,767 on PostgreSQL) would make routing fail once an item is popular."""
    (item,) = add_items(project, ["where is my card"])
    Item.objects.filter(id=item.id).update(annotation_count=40_000)
    assert Item.objects.get(id=item.id).annotation_count == 40_000
