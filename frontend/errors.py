"""How the pages show a refusal, as the one-line messages a page prints above its content.

A service's DomainError is shown as its message alone: it is a sentence about what the user just
pressed ("v1 is already the champion"); its field is the key the API answers it under, not words
for a person. A form's problems name their field ("name: This field is required."): a form has
several inputs, and the person needs to know which one to fix."""
from contextlib import contextmanager

from django.contrib import messages
from django.shortcuts import render

from core.errors import DomainError


def refusal_show(request, error: DomainError) -> None:
    messages.error(request, error.message)


@contextmanager
def refusals_shown(request):
    """Run the block; a DomainError it raises becomes the page's error message instead."""
    try:
        yield
    except DomainError as exc:
        refusal_show(request, exc)


def form_problems(form) -> list[str]:
    """One "field: problem problem" line per field that the form refused."""
    return [f"{field}: {' '.join(map(str, problems))}" for field, problems in form.errors.items()]


def serializer_problems(errors, path: str = "") -> list[str]:
    """The API serializer's refusals as form_problems writes them, one "field: problem" a line: a
    page that validates with the API's own serializer refuses what the API refuses, in its words.
    A nested field is named by its path as the API's answer nests it, counting list entries from 0
    as the API's own messages do ("labels[1].key", "kinds[1]"); a problem that already names its
    place ("guardrails[0].value: ...") is not named twice."""
    if isinstance(errors, dict):
        return [line for name, problems in errors.items() if problems
                for line in serializer_problems(problems, _path(path, name))]
    if isinstance(errors, list) and any(isinstance(e, (dict, list)) for e in errors):
        return [line for i, problems in enumerate(errors) if problems
                for line in serializer_problems(problems, _path(path, i))]
    problems = [str(p) for p in (errors if isinstance(errors, list) else [errors])]
    named = [p for p in problems if path and (p.startswith(f"{path}[") or p.startswith(f"{path}."))]
    rest = [p for p in problems if p not in named]
    return named + ([f"{path}: {' '.join(rest)}" if path else " ".join(rest)] if rest else [])


def _path(path: str, name) -> str:
    if isinstance(name, int) or str(name).isdigit():
        return f"{path}[{name}]"
    if name == "non_field_errors":
        return path
    return f"{path}.{name}" if path else str(name)


def form_checked(request, form):
    """The form's cleaned data, or None with its problems shown as the page's messages."""
    if form.is_valid():
        return form.cleaned_data
    for problem in form_problems(form):
        messages.error(request, problem)
    return None


def post_handled(request, *, checked, act, back):
    """A page's POST in one shape: `checked` is the validated input, or None when it was refused
    (its problems already shown); `act(checked)` calls the service and says what it did, a
    DomainError it raises is shown as the refusal; either way the answer is `back`, a redirect to
    the page."""
    if checked is not None:
        with refusals_shown(request):
            act(checked)
    return back


def refusal_page(request, error: DomainError, *, back_url: str):
    """A refusal answered with its own status (409, say) and a page that says it: for a POST the
    page never offers (a form hidden for this project), so there is no page to redirect back to."""
    return render(request, "frontend/refused.html", {"message": error.message, "back_url": back_url}, status=error.status)
