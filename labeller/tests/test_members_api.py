"""Project members: only admins add, change and remove them; a project always keeps an admin; and
the answers never tell a caller which usernames exist."""
import threading

import pytest
from django.db import connection

from labeller.models import Item, Membership, Role
from labeller.services import LastAdmin, membership_set

pytestmark = pytest.mark.django_db


def members_url(project, user=None):
    base = f"/api/projects/{project.id}/members/"
    return base if user is None else f"{base}{user.id}/"


def roles(project):
    return dict(Membership.objects.filter(project=project).values_list("user__username", "role"))


def test_an_admin_adds_a_member_and_sees_them_listed_with_their_id(client_for, owner, outsider, project):
    client = client_for(owner)
    response = client.post(members_url(project), {"username": "outsider", "role": "expert"}, format="json")
    assert response.status_code == 200
    assert response.json() == {"user_id": outsider.id, "username": "outsider", "role": "expert"}
    assert {"user_id": outsider.id, "username": "outsider", "role": "expert"} in client.get(members_url(project)).json()


def test_an_admin_removes_a_member_and_their_held_items_are_released(client_for, owner, expert, project, add_items):
    (item,) = add_items(project, ["held"])
    client_for(expert).post(f"/api/projects/{project.id}/queue/next", {}, format="json")
    assert Item.objects.get(id=item.id).held_by_id == expert.id
    response = client_for(owner).delete(members_url(project, expert))
    assert response.status_code == 204
    assert "expert" not in roles(project)
    assert Item.objects.get(id=item.id).held_by_id is None
    assert client_for(expert).get(f"/api/projects/{project.id}/").status_code == 404


def test_removing_someone_who_is_not_a_member_is_404(client_for, owner, outsider, project):
    assert client_for(owner).delete(members_url(project, outsider)).status_code == 404


@pytest.mark.parametrize("who, status", [("viewer", 403), ("expert", 403), ("outsider", 404)])
def test_only_admins_add_or_remove_members(client_for, request, project, who, status, expert2):
    client = client_for(request.getfixturevalue(who))
    assert client.post(members_url(project), {"username": "expert2", "role": "admin"}, format="json").status_code == status
    assert client.delete(members_url(project, expert2)).status_code == status
    assert roles(project)["expert2"] == Role.EXPERT


@pytest.mark.parametrize("who", ["viewer", "expert", "outsider"])
def test_a_non_admin_cannot_tell_an_existing_username_from_an_unknown_one(client_for, request, project, who, owner):
    client = client_for(request.getfixturevalue(who))
    known = client.post(members_url(project), {"username": "owner", "role": "viewer"}, format="json")
    unknown = client.post(members_url(project), {"username": "no-such-user", "role": "viewer"}, format="json")
    assert (known.status_code, known.json()) == (unknown.status_code, unknown.json())
    assert known.status_code in (403, 404)


def test_an_unknown_or_inactive_username_gets_one_generic_answer_naming_the_field(client_for, owner, make_user, project):
    sleeper = make_user("sleeper")
    sleeper.is_active = False
    sleeper.save()
    client = client_for(owner)
    unknown = client.post(members_url(project), {"username": "no-such-user", "role": "viewer"}, format="json")
    inactive = client.post(members_url(project), {"username": "sleeper", "role": "viewer"}, format="json")
    assert unknown.status_code == inactive.status_code == 400
    assert unknown.json() == inactive.json()
    assert list(unknown.json()) == ["username"]
    assert "no-such-user" not in unknown.content.decode() and "no user" not in unknown.content.decode()


def test_a_bad_role_is_refused_naming_the_field(client_for, owner, project):
    response = client_for(owner).post(members_url(project), {"username": "expert", "role": "boss"}, format="json")
    assert response.status_code == 400 and list(response.json()) == ["role"]


def test_the_last_admin_cannot_demote_themself(client_for, owner, project):
    response = client_for(owner).post(members_url(project), {"username": "owner", "role": "expert"}, format="json")
    assert response.status_code == 409
    assert list(response.json()) == ["role"] and "admin" in response.json()["role"][0]
    assert roles(project)["owner"] == Role.ADMIN


def test_the_last_admin_cannot_be_removed(client_for, owner, project):
    response = client_for(owner).delete(members_url(project, owner))
    assert response.status_code == 409 and list(response.json()) == ["role"]
    assert roles(project)["owner"] == Role.ADMIN


def test_an_admin_may_step_down_or_leave_once_another_admin_exists(client_for, owner, expert, project):
    client = client_for(owner)
    assert client.post(members_url(project), {"username": "expert", "role": "admin"}, format="json").status_code == 200
    assert client.post(members_url(project), {"username": "owner", "role": "viewer"}, format="json").status_code == 200
    assert client_for(expert).delete(members_url(project, owner)).status_code == 204
    assert roles(project) == {"expert": Role.ADMIN, "expert2": Role.EXPERT, "viewer": Role.VIEWER}


@pytest.mark.django_db(transaction=True)
def test_two_admins_demoting_themselves_at_once_leave_one_admin(owner, expert, project):
    """Each sees two admins before it writes; the lock on the project makes the second see one."""
    membership_set(project=project, user=expert, role=Role.ADMIN)
    barrier = threading.Barrier(2)
    outcomes = []

    def demote(user):
        try:
            barrier.wait()
            membership_set(project=project, user=user, role=Role.EXPERT)
            outcomes.append("demoted")
        except LastAdmin:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=demote, args=(user,)) for user in (owner, expert)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["demoted", "refused"]
    assert list(roles(project).values()).count(Role.ADMIN) == 1
