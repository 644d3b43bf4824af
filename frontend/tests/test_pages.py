"""Server-rendered pages: login, scoping, escaping and the upload form."""
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from labeller.models import Item

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser_for(client):
    def login(user):
        client.force_login(user)
        return client

    return login


def test_pages_need_a_login(client, project):
    response = client.get(f"/projects/{project.id}/label")
    assert response.status_code == 302 and response.url.startswith("/login/")


def test_the_login_page_logs_in(client, expert):
    response = client.post("/login/", {"username": "expert", "password": "expert-password"})
    assert response.status_code == 302 and response.url == "/"


def test_the_project_list_shows_progress(browser_for, expert, project, add_items):
    add_items(project, ["a", "b"])
    Item.objects.filter(id=Item.objects.first().id).update(is_done=True)
    page = browser_for(expert).get("/").content.decode()
    assert "Intents" in page and "1 / 2 items done" in page


def test_an_outsider_gets_404_on_project_pages(browser_for, outsider, project):
    client = browser_for(outsider)
    for url in [f"/projects/{project.id}/", f"/projects/{project.id}/label"]:
        assert client.get(url).status_code == 404
    assert "Intents" not in client.get("/").content.decode()


def test_the_labelling_screen_carries_labels_and_shortcuts_as_safe_json(browser_for, expert, make_project):
    project = make_project()
    project.labels.filter(key="card_arrival").update(name="</script><script>alert(1)</script>")
    page = browser_for(expert).get(f"/projects/{project.id}/label").content.decode()
    assert "<script>alert(1)</script>" not in page
    start = page.index('id="label-config" type="application/json">') + len('id="label-config" type="application/json">')
    config = json.loads(page[start:page.index("</script>", start)])
    assert [(l["key"], l["shortcut"]) for l in config["labels"]] == [("card_arrival", "a"), ("exchange_rate", "b"), ("lost_card", "c")]


def test_guidelines_markdown_is_rendered_and_sanitised(browser_for, expert, make_project):
    project = make_project(guidelines="**Be kind.**\n\n<script>alert(1)</script><img src=x onerror=alert(2)>")
    page = browser_for(expert).get(f"/projects/{project.id}/").content.decode()
    assert "<strong>Be kind.</strong>" in page
    assert "<script>alert(1)" not in page and "onerror" not in page


def test_import_errors_are_shown_escaped(browser_for, owner, project):
    client = browser_for(owner)
    tasks = [{"data": {"text": "x"}, "annotations": [{"result": [{"value": {"choices": ["<script>alert(1)</script>"]}}]}]}]
    client.post(f"/projects/{project.id}/import", {"file": SimpleUploadedFile("t.json", json.dumps(tasks).encode())})
    page = client.get(f"/projects/{project.id}/").content.decode()
    assert "refused: nothing was imported" in page
    assert "unknown label &#x27;&lt;script&gt;alert(1)&lt;/script&gt;&#x27;" in page
    assert "<script>alert(1)</script>" not in page


def test_the_upload_form_imports_items(browser_for, owner, project):
    client = browser_for(owner)
    client.post(f"/projects/{project.id}/import", {"file": SimpleUploadedFile("a.csv", b"text\nhello\nworld\n")})
    assert "2 items created" in client.get(f"/projects/{project.id}/").content.decode()
    assert Item.objects.filter(project=project).count() == 2


def test_experts_do_not_see_the_import_form(browser_for, expert, project):
    client = browser_for(expert)
    assert "Import items" not in client.get(f"/projects/{project.id}/").content.decode()
    response = client.post(f"/projects/{project.id}/import", {"file": SimpleUploadedFile("a.csv", b"text\nx\n")})
    assert response.status_code == 403
