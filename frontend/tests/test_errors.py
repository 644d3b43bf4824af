"""The pages' one helper for refusals: a service's DomainError becomes the message on the page."""
import pytest
from django import forms
from django.contrib.messages import get_messages
from django.contrib.messages.storage.fallback import FallbackStorage
from django.test import RequestFactory

from core.errors import Conflict, DomainError
from frontend.errors import form_problems, refusal_show, refusals_shown


def request_with_messages():
    request = RequestFactory().post("/")
    request.session = {}
    request._messages = FallbackStorage(request)
    return request


def test_it_shows_a_refusal_as_its_sentence_without_the_field():
    request = request_with_messages()
    refusal_show(request, DomainError("there is no earlier champion to roll back to", field="champion"))
    refusal_show(request, Conflict("v1 is queued; retry when it has finished"))
    assert [str(m) for m in get_messages(request)] == [
        "there is no earlier champion to roll back to", "v1 is queued; retry when it has finished"]


def test_it_lists_a_forms_problems_one_field_a_line():
    class Form(forms.Form):
        name = forms.CharField()
        size = forms.IntegerField()

    assert form_problems(Form({"size": "big"})) == ["name: This field is required.", "size: Enter a whole number."]


@pytest.mark.django_db
def test_a_page_shows_the_services_refusal(client, owner, project):
    client.force_login(owner)
    page = client.post(f"/projects/{project.id}/models/rollback", follow=True).content.decode()
    assert '<p class="message error">there is no earlier champion to roll back to</p>' in page


def test_a_block_that_is_refused_shows_the_refusal_and_goes_on():
    request = request_with_messages()
    with refusals_shown(request):
        raise Conflict("held by another expert", field="item")
    assert [str(m) for m in get_messages(request)] == ["held by another expert"]
