"""The span labelling screen in a real browser (headless Chromium through Playwright).

The offsets helper first, on its own: the browser's strings are UTF-16, the server's offsets are
code points, and label_spans.js converts between them in one place. Then an expert labels a text
with emoji (a ZWJ family among them), CJK, combining marks and a right-to-left word, two entities
by keyboard and one with the mouse; what is stored slices the original text exactly to them.

With LABELLOOP_SCREENSHOT_DIR set, the run saves the screen there (docs/span_labelling.png is made
this way)."""
import os
from pathlib import Path

import pytest

from .test_browser import chromium  # noqa: F401

pytestmark = [pytest.mark.browser]

SCRIPT = Path(__file__).resolve().parents[1] / "static" / "frontend" / "label_spans.js"
# A family (five code points joined by ZWJ, eight UTF-16 units), a flag (two regional
# indicators), CJK, "é" as e + combining acute, Hebrew (right to left), an astral CJK ideograph.
TEXT = "Hi 👩‍👩‍👧 Anna Smith 🇫🇷 visited 東京 with Zoé and שלום from 𠮷野家!"


@pytest.fixture
def helpers(chromium):  # noqa: F811
    """A blank tab with label_spans.js loaded for its helpers alone (no screen on the page)."""
    tab = chromium.new_page()
    tab.add_script_tag(path=str(SCRIPT))
    yield tab
    tab.close()


def test_offsets_convert_utf16_to_code_points_and_back_for_every_code_point(helpers):
    text = TEXT.replace("Zoé", "Zoe\u0301")
    points = list(text)  # Python strings are code points
    result = helpers.evaluate("""(text) => {
        const o = LabelloopSpans.offsetsOf(text);
        const back = [];
        for (let c = 0; c <= o.length; c += 1) back.push(o.toCodePoints(o.toUtf16(c)));
        return {length: o.length, utf16: text.length, back,
                utf16Of: [...Array(o.length + 1).keys()].map((c) => o.toUtf16(c))};
    }""", text)
    assert result["length"] == len(points)
    assert result["utf16"] == len(text.encode("utf-16-le")) // 2
    assert result["back"] == list(range(len(points) + 1))
    # The UTF-16 index of each code point is the UTF-16 length of the text before it.
    assert result["utf16Of"] == [len(text[:c].encode("utf-16-le")) // 2 for c in range(len(points) + 1)]


def test_an_offset_inside_a_surrogate_pair_counts_as_its_code_point_and_one_past_the_end_is_refused(helpers):
    result = helpers.evaluate("""() => {
        const o = LabelloopSpans.offsetsOf("a😀b");
        let refused = "";
        try { o.toUtf16(4); } catch (err) { refused = err.message; }
        return {inside: o.toCodePoints(2), after: o.toCodePoints(3), end: o.toCodePoints(4), refused};
    }""")
    assert result == {"inside": 1, "after": 2, "end": 3, "refused": "code point offset 4 outside the text"}


def test_tokens_keep_words_whole_and_each_emoji_sequence_or_punctuation_mark_on_its_own(helpers):
    text = "Hi @anna! 👩‍👩‍👧 don't visit 東京 #paris 3.5 Zoe\u0301 שלום 🇫🇷"
    tokens = helpers.evaluate("(text) => LabelloopSpans.tokensOf(text).map((t) => text.slice(t.start, t.end))", text)
    for token in ["Hi", "@", "anna", "!", "👩‍👩‍👧", "don't", "東京", "#", "paris", "3.5", "Zoe\u0301", "שלום", "🇫🇷"]:
        assert token in tokens, (token, tokens)
    assert "".join(tokens) == "".join(text.split())  # nothing but the spaces left out


def test_the_boundaries_a_selection_may_stop_at_never_split_a_grapheme(helpers):
    text = "a👩‍👩‍👧e\u0301"
    bounds = helpers.evaluate("(text) => [...LabelloopSpans.boundariesOf(text)].sort((a, b) => a - b)", text)
    assert bounds == [0, 1, 9, 11]
