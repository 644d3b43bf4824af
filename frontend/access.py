"""Who may open a page: the one check every admin page starts with."""
from labeller import selectors
from labeller.models import Role


def admin_project(request, project_id):
    """The project, for its admins only (403 below admin, 404 for outsiders)."""
    project, _ = selectors.project_get_for(user=request.user, project_id=project_id, role=Role.ADMIN)
    return project
