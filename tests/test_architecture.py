"""The shape of the code, held by tests: imports flow one way (the contracts in .importlinter,
drawn in docs/architecture.md), and the Celery task names, which are a wire contract, stay put."""
import subprocess
import sys
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent

# Routes, beat entries and messages already in a broker name tasks by these strings: a task may
# move between modules, its name may not.
TASK_NAMES = {
    "labeller.tasks.export_run", "labeller.tasks.encode_items", "labeller.tasks.refresh_priorities",
    "labeller.tasks.explain_suggestions", "labeller.tasks.expire_exports", "labeller.tasks.discard_abandoned_imports",
    "labeller.tasks.reap_stuck_jobs", "active_learning.encoding.encode_chunk",
    "models_registry.tasks.train_version", "models_registry.tasks.scheduled_retrain",
    "models_registry.tasks.expire_snapshots", "models_registry.tasks.reap_dead_training",
    "feedback.tasks.route_feedback", "feedback.tasks.route_all_pending", "feedback.tasks.monitor",
    "feedback.tasks.monitor_one", "feedback.tasks.send_alert_webhook", "feedback.tasks.expire_idempotency_keys",
    "active_learning.labels_audit",
}


def test_the_import_contracts_are_kept():
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_every_task_keeps_its_name():
    from config.celery import app

    app.loader.import_default_modules()
    ours = {name for name in app.tasks if name.split(".")[0] in {"labeller", "models_registry", "feedback", "active_learning"}}
    assert ours == TASK_NAMES


def test_every_routed_and_scheduled_task_exists():
    from config.celery import app

    app.loader.import_default_modules()
    named = set(settings.CELERY_TASK_ROUTES) | {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert named - set(app.tasks) == set()
