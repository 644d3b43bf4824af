// The labelling screen: one item at a time, keyboard first, the next item fetched ahead.
// All text from the server goes through textContent, never innerHTML.
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("label-config").textContent);
  const csrf = document.querySelector("[name=csrfmiddlewaretoken]").value;
  const api = `/api/projects/${config.projectId}`;
  const $ = (id) => document.getElementById(id);

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
    done: config.progress.done,
    total: config.progress.total,
  };

  async function call(method, path, body) {
    const response = await fetch(api + path, {
      method,
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
    if (response.status === 204) return null;
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const problem = Object.entries(data).map(([field, msg]) => `${field}: ${[].concat(msg).join(" ")}`).join("; ");
      throw new Error(problem || `HTTP ${response.status}`);
    }
    return data;
  }

  const claim = (exclude) => call("POST", "/queue/next", { exclude });

  function say(text, isError) {
    $("status").textContent = text;
    $("status").classList.toggle("error", !!isError);
  }

  // --- labels -------------------------------------------------------------------------------
  const buttons = config.labels.map((label) => {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "label";
    button.dataset.key = label.key;
    button.style.setProperty("--label-color", label.color);
    const name = document.createElement("span");
    name.textContent = label.name;
    button.appendChild(name);
    if (label.shortcut) {
      const kbd = document.createElement("kbd");
      kbd.textContent = label.shortcut;
      button.appendChild(kbd);
    }
    button.addEventListener("click", () => choose(label.key));
    $("labels").appendChild(button);
    return button;
  });
  const byShortcut = new Map(config.labels.filter((l) => l.shortcut).map((l) => [l.shortcut.toLowerCase(), l.key]));

  function choose(key) {
    if (config.multiLabel) {
      state.selected.has(key) ? state.selected.delete(key) : state.selected.add(key);
    } else {
      state.selected = new Set([key]);
    }
    paintLabels();
  }

  function paintLabels() {
    buttons.forEach((b) => b.setAttribute("aria-pressed", state.selected.has(b.dataset.key) ? "true" : "false"));
    $("submit").disabled = !state.current && !state.editing;
  }

  function visibleButtons() {
    return buttons.filter((b) => !b.hidden);
  }

  function filterLabels() {
    const words = $("label-filter").value.toLowerCase().trim();
    buttons.forEach((b) => {
      b.hidden = words !== "" && !(b.textContent.toLowerCase().includes(words) || b.dataset.key.toLowerCase().includes(words));
    });
    state.highlighted = words ? 0 : -1;
    paintHighlight();
  }

  function paintHighlight() {
    const visible = visibleButtons();
    buttons.forEach((b) => b.classList.remove("highlighted"));
    if (state.highlighted >= 0 && visible[state.highlighted]) visible[state.highlighted].classList.add("highlighted");
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
  }

  // --- the model's suggestion and why -------------------------------------------------------
  const labelName = new Map(config.labels.map((l) => [l.key, l.name]));

  function paintSuggestion(suggestion) {
    const box = $("suggestion");
    box.hidden = !suggestion;
    buttons.forEach((b) => b.classList.toggle("suggested", !!suggestion && suggestion.labels.includes(b.dataset.key)));
    if (!suggestion) return;
    $("suggestion-label").textContent = suggestion.labels.map((k) => labelName.get(k) || k).join(", ");
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
  const names = (keys) => keys.map((k) => labelName.get(k) || k).join(", ");
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
    $("review-model-meta").textContent = model ? `${percent(model.confidence)} confident, version ${model.version}` : "";
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

  function paintProgress() {
    $("progress").textContent = `${state.done} / ${state.total} done`;
  }

  function fetchAhead() {
    if (!state.current || state.ahead || state.aheadRequest) return state.aheadRequest;
    state.aheadRequest = claim([state.current.id])
      .then((item) => { state.ahead = item; }, () => { state.ahead = null; })
      .finally(() => { state.aheadRequest = null; });
    return state.aheadRequest;
  }

  async function advance() {
    // A claim still in flight may be holding the next item: wait for it rather than claim
    // again, or it lands later as `ahead` and the item on screen comes round a second time.
    if (state.aheadRequest) await state.aheadRequest;
    if (state.ahead) {
      show(state.ahead);
      state.ahead = null;
    } else {
      show(await claim(state.current ? [state.current.id] : []));
    }
    fetchAhead(); // in the background while the expert reads
  }

  function leadTime() {
    return Math.round((performance.now() - state.shownAt)) / 1000;
  }

  async function submit() {
    if (state.busy) return;
    state.busy = true;
    try {
      await submitSelected();
    } finally {
      state.busy = false;
    }
  }

  async function submitSelected() {
    if (state.selected.size === 0 && !config.multiLabel) {
      say("Choose a label first.", true);
      return;
    }
    const labels = [...state.selected];
    if (state.editing) {
      const edited = state.editing;
      try {
        const annotation = await call("PATCH", `/annotations/${edited.id}/`, { labels, lead_time: leadTime() });
        remember(annotation);
        say(`Changed item ${edited.item} to ${labels.join(", ")}.`);
        show(state.current);
      } catch (err) {
        say(err.message, true);
      }
      return;
    }
    if (!state.current) return;
    const item = state.current;
    try {
      const body = { labels, lead_time: leadTime() };
      if (item.suggestion) body.suggested_labels = item.suggestion.labels;  // records whether it was accepted
      const annotation = await call("POST", `/items/${item.id}/annotations`, body);
      annotation.item_text = item.text;
      remember(annotation);
      state.done += annotation.item_done ? 1 : 0;
      say(`Labelled: ${labels.join(", ") || "(none)"}`);
      await advance();
    } catch (err) {
      say(err.message, true);
    }
  }

  async function skip() {
    if (!state.current || state.editing || state.busy) return;
    state.busy = true;
    try {
      await call("POST", `/items/${state.current.id}/skip`, { lead_time: leadTime() });
      say("Skipped.");
      await advance();
    } catch (err) {
      say(err.message, true);
    } finally {
      state.busy = false;
    }
  }

  // --- history, undo and edit ---------------------------------------------------------------
  function remember(annotation) {
    state.history = [annotation, ...state.history.filter((a) => a.id !== annotation.id)].slice(0, 10);
    paintHistory();
  }

  function paintHistory() {
    const list = $("history");
    list.replaceChildren();
    state.history.forEach((annotation) => {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "link";
      button.textContent = `${annotation.skipped ? "(skipped)" : annotation.labels.join(", ")} — ${annotation.item_text || "item " + annotation.item}`;
      button.addEventListener("click", () => edit(annotation));
      li.appendChild(button);
      list.appendChild(li);
    });
  }

  function edit(annotation) {
    state.editing = annotation;
    state.selected = new Set(annotation.labels);
    state.shownAt = performance.now();
    $("item").classList.add("editing");
    $("item-text").textContent = annotation.item_text || `item ${annotation.item}`;
    $("item-meta").textContent = "Editing an earlier label: Enter saves, Escape goes back.";
    paintSuggestion(null); // the suggestion explains the item underneath, not the one being edited
    paintReview(null);
    paintLabels();
  }

  // --- keyboard -----------------------------------------------------------------------------
  document.addEventListener("keydown", (event) => {
    const inFilter = event.target === $("label-filter");
    if (event.ctrlKey && event.code === "Space") {
      event.preventDefault();
      skip();
      return;
    }
    if (event.ctrlKey && event.key.toLowerCase() === "z") {
      event.preventDefault();
      if (state.history.length) edit(state.history[0]);
      return;
    }
    if (inFilter) {
      const visible = visibleButtons();
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        const step = event.key === "ArrowDown" ? 1 : -1;
        state.highlighted = Math.max(0, Math.min(visible.length - 1, state.highlighted + step));
        paintHighlight();
      } else if (event.key === "Enter") {
        event.preventDefault();
        const target = visible[Math.max(0, state.highlighted)];
        if (target) choose(target.dataset.key);
        $("label-filter").value = "";
        filterLabels();
        $("label-filter").blur();
      } else if (event.key === "Escape") {
        $("label-filter").value = "";
        filterLabels();
        $("label-filter").blur();
      }
      return;
    }
    if (event.target.tagName === "INPUT" || event.target.tagName === "TEXTAREA") return;
    if (event.key === "Enter") {
      event.preventDefault();
      submit();
    } else if (event.key === "Escape" && state.editing) {
      show(state.current);
    } else if (event.key === "/") {
      event.preventDefault();
      $("label-filter").focus();
    } else if (!event.ctrlKey && !event.metaKey && !event.altKey && byShortcut.has(event.key.toLowerCase())) {
      event.preventDefault();
      choose(byShortcut.get(event.key.toLowerCase()));
    }
  });
  $("label-filter").addEventListener("input", filterLabels);
  $("submit").addEventListener("click", submit);
  $("skip").addEventListener("click", skip);
  $("undo").addEventListener("click", () => state.history.length && edit(state.history[0]));
  setInterval(() => {
    if (state.current || state.editing) $("timer").textContent = `${Math.floor(leadTime())} s on this item`;
  }, 1000);

  // --- start --------------------------------------------------------------------------------
  (async function start() {
    try {
      const history = await call("GET", "/annotations/?mine=true");
      state.history = history.results.slice(0, 10);
      paintHistory();
      show(await claim([]));
      fetchAhead();
    } catch (err) {
      say(err.message, true);
    }
  })();
})();
