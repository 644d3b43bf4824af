"""The members page: project admins add a user by username or e-mail with a role, change a role and
remove a member; a project always keeps an admin; no answer tells which users exist; experts and
viewers get 403 and outsiders 404 on every members route."""
import re

import pytest
from playwright.sync_api import expect

from labeller.models import Item, Membership, Role

# The browser fixtures and steps of the main browser test.
from .test_browser import chromium, label_with_keyboard, log_in, log_out, open_labelling_screen, page  # noqa: F401

pytestmark = pytest.mark.django_db

REFUSED = "username: cannot be added: check the username"
# The page shows the refusal as its sentence (frontend.errors); the API names the field `role`.
LAST_ADMIN = "the project needs at least one admin; make another member admin first"


def members_url(project, suffix=""):
    return f"/projects/{project.id}/members{suffix}"


def roles(project):
    return dict(Membership.objects.filter(project=project).values_list("user__username", "role"))


def shown_messages(response) -> list[str]:
    return re.findall(r'<p class="message [a-z ]*">(.*?)</p>', response.content.decode())


@pytest.fixture
def admin_client(client, owner):
    client.force_login(owner)
    return client


def test_the_admin_sees_the_members_with_their_roles_and_a_link_from_the_project_page(admin_client, project):
    page = admin_client.get(members_url(project)).content.decode()
    for username, role in roles(project).items():
        assert re.search(rf'<tr data-user="{username}">.*?<option value="{role}" selected>', page, re.S), username
    assert 'label for="id_username">Username or e-mail</label>' in page
    assert members_url(project) in admin_client.get(f"/projects/{project.id}/").content.decode()


def test_the_project_page_links_to_members_for_admins_only(client, expert, project):
    client.force_login(expert)
    assert members_url(project) not in client.get(f"/projects/{project.id}/").content.decode()


def test_the_admin_adds_a_user_by_username(admin_client, project, outsider):
    response = admin_client.post(members_url(project, "/add"), {"username": "outsider", "role": "expert"}, follow=True)
    assert roles(project)["outsider"] == Role.EXPERT
    assert shown_messages(response) == ["outsider is a member with the role expert."]


def test_the_admin_adds_a_user_by_email_in_any_case(admin_client, project, outsider):
    outsider.email = "Out.Sider@example.org"
    outsider.save()
    admin_client.post(members_url(project, "/add"), {"username": " out.sider@EXAMPLE.org ", "role": "viewer"})
    assert roles(project)["outsider"] == Role.VIEWER


def test_the_admin_changes_a_role(admin_client, project, expert):
    admin_client.post(members_url(project, f"/{expert.id}/role"), {"role": "admin"})
    assert roles(project)["expert"] == Role.ADMIN


def test_the_admin_removes_a_member_and_their_held_items_are_released(admin_client, project, expert, add_items):
    (item,) = add_items(project, ["held"])
    Item.objects.filter(id=item.id).update(held_by=expert)
    response = admin_client.post(members_url(project, f"/{expert.id}/remove"), follow=True)
    assert "expert" not in roles(project)
    assert Item.objects.get(id=item.id).held_by_id is None
    assert shown_messages(response) == ["expert is no longer a member."]


@pytest.mark.parametrize("change", ["role", "remove"])
def test_the_last_admin_can_neither_be_demoted_nor_removed_and_the_page_says_why(admin_client, project, owner, change):
    data = {"role": "expert"} if change == "role" else {}
    response = admin_client.post(members_url(project, f"/{owner.id}/{change}"), data, follow=True)
    assert roles(project)["owner"] == Role.ADMIN
    assert response.status_code == 200 and response.redirect_chain[-1][0] == members_url(project)
    assert shown_messages(response) == [LAST_ADMIN]


def test_an_admin_who_steps_down_is_sent_to_the_project_page(admin_client, project, owner, expert):
    admin_client.post(members_url(project, f"/{expert.id}/role"), {"role": "admin"})
    response = admin_client.post(members_url(project, f"/{owner.id}/role"), {"role": "viewer"})
    assert response["Location"] == f"/projects/{project.id}/"
    assert roles(project)["owner"] == Role.VIEWER


def test_an_unknown_user_an_inactive_user_and_a_shared_email_get_the_same_answer(admin_client, project, make_user):
    sleeper = make_user("sleeper")
    sleeper.is_active = False
    sleeper.email = "sleeper@example.org"
    sleeper.save()
    for twin in ("twin1", "twin2"):
        user = make_user(twin)
        user.email = "twins@example.org"
        user.save()
    answers = [
        shown_messages(admin_client.post(members_url(project, "/add"), {"username": name, "role": "expert"}, follow=True))
        for name in ("no-such-user", "sleeper", "sleeper@example.org", "nobody@example.org", "twins@example.org")
    ]
    assert answers == [[REFUSED]] * len(answers)
    assert not {"sleeper", "twin1", "twin2"} & set(roles(project))


def test_the_api_shares_the_lookup_by_email_and_its_answer(client_for, owner, outsider, project):
    outsider.email = "outsider@example.org"
    outsider.save()
    api = client_for(owner)
    added = api.post(f"/api/projects/{project.id}/members/", {"username": "outsider@example.org", "role": "viewer"}, format="json")
    assert added.json() == {"user_id": outsider.id, "username": "outsider", "role": "viewer"}
    refused = api.post(f"/api/projects/{project.id}/members/", {"username": "nobody@example.org", "role": "viewer"}, format="json")
    assert refused.json() == {"username": [REFUSED.removeprefix("username: ")]}


def test_a_bad_role_is_refused_in_the_apis_words(admin_client, project, expert):
    response = admin_client.post(members_url(project, f"/{expert.id}/role"), {"role": "owner"}, follow=True)
    assert shown_messages(response) == ["role: &quot;owner&quot; is not a valid choice."]
    assert roles(project)["expert"] == Role.EXPERT


def test_a_user_who_is_not_a_member_cannot_be_changed_or_removed(admin_client, project, outsider):
    assert admin_client.post(members_url(project, f"/{outsider.id}/role"), {"role": "admin"}).status_code == 404
    assert admin_client.post(members_url(project, f"/{outsider.id}/remove")).status_code == 404
    assert "outsider" not in roles(project)


@pytest.mark.parametrize("who, status", [("expert", 403), ("viewer", 403), ("outsider", 404)])
def test_non_admins_get_403_and_outsiders_404_on_every_members_route(client, request, project, expert2, who, status):
    client.force_login(request.getfixturevalue(who))
    before = roles(project)
    assert client.get(members_url(project)).status_code == status
    assert client.post(members_url(project, "/add"), {"username": "outsider", "role": "admin"}).status_code == status
    assert client.post(members_url(project, "/add"), {"username": "no-such-user", "role": "admin"}).status_code == status
    assert client.post(members_url(project, f"/{expert2.id}/role"), {"role": "admin"}).status_code == status
    assert client.post(members_url(project, f"/{expert2.id}/remove")).status_code == status
    assert roles(project) == before


# --- in a real browser ------------------------------------------------------------------------

@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_admin_adds_a_member_who_then_logs_in_and_labels(page, make_project, add_items, make_user):
    project = make_project(name="Card questions")
    add_items(project, ["Where is my new card?", "What rate do you use abroad?"])
    newcomer = make_user("newcomer")
    newcomer.email = "newcomer@example.org"
    newcomer.save()

    log_in(page, "owner")
    page.get_by_role("link", name=project.name).click()
    page.get_by_role("link", name="Members").click()
    expect(page.get_by_role("heading", name="Members", exact=True)).to_be_visible()

    # Keyboard only: the field has focus by its label, Tab to the role, Enter submits.
    page.get_by_label("Username or e-mail").fill("nobody@example.org")
    page.get_by_label("Username or e-mail").press("Enter")
    expect(page.locator(".message.error")).to_have_text(REFUSED)
    page.get_by_label("Username or e-mail").fill("newcomer@example.org")
    page.get_by_label("Role", exact=True).select_option("expert")
    page.get_by_label("Role", exact=True).press("Tab")
    expect(page.get_by_role("button", name="Add member")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator(".message.success")).to_have_text("newcomer is a member with the role expert.")
    expect(page.get_by_label("Role of newcomer", exact=True)).to_have_value("expert")
    assert roles(project)["newcomer"] == Role.EXPERT

    # The last admin cannot step down; the page says why.
    page.get_by_label("Role of owner", exact=True).select_option("viewer")
    page.get_by_role("button", name="Change the role of owner").click()
    expect(page.locator(".message.error")).to_have_text(LAST_ADMIN)
    log_out(page, "owner")

    log_in(page, "newcomer")
    open_labelling_screen(page, project)
    expect(page.locator("#item-text")).to_have_text("Where is my new card?")
    label_with_keyboard(page, "a", "card_arrival")
    assert list(project.annotations.values_list("annotator__username", "labels")) == [("newcomer", ["card_arrival"])]
    assert not page.js_errors
