"""`manage encoding_status`, which `./labelloop run` prints at start: until a project's items are
encoded its queue has no priorities and the screen no suggestions, so say so."""
from io import StringIO

import pytest
from django.core.management import call_command

from labeller.models import ActiveLearningState, JobStatus

pytestmark = pytest.mark.django_db


def status(**options) -> str:
    out = StringIO()
    call_command("encoding_status", stdout=out, **options)
    return out.getvalue()


def test_a_project_whose_encoding_is_queued_is_named_with_its_item_count_and_page(project, add_items):
    add_items(project, ["one", "two", "three"])
    ActiveLearningState.objects.filter(project=project).update(encode_status=JobStatus.QUEUED)
    assert status(base_url="http://127.0.0.1:8000") == (
        f"Encoding 3 items of project {project.id} (Intents) in the background: the queue is ranked and the model "
        f"suggests once it is done. Progress: http://127.0.0.1:8000/projects/{project.id}/\n")


def test_a_running_encode_counts_what_it_has_left(project, add_items):
    add_items(project, ["one", "two", "three"])
    ActiveLearningState.objects.filter(project=project).update(encode_status=JobStatus.RUNNING, encode_total=3, encode_done=2)
    assert status().startswith(f"Encoding 1 item of project {project.id}")


def test_nothing_is_said_when_nothing_is_encoding(project, add_items):
    add_items(project, ["one"])
    assert status() == ""
