"""One reaper for every background job: a job whose heartbeat is older than its kind's timeout
(a lost message, a killed worker) is sent again while it may be, else failed with the reason;
a live job is left alone."""
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from config.celery import app as celery_app
from active_learning import encoding, refresh
from labeller.exporting import export_claim, export_create
from core.jobs import Reaped, jobs_reap
from labeller.models import ActiveLearningState, ExportJob, ExportStatus, JobStatus
from models_registry import training
from models_registry.models import ModelVersion, VersionStatus

pytestmark = pytest.mark.django_db
LONG_AGO = timedelta(hours=1)


@pytest.fixture
def eager_celery():
    """Run what the reaper sends in-process, so a re-sent job is seen to finish."""
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def stale(model, **filters):
    """Age the matching rows' heartbeat by an hour, as if their worker had died then."""
    field = {ExportJob: "heartbeat_at", ModelVersion: "heartbeat_at"}.get(model)
    if field is None:
        raise ValueError(model)
    model.objects.filter(**filters).update(**{field: timezone.now() - LONG_AGO})


# --- exports ---------------------------------------------------------------------------------------

def test_an_export_whose_worker_died_is_run_again_and_finishes(eager_celery, project, owner,
                                                               django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():  # the first message is lost
        job = export_create(project=project, user=owner, format="jsonl")
    export_claim(job_id=job.id)  # a worker claimed it, then was killed
    stale(ExportJob, id=job.id)

    with django_capture_on_commit_callbacks(execute=True):
        reaped = jobs_reap()

    assert reaped["export"] == Reaped(requeued=1, failed=0)
    job.refresh_from_db()
    assert job.status == ExportStatus.DONE and job.attempts == 1 and job.file_path.exists()


def test_an_export_whose_message_was_lost_is_sent_again(project, owner, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        job = export_create(project=project, user=owner, format="csv")
    stale(ExportJob, id=job.id)
    with django_capture_on_commit_callbacks() as sent:
        assert jobs_reap()["export"] == Reaped(requeued=1, failed=0)
    assert len(sent) == 1
    job.refresh_from_db()
    assert job.status == ExportStatus.QUEUED and job.attempts == 1 and job.heartbeat_at > timezone.now() - LONG_AGO


def test_a_live_export_is_left_alone(project, owner, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        job = export_create(project=project, user=owner, format="jsonl")
    export_claim(job_id=job.id)
    with django_capture_on_commit_callbacks() as sent:
        assert jobs_reap()["export"] == Reaped()
    assert sent == [] and ExportJob.objects.get(id=job.id).status == ExportStatus.RUNNING


def test_an_export_stuck_after_its_last_attempt_is_failed_with_the_reason(project, owner, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        job = export_create(project=project, user=owner, format="jsonl")
    ExportJob.objects.filter(id=job.id).update(status=ExportStatus.RUNNING, attempts=settings.LABELLOOP_JOB_MAX_ATTEMPTS)
    stale(ExportJob, id=job.id)
    with django_capture_on_commit_callbacks() as sent:
        assert jobs_reap()["export"] == Reaped(requeued=0, failed=1)
    job.refresh_from_db()
    assert sent == [] and job.status == ExportStatus.FAILED and job.finished_at
    assert "no heartbeat" in job.error and "exports" in job.error  # says which queue's worker to look at


def test_a_claimed_export_beats_its_heart(project, owner, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        job = export_create(project=project, user=owner, format="jsonl")
    stale(ExportJob, id=job.id)
    assert export_claim(job_id=job.id).heartbeat_at > timezone.now() - timedelta(minutes=1)


# --- encoding --------------------------------------------------------------------------------------

def stale_state(project, **fields):
    ActiveLearningState.objects.filter(project=project).update(**fields)


def test_an_encode_whose_worker_died_is_queued_again(project, django_capture_on_commit_callbacks):
    stale_state(project, encode_status=JobStatus.RUNNING, encode_heartbeat_at=timezone.now() - LONG_AGO)
    with django_capture_on_commit_callbacks() as sent:
        assert jobs_reap()["encode"] == Reaped(requeued=1, failed=0)
    state = ActiveLearningState.objects.get(project=project)
    assert len(sent) == 1 and state.encode_status == JobStatus.QUEUED and state.encode_attempts == 1


def test_a_lost_encode_message_is_sent_again(project, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        assert encoding.encode_request(project_id=project.id)
    stale_state(project, encode_heartbeat_at=timezone.now() - LONG_AGO)
    with django_capture_on_commit_callbacks() as sent:
        assert jobs_reap()["encode"] == Reaped(requeued=1, failed=0)
    assert len(sent) == 1 and ActiveLearningState.objects.get(project=project).encode_status == JobStatus.QUEUED


def test_a_live_encode_is_left_alone(project, django_capture_on_commit_callbacks):
    stale_state(project, encode_status=JobStatus.RUNNING, encode_heartbeat_at=timezone.now())
    with django_capture_on_commit_callbacks() as sent:
        assert jobs_reap()["encode"] == Reaped()
    assert sent == [] and ActiveLearningState.objects.get(project=project).encode_status == JobStatus.RUNNING


def test_an_encode_stuck_after_its_last_attempt_is_failed_and_can_be_asked_for_again(
        project, django_capture_on_commit_callbacks):
    stale_state(project, encode_status=JobStatus.RUNNING, encode_heartbeat_at=timezone.now() - LONG_AGO,
                encode_attempts=settings.LABELLOOP_JOB_MAX_ATTEMPTS)
    with django_capture_on_commit_callbacks() as sent:
        assert jobs_reap()["encode"] == Reaped(requeued=0, failed=1)
    state = ActiveLearningState.objects.get(project=project)
    assert sent == [] and state.encode_status == JobStatus.FAILED and "no heartbeat" in state.encode_error
    with django_capture_on_commit_callbacks():
        assert encoding.encode_request(project_id=project.id)  # a failed encode no longer blocks new requests
    assert ActiveLearningState.objects.get(project=project).encode_attempts == 0


# --- refresh ---------------------------------------------------------------------------------------

def test_a_refresh_whose_worker_died_is_requested_again_and_runs(eager_celery, project, django_capture_on_commit_callbacks):
    stale_state(project, refresh_running=True, refresh_requested=False, refresh_heartbeat_at=timezone.now() - LONG_AGO)
    with django_capture_on_commit_callbacks(execute=True):
        assert jobs_reap()["refresh"] == Reaped(requeued=1, failed=0)
    state = ActiveLearningState.objects.get(project=project)
    assert not state.refresh_running and not state.refresh_requested and state.last_refresh_at
    assert state.refresh_attempts == 0 and state.refresh_error == ""


def test_a_lost_refresh_request_is_sent_again(project, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        assert refresh.refresh_request(project_id=project.id)
    stale_state(project, refresh_heartbeat_at=timezone.now() - LONG_AGO)
    with django_capture_on_commit_callbacks() as sent:
        assert jobs_reap()["refresh"] == Reaped(requeued=1, failed=0)
    assert len(sent) == 1 and ActiveLearningState.objects.get(project=project).refresh_requested


def test_a_live_refresh_is_left_alone(project, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        refresh.refresh_request(project_id=project.id)
    assert refresh.refresh_claim(project_id=project.id)
    with django_capture_on_commit_callbacks() as sent:
        assert jobs_reap()["refresh"] == Reaped()
    state = ActiveLearningState.objects.get(project=project)
    assert sent == [] and state.refresh_running
    assert not refresh.refresh_claim(project_id=project.id)  # nor taken over by a second delivery


def test_a_refresh_stuck_after_its_last_attempt_gives_up_with_the_reason(project, django_capture_on_commit_callbacks):
    stale_state(project, refresh_running=True, refresh_heartbeat_at=timezone.now() - LONG_AGO,
                refresh_attempts=settings.LABELLOOP_JOB_MAX_ATTEMPTS)
    with django_capture_on_commit_callbacks() as sent:
        assert jobs_reap()["refresh"] == Reaped(requeued=0, failed=1)
    state = ActiveLearningState.objects.get(project=project)
    assert sent == [] and not state.refresh_running and not state.refresh_requested
    assert "no heartbeat" in state.refresh_error
    with django_capture_on_commit_callbacks():
        assert refresh.refresh_request(project_id=project.id)  # the next labels ask for one again


# --- training --------------------------------------------------------------------------------------

def test_a_training_version_whose_worker_died_is_failed_with_the_reason(labelled_project, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        (version,) = training.retrain_request(project=labelled_project, kinds=["head"])
    training.version_claim(version_id=version.id)
    stale(ModelVersion, id=version.id)
    assert jobs_reap()["training"] == Reaped(requeued=0, failed=1)
    version.refresh_from_db()
    assert version.status == VersionStatus.FAILED and "no heartbeat" in version.error


def test_a_queued_version_whose_message_was_lost_is_sent_again(labelled_project, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        (version,) = training.retrain_request(project=labelled_project, kinds=["head"])
    ModelVersion.objects.filter(id=version.id).update(created_at=timezone.now() - LONG_AGO)
    with django_capture_on_commit_callbacks() as sent:
        assert jobs_reap()["training"] == Reaped(requeued=1, failed=0)
    version.refresh_from_db()
    assert len(sent) == 1 and version.status == VersionStatus.QUEUED and version.attempts == 1


def test_a_queued_version_waiting_behind_a_live_training_is_left_alone(labelled_project, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        first, second = training.retrain_request(project=labelled_project, kinds=["head", "finetuned"])
    training.version_claim(version_id=first.id)
    ModelVersion.objects.filter(id=second.id).update(created_at=timezone.now() - LONG_AGO)
    with django_capture_on_commit_callbacks() as sent:
        assert jobs_reap()["training"] == Reaped()
    assert sent == [] and ModelVersion.objects.get(id=second.id).status == VersionStatus.QUEUED


def test_a_queued_version_never_picked_up_is_failed_after_its_last_attempt(labelled_project, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        (version,) = training.retrain_request(project=labelled_project, kinds=["head"])
    ModelVersion.objects.filter(id=version.id).update(created_at=timezone.now() - LONG_AGO,
                                                       attempts=settings.LABELLOOP_JOB_MAX_ATTEMPTS)
    assert jobs_reap()["training"] == Reaped(requeued=0, failed=1)
    version.refresh_from_db()
    assert version.status == VersionStatus.FAILED and "training" in version.error  # names the queue


# --- the beat entry --------------------------------------------------------------------------------

def test_beat_runs_one_reaper_for_every_job_kind():
    reapers = [entry for entry in settings.CELERY_BEAT_SCHEDULE.values() if "reap" in entry["task"]]
    assert [entry["task"] for entry in reapers] == ["labeller.tasks.reap_stuck_jobs"]
    # autodiscover_tasks is lazy: a worker imports the apps' task modules when it starts. Do what it
    # does, so the check holds when this test runs alone (before, another test's import did it).
    celery_app.loader.import_default_modules()
    assert "labeller.tasks.reap_stuck_jobs" in celery_app.tasks
    assert set(jobs_reap()) == {"encode", "refresh", "export", "training"}


def test_a_head_version_beats_its_heart_while_it_trains(labelled_project, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        (version,) = training.retrain_request(project=labelled_project, kinds=["head"])
    claimed = training.version_claim(version_id=version.id)
    stale(ModelVersion, id=version.id)  # encoding a large snapshot's items can outlast the timeout
    training.version_train(version=claimed)
    version.refresh_from_db()
    assert version.status == VersionStatus.READY and version.heartbeat_at > timezone.now() - timedelta(minutes=1)
