"""The data manager's table (labeller.item_table): every filter, every sort, keyset pages, full-text
search and counts, on whichever database the suite runs on."""
import json
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from core.errors import DomainError
from labeller import item_table
from labeller.models import Item, ItemSource
from labeller.services import annotation_submit

pytestmark = pytest.mark.django_db

TEXTS = ["my card has not arrived", "what is the exchange rate", "I lost my card yesterday",
         "card arrived broken", "exchange rate for euros", "stolen wallet and card"]


@pytest.fixture
def project(make_project):
    return make_project(labels_per_item=2)


@pytest.fixture
def items(project, add_items, expert, expert2):
    """Six items: labelled by one or two experts, some predicted, flags set here and there."""
    items = add_items(project, TEXTS)
    for item in items:
        item.project = project
    annotation_submit(item=items[0], user=expert, labels=["card_arrival"])
    annotation_submit(item=items[0], user=expert2, labels=["card_arrival"])
    annotation_submit(item=items[1], user=expert, labels=["exchange_rate"])
    annotation_submit(item=items[1], user=expert2, labels=["lost_card"])
    annotation_submit(item=items[2], user=expert2, labels=["lost_card"])
    # The model's last prediction: agrees on 0, disagrees on 2, none on the others but 4.
    Item.objects.filter(id=items[0].id).update(predicted="card_arrival", confidence=0.9)
    Item.objects.filter(id=items[2].id).update(predicted="card_arrival", confidence=0.4)
    Item.objects.filter(id=items[4].id).update(predicted="exchange_rate", confidence=0.7, source=ItemSource.PREDICTION)
    Item.objects.filter(id=items[3].id).update(needs_review=True, is_eval=True, source=ItemSource.FEEDBACK)
    return [Item.objects.get(id=item.id) for item in items]


def ids(project, **filters):
    return {row.id for row in item_table.items_table_page(project=project, filters=filters, limit=200).rows}


def test_annotation_submit_keeps_majority_agreement_and_labelled_at(items):
    assert (items[0].majority, items[0].agreement) == ("card_arrival", 1.0)
    assert (items[1].majority, items[1].agreement) == ("exchange_rate", 0.5)  # a tie: alphabetical first
    assert items[0].labelled_at is not None and items[5].labelled_at is None
    assert (items[5].majority, items[5].agreement) == ("", None)


@pytest.mark.parametrize("filters, expected", [
    ({}, {0, 1, 2, 3, 4, 5}),
    ({"status": "done"}, {0, 1}),
    ({"status": "labelled"}, {0, 1, 2}),
    ({"status": "unlabelled"}, {3, 4, 5}),
    ({"label": "lost_card"}, {2}),
    ({"predicted": "card_arrival"}, {0, 2}),
    ({"agreement_min": 0.9}, {0, 2}),
    ({"agreement_max": 0.5}, {1}),
    ({"confidence_min": 0.5}, {0, 4}),
    ({"confidence_max": 0.5}, {2}),
    ({"disagrees": True}, {2}),
    ({"disagrees": False}, {0, 1, 3, 4, 5}),
    ({"is_eval": True}, {3}),
    ({"needs_review": True}, {3}),
    ({"needs_review": False}, {0, 1, 2, 4, 5}),
    ({"source": "prediction"}, {4}),
    ({"source": "feedback"}, {3}),
    ({"source": "import"}, {0, 1, 2, 5}),
    ({"q": "card"}, {0, 2, 3, 5}),
    ({"q": "CARD lost"}, {2}),
    ({"q": "exchange rate"}, {1, 4}),
    ({"q": "exchange", "label": "exchange_rate"}, {1}),
    ({"q": '"; DROP TABLE labeller_item; --'}, set()),
    ({"q": "!!!"}, {0, 1, 2, 3, 4, 5}),  # no word to search for: no filter
    ({"status": "done", "confidence_min": 0.5, "label": "card_arrival"}, {0}),
])
def test_each_filter_keeps_the_right_items_and_filters_combine(project, items, filters, expected):
    assert ids(project, **filters) == {items[i].id for i in expected}


def test_the_annotator_filter_keeps_the_items_that_expert_labelled(project, items, expert, expert2):
    assert ids(project, annotator=expert.id) == {items[0].id, items[1].id}
    assert ids(project, annotator=expert2.id) == {items[0].id, items[1].id, items[2].id}


def test_date_filters_keep_the_items_in_the_range(project, items):
    Item.objects.filter(id=items[5].id).update(created_at=timezone.now() - timedelta(days=10))
    cut = timezone.now() - timedelta(days=1)
    assert ids(project, created_before=cut) == {items[5].id}
    assert items[5].id not in ids(project, created_after=cut)
    assert ids(project, labelled_after=cut) == {items[0].id, items[1].id, items[2].id}
    assert ids(project, labelled_before=cut) == set()


def test_search_and_filters_are_scoped_to_the_project(make_project, add_items, project, items):
    other = make_project(name="Other")
    add_items(other, ["card card card"])
    assert ids(project, q="card") == {items[i].id for i in (0, 2, 3, 5)}
    assert ids(other, q="card") != set() and not ids(other, q="card") & {item.id for item in items}


def test_search_finds_items_created_by_save_and_follows_deletes(project, items):
    created = Item.objects.create(project=project, data={"text": "a brand new zebra"})
    assert ids(project, q="zebra") == {created.id}
    created.delete()
    assert ids(project, q="zebra") == set()


def all_pages(project, sort, filters=None, limit=2):
    seen, cursor, pages = [], None, 0
    while True:
        page = item_table.items_table_page(project=project, filters=filters or {}, sort=sort, cursor=cursor, limit=limit)
        seen += [row.id for row in page.rows]
        pages += 1
        if page.next_cursor is None:
            return seen, pages
        cursor = page.next_cursor


@pytest.mark.parametrize("sort", item_table.SORT_CHOICES)
def test_keyset_pages_cover_every_row_exactly_once_in_sort_order(project, items, sort):
    Item.objects.filter(id=items[3].id).update(created_at=items[0].created_at)  # a tie on the sort value
    seen, pages = all_pages(project, sort)
    assert sorted(seen) == sorted(item.id for item in items)
    assert pages == 3
    column, descending = sort.lstrip("-"), sort.startswith("-")
    rows = {item.id: getattr(Item.objects.get(id=item.id), column) for item in items}
    valued = [i for i in seen if rows[i] is not None]
    assert seen[:len(valued)] == valued  # the rows without a value come last
    keys = [(rows[i], i) for i in valued]
    assert keys == sorted(keys, reverse=descending)


def test_keyset_pages_follow_a_filter(project, items):
    seen, _ = all_pages(project, "-confidence", {"status": "labelled"}, limit=1)
    assert seen == [items[0].id, items[2].id, items[1].id]


@pytest.mark.parametrize("cursor", ["nonsense", "eyJzIjoiaWQifQ", "", "e30"])
def test_a_bad_cursor_is_refused_naming_cursor(project, items, cursor):
    with pytest.raises(DomainError) as refused:
        item_table.items_table_page(project=project, filters={}, sort="id", cursor=cursor or "x")
    assert refused.value.field == "cursor"


def test_a_cursor_of_another_sort_is_refused(project, items):
    page = item_table.items_table_page(project=project, filters={}, sort="confidence", limit=1)
    with pytest.raises(DomainError) as refused:
        item_table.items_table_page(project=project, filters={}, sort="-confidence", cursor=page.next_cursor)
    assert refused.value.field == "cursor"


def test_the_count_is_exact_for_small_results(project, items):
    count = item_table.items_table_count(project=project, filters={"status": "labelled"})
    assert (count.value, count.exact, count.text) == (3, True, "3")


def test_a_large_count_is_an_estimate_marked_as_such():
    count = item_table.TableCount(412_000, exact=False)
    assert count.as_dict() == {"value": 412_000, "exact": False, "text": "about 412,000"}


def test_a_row_carries_every_column(project, items):
    (row,) = item_table.items_table_page(project=project, filters={"ids": [items[2].id]}).rows
    shown = item_table.item_row(row)
    assert shown["text"] == TEXTS[2] and shown["status"] == "in progress"
    assert shown["majority"] == ["lost_card"] and shown["predicted"] == ["card_arrival"]
    assert shown["disagrees"] is True and shown["confidence"] == 0.4
    assert [a["annotator"] for a in shown["annotations"]] == ["expert2"]
    assert shown["url"] == f"/projects/{project.id}/items/{items[2].id}"


def test_an_import_fills_the_table_columns(project):
    import io

    from labeller.importing import items_import

    def choice(label):
        return {"result": [{"value": {"choices": [label]}}]}

    task = {"data": {"text": "imported card text"},
            "annotations": [choice("card_arrival"), choice("lost_card"), choice("card_arrival")]}
    rows = json.dumps(task).encode() + b"\n"
    result = items_import(project=project, stream=io.BytesIO(rows), filename="rows.jsonl")
    assert result.created == 1, result.as_dict()
    item = Item.objects.get(project=project)
    assert (item.source, item.search_text, item.majority) == ("import", "imported card text", "card_arrival")
    assert item.agreement == pytest.approx(2 / 3) and item.labelled_at is not None
    assert ids(project, q="imported") == {item.id}


def test_import_order_under_a_date_filter_reads_in_that_dates_order(project, items):
    cut = timezone.now() - timedelta(days=1)
    page = item_table.items_table_page(project=project, filters={"created_after": cut}, sort="-id", limit=2)
    assert page.sort == "-created_at"
    seen, _ = all_pages(project, "-id")
    assert seen == sorted(seen, reverse=True)
    following = item_table.items_table_page(project=project, filters={"created_after": cut}, sort="-id",
                                            cursor=page.next_cursor, limit=10)
    assert len(page.rows) + len(following.rows) == 6


def test_an_estimate_below_the_exact_bound_says_more_than():
    assert item_table.TableCount(item_table.EXACT_COUNT_UP_TO + 1, exact=False).text == "more than 10,000"


def test_an_item_added_after_migrate_is_found_by_search_even_after_a_table_rebuild(project, items):
    """SQLite keeps its FTS5 table by triggers, which a rebuild of labeller_item drops and
    `sqlite_ensure` puts back after every migrate; PostgreSQL searches a GIN index on the column
    itself, so there only the search is checked."""
    from labeller import search_index

    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER labeller_item_fts_ai")  # what rebuilding labeller_item does
            assert search_index.sqlite_ensure(cursor) is True
            assert search_index.sqlite_ensure(cursor) is False
    created = Item.objects.create(project=project, data={"text": "a quokka"})
    assert ids(project, q="quokka") == {created.id}
    assert ids(project, q="card") == {items[i].id for i in (0, 2, 3, 5)}
