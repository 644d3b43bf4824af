"""The export card of the project page: each job says which items it was asked for and what it
left out."""
import pytest

from labeller.models import ExportJob, ExportStatus

pytestmark = pytest.mark.django_db


def test_each_export_job_shows_its_filter(client, viewer, project):
    ExportJob.objects.create(project=project, format="csv", filters={"status": "done", "min_agreement": 0.8})
    ExportJob.objects.create(project=project, format="jsonl", filters={"status": "all", "min_agreement": None})
    client.force_login(viewer)
    page = client.get(f"/projects/{project.id}/").content.decode()
    assert "Items: done, agreement ≥ 0.8" in page
    assert "Items: all" in page


def test_a_finished_export_says_what_it_left_out(client, viewer, project):
    ExportJob.objects.create(
        project=project, format="label_studio", status=ExportStatus.DONE, total=3, written=3,
        filters={"status": "labelled", "min_agreement": None},
        summary={"items_written": 1, "not_matching_status": 2, "below_min_agreement": 0, "skipped_annotations": 1,
                 "skipped_only_items_written": 0, "skipped_only_items_left_out": 1})
    client.force_login(viewer)
    page = client.get(f"/projects/{project.id}/").content.decode()
    assert "Download (1 item)" in page
    assert "Left out: 2 items not labelled." in page and "1 item only ever skipped was left out." in page


def test_items_added_while_an_all_export_ran_are_counted_without_breaking_the_page(client, viewer, project):
    ExportJob.objects.create(
        project=project, format="jsonl", status=ExportStatus.DONE, filters={"status": "all", "min_agreement": None},
        summary={"items_written": 2, "not_matching_status": 1, "below_min_agreement": 0, "skipped_annotations": 0,
                 "skipped_only_items_written": 0, "skipped_only_items_left_out": 0})
    client.force_login(viewer)
    response = client.get(f"/projects/{project.id}/")
    assert response.status_code == 200 and "Left out: 1 item outside the filter." in response.content.decode()
