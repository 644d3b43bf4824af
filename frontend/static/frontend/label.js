// The labelling screen: one item at a time, keyboard first, the next item fetched ahead. The queue,
// submit and skip, the history and the keys both screens share are label_common.js; this is what
// classifying a whole item adds: choosing labels, filtering them, the suggestion and the review.
// All text from the server goes through textContent, never innerHTML.
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("label-config").textContent);
  const state = {
    current: null,      // the item on screen
    ahead: null,        // the next item, already held for this expert
    aheadRequest: null, // the claim for `ahead` while it is in flight
    busy: false,        // a submit or skip is in flight: a second Enter must not send it again
    editing: null,      // an earlier annotation being edited (undo), or null
    selected: new Set(),
    shownAt: performance.now(),
    history: [],
    highlighted: -1,    // index into the visible labels while filtering
    ranked: [],         // the label buttons the filter shows, best match first
    pendingKey: "",     // the first key of a two-key shortcut, waiting for the second
    done: config.progress.done,
    total: config.progress.total,
  };

  const screen = LabelloopScreen(config, state, {
    show, edit, submitNow: submitSelected, choose, pendingHint: labelBoxHint, keyInInput: keyInFilter, onKey,
    historyText: (annotation, text) => `${annotation.skipped ? "(skipped)" : names(annotation.labels) || "(none)"} — ${text}`,
  });
  const { $, call, say, setPending, paintProgress, sendLabels, clip, paintTimer } = screen;

  // --- labels (their buttons and shortcuts: label_common.js) --------------------------------
  const wordsOf = (text) => text.toLowerCase().split(/[^\p{L}\p{N}]+/u).filter(Boolean);
  const buttons = config.labels.map((label, order) => {
    const button = screen.labelButton(label, label.name, () => choose(label.key));
    button.dataset.order = order;
    return { button, label, nameWords: wordsOf(label.name), keyWords: wordsOf(label.key) };
  });
  state.ranked = buttons.map((b) => b.button);
  window.addEventListener("resize", () => setPending(state.pendingKey));

  // When the box scrolls, say so: the rows below its edge are otherwise easy to miss.
  function labelBoxHint() {
    const box = $("labels");
    return box.scrollHeight > box.clientHeight ? `${state.ranked.length} labels: scroll the box for more, or press / to filter` : "";
  }

  function choose(key) {
    if (config.multiLabel) {
      state.selected.has(key) ? state.selected.delete(key) : state.selected.add(key);
    } else {
      state.selected = new Set([key]);
    }
    paintLabels();
  }

  function paintLabels() {
    buttons.forEach(({ button }) => button.setAttribute("aria-pressed", state.selected.has(button.dataset.key) ? "true" : "false"));
    $("submit").disabled = !state.current && !state.editing;
  }

  function visibleButtons() {
    return state.ranked;
  }

  // The filter: each typed word must begin a word of the label's name (or of its key); the best
  // match first: words matched early in the name, whole words, names before keys.
  function matchScore(entry, terms) {
    let score = 0;
    for (const term of terms) {
      const at = entry.nameWords.findIndex((w) => w.startsWith(term));
      if (at >= 0) score += at + (entry.nameWords[at] === term ? 0 : 0.5);
      else if (entry.keyWords.some((w) => w.startsWith(term))) score += 10;
      else return null;
    }
    return score;
  }

  function filterLabels() {
    const terms = wordsOf($("label-filter").value);
    const scored = buttons.map((entry) => [entry, terms.length ? matchScore(entry, terms) : 0]).filter(([, score]) => score !== null);
    scored.sort((a, b) => a[1] - b[1] || a[0].button.dataset.order - b[0].button.dataset.order);
    state.ranked = scored.map(([entry]) => entry.button);
    const shown = new Set(state.ranked);
    buttons.forEach((entry) => {
      entry.button.hidden = !shown.has(entry.button);
      markName(entry, terms);
    });
    // Best match first in the page itself (what a screen reader reads), the rest after, hidden.
    $("labels").append(...state.ranked, ...buttons.map((entry) => entry.button).filter((b) => !shown.has(b)));
    state.highlighted = terms.length && state.ranked.length ? 0 : -1;
    paintHighlight();
    setPending("");
  }

  // The part of each name word a typed word matched, marked (built as nodes, never as HTML).
  function markName(entry, terms) {
    const name = entry.button.querySelector(".name");
    name.replaceChildren();
    let last = 0;
    for (const match of entry.label.name.matchAll(/[\p{L}\p{N}]+/gu)) {
      const word = match[0].toLowerCase();
      const length = Math.max(0, ...terms.filter((t) => word.startsWith(t)).map((t) => t.length));
      if (!length) continue;
      const mark = document.createElement("mark");
      mark.textContent = match[0].slice(0, length);
      name.append(entry.label.name.slice(last, match.index), mark);
      last = match.index + length;
    }
    name.append(entry.label.name.slice(last));
  }

  function paintHighlight() {
    const visible = visibleButtons();
    buttons.forEach(({ button }) => button.classList.remove("highlighted"));
    const target = state.highlighted >= 0 ? visible[state.highlighted] : null;
    if (target) {
      target.classList.add("highlighted");
      target.scrollIntoView({ block: "nearest" });
    }
  }

  // Tab takes the model's suggestion (Enter then submits it, as after a label's shortcut).
  function acceptSuggestion() {
    const suggestion = state.current && !state.editing && state.current.suggestion;
    if (!suggestion || $("suggestion").hidden) return false;
    state.selected = new Set(suggestion.labels);
    paintLabels();
    say(`Took the suggestion: ${names(suggestion.labels)}. Enter submits.`);
    return true;
  }

  // --- items --------------------------------------------------------------------------------
  function show(item) {
    state.current = item;
    state.editing = null;
    state.selected = new Set();
    state.shownAt = performance.now();
    $("item").classList.remove("editing");
    if (item) {
      $("item-text").textContent = item.text;
      $("item-meta").textContent = item.external_id ? `#${item.external_id}` : `item ${item.id}`;
      $("item").dataset.itemId = item.id;
      if (item.suggestion && config.suggestionMode === "preselect") state.selected = new Set(item.suggestion.labels);
    } else {
      $("item-text").textContent = "No more items need your label in this project.";
      $("item-meta").textContent = "";
      delete $("item").dataset.itemId;
    }
    paintSuggestion(item && item.suggestion);
    paintReview(item);
    paintLabels();
    paintProgress();
    paintTimer();
  }

  // --- the model's suggestion and why -------------------------------------------------------
  const labelName = new Map(config.labels.map((l) => [l.key, l.name]));
  const names = (keys) => keys.map((k) => labelName.get(k) || k).join(", ");

  function paintSuggestion(suggestion) {
    const box = $("suggestion");
    box.hidden = !suggestion;
    buttons.forEach(({ button }) => button.classList.toggle("suggested", !!suggestion && suggestion.labels.includes(button.dataset.key)));
    if (!suggestion) return;
    $("suggestion-label").textContent = names(suggestion.labels);
    $("suggestion-confidence").textContent = `${Math.round(suggestion.confidence * 100)}% confident`;
    const others = suggestion.top.filter((t) => !suggestion.labels.includes(t.label));
    $("suggestion-alternatives").textContent = others.length
      ? "then " + others.map((t) => `${labelName.get(t.label) || t.label} ${Math.round(t.p * 100)}%`).join(", ")
      : "";
    const words = $("suggestion-words");
    words.replaceChildren();
    suggestion.words.forEach((w) => {
      const chip = document.createElement("mark");
      chip.textContent = w.word;
      chip.title = `removing it lowers the confidence by ${Math.round(w.weight * 100)} points`;
      words.appendChild(chip);
    });
    $("suggestion-words-row").hidden = suggestion.words.length === 0;
    const list = $("suggestion-neighbours");
    list.replaceChildren();
    suggestion.neighbours.forEach((n) => {
      const li = document.createElement("li");
      const label = document.createElement("strong");
      label.textContent = n.labels.map((k) => labelName.get(k) || k).join(", ");
      li.append(label, ` — ${n.text} (similarity ${n.similarity.toFixed(2)})`);
      list.appendChild(li);
    });
    $("suggestion-neighbours-row").hidden = suggestion.neighbours.length === 0;
  }

  // --- the review panel: product users said the model is wrong here -----------------------------
  const percent = (x) => `${Math.round(x * 100)}%`;

  function listItem(title, rest) {
    const li = document.createElement("li");
    const strong = document.createElement("strong");
    strong.textContent = title;
    li.append(strong, rest);
    return li;
  }

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
    $("review-model-label").textContent = model ? names(model.labels) : "no logged prediction";
    // The served model's answer when the product asked; the suggestion line above is the
    // labelling model's answer now. Two models, so the two confidences may differ: each is named.
    $("review-model-meta").textContent = model ? `${percent(model.confidence)} confident, version ${model.version}, when the product asked` : "";
    $("review-users").replaceChildren(...users.map((u) => {
      const record = u.track_record;  // these users' past feedback that experts reviewed
      const past = record.reviewed ? `; right ${percent(record.reliability)} of ${record.reviewed} reviewed before` : "";
      return listItem(names([u.says]), ` — ${u.users} user${u.users === 1 ? "" : "s"}${past}`);
    }));
    $("review-sources").replaceChildren(...sources.map((name) => {
      const r = reliability[name];  // null until an expert has reviewed something from this source
      return listItem(name, ` — ${r == null ? "not yet estimated" : percent(r) + " reliable"}`);
    }));
    $("review").hidden = false;
  }

  async function submitSelected() {
    if (state.selected.size === 0 && !config.multiLabel) {
      say("Choose a label first.", true);
      return;
    }
    const labels = [...state.selected];
    const item = state.current;
    await sendLabels(labels, {
      suggested: item && item.suggestion ? item.suggestion.labels : undefined,
      saidEdited: (edited) => `Changed “${clip(edited.item_text || "the item")}” to ${names(labels) || "(none)"}.`,
      saidLabelled: `Labelled: ${names(labels) || "(none)"}`,
      back: () => show(state.current),
    });
  }

  // --- undo and edit ------------------------------------------------------------------------
  function edit(annotation) {
    state.editing = annotation;
    state.selected = new Set(annotation.labels);
    state.shownAt = performance.now();
    $("item").classList.add("editing");
    $("item-text").textContent = annotation.item_text || "(text not loaded)";
    $("item-meta").textContent = "Editing an earlier label: Enter saves, Escape goes back.";
    paintSuggestion(null); // the suggestion explains the item underneath, not the one being edited
    paintReview(null);
    paintLabels();
    paintTimer();
  }

  // --- keyboard: the filter's keys, and the keys only this screen has --------------------------
  function keyInFilter(event) {
    if (event.target !== $("label-filter")) return false;
    const visible = visibleButtons();
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const step = event.key === "ArrowDown" ? 1 : -1;
      state.highlighted = Math.max(0, Math.min(visible.length - 1, state.highlighted + step));
      paintHighlight();
    } else if (event.key === "Enter") {
      event.preventDefault();
      const target = visible[Math.max(0, state.highlighted)];
      if (target && state.highlighted >= 0) choose(target.dataset.key);
      $("label-filter").value = "";
      filterLabels();
      $("label-filter").blur();
    } else if (event.key === "Escape") {
      $("label-filter").value = "";
      filterLabels();
      $("label-filter").blur();
    }
    return true;
  }

  function onKey(event) {
    if (event.key === "Escape" && state.editing) {
      show(state.current);
    } else if (event.key === "/") {
      event.preventDefault();
      setPending("");
      $("label-filter").focus();
    } else if (event.key === "Tab" && !event.shiftKey) {
      if (acceptSuggestion()) event.preventDefault();  // with no suggestion, Tab moves focus as usual
    } else {
      return false;
    }
    return true;
  }
  $("label-filter").addEventListener("input", filterLabels);

  screen.start();
})();
