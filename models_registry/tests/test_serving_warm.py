"""A gunicorn worker loads the served models as it starts (config/gunicorn.conf.py), so the first
prediction it answers does not pay for loading them."""
import pytest

from models_registry import serving

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def a_fresh_process():
    serving._loaded.clear()
    serving.forget_aliases()
    yield
    serving._loaded.clear()
    serving.forget_aliases()


def test_with_no_champion_anywhere_there_is_nothing_to_load(project):
    assert serving.serving_warm() == 0
    assert serving._loaded == {}


def test_the_champion_is_loaded_and_has_answered_once_before_the_first_request(served_project):
    assert serving.serving_warm() == 1
    (champion,) = serving.serving_versions(served_project).values()
    assert (champion.id, champion.checksum) in serving._loaded


def test_a_version_that_cannot_load_is_logged_and_left_for_later(served_project, monkeypatch, caplog):
    def broken(version):
        raise OSError("artefact missing")

    monkeypatch.setattr(serving, "predictor_for", broken)
    assert serving.serving_warm() == 0
    assert "could not preload version" in caplog.text


def test_gunicorns_post_worker_init_hook_preloads_them(served_project, transactional_db):
    """The hook in config/gunicorn.conf.py, called as gunicorn calls it, with its worker."""
    import logging
    import runpy
    from pathlib import Path
    from types import SimpleNamespace

    hooks = runpy.run_path(str(Path(__file__).resolve().parents[2] / "config" / "gunicorn.conf.py"))
    assert hooks["control_socket_disable"] is True
    hooks["post_worker_init"](SimpleNamespace(pid=1, log=logging.getLogger("gunicorn.error")))
    (champion,) = serving.serving_versions(served_project).values()
    assert (champion.id, champion.checksum) in serving._loaded
