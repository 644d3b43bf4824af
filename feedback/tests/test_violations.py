"""Schema violations stay bounded whatever a payload holds: a body with 100,000 unknown keys is
refused with a short answer and counted in a few rows, not 100,000."""
import pytest

from feedback import violations
from feedback.models import SchemaViolation
from feedback.schema import ItemSchema, check_item_data

pytestmark = pytest.mark.django_db
URL = "/api/projects/{}/predict"
MANY = 100_000


def junk(n, prefix="junk"):
    return {f"{prefix}_{i:06d}": i for i in range(n)}


def test_it_lists_a_few_unknown_fields_of_an_item_and_counts_the_rest():
    schema = ItemSchema(text_field="text", required=("text",), types={"text": "string"})
    found = check_item_data(schema, {"text": "lost my card", **junk(MANY)}, "data")
    unknown = [v for v in found if v.problem == "unknown"]
    assert len(unknown) == violations.MAX_REPORTED + 1
    assert unknown[-1].field == "data" and f"{MANY - violations.MAX_REPORTED:,} more" in unknown[-1].message


def test_it_refuses_a_payload_with_a_hundred_thousand_unknown_keys_in_a_few_rows(project, token_client):
    client = token_client(project, ["predict"])
    response = client.post(URL.format(project.id), {"data": {"text": "lost my card", **junk(MANY)}}, format="json")
    assert response.status_code == 422
    body = response.json()
    assert len(body) <= violations.MAX_REPORTED + 1
    assert "data.junk_000000" in body and f"{MANY - violations.MAX_REPORTED:,} more" in " ".join(body["data"])
    rows = SchemaViolation.objects.filter(project=project)
    assert rows.count() <= violations.MAX_RECORDED + 1
    # Every violation is still counted, the ones beyond the cap in one bucket.
    assert sum(rows.values_list("count", flat=True)) == MANY


def test_a_batch_of_items_each_with_other_unknown_keys_is_recorded_in_a_few_rows(project, token_client):
    client = token_client(project, ["predict"])
    items = [{"data": {"text": "hi", **junk(50, prefix=f"item{i}")}} for i in range(200)]
    response = client.post(URL.format(project.id), {"items": items}, format="json")
    assert response.status_code == 422
    rows = SchemaViolation.objects.filter(project=project)
    assert rows.count() <= violations.MAX_RECORDED + 1
    assert rows.filter(field=violations.OTHER_FIELDS).exists()


def test_a_few_violations_are_still_recorded_one_row_per_field(project, token_client):
    client = token_client(project, ["predict"])
    client.post(URL.format(project.id), {"items": [{"data": {"txt": "a", "lang": "en"}}]}, format="json")
    counts = dict(SchemaViolation.objects.filter(project=project).values_list("field", "count"))
    assert counts == {"data.text": 1, "data.txt": 1, "data.lang": 1}
