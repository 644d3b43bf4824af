"""The data manager's table on a span project: the majority column names the entity labels the
majority's spans use, each row counts its majority spans per label, and the label filter keeps
the items whose majority has a span of that label (the cell holds several keys, '|'-joined)."""
import pytest

from labeller.services import annotation_submit

pytestmark = pytest.mark.django_db

TEXTS = ["lost_card then card_arrival 👩\u200d👩\u200d👧 lost_card", "only card_arrival here", "nothing to tag", "not labelled"]


def spans_of(text, *labels):
    """A span on each word of the text that is a label key named in `labels`, code points."""
    spans, at = [], 0
    for word in text.split(" "):
        if word in labels:
            spans.append({"start": at, "end": at + len(word), "label": word})
        at += len(word) + 1
    return spans


@pytest.fixture
def spans_project(make_project, add_items, expert, expert2):
    project = make_project(task_type="spans", labels_per_item=2)
    items = add_items(project, TEXTS)
    for item in items:
        item.project = project
    annotation_submit(item=items[0], user=expert, labels=spans_of(TEXTS[0], "lost_card", "card_arrival"))
    annotation_submit(item=items[0], user=expert2, labels=spans_of(TEXTS[0], "lost_card", "card_arrival"))
    # Two annotators who disagree on one span: the majority keeps only what both gave.
    annotation_submit(item=items[1], user=expert, labels=spans_of(TEXTS[1], "card_arrival"))
    annotation_submit(item=items[1], user=expert2,
                      labels=[{"start": 0, "end": 4, "label": "lost_card"}, *spans_of(TEXTS[1], "card_arrival")])
    annotation_submit(item=items[2], user=expert, labels=[])
    project.items_made = items
    return project


def rows(client, project, **params):
    response = client.get(f"/api/projects/{project.id}/items/table", params)
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_each_row_names_the_majoritys_entity_labels_and_counts_its_spans(client_for, viewer, spans_project):
    by_id = {row["id"]: row for row in rows(client_for(viewer), spans_project)}
    first, second, empty, unlabelled = (by_id[item.id] for item in spans_project.items_made)
    assert first["majority"] == ["card_arrival", "lost_card"]
    assert first["spans"] == {"card_arrival": 1, "lost_card": 2}
    assert second["majority"] == ["card_arrival"] and second["spans"] == {"card_arrival": 1}
    assert empty["majority"] == [] and empty["spans"] == {}
    assert unlabelled["spans"] == {}
    assert first["annotations"][0]["labels"][0] == {"start": 0, "end": 9, "label": "lost_card"}


@pytest.mark.parametrize("label, expected", [("lost_card", [0]), ("card_arrival", [0, 1]), ("exchange_rate", [])])
def test_the_label_filter_keeps_the_items_with_a_span_of_that_label(client_for, viewer, spans_project, label, expected):
    found = [row["id"] for row in rows(client_for(viewer), spans_project, label=label)]
    assert found == [spans_project.items_made[i].id for i in expected]


def test_a_classification_rows_spans_are_null(client_for, viewer, project, add_items, expert):
    (item,) = add_items(project, ["my card"])
    item.project = project
    annotation_submit(item=item, user=expert, labels=["lost_card"])
    assert [row["spans"] for row in rows(client_for(viewer), project)] == [None]


def test_the_page_names_the_span_columns_and_filter(client, viewer, spans_project):
    client.force_login(viewer)
    page = client.get(f"/projects/{spans_project.id}/items").content.decode()
    assert "Majority spans" in page and "Spans and annotators" in page and "Majority has a span of" in page
