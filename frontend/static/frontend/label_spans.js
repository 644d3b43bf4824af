// The span labelling screen: the item's text as tokens, a cursor moved by the keyboard (or a
// selection dragged with the mouse), a label's shortcut tags the selection as a span. The queue,
// submit and skip, the history, label buttons and shortcuts are label_common.js, as on the
// classification screen.
// Offsets: a JavaScript string is UTF-16, so the page works in UTF-16 indices; the server stores
// and sends Unicode code points. offsetsOf() converts between them, at the edge only: when spans
// arrive (suggestions, an annotation to edit) and when they are sent.
// All text from the server goes through textContent, never innerHTML.
(function () {
  "use strict";

  // --- offsets and tokens (pure, exported for the tests) -------------------------------------
  // For one text: toCodePoints(utf16Index) and toUtf16(codePointIndex). An index inside a
  // surrogate pair counts as the start of its code point; a code point index past the end throws.
  function offsetsOf(text) {
    const utf16At = [0];             // code point index -> UTF-16 index
    const codePointAt = [0];         // UTF-16 index -> code point index
    let u = 0;
    for (const ch of text) {         // for…of walks code points, not UTF-16 units
      if (ch.length === 2) codePointAt.push(utf16At.length - 1);
      u += ch.length;
      codePointAt.push(utf16At.length);
      utf16At.push(u);
    }
    return {
      length: utf16At.length - 1,
      toCodePoints(index) {
        if (!(index >= 0 && index <= text.length)) throw new RangeError(`UTF-16 offset ${index} outside the text`);
        return codePointAt[index];
      },
      toUtf16(index) {
        if (!(index >= 0 && index < utf16At.length)) throw new RangeError(`code point offset ${index} outside the text`);
        return utf16At[index];
      },
    };
  }

  const words = new Intl.Segmenter(undefined, { granularity: "word" });
  const graphemes = new Intl.Segmenter(undefined, { granularity: "grapheme" });

  // Tokens ({start, end} in UTF-16): the word segmenter's words (which keep "don't", "3.5",
  // "東京" and a word with combining marks whole), and every other character that is not space on
  // its own: "#", "@", "!" and each emoji, a ZWJ sequence ("👩‍👩‍👧") as one character.
  function tokensOf(text) {
    const tokens = [];
    for (const segment of words.segment(text)) {
      if (segment.isWordLike) {
        tokens.push({ start: segment.index, end: segment.index + segment.segment.length });
        continue;
      }
      for (const g of graphemes.segment(segment.segment)) {
        if (/\S/u.test(g.segment)) {
          const start = segment.index + g.index;
          tokens.push({ start, end: start + g.segment.length });
        }
      }
    }
    return tokens;
  }

  // The character boundaries a selection may stop at: between graphemes, never inside an emoji,
  // a surrogate pair or a letter and its combining mark.
  function boundariesOf(text) {
    const bounds = new Set([text.length]);
    for (const g of graphemes.segment(text)) bounds.add(g.index);
    return bounds;
  }

  window.LabelloopSpans = { offsetsOf, tokensOf, boundariesOf };
  const configNode = document.getElementById("label-config");
  if (!configNode) return;  // loaded only for its helpers

  const config = JSON.parse(configNode.textContent);

  const state = {
    current: null,      // the item on screen
    ahead: null,        // the next item, already held for this expert
    aheadRequest: null,
    busy: false,
    editing: null,      // an earlier annotation being edited (undo), or null
    stash: null,        // the item underneath's spans while editing (see edit)
    text: "",
    tokens: [],
    bounds: new Set(),
    spans: [],          // {start, end, label} in UTF-16, in the order they were made
    suggestions: [],    // {start, end, label, confidence, status: pending|accepted|rejected}
    cursor: 0,          // token indices: the selection runs from anchor to cursor
    anchor: 0,
    exact: null,        // {start, end}: a character selection made with Alt and the mouse
    pieces: [],         // the drawn pieces of the text, {start, end, el}, in order
    selected: [],       // the pieces drawn as selected
    shownAt: performance.now(),
    history: [],
    pendingKey: "",
    done: config.progress.done,
    total: config.progress.total,
  };

  const screen = LabelloopScreen(config, state, {
    show, edit, submitNow: submitSpans, choose: tag, onKey,
    historyText: (annotation, text) => `${describe(annotation)} — ${clip(text)}`,
  });
  const { $, call, say, paintProgress, sendLabels, clip, paintTimer } = screen;

  // --- labels -------------------------------------------------------------------------------
  const labelOf = new Map(config.labels.map((l) => [l.key, l]));
  const nameOf = (key) => (labelOf.get(key) || { name: key }).name;
  const colorOf = (key) => (labelOf.get(key) || { color: "#6b7280" }).color || "#6b7280";

  config.labels.forEach((label) => {
    const button = screen.labelButton(label, `${label.name}: tag the selection`, () => {
      button.blur();  // or Enter and Space would press it again
      tag(label.key);
    });
  });
  // --- selection ----------------------------------------------------------------------------
  function selection() {
    if (state.exact) return state.exact;
    if (!state.tokens.length) return null;
    const first = state.tokens[Math.min(state.cursor, state.anchor)];
    const last = state.tokens[Math.max(state.cursor, state.anchor)];
    return { start: first.start, end: last.end };
  }

  const overlaps = (a, b) => a.start < b.end && b.start < a.end;
  const quote = (span) => `“${state.text.slice(span.start, span.end)}”`;

  function move(step, extend) {
    if (!state.tokens.length) return;
    const from = state.exact ? tokenAt(step > 0 ? state.exact.end - 1 : state.exact.start) : state.cursor;
    state.cursor = Math.max(0, Math.min(state.tokens.length - 1, from + step));
    if (!extend) state.anchor = state.cursor;
    state.exact = null;
    paintSelection();
  }

  // The token at a UTF-16 offset, or the first one after it (a space between tokens).
  function tokenAt(offset) {
    const index = state.tokens.findIndex((t) => t.end > offset);
    return index < 0 ? state.tokens.length - 1 : index;
  }

  // Tag the selection with a label: a new span, or, on an existing span's exact range in a
  // project without overlap, that span relabelled.
  function tag(key) {
    const range = selection();
    if (!range || (!state.current && !state.editing)) return;
    const span = { start: range.start, end: range.end, label: key };
    if (addSpan(span, true)) say(`${nameOf(key)}: ${quote(span)}`);
  }

  function addSpan(span, relabel) {
    const same = state.spans.find((s) => s.start === span.start && s.end === span.end);
    if (same && same.label === span.label) {
      say(`${quote(span)} is already ${nameOf(span.label)}.`);
      return false;
    }
    if (!config.overlap) {
      if (same && relabel) {
        same.label = span.label;
        paintText();
        return true;
      }
      const clash = state.spans.find((s) => overlaps(s, span));
      if (clash) {
        say(`Spans may not overlap in this project: ${quote(span)} overlaps ${quote(clash)} (${nameOf(clash.label)}). Remove that one first (Delete).`, true);
        return false;
      }
    }
    state.spans.push(span);
    paintText();
    return true;
  }

  // Delete: what is under the cursor goes, a pending suggestion first (that rejects it), else the
  // latest span made there.
  function removeUnderCursor() {
    const range = selection();
    if (!range) return;
    const suggestion = state.suggestions.find((s) => s.status === "pending" && overlaps(s, range));
    if (suggestion) {
      suggestion.status = "rejected";
      say(`Rejected the model's ${nameOf(suggestion.label)} ${quote(suggestion)}.`);
      paintText();
      return;
    }
    const index = state.spans.map((s) => overlaps(s, range)).lastIndexOf(true);
    if (index < 0) {
      say("No span under the cursor.");
      return;
    }
    const [removed] = state.spans.splice(index, 1);
    say(`Removed ${nameOf(removed.label)} ${quote(removed)}.`);
    paintText();
  }

  function accept(suggestion) {
    if (addSpan({ start: suggestion.start, end: suggestion.end, label: suggestion.label }, false)) {
      suggestion.status = "accepted";
      return true;
    }
    return false;
  }

  function acceptUnderCursor() {
    const range = selection();
    const suggestion = range && state.suggestions.find((s) => s.status === "pending" && overlaps(s, range));
    if (!suggestion) return false;
    if (accept(suggestion)) say(`Accepted the model's ${nameOf(suggestion.label)} ${quote(suggestion)}.`);
    paintText();
    return true;
  }

  function acceptAll() {
    const pending = state.suggestions.filter((s) => s.status === "pending");
    if (!pending.length) return false;
    const taken = pending.filter((s) => accept(s)).length;
    say(taken === pending.length ? `Accepted the model's ${taken} span${taken === 1 ? "" : "s"}. Enter submits.`
      : `Accepted ${taken} of the model's ${pending.length} spans; the others overlap yours.`, taken !== pending.length);
    paintText();
    return true;
  }

  // --- the text, drawn in pieces ------------------------------------------------------------
  // The text is cut at every token and span boundary; each piece is one element, styled by the
  // spans covering it: each span is an underline at its own level (so overlapping spans stack),
  // the lowest level also tints the background; a pending suggestion is a dashed underline. The
  // label's name follows a span's last piece as CSS content, so it is never part of the text a
  // selection reads.
  function levelsOf(spans) {
    const levels = new Map();
    const placed = [];
    [...spans].sort((a, b) => a.start - b.start || b.end - a.end).forEach((span) => {
      let level = 0;
      while (placed.some((p) => levels.get(p) === level && overlaps(p, span))) level += 1;
      levels.set(span, level);
      placed.push(span);
    });
    return levels;
  }

  function paintText() {
    const box = $("item-text");
    const text = state.text;
    const pending = state.suggestions.filter((s) => s.status === "pending");
    const cuts = new Set([0, text.length]);
    for (const mark of [...state.tokens, ...state.spans, ...pending, ...(state.exact ? [state.exact] : [])]) {
      cuts.add(mark.start);
      cuts.add(mark.end);
    }
    const sorted = [...cuts].sort((a, b) => a - b);
    const levels = levelsOf(state.spans);
    const looks = [];
    for (let i = 0; i + 1 < sorted.length; i += 1) {
      const [a, b] = [sorted[i], sorted[i + 1]];
      const look = { start: a, end: b, text: text.slice(a, b), style: {}, classes: ["seg"], tag: "" };
      const covering = state.spans.filter((s) => s.start <= a && s.end >= b).sort((x, y) => levels.get(x) - levels.get(y));
      if (covering.length) {
        const top = Math.max(...covering.map((s) => levels.get(s)));
        look.style.background = `color-mix(in srgb, ${colorOf(covering[0].label)} 18%, transparent)`;
        look.style.boxShadow = covering.map((s) => `inset 0 -${3 * (levels.get(s) + 1)}px 0 ${colorOf(s.label)}`).join(", ");
        look.style.paddingBottom = `${3 * (top + 1)}px`;
        look.classes.push("spanned");
      }
      const suggested = pending.filter((s) => s.start <= a && s.end >= b);
      if (suggested.length) {
        look.classes.push("suggested");
        look.style.borderBottomColor = colorOf(suggested[0].label);
      }
      look.tag = [
        ...covering.filter((s) => s.end === b).map((s) => nameOf(s.label)),
        ...suggested.filter((s) => s.end === b).map((s) => `${nameOf(s.label)}? ${Math.round(s.confidence * 100)}%`),
      ].join(" · ");
      look.key = JSON.stringify([a, b, look.text, look.classes, look.style, look.tag]);
      looks.push(look);
    }
    // Only the pieces whose look changed are replaced: tagging a word in a long text touches a
    // few elements, not thousands. Both lists run through the text in order, so one pass merges.
    state.selected.forEach((el) => el.classList.remove("selected"));
    state.selected = [];
    state.pieces = [];
    let child = box.firstChild;
    for (const look of looks) {
      while (child && child.dataset?.key !== look.key && !(Number(child.dataset?.start) > look.start)) {
        const stale = child;
        child = child.nextSibling;
        stale.remove();
      }
      let el = child;
      if (child && child.dataset.key === look.key) {
        child = child.nextSibling;
      } else {
        el = document.createElement("span");
        el.className = look.classes.join(" ");
        el.dataset.start = look.start;
        el.dataset.key = look.key;
        el.textContent = look.text;
        Object.assign(el.style, look.style);
        if (look.tag) el.dataset.tag = look.tag;
        box.insertBefore(el, child);
      }
      state.pieces.push({ start: look.start, end: look.end, el });
    }
    while (child) {
      const stale = child;
      child = child.nextSibling;
      stale.remove();
    }
    if (!text) box.textContent = state.current || state.editing ? "" : "No more items need your label in this project.";
    paintSelection();
    paintSpanList();
  }

  // The selection alone, repainted on a cursor move: only the pieces that change, so a long text
  // is not rebuilt for every arrow key.
  function paintSelection() {
    state.selected.forEach((el) => el.classList.remove("selected"));
    state.selected = [];
    const range = selection();
    if (!range) return;
    let lo = 0;
    let hi = state.pieces.length;
    while (lo < hi) {  // the first piece starting at or after the selection
      const mid = (lo + hi) >> 1;
      if (state.pieces[mid].start < range.start) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < state.pieces.length && state.pieces[i].end <= range.end; i += 1) {
      state.pieces[i].el.classList.add("selected");
      state.selected.push(state.pieces[i].el);
    }
    const cursorPiece = state.selected[state.selected.length - 1];
    if (cursorPiece) cursorPiece.scrollIntoView({ block: "nearest" });
  }

  function paintSpanList() {
    const list = $("spans");
    list.replaceChildren();
    const rows = [
      ...state.spans.map((s) => ({ span: s, note: "" })),
      ...state.suggestions.filter((s) => s.status === "pending").map((s) => ({ span: s, note: ` — the model's, ${Math.round(s.confidence * 100)}% confident (dashed)` })),
    ].sort((x, y) => x.span.start - y.span.start || x.span.end - y.span.end);
    rows.forEach(({ span, note }) => {
      const li = document.createElement("li");
      const line = document.createElement("span");
      line.className = "span-line";
      const name = document.createElement("strong");
      name.textContent = nameOf(span.label);
      name.style.color = colorOf(span.label);
      line.append(name, ` ${quote(span)}${note}`);
      li.append(line);
      if (note && span.evidence && span.evidence.length) li.append(evidenceOf(span));
      list.appendChild(li);
    });
    const pending = state.suggestions.filter((s) => s.status === "pending").length;
    $("suggestion").hidden = !state.suggestions.length || !!state.editing;
    $("suggestion-count").textContent = state.suggestions.length ? `${pending} of ${state.suggestions.length} still to decide.` : "";
  }

  // Why the model says so: the labelled spans of the suggested label nearest to this one (the
  // refresh finds them), each in its context. Text only through textContent.
  function evidenceOf(span) {
    const box = document.createElement("div");
    box.className = "span-evidence";
    const title = document.createElement("span");
    title.className = "muted";
    title.textContent = "Why: nearest labelled spans —";
    box.append(title);
    span.evidence.forEach((e) => {
      const row = document.createElement("div");
      row.className = "evidence-item";
      row.dataset.item = e.item;
      const context = document.createElement("q");
      const mark = document.createElement("mark");
      mark.textContent = e.text;
      mark.style.setProperty("--label-color", colorOf(e.label));
      context.append(e.before || "", mark, e.after || "");
      const label = document.createElement("strong");
      label.textContent = nameOf(e.label);
      row.append(label, " ", context, ` (similarity ${Number(e.similarity).toFixed(2)})`);
      box.append(row);
    });
    return box;
  }

  // --- the mouse --------------------------------------------------------------------------------
  // A drag selects from the first token it touches to the last; with Alt, exactly the characters
  // dragged over (widened to whole graphemes, spaces at the edges dropped). A click moves the cursor.
  function offsetIn(node, offset) {
    const range = document.createRange();
    range.setStart($("item-text"), 0);
    range.setEnd(node, offset);
    return range.toString().length;
  }

  // On the document: a drag may end outside the text.
  document.addEventListener("mouseup", (event) => {
    if (!state.tokens.length) return;
    const chosen = window.getSelection();
    if (!chosen.rangeCount || chosen.isCollapsed) {
      const piece = event.target.closest && $("item-text").contains(event.target) && event.target.closest(".seg");
      if (piece) {
        state.cursor = state.anchor = tokenAt(Number(piece.dataset.start));
        state.exact = null;
        paintSelection();
      }
      return;
    }
    const r = chosen.getRangeAt(0);
    if (!$("item-text").contains(r.startContainer) || !$("item-text").contains(r.endContainer)) return;
    let start = offsetIn(r.startContainer, r.startOffset);
    let end = offsetIn(r.endContainer, r.endOffset);
    chosen.removeAllRanges();
    const text = state.text;
    if (event.altKey) {
      while (start > 0 && !state.bounds.has(start)) start -= 1;
      while (end < text.length && !state.bounds.has(end)) end += 1;
      const inner = text.slice(start, end);
      start += inner.length - inner.trimStart().length;
      end -= inner.length - inner.trimEnd().length;
    }
    const first = state.tokens.findIndex((t) => t.end > start);
    const last = state.tokens.map((t) => t.start < end).lastIndexOf(true);
    if (end <= start || first < 0 || last < first) return;
    state.anchor = first;
    state.cursor = last;
    state.exact = event.altKey ? { start, end } : null;
    if (state.exact) paintText();  // its ends may fall inside a piece: cut there
    else paintSelection();
    const range = selection();
    say(`Selected ${quote(range)}: press a label's key to tag it.`);
  });

  // --- items --------------------------------------------------------------------------------
  // Spans from the server (code points) as UTF-16 spans of `text`; a span that does not fit the
  // text is dropped rather than drawn somewhere else.
  function fromServer(text, spans) {
    const offsets = offsetsOf(text);
    return (spans || []).flatMap((s) => {
      try {
        return [{ ...s, start: offsets.toUtf16(s.start), end: offsets.toUtf16(s.end) }];
      } catch (err) {
        return [];
      }
    });
  }

  function toServer(spans) {
    const offsets = offsetsOf(state.text);
    return spans.map((s) => ({ start: offsets.toCodePoints(s.start), end: offsets.toCodePoints(s.end), label: s.label }))
      .sort((a, b) => a.start - b.start || a.end - b.end || (a.label < b.label ? -1 : a.label > b.label ? 1 : 0));
  }

  function load(text, spans, suggestions) {
    state.text = text;
    state.tokens = tokensOf(text);
    state.bounds = boundariesOf(text);
    state.spans = fromServer(text, spans).map(({ start, end, label }) => ({ start, end, label }));
    state.suggestions = fromServer(text, suggestions).map((s) => ({
      start: s.start, end: s.end, label: s.label, confidence: s.confidence ?? 0, status: "pending",
      evidence: Array.isArray(s.evidence) ? s.evidence : [],
    }));
    state.cursor = state.anchor = 0;
    state.exact = null;
    state.shownAt = performance.now();
  }

  function show(item) {
    state.current = item;
    state.editing = null;
    $("item").classList.remove("editing");
    const suggested = item && item.suggestion && Array.isArray(item.suggestion.spans) ? item.suggestion.spans : [];
    load(item ? item.text : "", [], suggested);
    if (item && config.suggestionMode === "preselect") state.suggestions.forEach(accept);
    $("item-meta").textContent = item ? (item.external_id ? `#${item.external_id}` : `item ${item.id}`) : "";
    if (item) $("item").dataset.itemId = item.id;
    else delete $("item").dataset.itemId;
    paintText();
    paintProgress();
    paintTimer();
    paintReview(item);
    $("submit").disabled = !item;
  }

  // Back from an edit to the item underneath, with the spans made on it so far.
  function resume() {
    state.editing = null;
    $("item").classList.remove("editing");
    if (state.stash) Object.assign(state, state.stash);
    state.stash = null;
    const item = state.current;
    $("item-meta").textContent = item ? (item.external_id ? `#${item.external_id}` : `item ${item.id}`) : "";
    $("submit").disabled = !item;
    paintText();
    paintTimer();
    paintReview(item);
  }

  // --- the review panel: product users said the model's spans are wrong here ------------------
  // The served model's spans and each group of users' (a whole correction, or one span they say
  // is wrong or missing) drawn in the text as marks, side by side; the expert's spans settle it.
  const percent = (x) => `${Math.round(x * 100)}%`;

  function marked(text, spans) {
    const box = document.createElement("span");
    box.className = "span-text";
    const utf16 = fromServer(text, spans).sort((a, b) => a.start - b.start || b.end - a.end);
    let at = 0;
    for (const s of utf16) {
      if (s.start < at) continue;  // an overlapping span: its start is already inside a mark
      box.append(text.slice(at, s.start));
      const mark = document.createElement("mark");
      mark.className = "review-span";
      mark.dataset.label = s.label;
      mark.title = nameOf(s.label) + (s.confidence != null ? `, ${percent(s.confidence)} confident` : "");
      mark.style.setProperty("--label-color", colorOf(s.label));
      mark.textContent = text.slice(s.start, s.end);
      const tagName = document.createElement("small");
      tagName.textContent = ` ${nameOf(s.label)}`;
      mark.append(tagName);
      box.append(mark);
      at = s.end;
    }
    box.append(text.slice(at));
    return box;
  }

  function reviewLine(title, rest, drawn) {
    const li = document.createElement("li");
    const strong = document.createElement("strong");
    strong.textContent = title;
    li.append(strong, rest);
    if (drawn) {
      const p = document.createElement("p");
      p.className = "review-text";
      p.append(drawn);
      li.append(p);
    }
    return li;
  }

  const SAYS = { correction: "Their spans", span_wrong: "A span is wrong", span_missing: "A span is missing" };

  async function paintReview(item) {
    $("review").hidden = true;
    if (!item || !item.needs_review) return;
    let detail;
    try {
      detail = await call("GET", `/review/${item.id}`);
    } catch (err) {
      say(`The review could not be loaded: ${err.message}`, true);
      return;
    }
    // The expert may have moved on, or started an edit, while it loaded.
    if (state.current !== item || state.editing || !detail.needs_review || !detail.review) return;
    const { model, users, sources, source_reliability: reliability } = detail.review;
    $("review-model-text").replaceChildren(model ? marked(item.text, model.spans || []) : "no logged prediction");
    $("review-model-meta").textContent = model
      ? `${(model.spans || []).length} span(s), ${percent(model.confidence)} confident, version ${model.version}, when the product asked` : "";
    $("review-users").replaceChildren(...users.map((u) => {
      const record = u.track_record;  // these users' past feedback that experts reviewed
      const past = record.reviewed ? `; right ${percent(record.reliability)} of ${record.reviewed} reviewed before` : "";
      const who = ` — ${u.users} user${u.users === 1 ? "" : "s"}${past}`;
      return u.spans ? reviewLine(`${SAYS[u.kind] || u.kind}:`, who, marked(item.text, u.spans)) : reviewLine(u.says, who);
    }));
    $("review-sources").replaceChildren(...sources.map((name) => {
      const r = reliability[name];  // null until an expert has reviewed something from this source
      return reviewLine(name, ` — ${r == null ? "not yet estimated" : percent(r) + " reliable"}`);
    }));
    $("review").hidden = false;
  }

  // What was suggested, each with whether the expert kept it unchanged (same offsets and label).
  function suggestedRecord(spans) {
    const key = (s) => `${s.start}:${s.end}:${s.label}`;
    const kept = new Set(spans.map(key));
    return state.suggestions.map((s) => {
      const [span] = toServer([s]);
      return { ...span, confidence: s.confidence, accepted: kept.has(key(span)) };
    }).sort((a, b) => a.start - b.start || a.end - b.end);
  }

  async function submitSpans() {
    const spans = toServer(state.spans);
    const summary = spans.length ? spans.map((s) => nameOf(s.label)).join(", ") : "no spans";
    await sendLabels(spans, {
      suggested: state.suggestions.length ? suggestedRecord(spans) : undefined,
      saidEdited: () => `Saved your edit: ${summary}.`,
      saidLabelled: `Labelled: ${summary}.`,
      back: resume,
    });
  }

  // --- history, undo and edit ---------------------------------------------------------------
  // An annotation's spans as "Person “Anna”, …": the stored offsets are code points.
  function describe(annotation) {
    if (annotation.skipped) return "(skipped)";
    const points = Array.from(annotation.item_text || "");
    const spans = Array.isArray(annotation.labels) ? annotation.labels : [];
    if (!spans.length) return "(no spans)";
    return spans.map((s) => (typeof s === "object" ? `${nameOf(s.label)} “${points.slice(s.start, s.end).join("")}”` : nameOf(s))).join(", ");
  }

  // The spans made so far on the item underneath, kept while an earlier annotation is edited.
  const WORK = ["text", "tokens", "bounds", "spans", "suggestions", "cursor", "anchor", "exact", "shownAt"];

  function edit(annotation) {
    if (!state.editing) state.stash = Object.fromEntries(WORK.map((k) => [k, state[k]]));
    state.editing = annotation;
    load(annotation.item_text || "", annotation.skipped ? [] : annotation.labels, []);
    $("review").hidden = true;  // the review is of the item underneath, not of the one edited
    $("item").classList.add("editing");
    $("item-meta").textContent = "Editing an earlier label: Enter saves, Escape goes back.";
    $("submit").disabled = false;
    paintText();
    paintTimer();
  }

  // --- keyboard: the keys only this screen has (the shared ones: label_common.js) ------------
  function onKey(event) {
    const key = event.key;
    if (key === "Escape" && state.editing) {
      resume();
    } else if (key === "ArrowRight" || key === "ArrowLeft") {
      event.preventDefault();
      // In right-to-left text the arrows still move through the text's logical order.
      move(key === "ArrowRight" ? 1 : -1, event.shiftKey);
    } else if (key === "Home" || key === "End") {
      event.preventDefault();
      move(key === "Home" ? -state.tokens.length : state.tokens.length, event.shiftKey);
    } else if (key === "Backspace" || key === "Delete") {
      event.preventDefault();
      removeUnderCursor();
    } else if (key === "Tab" && !event.shiftKey) {
      if (acceptAll()) event.preventDefault();  // with nothing suggested, Tab moves focus as usual
    } else if (key === " ") {
      if (acceptUnderCursor()) event.preventDefault();
    } else {
      return false;
    }
    return true;
  }

  screen.start();
})();
