"""How the pages show a refusal: a service's DomainError, or a form's problems, as the one-line
messages the page prints above its content ("field: message", as the API names the field)."""
from django.contrib import messages

from core.errors import DomainError


def refusal_show(request, error: DomainError) -> None:
    messages.error(request, str(error))


def form_problems(form) -> list[str]:
    """One "field: problem problem" line per field that the form refused."""
    return [f"{field}: {' '.join(map(str, problems))}" for field, problems in form.errors.items()]
