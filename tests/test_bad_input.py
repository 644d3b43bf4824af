"""Bad input gets a 4xx that names the field and the problem, never a 500: impossible dates, deep
nesting, numbers JSON cannot carry, NUL characters, ids beyond 64 bits, Unicode digits and
wrongly typed guardrails, on every endpoint that takes them (SQLite and PostgreSQL)."""
import json

import pytest
from django.test import Client

from feedback.models import FeedbackEvent
from labeller.models import Item, Label

pytestmark = pytest.mark.django_db

HUGE = "99999999999999999999"  # beyond 2**63 - 1, the largest id a 64-bit column holds
DEEP = "[" * 100_000 + "]" * 100_000
NOW = "2026-02-20T10:00:00Z"


@pytest.fixture
def item(project, add_items):
    (item,) = add_items(project, ["where is my card"])
    return item


@pytest.fixture
def owner_client(client_for, owner):
    return client_for(owner)


def post_raw(client, url, text, method="post"):
    return getattr(client, method)(url, data=text, content_type="application/json")


def json_endpoints(project, item):
    """(method, url, a valid body) for every JSON endpoint; each case below spoils one value."""
    p = project.id
    return {
        "project create": ("post", "/api/projects/", {"name": "x", "labels": [{"key": "a", "name": "A"}]}),
        "project update": ("patch", f"/api/projects/{p}/", {"name": "x"}),
        "label create": ("post", f"/api/projects/{p}/labels/", {"key": "k", "name": "K"}),
        "annotate": ("post", f"/api/projects/{p}/items/{item.id}/annotations", {"labels": ["card_arrival"]}),
        "queue next": ("post", f"/api/projects/{p}/queue/next", {"exclude": []}),
        "export": ("post", f"/api/projects/{p}/exports/", {"format": "jsonl"}),
        "training policy": ("patch", f"/api/projects/{p}/training-policy", {"auto_promote": False}),
        "serving policy": ("patch", f"/api/projects/{p}/serving-policy", {"abstain_below": 0.1}),
        "predict": ("post", f"/api/projects/{p}/predict", {"data": {"text": "hello"}}),
        "feedback": ("post", f"/api/projects/{p}/feedback",
                     {"data": {"text": "hello"}, "kind": "rejection", "end_user": "u", "occurred_at": NOW}),
        "token": ("post", f"/api/projects/{p}/tokens/", {"name": "t", "scopes": ["predict"]}),
        "auth token": ("post", "/api/auth/token", {"username": "owner", "password": "owner-password"}),
    }


ENDPOINTS = ["project create", "project update", "label create", "annotate", "queue next", "export", "training policy",
             "serving policy", "predict", "feedback", "token", "auth token"]


def spoil(body: dict, literal: str) -> str:
    """The body as JSON text with a field `spoilt` whose raw value is `literal`."""
    return json.dumps({**body, "spoilt": "@@"}).replace('"@@"', literal)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_deeply_nested_json_is_refused_with_400(endpoint, owner_client, project, item):
    method, url, _ = json_endpoints(project, item)[endpoint]
    response = post_raw(owner_client, url, DEEP, method)
    assert response.status_code == 400, response.content
    assert "nested" in json.dumps(response.json())


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1" * 400, "9" * 5000])
def test_numbers_json_cannot_carry_are_refused_naming_the_field(endpoint, literal, owner_client, project, item):
    method, url, body = json_endpoints(project, item)[endpoint]
    response = post_raw(owner_client, url, spoil(body, literal), method)
    assert response.status_code == 400, response.content
    assert list(response.json()) == ["spoilt"] and "number" in response.json()["spoilt"][0]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("literal, path", [
    ('"a\\u0000b"', "spoilt"),
    ('{"inner": ["ok", "a\\u0000"]}', "spoilt.inner[1]"),
    ('{"a\\u0000": 1}', "spoilt"),
])
def test_nul_characters_anywhere_in_a_json_body_are_refused_naming_the_path(endpoint, literal, path, owner_client, project, item):
    method, url, body = json_endpoints(project, item)[endpoint]
    response = post_raw(owner_client, url, spoil(body, literal), method)
    assert response.status_code == 400, response.content
    assert list(response.json()) == [path] and "NUL" in response.json()[path][0]


def test_a_valid_body_still_works_after_the_checks(owner_client, project, item):
    response = post_raw(owner_client, f"/api/projects/{project.id}/labels/", '{"key": "k", "name": "K \\u00e9", "color": "#aabbcc"}')
    assert response.status_code == 201 and Label.objects.get(project=project, key="k").name == "K \u00e9"


@pytest.mark.parametrize("body", ["username=own%00er&password=x", "username=owner&password=x%00"])
def test_nul_in_the_token_form_is_400(body, client, owner):
    response = client.post("/api/auth/token", data=body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400 and "NUL" in json.dumps(response.json())


def test_deep_json_on_the_token_endpoint_is_400(client, owner):
    response = client.post("/api/auth/token", data=DEEP, content_type="application/json")
    assert response.status_code == 400


@pytest.mark.parametrize("url", [
    "/api/projects/{p}/items/?external_id=a%00b",
    "/api/projects/{p}/items/?status=all%00",
    "/api/projects/{p}/monitoring?period=hour%00",
    "/api/projects/{p}/tokens/ab%00cd",
])
def test_nul_in_a_query_string_or_path_is_400(url, owner_client, project):
    response = owner_client.get(url.format(p=project.id)) if "tokens" not in url else owner_client.delete(url.format(p=project.id))
    assert response.status_code == 400, response.content


@pytest.mark.parametrize("encoding", ["multipart", "urlencoded"])
def test_nul_in_a_page_form_is_400(encoding, owner, project):
    from urllib.parse import urlencode

    browser = Client()
    browser.force_login(owner)
    url, fields = f"/projects/{project.id}/monitoring/tokens", {"name": "a\x00b", "scopes": "predict"}
    if encoding == "multipart":
        response = browser.post(url, fields)
    else:
        response = browser.post(url, urlencode(fields), content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400 and "name" in response.json()


@pytest.mark.parametrize("encoding", ["multipart", "urlencoded"])
def test_nul_in_an_api_form_is_400_naming_the_field(encoding, owner_client, project):
    from urllib.parse import urlencode

    url, fields = f"/api/projects/{project.id}/labels/", {"key": "k", "name": "a\x00b"}
    if encoding == "multipart":
        response = owner_client.post(url, fields, format="multipart")
    else:
        response = owner_client.post(url, urlencode(fields), content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400 and "name" in response.json()
    assert not Label.objects.filter(project=project, key="k").exists()


# 1. Dates that cannot exist.

@pytest.mark.parametrize("occurred_at", ["2026-02-30T10:00:00Z", "2026-02-20T10:00:00+25:00", "2026-02-20T10:00:00-24:30",
                                         "2026-13-01T10:00:00Z", "2026-02-20T25:00:00Z", "0001-01-01T00:30:00+01:00"])
def test_an_impossible_occurred_at_is_422_naming_the_field(occurred_at, owner_client, project):
    event = {"data": {"text": "hello"}, "kind": "rejection", "end_user": "u", "occurred_at": occurred_at}
    response = owner_client.post(f"/api/projects/{project.id}/feedback", event, format="json")
    assert response.status_code == 422, response.content
    assert "ISO 8601" in response.json()["events[0].occurred_at"][0]
    assert not FeedbackEvent.objects.exists()


# 3. and 6. Integers beyond 64 bits in bodies, query parameters and paths.

def test_an_exclude_id_beyond_64_bits_is_400_naming_it(owner_client, project, item):
    response = post_raw(owner_client, f"/api/projects/{project.id}/queue/next", '{"exclude": [%s]}' % HUGE)
    assert response.status_code == 400 and "exclude" in response.json()


@pytest.mark.parametrize("query", [f"item={HUGE}", f"page={HUGE}", "item=" + "9" * 5000])
def test_a_query_integer_beyond_64_bits_is_a_4xx(query, owner_client, project):
    response = owner_client.get(f"/api/projects/{project.id}/annotations/?{query}")
    assert response.status_code in (400, 404), response.content


@pytest.mark.parametrize("method, url", [
    ("get", "/api/projects/{huge}/"),
    ("get", "/api/projects/{huge}/training-policy"),
    ("post", "/api/projects/{huge}/predict"),
    ("post", "/api/projects/{huge}/feedback"),
    ("get", "/api/projects/{p}/items/{huge}/"),
    ("post", "/api/projects/{p}/items/{huge}/skip"),
    ("post", "/api/projects/{p}/items/{huge}/annotations"),
    ("get", "/api/projects/{p}/annotations/{huge}/"),
    ("get", "/api/projects/{p}/models/{huge}/"),
    ("post", "/api/projects/{p}/models/{huge}/promote"),
    ("get", "/api/projects/{p}/models/3000000000/"),  # a version number is a 32-bit column
    ("get", "/api/projects/{p}/review/{huge}"),
])
def test_an_id_beyond_64_bits_in_an_api_path_is_404(method, url, owner_client, project):
    response = getattr(owner_client, method)(url.format(p=project.id, huge=HUGE), {}, format="json")
    assert response.status_code == 404, response.content


@pytest.mark.parametrize("method, url", [
    ("get", "/projects/{huge}/"),
    ("get", "/projects/{huge}/models"),
    ("post", "/projects/{p}/models/{huge}/promote"),
    ("post", "/projects/{p}/models/{huge}/cancel"),
    ("post", "/projects/{p}/models/3000000000/promote"),
    ("get", "/projects/{huge}/monitoring"),
])
def test_an_id_beyond_64_bits_in_a_page_path_is_404(method, url, owner, project):
    browser = Client()
    browser.force_login(owner)
    response = getattr(browser, method)(url.format(p=project.id, huge=HUGE))
    assert response.status_code == 404


def test_the_largest_64_bit_id_is_still_an_id_that_is_not_found(owner_client, project):
    assert owner_client.get(f"/api/projects/{project.id}/items/{2**63 - 1}/").status_code == 404


# 5. A Label Studio import whose result is not a list.

@pytest.mark.parametrize("result", [5, "choices", {"value": {"choices": ["lost_card"]}}])
def test_a_label_studio_result_that_is_not_a_list_is_that_rows_error(result, owner_client, project):
    from django.core.files.uploadedfile import SimpleUploadedFile

    tasks = [{"data": {"text": "ok"}}, {"data": {"text": "bad"}, "annotations": [{"result": result}]}]
    upload = SimpleUploadedFile("tasks.json", json.dumps(tasks).encode(), content_type="application/json")
    response = owner_client.post(f"/api/projects/{project.id}/imports", {"file": upload}, format="multipart")
    assert response.status_code == 400, response.content
    (error,) = response.json()["errors"]
    assert error["row"] == 2 and error["field"] == "annotations" and "result" in error["message"]
    assert not Item.objects.filter(project=project).exists()


# 7. An unknown retrain kind from the models page.

def test_the_models_page_answers_an_unknown_retrain_kind_with_a_message(owner, labelled_project):
    browser = Client()
    browser.force_login(owner)
    response = browser.post(f"/projects/{labelled_project.id}/models/retrain", {"kinds": ["bogus"]}, follow=True)
    assert response.status_code == 200
    assert any("bogus" in str(m) for m in response.context["messages"])
    assert not labelled_project.model_versions.exists()


# 8. Unicode digits in query parameters.

@pytest.mark.parametrize("query", ["page=\u0663", "page=\u00b2", "item=\u0663", "item=\u00b2", "mine=\u0661"])
def test_unicode_digits_in_query_parameters_are_400_naming_the_parameter(query, owner_client, project):
    response = owner_client.get(f"/api/projects/{project.id}/annotations/?{query}")
    name = query.partition("=")[0]
    assert response.status_code == 400, response.content
    assert name in response.json()


@pytest.mark.parametrize("query", ["page=\u0663", "page=\u00b2"])
def test_unicode_digits_in_the_item_list_page_are_400(query, owner_client, project):
    response = owner_client.get(f"/api/projects/{project.id}/items/?{query}")
    assert response.status_code == 400 and "page" in response.json()


@pytest.mark.parametrize("version", ["\u00b2", "\u0663", HUGE])
def test_the_models_page_ignores_a_version_that_is_not_plain_digits(version, owner, project):
    from models_registry.models import ModelVersion

    ModelVersion.objects.create(project=project, number=1, kind="head", base_model="test")
    browser = Client()
    browser.force_login(owner)
    assert browser.get(f"/projects/{project.id}/models", {"version": version}).status_code == 200


# 9. Guardrails of the wrong type.

@pytest.mark.parametrize("guardrail, key", [
    ({"type": "min_primary", "value": "0.9"}, "value"),
    ({"type": "min_primary", "value": True}, "value"),
    ({"type": "min_primary", "value": [0.9]}, "value"),
    ({"type": "min_primary", "value": {"a": 1}}, "value"),
    ({"type": "min_recall", "label": ["lost_card"], "value": 0.9}, "label"),
    ({"type": "min_recall", "label": {"k": "lost_card"}, "value": 0.9}, "label"),
    ({"type": ["min_primary"], "value": 0.9}, "type"),
    ({"type": {"t": 1}, "value": 0.9}, "type"),
])
def test_a_guardrail_of_the_wrong_type_is_400_naming_its_key(guardrail, key, owner_client, project):
    response = owner_client.patch(f"/api/projects/{project.id}/training-policy", {"guardrails": [guardrail]}, format="json")
    assert response.status_code == 400, response.content
    assert any(problem.startswith(f"guardrails[0].{key}:") for problem in response.json()["guardrails"])


@pytest.mark.parametrize("guardrails", ["min_primary", {"type": "min_primary"}, ["min_primary"], [[0.9]]])
def test_guardrails_that_are_not_a_list_of_objects_are_400(guardrails, owner_client, project):
    response = owner_client.patch(f"/api/projects/{project.id}/training-policy", {"guardrails": guardrails}, format="json")
    assert response.status_code == 400 and "guardrails" in response.json()


# 4. in import files: the same values JSON bodies refuse are that row's error, never a 500.

def import_file(client, project, name, content: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile(name, content, content_type="application/octet-stream")
    return client.post(f"/api/projects/{project.id}/imports", {"file": upload}, format="multipart")


@pytest.mark.parametrize("line, field", [
    ('{"text": "a", "score": NaN}', "score"),
    ('{"text": "a", "score": 1e999}', "score"),
    ('{"text": "a", "score": -Infinity}', "score"),
    ('{"text": "a", "score": %s}' % ("9" * 5000), "score"),
    ('{"text": "a\\u0000b"}', "text"),
    ('{"text": "a", "meta": {"k\\u0000": 1}}', "meta"),
    ('{"text": "a", "meta": %s}' % ("[" * 100 + "]" * 100), "meta" + "[0]" * 63),
])
def test_a_jsonl_row_json_cannot_carry_is_that_rows_error(line, field, owner_client, project):
    content = ('{"text": "fine"}\n' + line + "\n").encode()
    response = import_file(owner_client, project, "items.jsonl", content)
    assert response.status_code == 400, response.content
    (error,) = response.json()["errors"]
    assert error["row"] == 2 and error["field"] == field
    assert not Item.objects.filter(project=project).exists()


@pytest.mark.parametrize("task, field", [
    ({"data": {"text": "a\u0000b"}}, "data.text"),
    ({"data": {"text": "a"}, "annotations": [{"result": [{"value": {"choices": ["card\u0000arrival"]}}]}]},
     "annotations[0].result[0].value.choices[0]"),
])
def test_a_label_studio_task_with_nul_is_that_rows_error(task, field, owner_client, project):
    content = json.dumps([{"data": {"text": "fine"}}, task]).encode()
    response = import_file(owner_client, project, "tasks.json", content)
    assert response.status_code == 400, response.content
    (error,) = response.json()["errors"]
    assert error["row"] == 2 and error["field"] == field and "NUL" in error["message"]


@pytest.mark.parametrize("value", [b"1e999", b"NaN", b"1" + b"0" * 400, b"[" * 100_000 + b"]" * 100_000])
def test_a_label_studio_value_json_cannot_carry_is_an_error_at_its_row(value, owner_client, project):
    """The streaming reader refuses these itself (or, nested, after 64 levels), at that row."""
    content = b'[{"data": {"text": "fine"}}, {"data": {"text": "a", "score": ' + value + b'}}]'
    response = import_file(owner_client, project, "tasks.json", content)
    assert response.status_code == 400, response.content
    (error,) = response.json()["errors"]
    assert error["row"] == 2 and "malformed JSON" in error["message"]
    assert not Item.objects.filter(project=project).exists()


def test_a_nul_after_the_first_kilobytes_of_a_csv_is_that_rows_error(owner_client, project):
    content = b"text\n" + b"".join(b"row %d\n" % i for i in range(1000)) + b"bad\x00row\n"
    response = import_file(owner_client, project, "items.csv", content)
    assert response.status_code == 400, response.content
    (error,) = response.json()["errors"]
    assert error["row"] == 1001 and "NUL" in error["message"]


def test_the_schema_still_gives_bounded_ids_as_integers(owner_client):
    schema = owner_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    (param,) = [p for p in schema["paths"]["/api/projects/{project_id}/"]["get"]["parameters"] if p["name"] == "project_id"]
    assert param["schema"] == {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}
