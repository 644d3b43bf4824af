"""Retrain requests are bounded: kinds are a set of known kinds, and a project with a version
queued or training gets no more, from the API, the models page, the threshold or the schedule,
even when two requests arrive at once."""
import threading

import pytest
from django.db import connection

from models_registry import tasks, training
from models_registry.models import ModelVersion, TrainingPolicy, VersionStatus

pytestmark = pytest.mark.django_db


def retrain_url(project):
    return f"/api/projects/{project.id}/models/"


def test_repeated_kinds_queue_one_version_each(labelled_project, client_for, owner):
    answer = client_for(owner).post(retrain_url(labelled_project), {"kinds": ["finetuned", "head"] * 2500}, format="json")
    assert answer.status_code == 202 and [v["kind"] for v in answer.json()] == ["finetuned", "head"]
    assert ModelVersion.objects.filter(project=labelled_project).count() == 2


def test_it_refuses_an_unknown_kind_naming_kinds(labelled_project, client_for, owner):
    answer = client_for(owner).post(retrain_url(labelled_project), {"kinds": ["head", "gpt"]}, format="json")
    assert answer.status_code == 400 and "kinds" in answer.json()
    assert not ModelVersion.objects.filter(project=labelled_project).exists()


def test_the_service_refuses_an_unknown_kind_naming_kinds(labelled_project):
    with pytest.raises(ValueError, match="^kinds: unknown kind 'gpt'"):
        training.retrain_request(project=labelled_project, kinds=["gpt"])
    assert not ModelVersion.objects.filter(project=labelled_project).exists()


def test_the_training_policy_stores_kinds_as_a_set(labelled_project, client_for, owner):
    url = f"/api/projects/{labelled_project.id}/training-policy"
    answer = client_for(owner).patch(url, {"kinds": ["head"] * 1000}, format="json")
    assert answer.status_code == 200 and answer.json()["kinds"] == ["head"]


def test_a_retrain_while_a_version_is_queued_answers_409(labelled_project, client_for, owner):
    client = client_for(owner)
    assert client.post(retrain_url(labelled_project), {"kinds": ["head"]}, format="json").status_code == 202
    again = client.post(retrain_url(labelled_project), {"kinds": ["head"]}, format="json")
    assert again.status_code == 409 and "v1 is queued" in again.json()["detail"]
    assert ModelVersion.objects.filter(project=labelled_project).count() == 1


def test_a_retrain_while_a_version_is_training_answers_409(labelled_project, client_for, owner):
    (version,) = training.retrain_request(project=labelled_project, kinds=["head"])
    training.version_claim(version_id=version.id)
    again = client_for(owner).post(retrain_url(labelled_project), {"kinds": ["head"]}, format="json")
    assert again.status_code == 409 and "v1 is training" in again.json()["detail"]


def test_a_finished_version_does_not_block_the_next_retrain(labelled_project, client_for, owner):
    (version,) = training.retrain_request(project=labelled_project, kinds=["head"])
    training.version_cancel(version=version)
    assert client_for(owner).post(retrain_url(labelled_project), {"kinds": ["head"]}, format="json").status_code == 202


def test_the_schedule_and_the_threshold_do_not_queue_behind_a_queued_version(labelled_project):
    TrainingPolicy.objects.update_or_create(project=labelled_project, defaults={"retrain_after_labels": 1, "kinds": ["head"]})
    training.retrain_request(project=labelled_project, kinds=["head"])
    TrainingPolicy.objects.filter(project=labelled_project).update(labels_at_last_retrain=0)
    tasks.scheduled_retrain(labelled_project.id)
    assert training.retrain_if_due(project=labelled_project) is False
    assert ModelVersion.objects.filter(project=labelled_project).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_retrains_at_once_queue_one(labelled_project):
    start, answers = threading.Barrier(2), []

    def request():
        start.wait()
        try:
            answers.append(training.retrain_request(project=labelled_project, kinds=["head"]))
        except training.RetrainBusy as exc:
            answers.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=request) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(type(a).__name__ for a in answers) == ["RetrainBusy", "list"]
    assert ModelVersion.objects.filter(project=labelled_project, status=VersionStatus.QUEUED).count() == 1
