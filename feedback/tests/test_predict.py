"""The predict API: answers with their version, abstention, the champion/challenger split,
shadow mode, hot swaps, and every way a caller can get it wrong."""
import pytest
from django.test import override_settings

from feedback import tokens
from feedback.models import Prediction, SchemaViolation, ServingPolicy
from labeller.models import Item
from models_registry import promotion, serving
from models_registry.models import ModelVersion

from .conftest import train_head

pytestmark = pytest.mark.django_db
URL = "/api/projects/{}/predict"


def test_it_answers_one_item_with_label_confidence_top_k_version_and_a_prediction_id(served_project, token_client):
    client = token_client(served_project, ["predict"])
    response = client.post(URL.format(served_project.id), {"data": {"text": "I lost my card on the train"}}, format="json")
    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["label"] == "lost_or_stolen_card" and answer["labels"] == ["lost_or_stolen_card"]
    assert 0 < answer["confidence"] <= 1 and len(answer["top"]) == 3
    assert answer["top"][0] == {"label": "lost_or_stolen_card", "p": answer["confidence"]}
    assert answer["model_version"] == 1 and answer["served_as"] == "champion"
    logged = Prediction.objects.get(id=answer["prediction_id"])
    assert logged.version.number == 1 and logged.token == client.token and logged.labels == ["lost_or_stolen_card"]


def test_it_answers_many_items_in_order(served_project, token_client):
    client = token_client(served_project, ["predict"])
    texts = ["when will my new card arrive", "what exchange rate do you use for euros", "someone stole my card"]
    response = client.post(URL.format(served_project.id), {"items": [{"data": {"text": t}, "external_id": f"t{i}"} for i, t in
                                                                     enumerate(texts)], "top_k": 2}, format="json")
    assert response.status_code == 200, response.content
    answers = response.json()["predictions"]
    assert [a["label"] for a in answers] == ["card_arrival", "exchange_rate", "lost_or_stolen_card"]
    assert [a["external_id"] for a in answers] == ["t0", "t1", "t2"] and all(len(a["top"]) == 2 for a in answers)
    assert Prediction.objects.filter(project=served_project).count() == 3


def test_an_unsure_answer_abstains_and_the_item_enters_the_expert_queue(served_project, token_client):
    ServingPolicy.objects.update_or_create(project=served_project, defaults={"abstain_below": 0.999})
    client = token_client(served_project, ["predict"])
    response = client.post(URL.format(served_project.id), {"data": {"text": "card?"}, "external_id": "ticket-9"}, format="json")
    assert response.json()["abstain"] is True
    item = Item.objects.get(project=served_project, external_id="ticket-9")
    assert not item.is_done and not item.is_eval and item.data == {"text": "card?"}
    assert Prediction.objects.get(id=response.json()["prediction_id"]).item == item


@pytest.mark.parametrize("data, field, words", [
    ({"txt": "lost my card"}, "data.text", "renamed to 'txt'"),
    ({"text": "lost my card", "weight_lbs": 3}, "data.weight_lbs", "not in the project's item schema"),
    ({"text": 42}, "data.text", "must be a string"),
    ({"text": "  "}, "data.text", "must not be empty"),
    ("lost my card", "data", "must be an object"),
])
def test_a_payload_off_the_item_schema_is_refused_with_422_naming_the_field_and_counted(served_project, token_client, data, field, words):
    client = token_client(served_project, ["predict"])
    response = client.post(URL.format(served_project.id), {"data": data}, format="json")
    assert response.status_code == 422
    assert words in " ".join(response.json()[field])
    violation = SchemaViolation.objects.get(project=served_project, field=field)
    assert violation.token == client.token and violation.count == 1 and violation.endpoint == "predict"
    assert not Prediction.objects.exists()


def test_violations_are_counted_per_token_per_day_and_field_across_requests(served_project, token_client):
    client = token_client(served_project, ["predict"])
    body = {"items": [{"data": {"txt": "a"}}, {"data": {"txt": "b"}}]}
    client.post(URL.format(served_project.id), body, format="json")
    client.post(URL.format(served_project.id), body, format="json")
    counts = dict(SchemaViolation.objects.filter(token=client.token).values_list("field", "count"))
    assert counts == {"data.text": 4, "data.txt": 4}


def test_a_field_name_with_a_nul_byte_is_counted_with_the_byte_escaped(project, owner):
    """PostgreSQL text cannot hold NUL: the unknown field a payload named is still counted (it was a 500)."""
    from feedback.schema import Violation
    from feedback.violations import violations_record

    violations_record(project=project, caller=owner, endpoint="predict",
                      violations=[Violation("data.a\x00b", "unknown", "field is not in the project's item schema")])
    assert SchemaViolation.objects.get(project=project).field == "data.a\\x00b"


def test_a_declared_optional_field_of_the_right_type_is_accepted(served_project, token_client):
    served_project.field_types = {"channel": "string"}
    served_project.save()
    client = token_client(served_project, ["predict"])
    ok = client.post(URL.format(served_project.id), {"data": {"text": "lost card", "channel": "app"}}, format="json")
    wrong = client.post(URL.format(served_project.id), {"data": {"text": "lost card", "channel": 3}}, format="json")
    assert ok.status_code == 200 and wrong.status_code == 422 and "data.channel" in wrong.json()


def test_a_batch_with_an_unknown_top_level_field_is_refused_naming_it(served_project, token_client):
    """The documented batch is {items, top_k}: a misspelt option is an error, never silently ignored."""
    client = token_client(served_project, ["predict"])
    response = client.post(URL.format(served_project.id), {"items": [{"data": {"text": "lost card"}}], "topk": 2}, format="json")
    assert response.status_code == 422 and "unknown field" in response.json()["topk"][0]
    assert not Prediction.objects.exists()


def test_too_many_items_is_413_and_malformed_json_is_400(served_project, token_client):
    client = token_client(served_project, ["predict"])
    with override_settings(LABELLOOP_PREDICT_MAX_ITEMS=2):
        response = client.post(URL.format(served_project.id), {"items": [{"data": {"text": "x"}}] * 3}, format="json")
    assert response.status_code == 413 and "at most 2 items" in response.json()["items"][0]
    broken = client.post(URL.format(served_project.id), '{"data": {"text": "x"', content_type="application/json")
    assert broken.status_code == 400 and "JSON parse error" in broken.json()["detail"]


def test_tokens_are_scoped_to_their_project_and_scope_and_revocable(served_project, make_project, token_client, client_for, outsider):
    url = URL.format(served_project.id)
    body = {"data": {"text": "lost card"}}
    assert token_client(served_project, ["feedback"]).post(url, body, format="json").status_code == 403
    assert "scope" in token_client(served_project, ["feedback"]).post(url, body, format="json").json()["detail"]
    other = make_project(name="Other")
    assert token_client(other, ["predict"]).post(url, body, format="json").status_code == 404
    assert client_for(outsider).post(url, body, format="json").status_code == 404
    client = token_client(served_project, ["predict"])
    assert client.post(url, body, format="json").status_code == 200
    tokens.token_revoke(token=client.token)
    assert client.post(url, body, format="json").status_code == 401
    from rest_framework.test import APIClient

    forged = APIClient()
    forged.credentials(HTTP_AUTHORIZATION=f"Bearer ll_{client.token.prefix}_not-the-secret")
    assert forged.post(url, body, format="json").status_code == 401


def test_tokens_are_stored_hashed_and_shown_once(served_project, client_for, owner, expert):
    url = f"/api/projects/{served_project.id}/tokens/"
    assert client_for(expert).post(url, {"name": "x", "scopes": ["predict"]}, format="json").status_code == 403
    created = client_for(owner).post(url, {"name": "checkout", "scopes": ["predict", "feedback"]}, format="json")
    assert created.status_code == 201
    plain = created.json()["token"]
    token = served_project.api_tokens.get()
    assert plain.split("_", 2)[2] not in token.secret_hash and len(token.secret_hash) == 64
    assert "token" not in client_for(owner).get(url).json()[0]
    bad = client_for(owner).post(url, {"name": "x", "scopes": ["admin"]}, format="json")
    assert bad.status_code == 400 and "scopes" in bad.json()


def test_a_token_over_its_rate_is_throttled(served_project, token_client, monkeypatch):
    monkeypatch.setattr(tokens.ProjectTokenThrottle, "THROTTLE_RATES", {"project_token": "2/min"})
    client = token_client(served_project, ["predict"])
    codes = [client.post(URL.format(served_project.id), {"data": {"text": "lost card"}}, format="json").status_code
             for _ in range(3)]
    assert codes == [200, 200, 429]


def test_members_may_predict_with_their_own_login(served_project, client_for, expert, viewer):
    assert client_for(expert).post(URL.format(served_project.id), {"data": {"text": "lost card"}}, format="json").status_code == 200
    assert client_for(viewer).post(URL.format(served_project.id), {"data": {"text": "lost card"}}, format="json").status_code == 403


def test_a_project_without_a_champion_says_so(labelled_project, token_client):
    response = token_client(labelled_project, ["predict"]).post(URL.format(labelled_project.id), {"data": {"text": "x"}}, format="json")
    assert response.status_code == 409 and "no champion" in response.json()["model"][0]


def _with_challenger(project, owner, percent, shadow=False):
    challenger = train_head(project)
    ModelVersion.objects.filter(id=challenger.id).update(hyperparameters={"c": 0.01})
    promotion.version_set_challenger(version=challenger, user=owner, reason="try it")
    ServingPolicy.objects.update_or_create(project=project, defaults={"challenger_percent": percent, "shadow": shadow})
    serving.forget_aliases()
    return challenger


def test_the_challenger_gets_its_share_of_callers_and_each_caller_stays_on_one_side(served_project, token_client, owner):
    _with_challenger(served_project, owner, percent=30)
    client = token_client(served_project, ["predict"])
    items = [{"data": {"text": "lost card"}, "key": f"user-{i}"} for i in range(200)]
    first = client.post(URL.format(served_project.id), {"items": items}, format="json").json()["predictions"]
    again = client.post(URL.format(served_project.id), {"items": items}, format="json").json()["predictions"]
    assert [a["model_version"] for a in first] == [a["model_version"] for a in again]
    share = sum(a["served_as"] == "challenger" for a in first) / len(first)
    assert 0.2 < share < 0.4
    assert {a["model_version"] for a in first if a["served_as"] == "challenger"} == {2}


def test_shadow_mode_scores_with_the_challenger_without_returning_it(served_project, token_client, owner):
    _with_challenger(served_project, owner, percent=0, shadow=True)
    client = token_client(served_project, ["predict"])
    answer = client.post(URL.format(served_project.id), {"data": {"text": "lost card"}, "key": "u1"}, format="json").json()
    assert answer["served_as"] == "champion" and answer["model_version"] == 1
    shadow = Prediction.objects.get(served_as="shadow")
    assert shadow.version.number == 2 and shadow.caller_key == "u1" and str(shadow.id) != answer["prediction_id"]


def test_a_new_champion_is_served_without_a_restart(served_project, token_client, owner):
    client = token_client(served_project, ["predict"])
    assert client.post(URL.format(served_project.id), {"data": {"text": "lost card"}}, format="json").json()["model_version"] == 1
    v2 = train_head(served_project)
    promotion.version_promote(version=v2, user=owner, reason="better", override=True)
    serving.forget_aliases()  # what ALIAS_TTL seconds do in a running process
    assert client.post(URL.format(served_project.id), {"data": {"text": "lost card"}}, format="json").json()["model_version"] == 2
