"""The API docs in a real browser with every request off this server refused: Swagger UI renders the
schema from assets this server serves (drf-spectacular-sidecar), as on a machine with no internet."""
import pytest
from playwright.sync_api import expect

from .test_browser import chromium, log_in, page  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_api_docs_render_with_no_internet(page, live_server, owner, project):  # noqa: F811
    refused = []

    def only_this_server(route):
        if route.request.url.startswith(live_server.url):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    page.route("**/*", only_this_server)
    log_in(page, "owner")
    page.goto("/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Labelloop API")
    expect(page.locator(".opblock-summary-path", has_text="/api/projects/{project_id}/predict").first).to_be_visible()
    page.get_by_role("button", name="Authorize").click()
    expect(page.get_by_text("projectToken")).to_be_visible()
    assert refused == [] and page.js_errors == []
