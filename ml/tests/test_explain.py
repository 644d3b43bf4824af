"""Word occlusion explains a suggestion by the words that pushed it, and reads at most
LABELLOOP_MODEL_MAX_CHARS of an item's text however long the item is."""
import numpy as np

from ml import encoder as encoder_module
from ml.explain import nearest, word_occlusion

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


def every_word_counts(texts):
    """A stand-in encoder under which every word, stop-words included, moves the prediction:
    the reason the screen showed 'bank my did Why' for a question about a card payment."""
    weights = {"why": 3.0, "did": 2.5, "my": 2.0, "bank": 1.5, "charge": 1.0, "me": 2.2, "twice": 0.8}
    return np.array([[sum(weights.get(w.lower(), 0.0) for w in t.split()), 11.5] for t in texts])


def test_occlusion_leaves_out_stop_words_and_names_the_content_words():
    words = word_occlusion("Why did my bank charge me twice", 0, encode=every_word_counts, predict_proba=probabilities)
    assert [w["word"] for w in words] == ["bank", "charge", "twice"]


def test_a_text_of_stop_words_alone_has_no_words_to_show():
    assert word_occlusion("why did my", 0, encode=every_word_counts, predict_proba=probabilities) == []


def test_a_language_the_stop_word_list_does_not_know_is_explained_word_by_word():
    # No English stop-words to drop: every word is a candidate, as before.
    words = word_occlusion("Warum kam meine card nicht", 0, encode=bag_of_words, predict_proba=probabilities)
    assert [w["word"] for w in words] == ["card"]


def test_a_word_that_barely_moves_the_probability_is_not_shown():
    def faint(texts):
        return np.array([[5.0 + 0.001 * t.count("parcel"), 0.0] for t in texts])
    assert word_occlusion("parcel", 0, encode=faint, predict_proba=probabilities) == []


def test_nearest_gives_each_row_its_most_similar_labelled_items_most_similar_first():
    labelled = np.array([[1.0, 0, 0], [0.8, 0.6, 0], [0, 1.0, 0], [0, 0, 1.0]], dtype=np.float32)
    queries = np.array([[1.0, 0, 0], [0, 0.6, 0.8]], dtype=np.float32)
    first, second = nearest(queries, labelled, k=2)
    assert [i for i, _ in first] == [0, 1] and first[0][1] == 1.0
    assert [i for i, _ in second] == [3, 2] and second[0][1] > second[1][1]
    assert nearest(queries, np.zeros((0, 3), dtype=np.float32)) == [[], []]
