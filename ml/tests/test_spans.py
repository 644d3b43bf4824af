"""ml.spans: offsets in code points and UTF-16, CoNLL/BIO, validation, matching and entity metrics,
on texts where code points, UTF-16 units and what a reader sees as one character all differ."""
from pathlib import Path

import pytest

from ml import spans as S

FAMILY = "👩\u200d👩\u200d👧"  # one glyph, 5 code points, 8 UTF-16 units
COMBINING = "Jose\u0301"  # "José" with a combining accent: 5 code points
TEXTS = {
    "emoji": f"Met {FAMILY} and 😀 Ana at #Lisboa @ACME",
    "cjk": "东京タワーで田中さんに会った",
    "combining": f"{COMBINING} lives in Mu\u0308nchen",
    "arabic": "زار محمد القاهرة أمس",
    "hebrew": "דוד גר בירושלים",
}
BTC = Path(__file__).resolve().parents[2] / "datasets" / "btc" / "btc.dev.conll"


def span_at(text, piece, label, nth=0):
    start = -1
    for _ in range(nth + 1):
        start = text.index(piece, start + 1)
    return {"start": start, "end": start + len(piece), "label": label}


# --- code points and UTF-16 ---------------------------------------------------------------------

def test_utf16_offsets_count_astral_characters_twice_and_convert_back():
    text = TEXTS["emoji"]
    ana = span_at(text, "Ana", "PER")
    # "Met " (4) + family (5 code points, 8 units) + " and " (5) + 😀 (1 code point, 2 units) + " "
    assert ana["start"] == 16 and S.cp_to_utf16(text, 16) == 16 + 3 + 1
    for offset in range(len(text) + 1):
        assert S.utf16_to_cp(text, S.cp_to_utf16(text, offset)) == offset
    assert S.cp_to_utf16(text, len(text)) == len(text.encode("utf-16-le")) // 2


def test_a_utf16_offset_inside_a_surrogate_pair_or_past_the_end_is_refused():
    text = "a😀b"
    assert [S.utf16_to_cp(text, u) for u in (0, 1, 3, 4)] == [0, 1, 2, 3]
    with pytest.raises(S.SpanError, match="falls inside the character at code point 1"):
        S.utf16_to_cp(text, 2)
    with pytest.raises(S.SpanError, match="outside the text"):
        S.utf16_to_cp(text, 5)


def test_bmp_only_texts_have_the_same_offsets_in_both_counts():
    for key in ("cjk", "combining", "arabic", "hebrew"):
        text = TEXTS[key]
        assert [S.cp_to_utf16(text, i) for i in range(len(text) + 1)] == list(range(len(text) + 1))


def test_spans_convert_to_utf16_and_back_unchanged():
    text = TEXTS["emoji"]
    spans = [span_at(text, FAMILY, "MISC"), span_at(text, "Ana", "PER"), span_at(text, "@ACME", "ORG")]
    utf16 = S.spans_to_utf16(text, spans)
    assert [s["start"] for s in utf16] == [4, 20, 35]
    assert S.spans_from_utf16(text, utf16) == spans
    # What JavaScript would slice with the UTF-16 offsets is the same text.
    units = text.encode("utf-16-le")
    assert units[utf16[1]["start"] * 2:utf16[1]["end"] * 2].decode("utf-16-le") == "Ana"


# --- validation ---------------------------------------------------------------------------------

@pytest.mark.parametrize("key", sorted(TEXTS))
def test_valid_spans_come_back_sorted_without_their_text_and_slice_to_it(key):
    text = TEXTS[key]
    pieces = {"emoji": [FAMILY, "Ana"], "cjk": ["東京", "田中"], "combining": [COMBINING, "Mu\u0308nchen"],
              "arabic": ["محمد", "القاهرة"], "hebrew": ["דוד", "בירושלים"]}[key]
    pieces = [p if p in text else p.replace("東", "东") for p in pieces]
    wanted = [span_at(text, piece, "X") for piece in pieces]
    given = [{**span, "text": text[span["start"]:span["end"]]} for span in reversed(wanted)]
    assert S.check_spans(given, text) == wanted
    assert [w["text"] for w in S.with_text(text, wanted)] == pieces


def test_a_span_must_lie_inside_the_text_and_start_before_it_ends():
    text = "Ana in Lisboa"
    with pytest.raises(S.SpanError) as error:
        S.check_spans([{"start": 7, "end": 20, "label": "LOC"}], text)
    assert error.value.field == "spans[0]" and "outside the text (0 to 13 code points)" in error.value.message
    with pytest.raises(S.SpanError, match="start 3 must be before end 3"):
        S.check_spans([{"start": 0, "end": 3, "label": "PER"}, {"start": 3, "end": 3, "label": "PER"}], text)
    with pytest.raises(S.SpanError, match="outside"):
        S.check_spans([{"start": -1, "end": 3, "label": "PER"}], text)


def test_offsets_must_be_whole_numbers_and_labels_known():
    text = "Ana in Lisboa"
    for bad, field in (({"start": "0", "end": 3, "label": "PER"}, "spans[0].start"),
                       ({"start": 0, "end": 3.0, "label": "PER"}, "spans[0].end"),
                       ({"start": True, "end": 3, "label": "PER"}, "spans[0].start"),
                       ({"start": 0, "end": 3}, "spans[0].label"),
                       ({"start": 0, "end": 3, "label": ""}, "spans[0].label")):
        with pytest.raises(S.SpanError) as error:
            S.check_spans([bad], text)
        assert error.value.field == field
    with pytest.raises(S.SpanError, match="unknown label 'GPE'"):
        S.check_spans([{"start": 7, "end": 13, "label": "GPE"}], text, labels={"PER", "LOC"})
    with pytest.raises(S.SpanError, match="must be a list"):
        S.check_spans({"start": 0}, text)


def test_a_given_text_must_equal_the_slice_an_emoji_shifted_offset_is_caught():
    text = TEXTS["emoji"]
    ana = span_at(text, "Ana", "PER")
    # A UTF-16 offset taken for a code point one: off by the astral characters before it.
    shifted = {**ana, "start": S.cp_to_utf16(text, ana["start"]), "end": S.cp_to_utf16(text, ana["end"]), "text": "Ana"}
    with pytest.raises(S.SpanError) as error:
        S.check_spans([shifted], text)
    assert error.value.field == "spans[0].text" and "'Ana' does not match" in error.value.message


def test_overlapping_spans_are_refused_unless_allowed_touching_ones_are_fine():
    text = "Bank of New York Mellon"
    org = {"start": 0, "end": 23, "label": "ORG"}
    loc = {"start": 8, "end": 16, "label": "LOC"}
    with pytest.raises(S.SpanError, match="overlap, and this project does not allow"):
        S.check_spans([org, loc], text)
    assert S.check_spans([loc, org], text, overlap=True) == [org, loc]
    assert S.check_spans([{"start": 0, "end": 4, "label": "X"}, {"start": 4, "end": 7, "label": "X"}], text)
    # The same span twice is one span, not an overlap.
    assert S.check_spans([loc, dict(loc)], text) == [loc]


# --- CoNLL / BIO --------------------------------------------------------------------------------

def test_conll_rebuilds_the_text_with_single_spaces_and_each_tokens_offsets():
    lines = ["RT\tO", "@\tB-ORG", "SportsCenter\tB-ORG", "Allen\tB-PER", "Iverson\tI-PER", "'s\tO", "", f"{FAMILY}\tO",
             "Lisboa\tB-LOC", ""]
    first, second = S.read_conll(lines)
    assert first.text == "RT @ SportsCenter Allen Iverson 's"
    assert first.tokens[2] == (5, 17)
    assert S.with_text(first.text, first.spans) == [
        {"start": 3, "end": 4, "label": "ORG", "text": "@"},
        {"start": 5, "end": 17, "label": "ORG", "text": "SportsCenter"},
        {"start": 18, "end": 31, "label": "PER", "text": "Allen Iverson"},
    ]
    assert second.line == 8 and second.text == f"{FAMILY} Lisboa"
    assert S.with_text(second.text, second.spans) == [{"start": 6, "end": 12, "label": "LOC", "text": "Lisboa"}]


def test_an_inside_tag_without_its_beginning_starts_a_span_as_conlleval_reads_it():
    text, offsets = S.join_tokens(["in", "New", "York", "City"])
    assert S.bio_to_spans(offsets, ["O", "I-LOC", "I-LOC", "I-ORG"]) == [
        {"start": 3, "end": 11, "label": "LOC"}, {"start": 12, "end": 16, "label": "ORG"}]


def test_a_bad_conll_line_is_reported_by_its_number():
    with pytest.raises(S.SpanError) as error:
        S.read_conll(["Ana\tB-PER", "Lisboa\tLOC"])
    assert error.value.field == "line 2" and "'LOC' is not O, B-<label> or I-<label>" in error.value.message
    with pytest.raises(S.SpanError, match="expected a token and its tag"):
        S.read_conll(["Ana"])


def test_btcs_empty_and_space_padded_tokens_are_read_as_the_text_has_them():
    first, = S.read_conll(["I\tO", "\tO", "💖 \tO", "Paris\tB-LOC"])
    assert first.text == "I 💖 Paris" and first.spans == [{"start": 4, "end": 9, "label": "LOC"}]
    with pytest.raises(S.SpanError, match="an empty token is tagged B-LOC"):
        S.read_conll([" \tB-LOC"])


# dev has 1,001 tweets, one of them a lone empty token: no text, so no document.
@pytest.mark.parametrize("split, texts, entities", [("dev", 1000, 1730), ("test", 2001, 4376)])
def test_spans_write_back_to_bio_and_read_back_identically_on_btc(split, texts, entities):
    documents = S.read_conll((BTC.parent / f"btc.{split}.conll").read_text(encoding="utf-8").splitlines())
    assert len(documents) == texts
    written = []
    for doc in documents:
        tokens, tags, left_out = S.spans_to_bio(doc.text, doc.spans)
        assert left_out == []
        written.append((tokens, tags))
    again = S.read_conll(S.write_conll(written).splitlines())
    assert [(d.text, d.spans) for d in again] == [(d.text, d.spans) for d in documents]
    # One span per B- tag (the README's count); BTC has no I- without its B-.
    assert sum(len(d.spans) for d in documents) == entities


def test_a_span_not_on_token_boundaries_is_reported_not_shifted():
    text = "Visit #Lisboa now"
    inside = {"start": 7, "end": 13, "label": "LOC"}  # "Lisboa" without the '#'
    tokens, tags, left_out = S.spans_to_bio(text, [inside, {"start": 14, "end": 17, "label": "TIME"}])
    assert tokens == ["Visit", "#Lisboa", "now"] and tags == ["O", "O", "B-TIME"] and left_out == [inside]


def test_overlapping_spans_bio_cannot_hold_are_reported():
    text = "Bank of New York"
    org, loc = {"start": 0, "end": 16, "label": "ORG"}, {"start": 8, "end": 16, "label": "LOC"}
    _, tags, left_out = S.spans_to_bio(text, [org, loc])
    assert tags == ["B-ORG", "I-ORG", "I-ORG", "I-ORG"] and left_out == [loc]


# --- matching and metrics -----------------------------------------------------------------------

def test_exact_matching_needs_the_same_start_end_and_label():
    a = [{"start": 0, "end": 5, "label": "PER"}, {"start": 10, "end": 15, "label": "LOC"}]
    b = [{"start": 0, "end": 5, "label": "PER"}, {"start": 10, "end": 16, "label": "LOC"}]
    assert S.match_count(a, b) == 1
    assert S.pair_f1(a, b) == 0.5 and S.pair_f1([], []) == 1.0 and S.pair_f1(a, []) == 0.0
    assert S.match_count(a, b, mode="overlap") == 2


def test_overlap_matching_pairs_spans_one_to_one():
    long = [{"start": 0, "end": 20, "label": "ORG"}]
    short = [{"start": 0, "end": 4, "label": "ORG"}, {"start": 8, "end": 20, "label": "ORG"}]
    assert S.match_count(long, short, mode="overlap") == 1 and S.match_count(short, long, mode="overlap") == 1
    assert S.pair_f1(long, short, mode="overlap") == pytest.approx(2 / 3)
    assert S.match_count(long, [{"start": 0, "end": 4, "label": "PER"}], mode="overlap") == 0
    with pytest.raises(ValueError, match="unknown match mode"):
        S.match_count(long, short, mode="fuzzy")


def test_entity_scores_are_seqeval_strict_per_type_and_micro():
    gold = [[{"start": 0, "end": 5, "label": "PER"}, {"start": 9, "end": 15, "label": "LOC"}],
            [{"start": 0, "end": 3, "label": "ORG"}]]
    pred = [[{"start": 0, "end": 5, "label": "PER"}, {"start": 9, "end": 14, "label": "LOC"}],
            [{"start": 0, "end": 3, "label": "ORG"}, {"start": 4, "end": 6, "label": "PER"}]]
    scores = S.entity_scores(gold, pred)
    assert scores["per_label"]["PER"] == {"precision": 0.5, "recall": 1.0, "f1": 0.6667, "support": 1}
    assert scores["per_label"]["LOC"]["f1"] == 0.0 and scores["per_label"]["ORG"]["f1"] == 1.0
    assert scores["micro"] == {"precision": 0.5, "recall": 0.6667, "f1": 0.5714, "support": 3}
    assert S.entity_scores(gold, pred, mode="overlap")["per_label"]["LOC"]["f1"] == 1.0


def test_js_offsets_are_read_as_utf16_unless_the_span_text_says_code_points():
    text = TEXTS["emoji"]
    ana = span_at(text, "Ana", "PER")
    utf16 = {**ana, "start": S.cp_to_utf16(text, ana["start"]), "end": S.cp_to_utf16(text, ana["end"])}
    assert S.from_js_offsets(text, {**utf16, "text": "Ana"}) == {**ana, "text": "Ana"}
    assert S.from_js_offsets(text, utf16) == ana  # no text: UTF-16, as JavaScript counts
    assert S.from_js_offsets(text, {**ana, "text": "Ana"}) == {**ana, "text": "Ana"}  # code points that fit
    wrong = {**ana, "text": "Bob"}
    assert S.from_js_offsets(text, wrong) == wrong  # neither fits: left for check_spans to report
    assert S.from_js_offsets(text, {"start": "1", "end": 2}) == {"start": "1", "end": 2}


def test_reading_conll_goes_on_after_a_bad_document():
    lines = ["Ana\tB-PER", "", "Lisboa\tLOC", "is\tO", "", "Porto\tB-LOC"]
    first, bad, third = S.iter_conll(lines)
    assert first.text == "Ana" and isinstance(bad, S.SpanError) and bad.field == "line 3"
    assert third.spans == [{"start": 0, "end": 5, "label": "LOC"}] and third.line == 6
