"""ONNX Runtime serving gives the torch encoder's vectors (fp32), and close ones in int8."""
import numpy as np
import pytest

from ml.encoder import Encoder
from ml.onnx_serving import OnnxEncoder

TEXTS = ["lost card", "I ordered a new card two weeks ago and it still has not arrived, what can I do?",
         "exchange rate", "why was I charged twice for the same coffee this morning"]


@pytest.fixture(scope="module")
def encoder():
    return Encoder()


def test_the_onnx_graph_gives_the_torch_vectors_batched_and_alone(encoder):
    attention = encoder.model.config._attn_implementation
    onnx = OnnxEncoder(encoder.model, encoder.tokenizer, max_length=encoder.max_length)
    assert encoder.model.config._attn_implementation == attention  # traced eager, then put back
    expected = encoder.encode(TEXTS)
    for batch_size in (1, 3, 64):  # alone, a ragged padded batch, one batch
        got = onnx.encode(TEXTS, batch_size=batch_size)
        assert got.shape == expected.shape
        assert np.allclose(got, expected, atol=2e-4)


def test_int8_vectors_stay_close(encoder):
    onnx = OnnxEncoder(encoder.model, encoder.tokenizer, max_length=encoder.max_length, int8=True)
    cosines = (onnx.encode(TEXTS) * encoder.encode(TEXTS)).sum(axis=1)
    assert cosines.min() > 0.85 and cosines.mean() > 0.9


class RecordingTokenizer:
    """The encoder's own tokenizer, noting the longest text it was handed."""

    def __init__(self, tokenizer):
        self.tokenizer, self.longest = tokenizer, 0

    def __call__(self, texts, **kwargs):
        self.longest = max([self.longest, *map(len, texts)])
        return self.tokenizer(texts, **kwargs)


def test_a_16_mib_text_reaches_the_tokenizer_cut_to_the_character_cap_with_the_same_vector(encoder, monkeypatch):
    monkeypatch.setenv("LABELLOOP_MODEL_MAX_CHARS", "4000")
    huge = ("my card never arrived and the exchange rate was wrong " * 320_000)[: 16 * 1024 * 1024]
    real = encoder.tokenizer
    onnx = OnnxEncoder(encoder.model, real, max_length=encoder.max_length)
    try:
        encoder.tokenizer = onnx.tokenizer = RecordingTokenizer(real)
        vector = encoder.encode([huge])
        served = onnx.encode([huge])
        assert encoder.tokenizer.longest <= 4000
    finally:
        encoder.tokenizer = real
    # 128 tokens of this text are a few hundred characters: the cut changes nothing the model sees.
    assert np.allclose(vector, encoder.encode([huge[:1000]]), atol=1e-6)
    assert np.allclose(served, vector, atol=2e-4)


def test_the_hidden_state_graph_gives_span_versions_the_torch_word_vectors(encoder):
    from ml.token_model import encode_words

    texts = ["👩\u200d👩\u200d👧 Barack Obama visited London", "Theresa May met Donald Trump in Washington today", "ok"]
    onnx = OnnxEncoder(encoder.model, encoder.tokenizer, max_length=encoder.max_length, hidden=True)
    by_torch = encode_words(encoder, texts, batch_size=2, dtype=np.float32)
    by_onnx = encode_words(encoder, texts, batch_size=2, dtype=np.float32, hidden_states=onnx.hidden_states)
    assert np.array_equal(by_torch.starts, by_onnx.starts)
    assert np.allclose(by_torch.vectors, by_onnx.vectors, atol=1e-4)
    assert np.allclose(by_torch.sentences, by_onnx.sentences, atol=1e-5)
    assert np.allclose(by_torch.sentences, encoder.encode(texts), atol=1e-5)  # the stored sentence vectors


def test_a_fine_tuned_tagger_served_through_the_onnx_encoder_gives_the_torch_tag_probabilities():
    from ml import token_finetune
    from ml.encoder import default_model_path

    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    tagger = token_finetune.load_base(default_model_path(), tags, max_length=64)  # classifier as initialised
    texts = TEXTS + ["Anna flew to 東京 with 👩\u200d👩\u200d👧 today", ""]
    expected = tagger.word_probabilities(texts, batch_size=3)
    onnx = OnnxEncoder(tagger.model.base_model, tagger.tokenizer, max_length=tagger.max_length, hidden=True)
    tagger.serve_with(onnx.hidden_states)
    got = tagger.word_probabilities(texts, batch_size=3)
    assert [p.shape for p in got] == [p.shape for p in expected]
    assert all(np.allclose(g, e, atol=1e-4) for g, e in zip(got, expected))
    assert tagger.predict(texts) == [token_finetune.tm.decode(p, token_finetune.tm.words_of(t), tags, text=t)
                                     for p, t in zip(got, texts)]
