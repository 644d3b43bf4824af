"""A project's base_model_path names a model the operator put in LABELLOOP_BASE_MODELS_DIR (or the
bundled one): never another project's fine-tuned version, never a folder elsewhere on the disk,
and the refusal does not say whether a path outside exists."""
import pytest

from ml.encoder import default_model_path

pytestmark = pytest.mark.django_db
REFUSED = "must be the bundled base model or a folder inside LABELLOOP_BASE_MODELS_DIR"


def model_folder(path):
    path.mkdir(parents=True)
    (path / "config.json").write_text("{}")
    (path / "model.safetensors").write_bytes(b"\0" * 8)
    return path


@pytest.fixture
def models_dir(settings, tmp_path):
    settings.LABELLOOP_ARTEFACT_DIR = tmp_path / "artefacts"
    settings.LABELLOOP_BASE_MODELS_DIR = str(tmp_path / "models")
    (tmp_path / "models").mkdir()
    return tmp_path / "models"


def set_base_model(client, project, path):
    return client.patch(f"/api/projects/{project.id}/", {"base_model_path": str(path)}, format="json")


def test_a_model_inside_the_configured_folder_is_accepted(project, client_for, owner, models_dir):
    folder = model_folder(models_dir / "minilm-legal")
    answer = set_base_model(client_for(owner), project, folder)
    assert answer.status_code == 200 and answer.json()["base_model_path"] == str(folder.resolve())


def test_the_bundled_base_model_is_accepted_without_a_configured_folder(project, client_for, owner, settings):
    settings.LABELLOOP_BASE_MODELS_DIR = ""
    assert set_base_model(client_for(owner), project, default_model_path()).status_code == 200


def test_another_projects_fine_tuned_version_is_refused(project, client_for, owner, models_dir, settings):
    version = model_folder(settings.LABELLOOP_ARTEFACT_DIR / "versions" / "project-7" / "v3")
    answer = set_base_model(client_for(owner), project, version)
    assert answer.status_code == 400 and REFUSED in answer.json()["base_model_path"][0]


def test_the_artefact_folder_is_refused_even_inside_the_configured_folder(project, client_for, owner, settings, tmp_path):
    settings.LABELLOOP_BASE_MODELS_DIR = str(tmp_path)
    settings.LABELLOOP_ARTEFACT_DIR = tmp_path / "artefacts"
    version = model_folder(tmp_path / "artefacts" / "versions" / "project-7" / "v3")
    answer = set_base_model(client_for(owner), project, version)
    assert answer.status_code == 400 and REFUSED in answer.json()["base_model_path"][0]


def test_a_path_outside_is_refused_alike_whether_or_not_it_exists(project, client_for, owner, models_dir, tmp_path):
    client = client_for(owner)
    there = set_base_model(client, project, model_folder(tmp_path / "elsewhere" / "model")).json()
    not_there = set_base_model(client, project, tmp_path / "nowhere" / "model").json()
    assert there == not_there == {"base_model_path": [REFUSED]}


def test_a_symlink_or_dot_dot_cannot_leave_the_configured_folder(project, client_for, owner, models_dir, tmp_path):
    outside = model_folder(tmp_path / "elsewhere" / "model")
    (models_dir / "link").symlink_to(outside)
    client = client_for(owner)
    assert set_base_model(client, project, models_dir / "link").status_code == 400
    assert set_base_model(client, project, f"{models_dir}/../elsewhere/model").status_code == 400


def test_a_project_cannot_be_created_with_a_path_outside(client_for, outsider, models_dir, tmp_path):
    answer = client_for(outsider).post("/api/projects/", {
        "name": "New", "labels": [{"key": "yes", "name": "Yes"}], "base_model_path": str(model_folder(tmp_path / "x")),
    }, format="json")
    assert answer.status_code == 400 and answer.json() == {"base_model_path": [REFUSED]}
