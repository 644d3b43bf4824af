"""Casing for the fine-tuned tagger: the base encoder is uncased, so "Rose" and "rose" reach it as
the same ids; with `casing` on, each sub-token's token type is its word's casing, the model
starts from the base model's answers exactly, learns to tell the two apart, and keeps doing so
after it is saved, loaded and served through ONNX Runtime."""
import re

import numpy as np
import pytest

from ml import token_finetune as tf
from ml import token_model as tm
from ml.encoder import default_model_path
from ml.onnx_serving import OnnxEncoder

TAGS = tm.tag_set(["PER"])


@pytest.mark.parametrize("word, expected", [
    ("apple", tm.LOWER), ("2024", tm.LOWER), ("😀", tm.LOWER), ("@nasa", tm.LOWER), ("", tm.LOWER),
    ("Apple", tm.TITLE), ("#Apple", tm.TITLE), ("I", tm.TITLE), ("Émile", tm.TITLE), ("Apple's", tm.TITLE),
    ("NASA", tm.UPPER), ("#NFL", tm.UPPER), ("U.S.", tm.UPPER),
    ("iPhone", tm.MIXED), ("@BarackObama", tm.MIXED), ("McDonald", tm.MIXED),
])
def test_a_words_casing_is_read_from_its_cased_letters(word, expected):
    assert tm.casing(word) == expected


def test_every_sub_token_carries_its_words_casing_and_special_tokens_none():
    tagger = tf.load_base(default_model_path(), TAGS, max_length=64)
    text = "👩\u200d👩\u200d👧 @BarackObama met NASA in Köln today"
    (aligned,) = tm.align(tagger.tokenizer, [text])
    for token, word in enumerate(aligned.token_word):
        start, end = aligned.words[word] if word >= 0 else (0, 0)
        assert aligned.token_casing[token] == (tm.casing(text[start:end]) if word >= 0 else tm.LOWER)
    assert {tm.MIXED, tm.UPPER, tm.TITLE, tm.LOWER} <= set(aligned.token_casing)


def _named(name: str, template: str, is_name: bool) -> tuple[str, list[dict]]:
    text = template.format(name)
    start = text.index(name)
    return text, ([{"start": start, "end": start + len(name), "label": "PER"}] if is_name else [])


def _texts(names, templates):
    """Each word twice in each template: capitalised it is a name, lower-cased it is not."""
    return [_named(word, template, capital) for word in names for template in templates
            for word, capital in ((word.capitalize(), True), (word, False))]


def test_a_tagger_with_casing_starts_as_the_base_model_learns_what_only_capitals_say_and_serves_it(tmp_path):
    tagger = tf.load_base(default_model_path(), TAGS, max_length=32)
    pair = ["we met Rose at the market", "we met rose at the market"]
    before = tagger.word_probabilities(pair)
    assert np.array_equal(before[0], before[1])  # uncased: without casing the two are the same input

    assert tf.enable_casing(tagger) and tagger.model.config.type_vocab_size == tm.CASINGS
    after = tagger.word_probabilities(pair)
    assert all(np.allclose(a, b, atol=1e-6) for a, b in zip(after, before))  # every type starts as type 0

    names = ["rose", "grace", "hope", "joy", "faith", "dawn", "summer", "iris", "ivy", "robin", "daisy", "jasmine"]
    train = _texts(names[:8], ["we met {} at the market", "{} is here", "i called {} yesterday", "thanks to {} for this"])
    held_out = _texts(names[8:], ["look at {} over there", "{} was fine"])
    config = tf.TokenFineTuneConfig(epochs=4, batch_size=8, max_length=32, casing=True, head_lr=3e-3, seed=0)
    tf.fine_tune(tagger, train, [], config=config)
    scores = tf.evaluate(tagger, [t for t, _ in held_out], [s for _, s in held_out])["micro"]
    assert scores["f1"] >= 0.9, scores  # unseen words, unseen templates: the capital decides

    checksum = tf.save(tagger, tmp_path / "tagger")
    loaded = tf.load(tmp_path / "tagger", checksum)
    texts = [t for t, _ in held_out]
    assert loaded.casing and loaded.predict(texts) == tagger.predict(texts)
    expected = loaded.word_probabilities(texts)
    onnx = OnnxEncoder(loaded.model.base_model, loaded.tokenizer, max_length=loaded.max_length, hidden=True)
    loaded.serve_with(onnx.hidden_states)
    assert all(np.allclose(g, e, atol=1e-4) for g, e in zip(loaded.word_probabilities(texts), expected))


def test_the_word_head_reads_casing_so_identical_uncased_vectors_get_the_tag_their_capitals_say():
    rng = np.random.default_rng(0)
    texts = [f"{'Rose' if i % 2 else 'rose'} {'Paris' if i % 3 else 'paris'} ok" for i in range(60)]
    casings = tm.casing_features(texts)
    vectors = rng.normal(size=(len(casings), 8)).astype(np.float16)
    for i in range(0, len(vectors), 3):  # the uncased encoder's view: every text's words alike
        vectors[i:i + 3] = vectors[:3]
    tags = [tag for text in texts for tag in tm.word_tags(tm.words_of(text), [
        {"start": m.start(), "end": m.end(), "label": "PER"} for m in re.finditer(r"\bRose\b", text)])]
    head = tm.fit_word_head(vectors, tags, TAGS, casings=casings)
    assert head.coef.shape == (len(TAGS), 8 + tm.CASINGS)
    probs = tm.head_probs(head, vectors, casings)
    chosen = [TAGS[i] for i in probs.argmax(axis=1)]
    assert chosen[::3] == tags[::3] and {"B-PER", "O"} <= set(chosen)

    with pytest.raises(ValueError, match="casing"):
        tm.head_probs(head, vectors)
    without = tm.fit_word_head(vectors, tags, TAGS)  # a head stored before casing: read as it was
    assert np.array_equal(tm.head_probs(without, vectors, casings), tm.head_probs(without, vectors))
    assert tm.head_probs(head, vectors[:0], casings[:0]).shape == (0, len(TAGS))


def test_an_items_stored_words_get_one_casing_row_each_even_after_its_text_changed():
    rows = tm.stored_casings([("Apple and NASA", 3), ("Apple", 3), ("Apple and NASA", 2), (None, 0)])
    assert rows.argmax(axis=1).tolist() == [tm.TITLE, tm.LOWER, tm.UPPER] + [tm.TITLE, tm.LOWER, tm.LOWER] + [tm.TITLE, tm.LOWER]
    assert tm.stored_casings([]).shape == (0, tm.CASINGS)
