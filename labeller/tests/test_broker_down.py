"""A write the database committed is answered as committed, even when the Celery broker is down:
the client would otherwise retry into duplicates. The message is sent later by beat's reaper
(core.jobs), which re-sends a queued job once its heartbeat is older than the job timeout."""
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from active_learning import selectors
from labeller.models import ActiveLearningState, ExportJob, ExportStatus, Item, JobStatus
from core.jobs import jobs_reap
from labeller.tasks import reap_stuck_jobs

# Real commits: on_commit callbacks run inside the request, where a broker error used to surface.
pytestmark = pytest.mark.django_db(transaction=True)


def reap_as_if_the_timeout_had_passed():
    jobs_reap(timeout_s=0)


def sent(broker, task: str) -> list:
    return [args for name, args in broker.sent if name == task]


def test_an_import_answers_201_with_the_broker_down_and_the_reaper_sends_its_encoding_later(client_for, owner, project, broker):
    broker.down = True
    response = client_for(owner).post(f"/api/projects/{project.id}/imports",
                                      {"file": SimpleUploadedFile("items.csv", b"text\nhello\nbye\n")}, format="multipart")
    assert response.status_code == 201, response.content
    assert Item.objects.filter(project=project).count() == 2
    assert ActiveLearningState.objects.get(project=project).encode_status == JobStatus.QUEUED

    broker.down = False
    reap_stuck_jobs()
    assert sent(broker, "labeller.tasks.encode_items") == [], "a job queued a moment ago may still be on its way"
    reap_as_if_the_timeout_had_passed()
    assert sent(broker, "labeller.tasks.encode_items") == [[project.id]]
    reap_stuck_jobs()
    assert len(sent(broker, "labeller.tasks.encode_items")) == 1, "sent again only once its new heartbeat is as old again"


def test_an_export_answers_202_with_the_broker_down_and_the_reaper_sends_it_later(client_for, owner, project, broker):
    broker.down = True
    response = client_for(owner).post(f"/api/projects/{project.id}/exports/", {"format": "jsonl"}, format="json")
    assert response.status_code == 202, response.content
    job = ExportJob.objects.get(project=project)
    assert job.status == ExportStatus.QUEUED

    broker.down = False
    reap_as_if_the_timeout_had_passed()
    assert sent(broker, "labeller.tasks.export_run") == [[str(job.id)]]


def test_a_label_that_asks_for_a_refresh_answers_201_with_the_broker_down_and_the_reaper_sends_it_later(
        client_for, expert, make_project, add_items, broker):
    project = make_project(refresh_every=1)
    (item,) = add_items(project, ["where is my card"])
    selectors.state_for(project.id)
    broker.down = True
    response = client_for(expert).post(f"/api/projects/{project.id}/items/{item.id}/annotations",
                                       {"labels": ["card_arrival"]}, format="json")
    assert response.status_code == 201, response.content
    assert ActiveLearningState.objects.get(project=project).refresh_requested

    broker.down = False
    reap_as_if_the_timeout_had_passed()
    assert sent(broker, "labeller.tasks.refresh_priorities") == [[project.id]]
