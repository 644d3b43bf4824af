"""Who gets in where: an authorization matrix generated from the URL configuration.

Every route Django resolves (the Django admin excepted, see `routes()`) must have a row in `MATRIX`,
and every row must name a route: a new route without a row fails `test_every_route_has_a_row`.

A row maps each HTTP method the route allows to the outcome each caller must get:

    anonymous            no credentials at all
    outsider             a signed-in user with no membership in the project
    viewer, expert,      signed-in members with that project role (labeller.models.Role);
    admin                the admin is the project's creator
    token                a project token of this project with the route's scope (feedback.models.Scope;
                         routes that take no token: a token with every scope)
    token_without_scope  a project token of this project with only the other scope
    other_project_token  a project token of another project, with every scope

The outcomes are classes of answers, precise about the status code:

    ALLOWED          the view ran: 2xx, a 3xx that is not the login redirect, or a validation answer
                     (400, 409, 413, 422). The bodies sent are empty, so most writes stop at 400: the
                     point is who gets in, not what they send. A 404 is never ALLOWED: every URL is
                     filled with real objects of the project, so a 404 can only be a refusal.
    LOGIN            a page sent the caller to the login page (302 to LOGIN_URL with ?next=)
    UNAUTHENTICATED  401: no credentials this route takes: an API route called with no session or user
                     token (user tokens are tried first, so DRF answers 401 with WWW-Authenticate), a
                     project token on a route that does not take them, the product endpoints (predict,
                     feedback) without a Bearer token, logout without the user token it revokes
    FORBIDDEN        403: a member below the role the route needs, or a token without the scope
    HIDDEN           404: the project or the object is not the caller's to know about. Outsiders and
                     other projects' tokens always get this, never 403: the project's existence is not
                     theirs to learn
    META             200 to OPTIONS on predict and feedback, describing the endpoint to any caller with
                     credentials; checked identical to the answer for a project that does not exist, so
                     it tells the caller nothing about this one. Every other project route checks the
                     caller before any method, OPTIONS included

Every other method (of GET HEAD OPTIONS POST PUT PATCH DELETE TRACE) must answer the admin 405.
Whatever the outcome, callers from outside the project (anonymous, outsider, another project's
token) never change the project's rows and never see its text; nor does any refused caller.

To add a route: add its row to `MATRIX` with the helpers below (`api(Role.X)`, `product(Scope.X)`,
`page(Role.X)`, ...), `.but(caller=OUTCOME)` for a caller that differs, and if its URL takes a new
kwarg, a real object for it in `objects`. See docs/security.md.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from urllib.parse import urlparse

import pytest
from django.apps import apps
from django.conf import settings
from django.shortcuts import resolve_url
from django.urls import URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from feedback.models import ApiToken, Scope
from feedback.tokens import token_create
from labeller.models import ROLE_RANK, ExportJob, ExportStatus, Project, Role
from labeller.services import annotation_submit, membership_set
from models_registry.models import ModelVersion, VersionStatus

pytestmark = pytest.mark.django_db

ALLOWED, LOGIN, UNAUTHENTICATED, FORBIDDEN, HIDDEN, META = "allowed", "login", "401", "403", "404", "meta"
NOT_ALLOWED = "405"

MEMBERS = {"viewer": Role.VIEWER, "expert": Role.EXPERT, "admin": Role.ADMIN}
TOKENS = ("token", "token_without_scope", "other_project_token")
CALLERS = ("anonymous", "outsider", "other_project_token", "token_without_scope", "token", "viewer", "expert", "admin")
FROM_OUTSIDE = {"anonymous", "outsider", "other_project_token"}
METHODS = ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE", "TRACE")
MARKER = "q7Zx-matrix"  # in the project's name and texts: no answer to an outside caller may contain it


@dataclass(frozen=True)
class Expect:
    """The outcome per caller for one method of one route."""

    outcomes: dict[str, str]
    scope: str | None = None  # the scope the route's token needs; None: the route takes no token
    body_format: str = "json"

    def but(self, **overrides: str) -> Expect:
        return Expect({**self.outcomes, **overrides}, self.scope, self.body_format)


def _members(min_role: str) -> dict[str, str]:
    return {name: ALLOWED if ROLE_RANK[role] >= ROLE_RANK[min_role] else FORBIDDEN for name, role in MEMBERS.items()}


def api(min_role: str, *, body_format: str = "json") -> Expect:
    """A project API route for members with `min_role` or higher; project tokens are not credentials here."""
    return Expect({"anonymous": UNAUTHENTICATED, "outsider": HIDDEN, **_members(min_role),
                   **dict.fromkeys(TOKENS, UNAUTHENTICATED)},
                  body_format=body_format)


def product(scope: str) -> Expect:
    """predict and feedback: a token of this project with `scope`, or a member with the expert role."""
    return Expect({"anonymous": UNAUTHENTICATED, "outsider": HIDDEN, **_members(Role.EXPERT), "token": ALLOWED,
                   "token_without_scope": FORBIDDEN, "other_project_token": HIDDEN}, scope=scope)


def page(min_role: str) -> Expect:
    """A project page for members with `min_role` or higher; tokens are not a browser's credentials."""
    return Expect({"anonymous": LOGIN, "outsider": HIDDEN, **_members(min_role), **dict.fromkeys(TOKENS, LOGIN)},
                  body_format="multipart")


def signed_in_api() -> Expect:
    """Any signed-in user (the answer is scoped to the caller's own projects)."""
    return api(Role.VIEWER).but(outsider=ALLOWED)


def public(body_format: str = "json") -> Expect:
    return Expect(dict.fromkeys(CALLERS, ALLOWED), body_format=body_format)


# OPTIONS on a product endpoint describes it (name, parsers) to any authenticated caller before
# the project is looked up, the same for every project id: META. Every other project route checks
# the caller's role before any method, OPTIONS included.
OPTIONS_PRODUCT = Expect({"anonymous": UNAUTHENTICATED, **dict.fromkeys(set(CALLERS) - {"anonymous"}, META)})


def reads(expect: Expect) -> dict[str, Expect]:
    """GET, and HEAD, which Django answers with the GET view."""
    return {"GET": expect, "HEAD": expect}


MATRIX: dict[str, dict[str, Expect]] = {
    # labeller.api.urls
    "api-token": {"POST": public(), "OPTIONS": public()},  # username + password for a user token
    # Revoking needs the user token being revoked: a session or a project token is not one.
    "api-logout": {"POST": Expect(dict.fromkeys(CALLERS, UNAUTHENTICATED)), "OPTIONS": Expect(dict.fromkeys(CALLERS, UNAUTHENTICATED))},
    "api-logout-all": {"POST": Expect(dict.fromkeys(CALLERS, UNAUTHENTICATED)), "OPTIONS": Expect(dict.fromkeys(CALLERS, UNAUTHENTICATED))},
    "api-schema": {**reads(public()), "OPTIONS": public()},  # the OpenAPI contract is public, like the docs
    "api-docs": reads(public()),  # Swagger UI, an HTML page
    "api-projects": {**reads(signed_in_api()), "POST": signed_in_api(), "OPTIONS": signed_in_api()},
    "api-project": {**reads(api(Role.VIEWER)), "PATCH": api(Role.ADMIN), "OPTIONS": api(Role.VIEWER)},
    "api-labels": {**reads(api(Role.VIEWER)), "POST": api(Role.ADMIN), "OPTIONS": api(Role.VIEWER)},
    "api-members": {**reads(api(Role.ADMIN)), "POST": api(Role.ADMIN), "OPTIONS": api(Role.ADMIN)},
    "api-member": {"DELETE": api(Role.ADMIN), "OPTIONS": api(Role.ADMIN)},
    "api-import": {"POST": api(Role.ADMIN, body_format="multipart"), "OPTIONS": api(Role.ADMIN)},
    "api-items": {**reads(api(Role.VIEWER)), "OPTIONS": api(Role.VIEWER)},
    "api-item": {**reads(api(Role.VIEWER)), "OPTIONS": api(Role.VIEWER)},
    "api-items-table": {**reads(api(Role.VIEWER)), "OPTIONS": api(Role.VIEWER)},
    # Requeue and mark for review only add work: experts; the view refuses delete below admin.
    "api-items-bulk": {"POST": api(Role.EXPERT), "OPTIONS": api(Role.EXPERT)},
    "api-annotate": {"POST": api(Role.EXPERT), "OPTIONS": api(Role.EXPERT)},
    "api-skip": {"POST": api(Role.EXPERT), "OPTIONS": api(Role.EXPERT)},
    "api-queue-next": {"POST": api(Role.EXPERT), "OPTIONS": api(Role.EXPERT)},
    "api-queue-release": {"POST": api(Role.EXPERT), "OPTIONS": api(Role.EXPERT)},
    "api-annotations": {**reads(api(Role.VIEWER)), "OPTIONS": api(Role.VIEWER)},
    # Anyone in the project reads an annotation; only its annotator edits it (the expert wrote it):
    # for the admin it is not there to edit.
    "api-annotation": {**reads(api(Role.VIEWER)), "PATCH": api(Role.EXPERT).but(admin=HIDDEN), "OPTIONS": api(Role.VIEWER)},
    "api-agreement": {**reads(api(Role.VIEWER)), "OPTIONS": api(Role.VIEWER)},
    "api-active-learning": {**reads(api(Role.VIEWER)), "POST": api(Role.EXPERT), "OPTIONS": api(Role.VIEWER)},
    # Finding likely label errors rewrites the flags experts act on: experts and admins.
    "api-label-errors": {"POST": api(Role.EXPERT), "OPTIONS": api(Role.EXPERT)},
    # Exporting is reading: a viewer may take the labels away.
    "api-exports": {**reads(api(Role.VIEWER)), "POST": api(Role.VIEWER), "OPTIONS": api(Role.VIEWER)},
    "api-export": {**reads(api(Role.VIEWER)), "OPTIONS": api(Role.VIEWER)},
    "api-export-download": {**reads(api(Role.VIEWER)), "OPTIONS": api(Role.VIEWER)},
    # models_registry.urls: reading needs any role, every change the admin role
    "api-models": {**reads(api(Role.VIEWER)), "POST": api(Role.ADMIN), "OPTIONS": api(Role.VIEWER)},
    "api-models-rollback": {"POST": api(Role.ADMIN), "OPTIONS": api(Role.VIEWER)},
    "api-models-aliases": {**reads(api(Role.VIEWER)), "OPTIONS": api(Role.VIEWER)},
    "api-model": {**reads(api(Role.VIEWER)), "OPTIONS": api(Role.VIEWER)},
    "api-model-promote": {"POST": api(Role.ADMIN), "OPTIONS": api(Role.VIEWER)},
    "api-model-challenger": {"POST": api(Role.ADMIN), "OPTIONS": api(Role.VIEWER)},
    "api-model-cancel": {"POST": api(Role.ADMIN), "OPTIONS": api(Role.VIEWER)},
    "api-training-policy": {**reads(api(Role.VIEWER)), "PATCH": api(Role.ADMIN), "OPTIONS": api(Role.VIEWER)},
    # feedback.urls: the product endpoints take tokens; the rest is for members
    "api-predict": {"POST": product(Scope.PREDICT), "OPTIONS": OPTIONS_PRODUCT},
    "api-feedback": {"POST": product(Scope.FEEDBACK), "OPTIONS": OPTIONS_PRODUCT},
    "api-tokens": {**reads(api(Role.ADMIN)), "POST": api(Role.ADMIN), "OPTIONS": api(Role.ADMIN)},
    "api-token-revoke": {"DELETE": api(Role.ADMIN), "OPTIONS": api(Role.ADMIN)},
    "api-serving-policy": {**reads(api(Role.VIEWER)), "PATCH": api(Role.ADMIN), "OPTIONS": api(Role.VIEWER)},
    "api-monitoring": {**reads(api(Role.VIEWER)), "POST": api(Role.ADMIN), "OPTIONS": api(Role.VIEWER)},
    "api-review": {**reads(api(Role.EXPERT)), "OPTIONS": api(Role.EXPERT)},
    "api-review-item": {**reads(api(Role.EXPERT)), "OPTIONS": api(Role.EXPERT)},
    # frontend.urls: Django's login form also answers PUT like POST, and OPTIONS
    "login": {**reads(public()), "POST": public("multipart"), "PUT": public("multipart"), "OPTIONS": public()},
    "logout": {"POST": public("multipart"), "OPTIONS": public()},
    "project-list": reads(page(Role.VIEWER).but(outsider=ALLOWED)),  # lists the caller's own projects
    "project-detail": reads(page(Role.VIEWER)),
    # As the API's POST /api/projects/: any signed-in user creates a project (and is its admin).
    "project-new": {**reads(page(Role.VIEWER).but(outsider=ALLOWED)), "POST": page(Role.VIEWER).but(outsider=ALLOWED)},
    "project-new-preview": {"POST": page(Role.VIEWER).but(outsider=ALLOWED)},
    "project-import": {"POST": page(Role.ADMIN)},
    "project-export": {"POST": page(Role.VIEWER)},  # as the API: exporting is reading
    "label-screen": reads(page(Role.EXPERT)),
    "item-page": reads(page(Role.VIEWER)),
    "item-relabel": {"POST": page(Role.EXPERT)},
    "item-label-similar": {"POST": page(Role.EXPERT)},
    "similar-page": reads(page(Role.VIEWER)),
    "data-manager": reads(page(Role.VIEWER)),
    "models-page": reads(page(Role.VIEWER)),
    "models-retrain": {"POST": page(Role.ADMIN)},
    "models-promote": {"POST": page(Role.ADMIN)},
    "models-cancel": {"POST": page(Role.ADMIN)},
    "models-rollback": {"POST": page(Role.ADMIN)},
    "members-page": reads(page(Role.ADMIN)),
    "annotators-page": reads(page(Role.ADMIN)),
    "members-add": {"POST": page(Role.ADMIN)},
    "member-role": {"POST": page(Role.ADMIN)},
    "member-remove": {"POST": page(Role.ADMIN)},
    "labels-page": reads(page(Role.ADMIN)),
    "label-add": {"POST": page(Role.ADMIN)},
    "label-update": {"POST": page(Role.ADMIN)},
    "label-archive": {"POST": page(Role.ADMIN)},
    "label-move": {"POST": page(Role.ADMIN)},
    "label-delete": {"POST": page(Role.ADMIN)},  # the label named is used: refused, as a redirect
    "settings-page": reads(page(Role.ADMIN)),
    "settings-training": {"POST": page(Role.ADMIN)},
    "settings-project": {"POST": page(Role.ADMIN)},
    "monitoring-page": reads(page(Role.VIEWER)),
    "monitoring-policy": {"POST": page(Role.ADMIN)},
    "monitoring-recompute": {"POST": page(Role.ADMIN)},
    "monitoring-token-create": {"POST": page(Role.ADMIN)},
    "monitoring-token-revoke": {"POST": page(Role.ADMIN)},
}


@dataclass
class Route:
    name: str
    pattern: str
    kwargs: tuple[str, ...] = field(default_factory=tuple)


def routes() -> dict[str, Route]:
    """Every named route of the URL configuration, included ones too, by name."""
    found: dict[str, Route] = {}

    def walk(patterns, prefix: str) -> None:
        for entry in patterns:
            pattern = prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                # The Django admin is staff-only, with its own login and permissions (Django's, tested
                # upstream); no project role or token reaches it.
                if entry.app_name == "admin":
                    continue
                walk(entry.url_patterns, pattern)
                continue
            # Static files are served by WhiteNoise from STATIC_ROOT, public by design and no view
            # of ours; a static route (runserver's, if ever added) is skipped for the same reason.
            if pattern.startswith(settings.STATIC_URL.lstrip("/")):
                continue
            assert entry.name, f"the route {pattern!r} has no name; name it so the matrix can have a row for it"
            assert entry.name not in found, f"two routes are named {entry.name!r}: {found[entry.name].pattern!r}, {pattern!r}"
            found[entry.name] = Route(entry.name, pattern, tuple(getattr(entry.pattern, "converters", {})))

    walk(get_resolver().url_patterns, "/")
    return found


def test_every_route_has_a_row_and_every_row_a_route():
    found = routes()
    missing = {name: found[name].pattern for name in set(found) - set(MATRIX)}
    stale = sorted(set(MATRIX) - set(found))
    assert not missing, f"routes without a row in MATRIX (add one, see the module docstring): {missing}"
    assert not stale, f"rows in MATRIX for routes that do not exist: {stale}"


def test_the_matrix_names_every_caller_for_every_method():
    for name, row in MATRIX.items():
        for method, expect in row.items():
            assert method in METHODS, (name, method)
            assert set(expect.outcomes) == set(CALLERS), (name, method, set(CALLERS) ^ set(expect.outcomes))


@pytest.fixture
def world(make_project, make_user, owner, expert, viewer, outsider, add_items, settings, tmp_path, monkeypatch):
    """This project with one of everything a URL can name, another project, and the callers' tokens."""
    from labeller.api.auth import LoginRateThrottle

    settings.LABELLOOP_EXPORT_DIR = tmp_path
    # The matrix calls the token endpoint more often than its per-address limit allows (tested apart).
    monkeypatch.setattr(LoginRateThrottle, "THROTTLE_RATES", {"login": "100000/min"})
    project = make_project(name=f"Matrix project {MARKER}", description=MARKER)
    other = make_project(name="Another team")
    first, _ = add_items(project, [f"first item {MARKER}", f"second item {MARKER}"])
    leaver = make_user("leaver")  # a member of this project only: the member a DELETE names
    membership_set(project=project, user=leaver, role=Role.EXPERT)
    annotation = annotation_submit(item=first, user=expert, labels=["card_arrival"])
    # A failed version: promote, challenger and cancel get as far as refusing it, cheaply.
    version = ModelVersion.objects.create(project=project, number=1, kind="head", status=VersionStatus.FAILED,
                                          base_model="matrix")
    export = ExportJob.objects.create(project=project, created_by=owner, format="jsonl", status=ExportStatus.DONE)
    export.file_path.write_text(f'{{"text": "{MARKER}"}}\n')
    revocable, _ = token_create(project=project, name="to revoke", scopes=[Scope.PREDICT])
    tokens = {frozenset(scopes): token_create(project=project, name="caller", scopes=scopes)[1]
              for scopes in ([Scope.PREDICT], [Scope.FEEDBACK], list(Scope.values))}
    _, other_token = token_create(project=other, name="other caller", scopes=list(Scope.values))
    return {
        "project": project,
        "users": {"outsider": outsider, "viewer": viewer, "expert": expert, "admin": owner},
        "tokens": tokens,
        "other_token": other_token,
        "kwargs": {"project_id": project.id, "item_id": first.id, "annotation_id": annotation.id,
                   "export_id": export.id, "number": version.number, "prefix": revocable.prefix,
                   "user_id": leaver.id, "label_id": project.labels.get(key="card_arrival").id,
                   "section": "queue"},
    }


@pytest.fixture(scope="module")
def browser():
    """One client for every call: building one loads the middleware (WhiteNoise scans the static
    files), which would cost more than the calls."""
    client = APIClient()
    client.raise_request_exception = False  # a 500 is an answer to report, not a crash of the loop
    return client


def client_as(browser: APIClient, world, caller: str, scope: str | None) -> APIClient:
    browser.logout()
    browser.credentials()
    if caller in world["users"]:
        browser.force_login(world["users"][caller])
    elif caller == "other_project_token":
        browser.credentials(HTTP_AUTHORIZATION=f"Bearer {world['other_token']}")
    elif caller in TOKENS:
        every = frozenset(Scope.values)
        if scope is None:  # a route that takes no token: the most a token can have, or one scope less
            scopes = every if caller == "token" else frozenset([Scope.PREDICT])
        else:
            scopes = frozenset([scope]) if caller == "token" else every - {scope}
        browser.credentials(HTTP_AUTHORIZATION=f"Bearer {world['tokens'][scopes]}")
    return browser


def call(client: APIClient, method: str, url: str, body_format: str):
    kwargs = {"format": body_format} if method in ("POST", "PUT", "PATCH", "DELETE") else {}
    if method in ("POST", "PUT", "PATCH"):
        kwargs["data"] = {}
    response = getattr(client, method.lower())(url, **kwargs)
    # Reading a streamed body to the end closes it the way the test client expects (closing it
    # ourselves would close the test's database connection).
    content = b"".join(response.streaming_content) if response.streaming else response.content
    return response, content


def outcome_of(response) -> str:
    code = response.status_code
    if code in (301, 302, 303, 307, 308):
        target = urlparse(response["Location"])
        if target.path == resolve_url(settings.LOGIN_URL) and "next=" in target.query:
            return LOGIN
        return ALLOWED
    if 200 <= code < 300 or code in (400, 409, 413, 422):
        return ALLOWED
    return {401: UNAUTHENTICATED, 403: FORBIDDEN, 404: HIDDEN, 405: NOT_ALLOWED}.get(code, f"status {code}")


@functools.cache
def linked_to_project() -> list[tuple[type, str]]:
    """Every model with a foreign key to Project, and that key's name."""
    found = []
    for model in apps.get_models():
        link = next((f for f in model._meta.fields if f.is_relation and f.related_model is Project), None)
        if link is not None:
            found.append((model, link.name))
    return found


def project_state(project: Project) -> dict:
    """Every row that belongs to the project, as values: what a refused caller must not change."""
    state = {"project": list(Project.objects.filter(id=project.id).values())}
    for model, link in linked_to_project():
        rows = model.objects.filter(**{link: project}).order_by("pk").values()
        state[model._meta.label] = [
            # Using a token records when it was last used, refused or not: bookkeeping, not a change.
            {k: v for k, v in row.items() if not (model is ApiToken and k == "last_used_at")} for row in rows
        ]
    return state


def url_for(route: Route, kwargs: dict) -> str:
    unknown = sorted(set(route.kwargs) - set(kwargs))
    assert not unknown, f"{route.pattern}: add a real object for {unknown} to the `world` fixture"
    return reverse(route.name, kwargs={name: kwargs[name] for name in route.kwargs})


@pytest.mark.parametrize("name", sorted(MATRIX))
def test_each_caller_gets_the_outcome_the_matrix_gives(name, world, browser):
    route = routes()[name]
    url = url_for(route, world["kwargs"])
    nowhere = url_for(route, {**world["kwargs"], "project_id": 999_999_999})
    problems = []
    state = project_state(world["project"])
    for method, expect in MATRIX[name].items():
        for caller in CALLERS:
            wanted = expect.outcomes[caller]
            refused = wanted not in (ALLOWED, META)
            response, content = call(client_as(browser, world, caller, expect.scope), method, url, expect.body_format)
            got = outcome_of(response)
            where = f"{method} {url} as {caller}"
            if got != (ALLOWED if wanted == META else wanted):
                problems.append(f"{where}: expected {wanted}, got {got} ({response.status_code} {content[:200]!r})")
            if wanted == META:
                elsewhere, elsewhere_content = call(client_as(browser, world, caller, expect.scope), method, nowhere, expect.body_format)
                if (elsewhere.status_code, elsewhere_content) != (response.status_code, content):
                    problems.append(f"{where}: answers differently for this project than for one that does not exist")
            after = project_state(world["project"])
            if (refused or caller in FROM_OUTSIDE) and after != state:
                problems.append(f"{where}: changed the project's rows ({wanted}, {response.status_code})")
            state = after
            if (refused or caller in FROM_OUTSIDE) and MARKER.encode() in content:
                problems.append(f"{where}: the answer shows the project's text")
    # A route the admin's session cannot use at all (logout takes the user token it revokes) refuses
    # the session before it looks at the method, as DRF does: 401 then, not 405.
    refused_anyway = {expect.outcomes["admin"] for expect in MATRIX[name].values()} == {UNAUTHENTICATED}
    for method in sorted(set(METHODS) - set(MATRIX[name])):
        response, content = call(client_as(browser, world, "admin", None), method, url, "json")
        if response.status_code != 405 and not (refused_anyway and response.status_code == 401):
            problems.append(f"{method} {url} as admin: a method without a row must be 405, got "
                            f"{response.status_code} {content[:200]!r}")
    assert not problems, f"{len(problems)} mismatch(es) for {name} ({route.pattern}):\n" + "\n".join(problems)


def test_another_projects_objects_are_not_found_through_this_projects_urls(world, browser, make_project):
    """The admin of two projects, naming project B's objects under project A's URLs, finds nothing."""
    kwargs = world["kwargs"]
    mine = make_project(name="Mine")
    crossed = {**kwargs, "project_id": mine.id}
    problems = []
    for name, route in routes().items():
        objects = set(route.kwargs) - {"project_id", "section"}  # a settings section names a form, not a row
        if "project_id" not in route.kwargs or not objects:
            continue
        before = project_state(world["project"])
        for method, expect in MATRIX[name].items():
            if method in ("OPTIONS", "HEAD"):
                continue
            response, content = call(client_as(browser, world, "admin", expect.scope), method, url_for(route, crossed), expect.body_format)
            if response.status_code != 404:
                problems.append(f"{method} {route.pattern} with {sorted(objects)} of another project: {response.status_code}")
            if MARKER.encode() in content:
                problems.append(f"{method} {route.pattern}: the answer shows the other project's text")
        if project_state(world["project"]) != before:
            problems.append(f"{route.pattern}: changed the other project's rows")
    assert not problems, "\n".join(problems)

