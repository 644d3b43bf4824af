"""Word occlusion explains a suggestion by the words that pushed it, and reads at most
LABELLOOP_MODEL_MAX_CHARS of an item's text however long the item is."""
import numpy as np

from ml import encoder as encoder_module
from ml.explain import word_occlusion

HUGE = 16 * 1024 * 1024


def bag_of_words(texts):
    """A tiny stand-in for the encoder: 'card' and 'rate' counts (the head below reads them)."""
    return np.array([[t.count("card"), t.count("rate")] for t in texts], dtype=float)


def probabilities(vectors):
    card = 1 / (1 + np.exp(-(vectors[:, 0] - vectors[:, 1])))
    return np.stack([card, 1 - card], axis=1)


def test_occlusion_names_the_word_that_pushed_the_suggestion():
    words = word_occlusion("where is my card", 0, encode=bag_of_words, predict_proba=probabilities)
    assert [w["word"] for w in words] == ["card"]


def test_occlusion_of_a_16_mib_text_reads_at_most_the_character_cap_and_the_word_cap(monkeypatch):
    monkeypatch.setenv("LABELLOOP_MODEL_MAX_CHARS", "5000")
    seen = []

    def recording(texts):
        seen.append([len(t) for t in texts])
        return bag_of_words(texts)

    text = ("my card never arrived " * (HUGE // 22 + 1))[:HUGE]
    word_occlusion(text, 0, encode=recording, predict_proba=probabilities, max_words=40)
    assert len(seen) == 1 and len(seen[0]) <= 41  # the text and one variant per occluded word
    assert max(seen[0]) <= 5000


def test_the_character_cap_has_a_default_and_reads_the_environment(monkeypatch):
    monkeypatch.delenv("LABELLOOP_MODEL_MAX_CHARS", raising=False)
    assert encoder_module.model_max_chars() == encoder_module.DEFAULT_MAX_CHARS
    monkeypatch.setenv("LABELLOOP_MODEL_MAX_CHARS", "123")
    assert encoder_module.model_max_chars() == 123
    assert encoder_module.clip_texts(["x" * 500, "short"]) == ["x" * 123, "short"]
