"""Serving a span project's head version: spans in code points with their text and confidence,
whatever emoji precede them, and the text's confidence."""
import pytest

from models_registry import serving
from models_registry.span_serving import SpanPredictor

pytestmark = pytest.mark.django_db

FAMILY = "👩\u200d👩\u200d👧"


def test_a_span_version_answers_spans_that_slice_the_text_exactly(btc_head_version):
    predictor = serving.predictor_for(btc_head_version)
    assert isinstance(predictor, SpanPredictor)
    texts = [f"{FAMILY} Barack Obama visited London with Michelle Obama 🇬🇧 today",
             "Donald Trump met Theresa May in Washington",
             "no entities here at all ..."]
    decisions = serving.answers(predictor, texts, top_k=3)
    assert len(decisions) == 3
    found = [span for decision in decisions for span in decision.labels]
    assert found, "a head fitted on 200 tweets finds some of these names"
    for text, decision in zip(texts, decisions):
        assert 0 <= decision.confidence <= 1 and decision.top == []
        for span in decision.labels:
            assert text[span["start"]:span["end"]] == span["text"]
            assert span["label"] in {"PER", "ORG", "LOC"}
            assert 0 <= span["confidence"] <= 1
    # The emoji family is 5 code points: an offset counted in UTF-16 would be 3 more.
    first = [s for s in decisions[0].labels if s["text"].startswith("Barack")]
    assert not first or first[0]["start"] == len(FAMILY) + 1


def test_a_text_with_no_words_is_answered_with_no_spans(btc_head_version):
    (decision,) = serving.predictor_for(btc_head_version).decisions(["   "])
    assert decision.labels == [] and decision.confidence == 1.0
