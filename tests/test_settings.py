"""Settings come from the environment; the secret key is generated once and kept."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def secret_key(data_dir: Path, **env) -> str:
    environment = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    environment.update(LABELLOOP_DATA_DIR=str(data_dir), DJANGO_SETTINGS_MODULE="config.settings", **env)
    code = "from django.conf import settings; print(settings.SECRET_KEY)"
    return subprocess.run([sys.executable, "-c", code], env=environment, cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout.strip()


def test_a_secret_key_is_generated_on_first_run_and_kept(tmp_path):
    first = secret_key(tmp_path / "a")
    assert len(first) >= 50
    assert secret_key(tmp_path / "a") == first
    assert (tmp_path / "a" / "secret_key").stat().st_mode & 0o077 == 0
    assert secret_key(tmp_path / "b") != first


def test_the_environment_can_set_the_secret_key(tmp_path):
    assert secret_key(tmp_path, SECRET_KEY="from-the-environment") == "from-the-environment"


def test_no_secret_key_is_written_in_the_code():
    settings_source = (ROOT / "config" / "settings.py").read_text()
    assert "SECRET_KEY = \"" not in settings_source and "SECRET_KEY = '" not in settings_source


def run_with_settings(data_dir: Path, code: str) -> str:
    environment = {k: v for k, v in os.environ.items() if k != "LABELLOOP_CACHE_URL"}
    environment.update(LABELLOOP_DATA_DIR=str(data_dir), DJANGO_SETTINGS_MODULE="config.settings")
    code = "import django; django.setup()\n" + code
    return subprocess.run([sys.executable, "-c", code], env=environment, cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout.strip()


def test_the_embedded_cache_is_shared_by_every_process_on_the_machine(tmp_path):
    """Gunicorn runs several workers: a token's throttle count and the feedback-routing debounce
    must be the same in each, or the limit multiplies by the number of workers."""
    count = ("from django.core.cache import cache\n"
             "if not cache.add('throttle:token:1', 1, 60): cache.incr('throttle:token:1')\n"
             "print(cache.get('throttle:token:1'), cache.add('feedback-route:1', 1, 60))")
    assert run_with_settings(tmp_path, count) == "1 True"
    assert run_with_settings(tmp_path, count) == "2 False"


def test_the_default_project_token_rate_is_a_sane_one(tmp_path):
    rate = run_with_settings(tmp_path, "from django.conf import settings; "
                                       "print(settings.REST_FRAMEWORK['DEFAULT_THROTTLE_RATES']['project_token'])")
    assert rate == "100/s"


def test_sending_on_the_embedded_broker_warns_of_nothing(tmp_path):
    """`./labelloop run` printed kombu's "No hostname was supplied" as its first line."""
    environment = {k: v for k, v in os.environ.items() if k not in ("CELERY_BROKER_URL", "LABELLOOP_CACHE_URL")}
    environment.update(LABELLOOP_DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="config.settings")
    code = ("import django; django.setup()\n"
            "from config.celery import app\n"
            "app.send_task('labelloop.nothing', queue='default')\n"
            "with app.connection_for_write() as connection: connection.info()\n")
    run = subprocess.run([sys.executable, "-c", code], env=environment, cwd=ROOT, check=True, capture_output=True, text=True)
    assert run.stderr == "" and run.stdout == ""
    assert list((tmp_path / "broker").glob("*.msg"))  # the message did go out
