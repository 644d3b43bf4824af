"""The new project page: any logged-in user (as the API) creates a project from a name, pasted
labels and defaults, lands on its import form, and is told which field is wrong otherwise; the
page refuses what `POST /api/projects/` refuses."""
import html
import re

import pytest

from labeller.models import Label, Membership, Project, Role

from .test_members_page import shown_messages as escaped_messages

pytestmark = pytest.mark.django_db

MINIMAL = {"name": "Support tickets", "task_type": "single_label", "text_field": "text",
           "labels_text": "Billing\nBug report\n\nBilling\nFeature request\n"}


def shown_messages(response) -> list[str]:
    return [html.unescape(message) for message in escaped_messages(response)]


@pytest.fixture
def newcomer_client(client, outsider):
    """A user who is in no project yet."""
    client.force_login(outsider)
    return client


def test_the_project_list_links_to_the_new_project_page(newcomer_client):
    assert 'href="/projects/new"' in newcomer_client.get("/").content.decode()


def test_the_page_offers_defaults_and_the_shortcut_and_colour_lists(newcomer_client):
    page = newcomer_client.get("/projects/new").content.decode()
    assert 'name="text_field" id="id_text_field" maxlength="100" value="text"' in page
    assert '<option value="single_label" selected>' in page
    assert '"shortcuts": ["1", "2",' in page and '"palette": ["#4f46e5"' in page


def test_pasted_labels_make_a_project_with_keys_shortcuts_and_colours_and_the_creator_is_admin(newcomer_client, outsider):
    response = newcomer_client.post("/projects/new", MINIMAL)
    project = Project.objects.get(name="Support tickets")
    assert response.status_code == 302 and response["Location"] == f"/projects/{project.id}/#import-items"
    assert list(project.labels.values_list("key", "name", "shortcut")) == [
        ("billing", "Billing", "1"), ("bug_report", "Bug report", "2"), ("feature_request", "Feature request", "3")]
    assert len(set(project.labels.values_list("color", flat=True))) == 3
    assert Membership.objects.get(project=project, user=outsider).role == Role.ADMIN


def test_the_project_page_then_shows_the_import_form_and_says_what_is_next(newcomer_client):
    page = newcomer_client.post("/projects/new", MINIMAL, follow=True)
    assert shown_messages(page) == ["Project “Support tickets” created with 3 labels. Import its items next."]
    assert 'id="import-items"' in page.content.decode()


def test_the_label_table_as_edited_wins_over_the_pasted_lines(newcomer_client):
    newcomer_client.post("/projects/new", {
        **MINIMAL, "required_fields": "channel, locale", "field_name": ["channel", "amount", ""],
        "field_type": ["string", "number", "string"], "guidelines": "# Rules\nBe *kind*.",
        "label_name": ["Billing", "Bug"], "label_key": ["bill", "bug"], "label_shortcut": ["b", ""],
        "label_color": ["#111111", "#222222"],
    })
    project = Project.objects.get(name="Support tickets")
    assert list(project.labels.values_list("key", "name", "shortcut", "color")) == [
        ("bill", "Billing", "b", "#111111"), ("bug", "Bug", "", "#222222")]
    assert project.required_fields == ["channel", "locale"]
    assert project.field_types == {"channel": "string", "amount": "number"}
    assert project.guidelines == "# Rules\nBe *kind*."


@pytest.mark.parametrize("change, problem", [
    ({"name": ""}, "name: This field may not be blank."),
    ({"labels_text": ""}, "labels: This list may not be empty."),
    ({"text_field": "the text"}, "text_field: This value does not match the required pattern."),
    ({"task_type": "ranking"}, 'task_type: "ranking" is not a valid choice.'),
    ({"field_name": ["text"], "field_type": ["number"]}, "field_types: the text field 'text' is always a string"),
    ({"label_name": ["A", "B"], "label_key": ["a", "b b"], "label_shortcut": ["", ""], "label_color": ["#000000", "#000000"]},
     "labels[1].key: use 1-100 letters, digits, _ . : -"),
    ({"label_name": ["A", "B"], "label_key": ["a", "b"], "label_shortcut": ["x", "X"], "label_color": ["#000000", "#000000"]},
     "labels: label shortcuts must be unique"),
])
def test_bad_input_is_refused_naming_the_field_and_keeps_what_was_typed(newcomer_client, change, problem):
    response = newcomer_client.post("/projects/new", {**MINIMAL, "description": "kept", **change})
    assert response.status_code == 400
    assert problem in shown_messages(response)
    assert 'value="kept"' in response.content.decode()
    assert not Project.objects.exists()


def test_the_page_and_the_api_refuse_the_same_body(newcomer_client, client_for, outsider):
    body = {"name": "P", "labels": [{"key": "a", "name": "A"}], "required_fields": ["bad field"]}
    api = client_for(outsider).post("/api/projects/", body, format="json").json()
    page = newcomer_client.post("/projects/new", {"name": "P", "task_type": "single_label", "text_field": "text",
                                                  "labels_text": "A", "required_fields": "ok, bad-field"})
    assert list(api) == ["required_fields"]
    assert shown_messages(page) == [f"required_fields[1]: {api['required_fields']['0'][0]}"]


def test_the_guidelines_preview_is_the_sanitised_markdown_of_the_labelling_screen(newcomer_client):
    html = newcomer_client.post("/projects/new/guidelines-preview",
                                {"guidelines": "**Bold** <script>alert(1)</script> [x](javascript:alert(1))"}).content.decode()
    assert "<strong>Bold</strong>" in html
    assert "<script" not in html and "javascript:" not in html


def test_a_visitor_is_sent_to_log_in(client):
    assert client.get("/projects/new")["Location"].startswith("/login/")
    assert client.post("/projects/new", MINIMAL)["Location"].startswith("/login/")
    assert not Project.objects.exists()


def test_the_label_list_of_a_refused_form_is_posted_back_to_the_script(newcomer_client):
    page = newcomer_client.post("/projects/new", {**MINIMAL, "name": ""}).content.decode()
    config = re.search(r'<script id="new-project-config" type="application/json">(.*?)</script>', page).group(1)
    assert '"key": "bug_report"' in config and Label.objects.count() == 0
