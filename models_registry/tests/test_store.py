"""The remote artefact store: a worker publishes snapshots and versions; a machine without them
fetches them before use, and refuses files that do not match their checksum or hash. Both
remote stores the settings offer: a shared folder, and S3 (django-storages and boto3 over HTTP to
moto's S3-compatible server)."""
import pytest

from ml.finetune import ChecksumMismatch
from models_registry import serving, training
from models_registry.snapshots import snapshot_read

pytestmark = pytest.mark.django_db


class S3Folder:
    """The remote store's objects seen as files, for a test to list and tamper with."""

    def __init__(self, bucket, prefix: str):
        self.bucket, self.prefix = bucket, prefix

    def files(self) -> set[str]:
        return {o.key[len(self.prefix) + 1:] for o in self.bucket.objects.filter(Prefix=self.prefix + "/")}

    def read(self, name: str) -> bytes:
        return self.bucket.Object(f"{self.prefix}/{name}").get()["Body"].read()

    def write(self, name: str, data: bytes) -> None:
        self.bucket.put_object(Key=f"{self.prefix}/{name}", Body=data)


class LocalFolder:
    def __init__(self, root):
        self.root = root

    def files(self) -> set[str]:
        return {p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file()}

    def read(self, name: str) -> bytes:
        return (self.root / name).read_bytes()

    def write(self, name: str, data: bytes) -> None:
        (self.root / name).write_bytes(data)


@pytest.fixture(scope="module")
def s3_endpoint():
    """An S3-compatible server over HTTP on a free local port (moto's server), reached through a
    custom endpoint URL, as a MinIO or Ceph deployment configures it."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(params=["shared-folder", "s3"])
def remote(request, settings, tmp_path, monkeypatch):
    """The remote store, as the settings configure it: a shared folder, or S3 through
    django-storages and boto3 over HTTP to an S3-compatible endpoint (signed requests, the S3
    API and its errors); and this machine's own artefact dir."""
    settings.LABELLOOP_ARTEFACT_DIR = tmp_path / "worker"
    if request.param == "shared-folder":
        settings.STORAGES = {**settings.STORAGES, "artefacts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path / "remote")}}}
        yield LocalFolder(tmp_path / "remote")
        return
    import uuid

    import boto3

    endpoint = request.getfixturevalue("s3_endpoint")
    for name, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    bucket_name = f"labelloop-{uuid.uuid4().hex[:12]}"  # the server outlives one test: a bucket each
    bucket = boto3.resource("s3", region_name="us-east-1", endpoint_url=endpoint).create_bucket(Bucket=bucket_name)
    settings.STORAGES = {**settings.STORAGES, "artefacts": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {
        "bucket_name": bucket_name, "location": "labelloop", "file_overwrite": True, "endpoint_url": endpoint}}}
    yield S3Folder(bucket, "labelloop")


def test_another_machine_fetches_what_a_worker_published(labelled_project, remote, settings, tmp_path):
    (version,) = training.retrain_request(project=labelled_project, kinds=["head"])
    version = training.version_train(version=training.version_claim(version_id=version.id))
    published = remote.files()
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
    head = f"{version.artefact_path}/head.safetensors"
    remote.write(head, remote.read(head)[:-4] + b"\0\0\0\0")
    remote.write(version.snapshot.path, remote.read(version.snapshot.path).replace(b"card", b"cart", 1))

    settings.LABELLOOP_ARTEFACT_DIR = tmp_path / "web"
    with pytest.raises(ChecksumMismatch):
        serving.Predictor(version)
    with pytest.raises(ValueError, match="does not match its content hash"):
        snapshot_read(version.snapshot)
