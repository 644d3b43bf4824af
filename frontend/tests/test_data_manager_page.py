"""The data manager page: any member sees the table; experts get the bulk actions, admins also
delete; outsiders get 404. In a real browser: filter, search, select, mark for review; find likely
label errors and send them to another expert."""
import re

import pytest
from playwright.sync_api import expect

from labeller.models import Item
from labeller.services import annotation_submit

# The browser fixtures and steps of the main browser test.
from tests.test_label_errors_flags import label_with_slips
from tests.test_label_errors_service import intents_project, rows_and_vectors  # noqa: F401

from .test_browser import chromium, label_button, log_in, log_out, page  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(make_project, add_items, expert):
    project = make_project(name="Card questions")
    items = add_items(project, ["Where is my new card?", "What rate do you use abroad?", "My card was stolen",
                                "The card arrived broken", "Top up failed"])
    for item in items:
        item.project = project
    annotation_submit(item=items[0], user=expert, labels=["card_arrival"])
    annotation_submit(item=items[2], user=expert, labels=["lost_card"])
    return project


def url(project):
    return f"/projects/{project.id}/items"


@pytest.mark.parametrize("who, bulk, delete", [("viewer", False, False), ("expert", True, False), ("owner", True, True)])
def test_each_role_sees_the_table_and_the_actions_it_may_take(client, request, project, who, bulk, delete):
    client.force_login(request.getfixturevalue(who))
    response = client.get(url(project))
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="items"' in page and 'name="q"' in page and "Lost or stolen card" in page
    assert ('id="bulk-bar"' in page) is bulk
    assert ('data-action="delete"' in page) is delete


def test_the_project_page_links_to_the_items(client, viewer, project):
    client.force_login(viewer)
    assert url(project) in client.get(f"/projects/{project.id}/").content.decode()


def test_an_outsider_gets_404_and_a_visitor_is_sent_to_log_in(client, outsider, project):
    assert client.get(url(project)).status_code == 302
    client.force_login(outsider)
    assert client.get(url(project)).status_code == 404


# --- in a real browser ------------------------------------------------------------------------

@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_expert_filters_searches_selects_and_marks_items_for_review(page, project):  # noqa: F811
    log_in(page, "expert")
    page.goto(url(project))
    expect(page.locator("#dm-count")).to_have_text("5 items · page 1")
    expect(page.locator("#items tbody tr")).to_have_count(5)

    page.locator("#filters").get_by_label("Status").select_option("unlabelled")
    expect(page.locator("#dm-count")).to_have_text("3 items · page 1")
    page.get_by_label("Search the text").fill("card")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#dm-count")).to_have_text("1 item · page 1")
    expect(page.locator("#items tbody tr td.text")).to_have_text(["The card arrived broken"])
    assert "q=card" in page.url and "status=unlabelled" in page.url

    page.get_by_label("Search the text").fill("")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#items tbody tr")).to_have_count(3)
    page.get_by_label("Select every item on this page").check()
    expect(page.locator("#selection-text")).to_have_text("3 selected.")
    page.get_by_role("button", name="Mark for review").click()
    expect(page.locator("#bulk-result")).to_have_text("Marked for review: 3 item(s).")
    marked = set(Item.objects.filter(needs_review=True).values_list("search_text", flat=True))
    assert marked == {"What rate do you use abroad?", "The card arrived broken", "Top up failed"}

    # A bad value in the address (the form itself stops one) is refused by name, not a broken page.
    page.goto(url(project) + "?confidence_min=7")
    expect(page.locator("#dm-error")).to_contain_text("confidence_min: Ensure this value is less than or equal to 1.")
    page.goto(url(project))

    # The chosen columns are remembered.
    page.get_by_text("Columns", exact=True).click()
    page.locator("#column-chooser").get_by_label("Source").check()
    page.reload()
    expect(page.locator("#items thead th[data-column=source]")).to_be_visible()
    assert not page.js_errors


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_admin_deletes_all_items_matching_a_search_after_confirming(page, project):  # noqa: F811
    log_in(page, "owner")
    page.goto(url(project) + "?q=card")
    expect(page.locator("#dm-count")).to_have_text("3 items · page 1")
    page.get_by_label("Select item", exact=False).first.check()
    page.get_by_role("button", name="Select all 3 items matching the filter").click()
    expect(page.locator("#selection-text")).to_have_text("All 3 items matching the filter are selected.")
    page.once("dialog", lambda dialog: dialog.dismiss())  # cancelled: nothing happens
    page.get_by_role("button", name="Delete…").click()
    assert Item.objects.filter(project=project).count() == 5
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete…").click()
    expect(page.locator("#bulk-result")).to_have_text("Deleted: 3 item(s).")
    expect(page.locator("#dm-count")).to_have_text("0 items · page 1")
    assert set(Item.objects.filter(project=project).values_list("search_text", flat=True)) == {
        "What rate do you use abroad?", "Top up failed"}
    assert not page.js_errors


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_span_projects_table_counts_spans_per_label_and_filters_on_a_label(page, make_project, add_items, expert):  # noqa: F811
    project = make_project(name="Tweets", task_type="spans")
    texts = ["lost_card and lost_card then card_arrival", "just card_arrival", "nothing here"]
    items = add_items(project, texts)
    for item, text in zip(items, texts):
        item.project = project
        words = [(w, text.index(w)) for w in ("lost_card", "card_arrival") if w in text]
        spans = [{"start": start, "end": start + len(w), "label": w} for w, start in words]
        if text.count("lost_card") == 2:
            second = text.index("lost_card", text.index("lost_card") + 1)
            spans.append({"start": second, "end": second + 9, "label": "lost_card"})
        annotation_submit(item=item, user=expert, labels=spans)
    log_in(page, "expert")
    page.goto(url(project))
    expect(page.locator("#items thead th[data-column=majority]")).to_have_text("Majority spans")
    expect(page.locator(f"#items tr[data-item='{items[0].id}'] td[data-column=majority] .tag")).to_have_text(
        ["card_arrival ×1", "lost_card ×2"])
    expect(page.locator(f"#items tr[data-item='{items[0].id}'] td[data-column=annotations]")).to_have_text(
        "expert: 3 spans: card_arrival ×1, lost_card ×2")
    expect(page.locator(f"#items tr[data-item='{items[2].id}'] td[data-column=annotations]")).to_have_text("expert: no spans")
    page.locator("#filters").get_by_label("Majority has a span of").select_option("card_arrival")
    expect(page.locator("#dm-count")).to_have_text("2 items · page 1")
    page.locator("#filters").get_by_label("Majority has a span of").select_option("lost_card")
    expect(page.locator("#dm-count")).to_have_text("1 item · page 1")
    assert not page.js_errors


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_late_answer_to_an_earlier_query_does_not_replace_the_newer_querys_rows(page, project):  # noqa: F811
    # Two queries in flight (a filter changed while the table was loading, as after "Find likely
    # label errors"): the table shows the last one asked, whichever answer arrives last.
    flagged = Item.objects.filter(project=project).order_by("id").first()
    Item.objects.filter(id=flagged.id).update(likely_mislabelled=True, label_error={"suggested": ["lost_card"]})
    log_in(page, "expert")
    page.goto(url(project))
    expect(page.locator("#dm-count")).to_have_text("5 items · page 1")
    held = []
    page.route(lambda address: "/table?" in address and "likely_mislabelled=false" in address, lambda route: held.append(route))
    flag = page.locator("#filters").get_by_label("Likely mislabelled")
    flag.select_option("false")  # its answer is held back
    flag.select_option("true")
    expect(page.locator("#dm-count")).to_have_text("1 item · page 1")
    expect(page.locator("#items tbody tr")).to_have_count(1)
    assert len(held) == 1
    with page.expect_response(lambda response: "likely_mislabelled=false" in response.url):
        held[0].continue_()
    page.wait_for_timeout(300)  # the late answer parsed and (were it shown) rendered
    expect(page.locator("#dm-count")).to_have_text("1 item · page 1")
    expect(page.locator("#items tbody tr")).to_have_count(1)
    assert page.locator("#items tbody tr").get_attribute("data-item") == str(flagged.id)
    assert not page.js_errors


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_admin_finds_likely_label_errors_and_sends_them_to_another_experts_review(  # noqa: F811
        page, make_project, expert, rows_and_vectors):  # noqa: F811
    rows, vectors = rows_and_vectors
    project, items = intents_project(make_project, rows, vectors)
    label_with_slips(project, items, rows, expert)
    log_in(page, "owner")
    page.goto(url(project))
    expect(page.locator("#dm-count")).to_have_text("120 items · page 1")
    page.get_by_role("button", name="Find likely label errors").click()
    flagged = Item.objects.filter(project=project, likely_mislabelled=True)
    expect(page.locator("#label-errors-result")).to_contain_text("likely mislabelled of 120 labelled item(s) checked.")
    count = flagged.count()
    assert count > 0

    page.locator("#filters").get_by_label("Likely mislabelled").select_option("true")
    expect(page.locator("#dm-count")).to_have_text(f"{count} item{'s' if count > 1 else ''} · page 1")
    first = page.locator("#items tbody tr td[data-column=likely_mislabelled]").first
    expect(first).to_contain_text("(given label at 0.")
    expect(first).to_contain_text("similar: item ")  # the evidence: the nearest labelled items and their labels
    page.get_by_label("Select every item on this page").check()
    page.get_by_role("button", name="Mark for review").click()
    expect(page.locator("#bulk-result")).to_have_text(f"Marked for review: {count} item(s).")
    assert set(Item.objects.filter(needs_review=True).values_list("id", flat=True)) == set(flagged.values_list("id", flat=True))
    assert not page.js_errors

    # The item page lays the evidence out: the given and suggested labels, the self-confidence,
    # and the most similar labelled items with their text and labels.
    shown = flagged.first()
    page.goto(f"/projects/{project.id}/items/{shown.id}")
    expect(page.locator("#label-error-suggested")).to_have_text(", ".join(shown.label_error["suggested"]))
    expect(page.locator("#label-error-similar tbody tr")).to_have_count(3)
    assert not page.js_errors

    # Another expert's labelling screen serves a flagged item first; their label settles it.
    log_out(page, "owner")
    log_in(page, "expert2")
    page.goto(f"/projects/{project.id}/label")
    expect(page.locator("#item")).to_have_attribute("data-item-id", re.compile(r"^\d+$"))
    served = int(page.locator("#item").get_attribute("data-item-id"))
    item = Item.objects.get(id=served)
    assert item.likely_mislabelled and item.needs_review
    suggested = item.label_error["suggested"][0]
    label_button(page, suggested).click()
    page.keyboard.press("Enter")
    expect(page.locator("#item")).not_to_have_attribute("data-item-id", str(served))
    item.refresh_from_db()
    assert not item.likely_mislabelled and not item.needs_review
    assert item.label_error["re_reviewed"]["by"] == "expert2"
    assert not page.js_errors
