"""The labelling screen of a span project (Django test client): the span template and script, the
overlap setting in the page's config, and who may open it."""
import json

import pytest

pytestmark = pytest.mark.django_db


def config_of(page: str) -> dict:
    marker = 'id="label-config" type="application/json">'
    start = page.index(marker) + len(marker)
    return json.loads(page[start:page.index("</script>", start)])


@pytest.mark.parametrize("overlap", [False, True])
def test_a_span_project_gets_the_span_screen_with_its_overlap_setting(client, expert, make_project, overlap):
    project = make_project(task_type="spans", spans_overlap=overlap)
    client.force_login(expert)
    page = client.get(f"/projects/{project.id}/label").content.decode()
    assert "frontend/label_spans.js" in page and 'id="item-text"' in page
    config = config_of(page)
    assert (config["spans"], config["overlap"]) == (True, overlap)
    assert [label["shortcut"] for label in config["labels"]] == ["a", "b", "c"]
    assert ("Spans may overlap in this project" in page) == overlap


def test_a_classification_project_keeps_the_classification_screen(client, expert, project):
    client.force_login(expert)
    page = client.get(f"/projects/{project.id}/label").content.decode()
    assert "frontend/label.js" in page and "label_spans.js" not in page


def test_an_outsider_gets_404_and_a_viewer_403_on_a_span_projects_screen(client, outsider, viewer, make_project):
    project = make_project(task_type="spans")
    client.force_login(outsider)
    assert client.get(f"/projects/{project.id}/label").status_code == 404
    client.force_login(viewer)
    assert client.get(f"/projects/{project.id}/label").status_code == 403
