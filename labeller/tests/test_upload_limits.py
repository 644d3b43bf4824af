"""Request bodies over the limits are refused on their declared size, before anything reads them:
not the CSRF check, not a parser, not the view."""
import pytest
from django.test import Client
from rest_framework.test import APIClient

from labeller.models import Item

pytestmark = pytest.mark.django_db
BOUNDARY = "labelloop-test-boundary"


class UnreadableBody:
    """A wsgi.input that fails the test if anything reads from it."""

    def read(self, *args):
        raise AssertionError("the request body was read")

    readline = read


def post_declaring(client, url, size, content_type=f"multipart/form-data; boundary={BOUNDARY}", **extra):
    return client.generic("POST", url, b"x", content_type, CONTENT_LENGTH=str(size), **{"wsgi.input": UnreadableBody()}, **extra)


@pytest.fixture
def session_api_client(owner):
    # A logged-in browser's client, with the CSRF check on: the check reads form fields.
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(owner)
    return client


def test_the_import_api_refuses_an_oversized_upload_by_its_declared_size_without_reading_it(session_api_client, project, settings):
    settings.LABELLOOP_MAX_UPLOAD_BYTES = 1000
    response = post_declaring(session_api_client, f"/api/projects/{project.id}/imports", 10_000_000)
    assert response.status_code == 413
    assert "exceeds the limit of 1000 bytes" in response.json()["file"][0]
    assert not Item.objects.exists()


def test_the_import_api_refuses_it_for_a_token_caller_too(project, owner, settings):
    from knox.models import AuthToken

    settings.LABELLOOP_MAX_UPLOAD_BYTES = 1000
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user=owner)[1]}")
    response = post_declaring(client, f"/api/projects/{project.id}/imports", 10_000_000)
    assert response.status_code == 413 and "file" in response.json()


def test_the_upload_page_refuses_an_oversized_upload_without_reading_it(owner, project, settings):
    settings.LABELLOOP_MAX_UPLOAD_BYTES = 1000
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    response = post_declaring(client, f"/projects/{project.id}/import", 10_000_000)
    assert response.status_code == 413
    assert b"file" in response.content and b"exceeds the limit of 1000 bytes" in response.content


def test_a_json_body_over_the_body_limit_is_refused_without_reading_it(project, token_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    client = token_client(project, ["predict"])
    response = post_declaring(client, f"/api/projects/{project.id}/predict", 5000, content_type="application/json")
    assert response.status_code == 413
    assert "exceeds the limit of 1000 bytes" in response.json()["detail"][0]


def test_an_upload_within_the_limit_still_imports(client_for, owner, project, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.LABELLOOP_MAX_UPLOAD_BYTES = 1000
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100  # the JSON limit does not apply to file uploads
    response = client_for(owner).post(f"/api/projects/{project.id}/imports",
                                      {"file": SimpleUploadedFile("a.csv", b"text\n" + b"hello\n" * 50)}, format="multipart")
    assert response.status_code == 201 and response.json()["created"] == 50


def test_json_bodies_have_a_sane_default_limit():
    from django.conf import settings

    assert 1024 * 1024 <= settings.DATA_UPLOAD_MAX_MEMORY_SIZE <= 64 * 1024 * 1024
