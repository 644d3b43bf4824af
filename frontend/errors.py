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



def serializer_problems(errors, path: str = "") -> list[str]:
    """One "field: problem" line per field an API serializer refused; a nested field is named by
    its path as the API's answer nests it ("labels[2].key", counting items from 1 as people do)."""
    if isinstance(errors, list) and not any(isinstance(e, (dict, list)) for e in errors):
        return [f"{path}: {' '.join(map(str, errors))}" if path else " ".join(map(str, errors))]
    inner = errors.items() if isinstance(errors, dict) else enumerate(errors)
    return [line for name, problems in inner if problems
            for line in serializer_problems(problems, _path(path, name))]


def _path(path: str, name) -> str:
    if isinstance(name, int):
        return f"{path}[{name + 1}]"
    if name == "non_field_errors":
        return path
    return f"{path}.{name}" if path else name
