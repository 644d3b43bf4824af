"""End to end through a real Celery worker process, on the suite's database and broker
(SQLite + filesystem broker, or PostgreSQL + Redis)."""
import json

import pytest

from labeller.exporting import export_create
from labeller.models import ExportJob
from labeller.services import annotation_submit
from tests.helpers import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_worker_writes_a_large_export_with_progress(celery_worker_process, make_project, expert, owner):
    from labeller.models import Item

    project = make_project()
    Item.objects.bulk_create(Item(project=project, data={"text": f"query {i}"}) for i in range(5000))
    for item in Item.objects.filter(project=project).order_by("id")[:3]:
        annotation_submit(item=item, user=expert, labels=["exchange_rate"], lead_time=1.5)

    job = export_create(project=project, user=owner, format="jsonl")
    finished = wait_for(
        lambda: ExportJob.objects.filter(id=job.id, status__in=["done", "failed"]).first(),
        timeout=90, what="the worker to finish the export",
    )
    assert finished.status == "done", finished.error + "".join(celery_worker_process.log[-30:])
    assert (finished.total, finished.written, finished.progress) == (5000, 5000, 1.0)
    rows = [json.loads(line) for line in finished.file_path.read_text().splitlines()]
    assert len(rows) == 5000
    assert [r["annotations"][0]["labels"] for r in rows[:3]] == [["exchange_rate"]] * 3
    assert rows[0]["annotations"][0]["annotator"] == "expert"
