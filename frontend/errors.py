"""How the pages show a refusal, as the one-line messages a page prints above its content.

A service's DomainError is shown as its message alone: it is a sentence about what the user just
pressed ("v1 is already the champion"); its field is the key the API answers it under, not words
for a person. A form's problems name their field ("name: This field is required."): a form has
several inputs, and the person needs to know which one to fix."""
from contextlib import contextmanager

from django.contrib import messages

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


def serializer_problems(errors, field: str = "") -> list[str]:
    """The API serializer's refusals as form_problems writes them, one "field: problem" a line: a
    page that validates with the API's own serializer refuses what the API refuses, in its words.
    A list field's entries are named by index ("kinds[1]: ..."); a problem that already names its
    place ("guardrails[0].value: ...") is not named twice."""
    if isinstance(errors, dict):
        return [line for key, value in errors.items()
                for line in serializer_problems(value, f"{field}[{key}]" if field and str(key).isdigit() else str(key))]
    if isinstance(errors, list) and errors and all(isinstance(e, (list, dict)) for e in errors):
        return [line for i, value in enumerate(errors) for line in serializer_problems(value, f"{field}[{i}]") if value]
    problems = [str(p) for p in (errors if isinstance(errors, list) else [errors])]
    named = [p for p in problems if p.startswith(f"{field}[") or p.startswith(f"{field}.")]
    rest = [p for p in problems if p not in named]
    return named + ([f"{field}: {' '.join(rest)}"] if rest else [])
