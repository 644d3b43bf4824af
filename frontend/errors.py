"""How the pages show a refusal: a service's DomainError, or a form's problems, as the one-line
messages the page prints above its content ("field: message", as the API names the field)."""
from contextlib import contextmanager

from django.contrib import messages

from core.errors import DomainError


def refusal_show(request, error: DomainError) -> None:
    messages.error(request, str(error))


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
