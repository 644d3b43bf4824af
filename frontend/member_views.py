"""The project's members page (project admins only): list the members with their roles, add a user
by username or e-mail, change a role, remove a member. The rules are the API's: the same services
(a project always keeps an admin) and the same user lookup (no answer tells which users exist)."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe

from labeller import selectors, services
from labeller.models import Membership, Role

from .access import admin_project
from .errors import form_problems, refusals_shown
from .forms import MemberAddForm, MemberRoleForm


def after_change(request, project):
    """Back to the members page, unless the admin has just taken their own admin role away."""
    role = Membership.objects.filter(project=project, user=request.user).values_list("role", flat=True).first()
    if role == Role.ADMIN:
        return redirect("members-page", project_id=project.id)
    if role is not None:
        return redirect("project-detail", project_id=project.id)
    return redirect("project-list")


def refused(request, project, form):
    for problem in form_problems(form):
        messages.error(request, problem)
    return redirect("members-page", project_id=project.id)


@login_required
@require_safe
def members_page(request, project_id):
    project = admin_project(request, project_id)
    return render(request, "frontend/members.html", {
        "project": project,
        "members": selectors.memberships_for(project=project),
        "roles": Role.choices,
        "form": MemberAddForm(initial={"role": Role.EXPERT}),
    })


@login_required
@require_POST
def member_add(request, project_id):
    project = admin_project(request, project_id)
    form = MemberAddForm(request.POST)
    if not form.is_valid():
        return refused(request, project, form)
    user, role = form.cleaned_data["username"], form.cleaned_data["role"]
    with refusals_shown(request):
        services.membership_set(project=project, user=user, role=role)
        messages.success(request, f"{user.username} is a member with the role {role}.")
    return after_change(request, project)


@login_required
@require_POST
def member_role(request, project_id, user_id):
    project = admin_project(request, project_id)
    membership = selectors.membership_get(project=project, user_id=user_id)
    form = MemberRoleForm(request.POST)
    if not form.is_valid():
        return refused(request, project, form)
    with refusals_shown(request):
        services.membership_set(project=project, user=membership.user, role=form.cleaned_data["role"])
        messages.success(request, f"{membership.user.username} now has the role {form.cleaned_data['role']}.")
    return after_change(request, project)


@login_required
@require_POST
def member_remove(request, project_id, user_id):
    project = admin_project(request, project_id)
    membership = selectors.membership_get(project=project, user_id=user_id)
    with refusals_shown(request):
        if services.membership_remove(project=project, user=membership.user):
            messages.success(request, f"{membership.user.username} is no longer a member.")
    return after_change(request, project)
