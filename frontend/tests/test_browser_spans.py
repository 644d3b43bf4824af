"""The span labelling screen in a real browser (headless Chromium through Playwright).

The offsets helper first, on its own: the browser's strings are UTF-16, the server's offsets are
code points, and label_spans.js converts between them in one place. Then an expert labels a text
with emoji (a ZWJ family among them), CJK, combining marks and a right-to-left word, two entities
by keyboard and one with the mouse; what is stored slices the original text exactly to them.

With LABELLOOP_SCREENSHOT_DIR set, the run saves the screen there (docs/span_labelling.png is made
this way)."""
import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from labeller.models import ActiveLearningState, Annotation, Item, Role
from labeller.services import annotation_submit, membership_set, project_create

from .test_browser import chromium, log_in, page  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

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


# --- the screen --------------------------------------------------------------------------------

ENTITY_LABELS = [
    {"key": "PER", "name": "Person", "shortcut": "1", "color": "#4f46e5"},
    {"key": "ORG", "name": "Organisation", "shortcut": "2", "color": "#059669"},
    {"key": "LOC", "name": "Location", "shortcut": "3", "color": "#dc2626"},
]
OTHER_TEXT = "Nothing to see here"


@pytest.fixture
def spans_project(owner, expert, add_items):
    project = project_create(user=owner, labels=ENTITY_LABELS, name="Tweets", task_type="spans")
    membership_set(project=project, user=expert, role=Role.EXPERT)
    add_items(project, [TEXT, OTHER_TEXT])
    return project


def open_screen(page, project, text=TEXT):
    log_in(page, "expert")
    page.goto(f"/projects/{project.id}/label")
    expect(page.locator("#item-text")).to_have_text(text)


def tokens(page) -> list[str]:
    return page.evaluate("(text) => LabelloopSpans.tokensOf(text).map((t) => text.slice(t.start, t.end))", TEXT)


def press(page, key: str, times: int = 1) -> None:
    for _ in range(times):
        page.keyboard.press(key)


def drag_over(page, piece_text: str, modifier: str | None = None, inset: float = 0.1) -> None:
    """Drag the mouse across the piece showing `piece_text`, from `inset` of its width inside one
    end to as far inside the other."""
    box = page.locator("#item-text .seg", has_text=piece_text).first.bounding_box()
    y = box["y"] + box["height"] / 2
    if modifier:
        page.keyboard.down(modifier)
    page.mouse.move(box["x"] + box["width"] * inset, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2, y, steps=3)
    page.mouse.move(box["x"] + box["width"] * (1 - inset), y, steps=3)
    page.mouse.up()
    if modifier:
        page.keyboard.up(modifier)


def test_an_expert_labels_entities_by_keyboard_and_mouse_and_the_stored_offsets_are_code_points(page, spans_project, expert):
    open_screen(page, spans_project)
    words = tokens(page)
    anna, tokyo = words.index("Anna"), words.index("東京")

    press(page, "ArrowRight", anna)  # the cursor starts on the first token
    press(page, "Shift+ArrowRight")
    expect(page.locator("#item-text .seg.selected")).to_have_text(["Anna", " ", "Smith"])
    press(page, "1")
    expect(page.locator("#spans li")).to_have_text(["Person “Anna Smith”"])

    press(page, "ArrowRight", tokyo - (anna + 1))
    press(page, "3")
    drag_over(page, "שלום")  # part of the word: the selection snaps to the whole token
    expect(page.locator("#status")).to_have_text("Selected “שלום”: press a label's key to tag it.")
    press(page, "1")
    expect(page.locator("#spans li")).to_have_text(["Person “Anna Smith”", "Location “東京”", "Person “שלום”"])
    expect(page.locator("#item-text .seg[data-tag]")).to_have_count(3)

    # Without overlap in this project, a span over one already there is refused, with why.
    press(page, "Home")
    press(page, "ArrowRight", anna)
    press(page, "2")
    expect(page.locator("#status")).to_contain_text("Spans may not overlap in this project: “Anna” overlaps “Anna Smith”")
    expect(page.locator("#spans li")).to_have_count(3)

    press(page, "Enter")
    expect(page.locator("#item-text")).to_have_text(OTHER_TEXT)
    annotation = Annotation.objects.get(annotator=expert)
    assert [(TEXT[s["start"]:s["end"]], s["label"]) for s in annotation.labels] == [
        ("Anna Smith", "PER"), ("東京", "LOC"), ("שלום", "PER")]
    # Code points, not UTF-16: the family emoji before "Anna" is 5 code points but 8 UTF-16 units.
    assert annotation.labels[0]["start"] == TEXT.index("Anna") == 9

    # Ctrl+Z reopens it with its spans; the expert relabels 東京 as an organisation and saves.
    press(page, "Control+z")
    expect(page.locator("#item")).to_have_class(re.compile(r"\bediting\b"))
    expect(page.locator("#item-text")).to_have_text(TEXT)
    expect(page.locator("#spans li")).to_have_text(["Person “Anna Smith”", "Location “東京”", "Person “שלום”"])
    press(page, "ArrowRight", tokyo)
    press(page, "2")
    press(page, "Enter")
    expect(page.locator("#item-text")).to_have_text(OTHER_TEXT)
    annotation.refresh_from_db()
    assert [(TEXT[s["start"]:s["end"]], s["label"]) for s in annotation.labels] == [
        ("Anna Smith", "PER"), ("東京", "ORG"), ("שלום", "PER")]
    expect(page.locator("#history li").first).to_contain_text("Person “Anna Smith”, Organisation “東京”, Person “שלום”")

    # An edit started and left with Escape gives back the spans made so far on the item underneath.
    press(page, "1")
    press(page, "Control+z")
    expect(page.locator("#item-text")).to_have_text(TEXT)
    press(page, "Escape")
    expect(page.locator("#item-text")).to_have_text(OTHER_TEXT)
    expect(page.locator("#spans li")).to_have_text(["Person “Nothing”"])
    assert page.js_errors == []


def span(text: str, label: str, **extra) -> dict:
    start = TEXT.index(text)  # a Python index: code points
    return {"start": start, "end": start + len(text), "label": label, **extra}


@pytest.fixture
def suggested(spans_project):
    """The labelling model's spans for TEXT, as the refresh stores them on the item (current for
    the stored head's version, so the queue serves them as they are)."""
    ActiveLearningState.objects.filter(project=spans_project).update(head=b"head", head_version=1)
    spans = [span("Anna Smith", "PER", confidence=0.91), span("東京", "LOC", confidence=0.62),
             span("שלום", "ORG", confidence=0.4)]
    Item.objects.filter(project=spans_project, data__text=TEXT).update(suggestion={"spans": spans, "head_version": 1})
    return spans


def test_the_models_spans_are_dashed_with_their_confidence_and_accepted_or_rejected_one_by_one(page, spans_project, suggested, expert):
    open_screen(page, spans_project)
    expect(page.locator("#spans li")).to_have_text([
        "Person “Anna Smith” — the model's, 91% confident (dashed)",
        "Location “東京” — the model's, 62% confident (dashed)",
        "Organisation “שלום” — the model's, 40% confident (dashed)"])
    expect(page.locator("#item-text .seg.suggested[data-tag]")).to_have_text(["Smith", "東京", "שלום"])
    expect(page.locator("#suggestion-count")).to_have_text("3 of 3 still to decide.")
    words = tokens(page)

    press(page, "ArrowRight", words.index("Anna"))
    press(page, "Space")  # accepts the suggestion under the cursor
    press(page, "ArrowRight", words.index("שלום") - words.index("Anna"))
    press(page, "Delete")  # rejects it
    expect(page.locator("#status")).to_have_text("Rejected the model's Organisation “שלום”.")
    press(page, "1")  # and tags the word as a person instead
    expect(page.locator("#spans li")).to_have_text([
        "Person “Anna Smith”", "Location “東京” — the model's, 62% confident (dashed)", "Person “שלום”"])
    expect(page.locator("#suggestion-count")).to_have_text("1 of 3 still to decide.")
    folder = os.environ.get("LABELLOOP_SCREENSHOT_DIR")
    if folder:  # two spans made, one suggestion still dashed, the cursor on the last span
        page.set_viewport_size({"width": 1400, "height": 900})
        page.screenshot(path=str(Path(folder) / "span_labelling.png"))
    press(page, "Tab")  # accepts the rest
    expect(page.locator("#item-text .seg.suggested")).to_have_count(0)

    press(page, "Enter")
    expect(page.locator("#item-text")).to_have_text(OTHER_TEXT)
    annotation = Annotation.objects.get(annotator=expert)
    assert annotation.labels == [span("Anna Smith", "PER"), span("東京", "LOC"), span("שלום", "PER")]
    assert annotation.suggestion_accepted is False  # one of the model's spans was changed
    assert annotation.suggested_labels == [span("Anna Smith", "PER", confidence=0.91, accepted=True),
                                           span("東京", "LOC", confidence=0.62, accepted=True),
                                           span("שלום", "ORG", confidence=0.4, accepted=False)]


def test_tab_accepts_every_suggested_span_and_the_submission_records_the_suggestion_accepted(page, spans_project, suggested, expert):
    open_screen(page, spans_project)
    press(page, "Tab")
    expect(page.locator("#status")).to_have_text("Accepted the model's 3 spans. Enter submits.")
    press(page, "Enter")
    expect(page.locator("#item-text")).to_have_text(OTHER_TEXT)
    annotation = Annotation.objects.get(annotator=expert)
    assert annotation.labels == [{k: s[k] for k in ("start", "end", "label")} for s in suggested]
    assert annotation.suggestion_accepted is True


def test_alt_selects_exact_characters_and_overlapping_spans_stack_where_the_project_allows_them(page, spans_project, expert):
    spans_project.spans_overlap = True
    spans_project.save(update_fields=["spans_overlap"])
    open_screen(page, spans_project)
    drag_over(page, "visited", inset=0.3)
    expect(page.locator("#status")).to_have_text("Selected “visited”: press a label's key to tag it.")
    drag_over(page, "visited", modifier="Alt", inset=0.3)  # the middle of the word, exactly
    expect(page.locator("#status")).to_have_text(re.compile("Selected “[a-z]+”"))
    middle = re.search("“(.+)”", page.locator("#status").text_content()).group(1)
    assert middle in "visited" and 0 < len(middle) < len("visited") and not middle.startswith("v")

    drag_over(page, "Smith")
    press(page, "1")
    press(page, "ArrowLeft")
    press(page, "Shift+ArrowRight")  # "Anna Smith": over the person "Smith"
    press(page, "2")
    expect(page.locator("#spans li")).to_have_text(["Organisation “Anna Smith”", "Person “Smith”"])
    # Two underlines under "Smith", one under "Anna".
    shadows = page.locator("#item-text .seg.spanned").evaluate_all("pieces => pieces.map(p => [p.textContent, p.style.boxShadow.split('inset').length - 1])")
    assert dict(shadows) == {"Anna": 1, " ": 1, "Smith": 2}
    press(page, "Enter")
    expect(page.locator("#item-text")).to_have_text(OTHER_TEXT)
    assert Annotation.objects.get(annotator=expert).labels == [span("Anna Smith", "ORG"), span("Smith", "PER")]
    assert page.js_errors == []


def test_ctrl_space_skips_the_item_and_a_label_button_tags_the_selection_too(page, spans_project, expert):
    open_screen(page, spans_project)
    press(page, "Control+Space")
    expect(page.locator("#item-text")).to_have_text(OTHER_TEXT)
    assert Annotation.objects.get(annotator=expert).skipped
    page.get_by_role("button", name="Location").click()  # the cursor's token: "Nothing"
    expect(page.locator("#spans li")).to_have_text(["Location “Nothing”"])
    press(page, "Backspace")
    expect(page.locator("#spans li")).to_have_count(0)
    expect(page.locator("#status")).to_have_text("Removed Location “Nothing”.")
    assert page.js_errors == []


def test_in_preselect_mode_the_models_spans_start_accepted(page, spans_project, suggested, expert):
    spans_project.suggestion_mode = "preselect"
    spans_project.save(update_fields=["suggestion_mode"])
    open_screen(page, spans_project)
    expect(page.locator("#spans li")).to_have_text(["Person “Anna Smith”", "Location “東京”", "Organisation “שלום”"])
    expect(page.locator("#item-text .seg.suggested")).to_have_count(0)
    press(page, "Enter")
    expect(page.locator("#item-text")).to_have_text(OTHER_TEXT)
    assert Annotation.objects.get(annotator=expert).suggestion_accepted is True


# --- the model learning from the expert's labels ---------------------------------------------------

NAMES = ["Anna", "Maria", "John", "Peter", "Laura", "David", "Sarah", "Thomas", "Emma", "James", "Olivia", "Lucas"]
CITIES = ["London", "Paris", "Berlin", "Madrid", "Rome", "Vienna", "Lisbon", "Dublin", "Prague", "Oslo", "Athens", "Warsaw"]
EMOJI = ["😀", "👩\u200d👩\u200d👧", "🇫🇷", "🎉", "👍🏽", "🌍"]
WARM_UP = ["Nothing to see here", "what a lovely morning", "see you all tomorrow"]
SEEDS = 18
NAME_OF = {label["key"]: label["name"] for label in ENTITY_LABELS}


def patterned(i: int) -> tuple[str, list[dict]]:
    """'<emoji> <name> flew to <city> today' with its PER and LOC spans (code points)."""
    emoji, name, city = EMOJI[i % len(EMOJI)], NAMES[i % len(NAMES)], CITIES[(i * 5) % len(CITIES)]
    text = f"{emoji} {name} flew to {city} today"
    return text, [{"start": text.index(name), "end": text.index(name) + len(name), "label": "PER"},
                  {"start": text.index(city), "end": text.index(city) + len(city), "label": "LOC"}]


@pytest.fixture
def refresh_inline(monkeypatch):
    """No task reaches the broker (a worker of another test must not run them); a requested
    refresh runs at once, in the request whose label asked for it, as a worker would next."""
    from types import SimpleNamespace

    from active_learning import encoding, explaining, refresh

    real = refresh.refresh_priorities

    def run(args=(), **options):
        real(*args)

    monkeypatch.setattr(refresh, "refresh_priorities", SimpleNamespace(name=real.name, apply_async=run, delay=lambda *a: run(a)))
    for module, name in ((encoding, "encode_items"), (explaining, "explain_suggestions")):
        monkeypatch.setattr(module, name, SimpleNamespace(name=name, apply_async=lambda *a, **k: None, delay=lambda *a: None))


@pytest.fixture
def learning_project(owner, expert, add_items, refresh_inline):
    """Tweet-like texts encoded by the real base model, SEEDS of them labelled with their names and
    cities; three texts without entities first in the queue. The model has not learnt from the
    labels yet: the refresh comes with the expert's second label (`refresh_every`)."""
    from active_learning import encoding

    project = project_create(user=owner, labels=ENTITY_LABELS, name="Trips", task_type="spans", eval_share=0,
                             diversity=False, refresh_every=SEEDS + 2)
    membership_set(project=project, user=expert, role=Role.EXPERT)
    examples = [patterned(i) for i in range(SEEDS + 4)]
    all_items = add_items(project, WARM_UP + [text for text, _ in examples])
    warm_up, items = all_items[:len(WARM_UP)], all_items[len(WARM_UP):]
    ActiveLearningState.objects.filter(project=project).update(encode_status="queued")
    assert encoding.encode_pending(project_id=project.id) == len(items) + len(WARM_UP)  # and a cold start, no labels yet
    for item, (_, spans) in zip(items, examples[:SEEDS]):
        annotation_submit(item=item, user=owner, labels=spans)
    for rank, item in enumerate(warm_up):  # served first, in this order (the cold start ranked them anywhere)
        Item.objects.filter(id=item.id).update(priority=3 - rank / 10)
    assert ActiveLearningState.objects.get(project=project).head is None
    return project


def test_after_enough_labels_for_a_refresh_the_models_spans_appear_and_one_accepted_is_recorded(page, learning_project, expert):
    # The first three items: the screen looks ahead one item, so the third was fetched before the
    # refresh that the second label asks for; the fourth is the first ranked by the new model.
    open_screen(page, learning_project, text=WARM_UP[0])
    for shown in WARM_UP:
        expect(page.locator("#item-text")).to_have_text(shown)
        expect(page.locator("#item-text .seg.suggested")).to_have_count(0)
        press(page, "Enter")
    state = ActiveLearningState.objects.get(project=learning_project)
    assert state.head and state.head_trained_on == SEEDS + 2 and state.refresh_error == ""

    expect(page.locator("#item-text")).not_to_have_text(WARM_UP[-1])
    item = Item.objects.get(id=int(page.locator("#item").get_attribute("data-item-id")))
    text, suggested = item.text(), item.suggestion["spans"]
    assert suggested and item.suggestion["head_version"] == state.head_version, item.suggestion
    expect(page.locator("#item-text")).to_have_text(text)
    expect(page.locator("#spans li .span-line")).to_have_text(
        [f"{NAME_OF[s['label']]} “{s['text']}” — the model's, {int(s['confidence'] * 100 + 0.5)}% confident (dashed)"
         for s in suggested])
    # Why: under each suggested span, the nearest labelled spans of its label, each in its context.
    for row, s in zip(page.locator("#spans li").all(), suggested):
        assert s["evidence"], s
        expect(row.locator(".evidence-item")).to_have_text(
            [f"{NAME_OF[e['label']]} {e['before']}{e['text']}{e['after']} (similarity {e['similarity']:.2f})"
             for e in s["evidence"]])
        expect(row.locator(".evidence-item mark")).to_have_text([e["text"] for e in s["evidence"]])
        assert {e["label"] for e in s["evidence"]} == {s["label"]}
    expect(page.locator("#suggestion-count")).to_have_text(f"{len(suggested)} of {len(suggested)} still to decide.")
    folder = os.environ.get("LABELLOOP_SCREENSHOT_DIR")
    if folder:  # docs/label_spans_page.png: the model's spans dashed, with their confidence
        page.set_viewport_size({"width": 1400, "height": 900})
        page.screenshot(path=str(Path(folder) / "label_spans_page.png"))

    first = suggested[0]
    words = page.evaluate("(text) => LabelloopSpans.tokensOf(text).map((t) => text.slice(t.start, t.end))", text)
    press(page, "ArrowRight", words.index(first["text"].split()[0]))
    press(page, "Space")  # accepts the suggestion under the cursor, and only it
    expect(page.locator("#status")).to_have_text(f"Accepted the model's {NAME_OF[first['label']]} “{first['text']}”.")
    press(page, "Enter")
    expect(page.locator("#item-text")).not_to_have_text(text)

    annotation = Annotation.objects.get(annotator=expert, item=item)
    kept = {k: first[k] for k in ("start", "end", "label")}
    assert annotation.labels == [kept]
    assert annotation.suggested_labels == [{**{k: s[k] for k in ("start", "end", "label", "confidence")}, "accepted": s is first}
                                           for s in suggested]
    assert annotation.suggestion_accepted is (len(suggested) == 1)
    assert page.js_errors == []
