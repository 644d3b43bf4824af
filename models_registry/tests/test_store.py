"""The remote artefact store: a worker publishes snapshots and versions; a machine without them
fetches them before use, and refuses files that do not match their checksum or hash."""
import pytest

from ml.finetune import ChecksumMismatch
from models_registry import serving, training
from models_registry.snapshots import snapshot_read

pytestmark = pytest.mark.django_db


@pytest.fixture
def remote(settings, tmp_path):
    """A shared folder as the remote store (S3 goes through the same Storage API), and this
    machine's own artefact dir."""
    settings.STORAGES = {**settings.STORAGES, "artefacts": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path / "remote")}}}
    settings.LABELLOOP_ARTEFACT_DIR = tmp_path / "worker"
    return tmp_path / "remote"


def test_another_machine_fetches_what_a_worker_published(labelled_project, remote, settings, tmp_path):
    (version,) = training.retrain_request(project=labelled_project, kinds=["head"])
    version = training.version_train(version=training.version_claim(version_id=version.id))
    published = {p.relative_to(remote).as_posix() for p in remote.rglob("*") if p.is_file()}
    assert version.snapshot.path in published
    assert {f"{version.artefact_path}/{name}" for name in ("head.safetensors", "labels.json", "manifest.json")} <= published

    settings.LABELLOOP_ARTEFACT_DIR = tmp_path / "web"  # a web machine that has none of it
    examples = snapshot_read(version.snapshot)
    assert len(examples) == version.snapshot.n_train + version.snapshot.n_validation + version.snapshot.n_evaluation
    (answer,) = serving.answers(serving.Predictor(version), ["my card has still not arrived"], 3)
    assert answer.labels == ["card_arrival"]
    assert (tmp_path / "web" / version.artefact_path / "head.safetensors").exists()


def test_a_tampered_remote_file_is_refused(labelled_project, remote, settings, tmp_path):
    (version,) = training.retrain_request(project=labelled_project, kinds=["head"])
    version = training.version_train(version=training.version_claim(version_id=version.id))
    head = remote / version.artefact_path / "head.safetensors"
    head.write_bytes(head.read_bytes()[:-4] + b"\0\0\0\0")
    snapshot = remote / version.snapshot.path
    snapshot.write_text(snapshot.read_text().replace("card", "cart", 1))

    settings.LABELLOOP_ARTEFACT_DIR = tmp_path / "web"
    with pytest.raises(ChecksumMismatch):
        serving.Predictor(version)
    with pytest.raises(ValueError, match="does not match its content hash"):
        snapshot_read(version.snapshot)
