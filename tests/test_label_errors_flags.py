"""Likely label errors in the product: the flags stored on the items (the real encoder's vectors
of Banking77 queries), the data manager's filter, the endpoint that finds them, and an expert's
second label that settles a flag."""
import pytest

from active_learning.label_errors import label_errors_refresh
from labeller.item_table import item_row, items_table_filter, items_table_page
from labeller.models import Item
from labeller.services import annotation_submit, items_mark_for_review, queue_claim_next
from tests.test_label_errors_service import INTENTS, intents_project, rows_and_vectors  # noqa: F401

pytestmark = pytest.mark.django_db
WRONG = range(3, 120, 9)  # 14 of 120 labelled with another intent


def label_with_slips(project, items, rows, expert):
    for i, (item, row) in enumerate(zip(items, rows)):
        item.project = project
        label = INTENTS[(INTENTS.index(row["category"]) + 1 + i % 3) % 4] if i in WRONG else row["category"]
        annotation_submit(item=item, user=expert, labels=[label])


def test_the_flags_are_stored_filtered_replaced_and_settled_by_a_second_experts_label(
        make_project, expert, expert2, rows_and_vectors):  # noqa: F811
    rows, vectors = rows_and_vectors
    project, items = intents_project(make_project, rows, vectors)
    label_with_slips(project, items, rows, expert)
    stale = items[0]
    Item.objects.filter(id=stale.id).update(likely_mislabelled=True, label_error={"suggested": ["x"]})

    found = label_errors_refresh(project=project)

    assert found.checked == len(rows)
    flagged = set(items_table_filter(project=project, filters={"likely_mislabelled": True}).values_list("id", flat=True))
    assert len(flagged) == found.flagged
    wrong = {items[i].id: rows[i]["category"] for i in WRONG}
    assert len(flagged & set(wrong)) >= 0.8 * len(wrong) and len(flagged & set(wrong)) >= 0.75 * len(flagged)
    assert stale.id not in flagged or stale.id in wrong  # the old run's flag went with it
    slip = next(item_id for item_id in wrong if item_id in flagged)
    page = items_table_page(project=project, filters={"likely_mislabelled": True}, limit=200)
    row = next(item_row(r) for r in page.rows if r.id == slip)
    assert row["likely_mislabelled"]["suggested"] == [wrong[slip]] and 0 <= row["likely_mislabelled"]["self_confidence"] < 0.5
    unflagged = next(r for r in items_table_page(project=project, filters={"likely_mislabelled": False}).rows)
    assert item_row(unflagged)["likely_mislabelled"] is None

    # Marked for review, it comes first in another expert's queue; their label settles it.
    assert items_mark_for_review(items=Item.objects.filter(id=slip)) == 1
    served = queue_claim_next(project=project, user=expert2)
    assert served.id == slip
    before = Item.objects.get(id=slip).majority
    annotation_submit(item=served, user=expert2, labels=[wrong[slip]])
    settled = Item.objects.get(id=slip)
    assert not settled.likely_mislabelled and not settled.needs_review
    review = settled.label_error["re_reviewed"]
    assert review["by"] == "expert2" and review["outcome"] == ("kept" if settled.majority == before else "changed")
    assert settled.label_error["suggested"] == [wrong[slip]]  # the verdict stays beside its settlement
    assert slip not in set(items_table_filter(project=project, filters={"likely_mislabelled": True})
                           .values_list("id", flat=True))


def test_the_endpoint_finds_them_and_refuses_too_few_labels_or_a_span_project(
        make_project, add_items, expert, client_for, viewer, outsider, rows_and_vectors):  # noqa: F811
    rows, vectors = rows_and_vectors
    unencoded = make_project(name="Not encoded yet")
    for item, label in zip(add_items(unencoded, ["a", "b"]), ["card_arrival", "lost_card"]):
        item.project = unencoded
        annotation_submit(item=item, user=expert, labels=[label])
    no_vectors = client_for(expert).post(f"/api/projects/{unencoded.id}/label-errors")
    assert no_vectors.status_code == 400 and "encoded items" in str(no_vectors.json())

    project, items = intents_project(make_project, rows, vectors)
    url = f"/api/projects/{project.id}/label-errors"

    too_few = client_for(expert).post(url)
    assert too_few.status_code == 400 and "too few labels" in str(too_few.json())

    label_with_slips(project, items, rows, expert)
    assert client_for(viewer).post(url).status_code == 403
    assert client_for(outsider).post(url).status_code == 404
    answer = client_for(expert).post(url)
    assert answer.status_code == 200 and answer.json()["checked"] == len(rows)
    assert answer.json()["flagged"] == Item.objects.filter(project=project, likely_mislabelled=True).count() > 0
    table = client_for(viewer).get(f"/api/projects/{project.id}/items/table", {"likely_mislabelled": "true"})
    assert table.status_code == 200 and len(table.json()["results"]) == answer.json()["flagged"]
    assert all(r["likely_mislabelled"]["suggested"] for r in table.json()["results"])

    spans = make_project(name="Spans", task_type="spans")
    refused = client_for(expert).post(f"/api/projects/{spans.id}/label-errors")
    assert refused.status_code == 409 and "classification projects" in str(refused.json())


def test_a_second_opinion_settles_an_item_for_good_the_next_audit_neither_flags_it_again_nor_drops_the_record(
        make_project, expert, expert2, rows_and_vectors):  # noqa: F811
    rows, vectors = rows_and_vectors
    project, items = intents_project(make_project, rows, vectors)
    label_with_slips(project, items, rows, expert)
    label_errors_refresh(project=project)
    wrong = {items[i].id for i in WRONG}
    slip = next(i for i in Item.objects.filter(project=project, likely_mislabelled=True).values_list("id", flat=True)
                if i in wrong)
    given = Item.objects.get(id=slip).label_error["given"]
    # The second expert confirms the given label: the model still doubts it, the people do not.
    items_mark_for_review(items=Item.objects.filter(id=slip))
    annotation_submit(item=Item.objects.get(id=slip), user=expert2, labels=given)
    assert Item.objects.get(id=slip).label_error["re_reviewed"]["outcome"] == "kept"

    again = label_errors_refresh(project=project)

    settled = Item.objects.get(id=slip)
    assert again.checked == len(rows) and not settled.likely_mislabelled
    assert settled.label_error["re_reviewed"]["by"] == "expert2" and settled.label_error["given"] == given
    assert Item.objects.filter(project=project, likely_mislabelled=True).count() == again.flagged > 0
