"""The serving loop keeps the data manager's columns of the items it makes or labels: where the item
came from, the model's prediction and confidence, and the majority of trusted feedback labels."""
import pytest

from feedback.models import ServingPolicy
from feedback.review import route_pending
from labeller.item_table import items_table_filter
from labeller.models import Item, ItemSource

from .test_feedback import URL, correction, predict

pytestmark = pytest.mark.django_db


def test_an_abstaining_prediction_makes_a_prediction_item_with_the_models_answer(served_project, token_client):
    ServingPolicy.objects.update_or_create(project=served_project, defaults={"abstain_below": 0.999})
    answer = predict(served_project, token_client(served_project, ["predict"]), text="card never came", external_id="t-1")
    item = Item.objects.get(project=served_project, external_id="t-1")
    assert item.source == ItemSource.PREDICTION and item.search_text == "card never came"
    assert item.predicted == answer["label"] and item.confidence == pytest.approx(answer["confidence"])
    assert list(items_table_filter(project=served_project, filters={"source": "prediction", "q": "came"})) == [item]


def test_trusted_feedback_makes_a_feedback_item_with_its_majority_and_the_prediction(served_project, token_client):
    trusted = token_client(served_project, ["predict", "feedback"], trusted=True, name="support agents")
    answer = predict(served_project, trusted, text="where is the card you sent me")
    trusted.post(URL.format(served_project.id), correction(answer["prediction_id"], "card_arrival"), format="json")
    route_pending(project_id=served_project.id)
    item = Item.objects.get(project=served_project, source=ItemSource.FEEDBACK)
    assert (item.majority, item.agreement) == ("card_arrival", 1.0) and item.labelled_at is not None
    assert item.predicted == answer["label"] and item.search_text == "where is the card you sent me"
