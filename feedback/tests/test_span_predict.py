"""The predict API on a span project: each item's spans in code points with their text, label and
confidence, the text's confidence, abstention to the experts' queue, the champion/challenger split
and shadow mode, and callers who may not ask or ask wrongly."""
import pytest

from feedback.models import Prediction, ServingPolicy
from labeller.models import Item
from models_registry import promotion, serving
from models_registry.models import ModelVersion

pytestmark = pytest.mark.django_db
URL = "/api/projects/{}/predict"
FAMILY = "👩\u200d👩\u200d👧"
TEXTS = [f"{FAMILY} Barack Obama visited London with Michelle Obama today",
         "Donald Trump met Theresa May in Washington",
         "no entities here at all ..."]


@pytest.fixture
def served_spans(btc_project, btc_head_version, owner):
    promotion.version_promote(version=btc_head_version, user=owner, reason="first span model", override=True)
    serving.forget_aliases()
    return btc_project


def _second_version(version):
    """Another ready version of the same project over the same stored head (a challenger)."""
    return ModelVersion.objects.create(project=version.project, number=2, kind=version.kind, base_model=version.base_model,
                                       status=version.status, artefact_path=version.artefact_path,
                                       checksum=version.checksum)


def _post(client, project, body):
    return client.post(URL.format(project.id), body, format="json")


def test_a_span_project_answers_each_items_spans_in_code_points_with_text_and_confidence(served_spans, token_client):
    client = token_client(served_spans, ["predict"])
    response = _post(client, served_spans, {"items": [{"data": {"text": t}, "external_id": f"t{i}"} for i, t in enumerate(TEXTS)]})
    assert response.status_code == 200, response.content
    answers = response.json()["predictions"]
    assert [a["external_id"] for a in answers] == ["t0", "t1", "t2"]
    assert any(a["spans"] for a in answers), "a head fitted on 200 tweets finds some of these names"
    for text, answer in zip(TEXTS, answers):
        assert set(answer) == {"prediction_id", "spans", "confidence", "abstain", "out_of_scope", "model_version", "served_as",
                               "external_id"}
        assert answer["out_of_scope"] is False
        assert 0 <= answer["confidence"] <= 1 and answer["model_version"] == 1 and answer["served_as"] == "champion"
        for span in answer["spans"]:
            assert set(span) == {"start", "end", "label", "text", "confidence"}
            assert text[span["start"]:span["end"]] == span["text"] and span["label"] in {"PER", "ORG", "LOC"}
        logged = Prediction.objects.get(id=answer["prediction_id"])
        assert logged.labels == answer["spans"] and logged.confidence == answer["confidence"] and logged.top == []
    barack = [s for s in answers[0]["spans"] if s["text"].startswith("Barack")]
    assert not barack or barack[0]["start"] == len(FAMILY) + 1  # code points, not UTF-16 units


def test_an_unsure_span_answer_abstains_and_the_item_shows_its_entity_types_in_the_data_manager(served_spans, token_client):
    ServingPolicy.objects.update_or_create(project=served_spans, defaults={"abstain_below": 1.01})
    client = token_client(served_spans, ["predict"])
    response = _post(client, served_spans, {"data": {"text": TEXTS[1]}, "external_id": "tweet-9"})
    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["abstain"] is True
    item = Item.objects.get(project=served_spans, external_id="tweet-9")
    assert not item.is_done and item.data == {"text": TEXTS[1]}
    assert Prediction.objects.get(id=answer["prediction_id"]).item == item
    assert item.predicted == "|".join(sorted({s["label"] for s in answer["spans"]}))
    assert item.confidence == answer["confidence"]


def test_a_sure_span_answer_does_not_abstain(served_spans, token_client):
    ServingPolicy.objects.update_or_create(project=served_spans, defaults={"abstain_below": 0.0})
    client = token_client(served_spans, ["predict"])
    answer = _post(client, served_spans, {"data": {"text": TEXTS[0]}, "external_id": "tweet-1"}).json()
    assert answer["abstain"] is False
    assert not Item.objects.filter(project=served_spans, external_id="tweet-1").exists()


def test_the_challenger_split_and_shadow_serve_span_versions_too(served_spans, btc_head_version, token_client, owner):
    challenger = _second_version(btc_head_version)
    promotion.version_set_challenger(version=challenger, user=owner, reason="try it")
    ServingPolicy.objects.update_or_create(project=served_spans, defaults={"challenger_percent": 50, "shadow": True})
    serving.forget_aliases()
    client = token_client(served_spans, ["predict"])
    body = {"items": [{"data": {"text": TEXTS[i % 3]}, "key": f"user-{i}"} for i in range(20)]}
    first = _post(client, served_spans, body).json()["predictions"]
    again = _post(client, served_spans, body).json()["predictions"]
    assert {a["served_as"] for a in first} == {"champion", "challenger"}
    assert [a["served_as"] for a in first] == [a["served_as"] for a in again]  # sticky per key
    assert {a["model_version"] for a in first if a["served_as"] == "challenger"} == {2}
    shadows = Prediction.objects.filter(project=served_spans, served_as="shadow")
    assert shadows.count() == 2 * sum(a["served_as"] == "champion" for a in first)
    assert all(isinstance(row.labels, list) and row.top == [] for row in shadows)


def test_an_outsider_cannot_predict_on_a_span_project(served_spans, token_client, client_for, outsider, make_project):
    other = make_project(name="someone else's")
    assert _post(token_client(other, ["predict"]), served_spans, {"data": {"text": TEXTS[0]}}).status_code == 404
    assert _post(client_for(outsider), served_spans, {"data": {"text": TEXTS[0]}}).status_code == 404
    assert _post(token_client(served_spans, ["feedback"]), served_spans, {"data": {"text": TEXTS[0]}}).status_code == 403
    assert not Prediction.objects.exists()


@pytest.mark.parametrize("body, field", [
    ({"data": {"text": "  "}}, "data.text"),
    ({"data": {"txt": "Obama"}}, "data.text"),
    ({"items": [{"data": {"text": "Obama"}}, {"data": {"text": 3}}]}, "items[1].data.text"),
    ({"items": [{"data": {"text": "Obama"}, "spans": []}]}, "items[0].spans"),
])
def test_bad_input_on_a_span_project_is_refused_naming_the_field(served_spans, token_client, body, field):
    response = _post(token_client(served_spans, ["predict"]), served_spans, body)
    assert response.status_code == 422 and field in response.json(), response.content
    assert not Prediction.objects.exists()


def test_the_openapi_schema_describes_a_span_projects_answer(client_for, owner):
    schema = client_for(owner).get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    answer = schema["components"]["schemas"]["SpanPrediction"]["properties"]
    assert {"prediction_id", "spans", "confidence", "abstain", "model_version", "served_as"} <= set(answer)
    span = schema["components"]["schemas"]["PredictedSpan"]["properties"]
    assert set(span) == {"start", "end", "label", "text", "confidence"}
    one_of = schema["components"]["schemas"]["PredictAnswer"]["oneOf"]
    assert {"$ref": "#/components/schemas/SpanPrediction"} in one_of
    event = schema["components"]["schemas"]["FeedbackEventRequest"]["properties"]
    assert {"spans", "span"} <= set(event) and "span_wrong" in schema["components"]["schemas"]["FeedbackEventKindEnum"]["enum"]
