"""The annotator-quality page: project admins see each annotator's figures, the pairs, the
feedback sources and plots of them; experts and viewers get 403 and outsiders 404. The figures
are the selectors' (labeller/tests/test_annotator_quality.py, feedback/tests/test_source_quality.py);
here, that the page shows them."""
import re

import pytest
from playwright.sync_api import expect

# The hand-built fixtures whose figures the selector tests work out.
from feedback.tests.test_source_quality import add_sources
from labeller.tests.test_annotator_quality import quality_project  # noqa: F401

# The browser fixtures and steps of the main browser test.
from .test_browser import chromium, log_in, page  # noqa: F401

pytestmark = pytest.mark.django_db


def url(project):
    return f"/projects/{project.id}/annotators"


def row(page: str, attribute: str, name: str) -> list[str]:
    """The cells of a table row, tags stripped and spaces squeezed."""
    html = re.search(rf'<tr {attribute}="{re.escape(name)}">(.*?)</tr>', page, re.S).group(1)
    return [" ".join(re.sub(r"<[^>]+>", " ", cell).split()) for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", html, re.S)]


def test_the_admin_sees_each_annotators_figures(client, owner, quality_project):  # noqa: F811
    client.force_login(owner)
    page = client.get(url(quality_project)).content.decode()
    assert row(page, "data-user", "expert") == [
        "expert", "4", "0", "3.0 s", "3", "—", "67%", "40% (5 pairs)", "75% (3 of 4)", "50% (1 of 2)", "0% (0 of 1)"]
    assert row(page, "data-user", "expert2") == [
        "expert2", "3", "1", "4.0 s", "3", "—", "100%", "60% (5 pairs)", "— (0 of 0)", "— (0 of 0)", "— (0 of 0)"]
    assert "<h2>3 annotators</h2>" in page
    # "—": no consensus estimate is fitted yet (its column is new with labeller.consensus).
    assert "no consensus estimate has been fitted yet" in page


def test_after_a_fit_each_annotator_shows_the_estimated_accuracy_and_its_basis(client, owner, quality_project):  # noqa: F811
    from labeller.consensus import consensus_refresh

    estimate = consensus_refresh(project=quality_project)
    client.force_login(owner)
    page = client.get(url(quality_project)).content.decode()
    for user in ("expert", "expert2"):
        cells = row(page, "data-user", user)
        assert re.fullmatch(r"\d+% \(on 3 shared items\)", cells[5]), cells
    assert "Dawid–Skene" in page and f"on {estimate.items_fitted} items with two or more labels" in page


def test_the_page_plots_agreement_suggestions_and_lead_time(client, owner, quality_project):  # noqa: F811
    client.force_login(owner)
    page = client.get(url(quality_project)).content.decode()
    assert page.count("<svg") == 3  # no feedback sources in this project: no sources chart
    for title in ("Agreement on shared items", "The model&#x27;s suggestions: accepted, and later overturned",
                  "Median lead time (seconds)"):
        assert f'aria-label="{title}"' in page
    assert '<g class="bar-row" data-category="expert">' in page


def test_the_page_lists_the_pairs_and_the_feedback_sources(client, owner, viewer, quality_project):  # noqa: F811
    add_sources(quality_project, viewer)
    client.force_login(owner)
    page = client.get(url(quality_project)).content.decode()
    pairs = re.search(r'<table id="pairwise".*?</table>', page, re.S).group(0)
    assert row(pairs, "data-user", "expert") == ["expert", "—", "67% (3)", "0% (2)"]
    assert row(pairs, "data-user", "owner") == ["owner", "0% (2)", "50% (2)", "—"]
    assert row(page, "data-source", "shop") == [
        "shop", "no", "4", "0", "3", "67% (95%: 21%–94%)", "—", "75% (3 of 4)", "50% (1 of 2)"]
    assert row(page, "data-source", "crm")[:6] == ["crm", "yes", "2", "2", "0", "—"]
    assert page.count("<svg") == 4 and 'aria-label="Feedback sources"' in page


def test_an_empty_project_says_so_instead_of_plotting(client, owner, project):
    client.force_login(owner)
    page = client.get(url(project)).content.decode()
    assert "Nobody has labelled an item yet." in page and "Nothing to plot yet." in page and "<svg" not in page


def test_the_project_page_links_to_it_for_admins_only(client, owner, expert, project):
    client.force_login(owner)
    assert f'href="{url(project)}"' in client.get(f"/projects/{project.id}/").content.decode()
    client.force_login(expert)
    assert f'href="{url(project)}"' not in client.get(f"/projects/{project.id}/").content.decode()


@pytest.mark.parametrize("who, status", [("expert", 403), ("viewer", 403), ("outsider", 404)])
def test_non_admins_get_403_and_outsiders_404(client, request, project, who, status):
    client.force_login(request.getfixturevalue(who))
    assert client.get(url(project)).status_code == status


def test_it_answers_get_only(client, owner, project):
    client.force_login(owner)
    assert client.post(url(project)).status_code == 405


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_admin_opens_the_page_from_the_project_and_sees_a_plot(page, quality_project):  # noqa: F811
    log_in(page, "owner")
    page.get_by_role("link", name=quality_project.name).click()
    page.get_by_role("link", name="Annotator quality").click()
    expect(page.get_by_role("heading", name="Annotator quality")).to_be_visible()
    plot = page.get_by_role("img", name="Agreement on shared items")
    expect(plot).to_be_visible()
    expect(plot.locator("rect")).to_have_count(6)  # three annotators, two bars each
    assert page.js_errors == []


def test_the_page_shows_what_suggestions_do_with_the_holdout_on(client, owner, expert, project, add_items):
    from labeller.tests.test_suggestion_holdout import answer

    project.suggestion_holdout = 0.2
    project.save()
    items = add_items(project, [f"t{i}" for i in range(20)])
    for item in items[:10]:
        answer(item, expert, ["card_arrival"], shown=["card_arrival"])
    for item in items[10:]:
        answer(item, expert, ["card_arrival"] if item.id % 2 else ["lost_card"], withheld=["card_arrival"])
    client.force_login(owner)
    page = client.get(url(project)).content.decode()
    section = page[page.index('id="suggestion-effect"'):]
    assert "20% of served items are shown without the suggestion" in section
    cells = row(section, "data-user", "expert")
    assert cells[:4] == ["expert", "100% (10 of 10; 72–100%)", "50% (5 of 10; 24–76%)", "+50 (+12…+76) points"]  # Newcombe: 0.5 ∓ √(0.28² + 0.26²), 0.5 + 0.26
