// What the two labelling screens share (label.js classifies whole items, label_spans.js tags
// spans): the API calls, the queue with the next item fetched ahead, submit and skip guarded
// against a second press, the expert's last labels and their edit (Ctrl+Z), label buttons and
// their one- or two-key shortcuts, the progress line, the clock and the keys every screen has.
// A screen calls LabelloopScreen(config, state, hooks) once and passes what differs as hooks:
//   show(item)             put an item (or null: nothing left) on screen
//   edit(annotation)       put one of the expert's earlier annotations on screen to change it
//   submitNow()            send what is on screen (submit() guards it against a second press)
//   choose(key)            a label's shortcut was pressed
//   historyText(annotation, text)  the history row's words for one annotation
//   pendingHint()          the line under the labels while no two-key shortcut waits (optional)
//   keyInInput(event)      a key pressed in the screen's own input; true when handled (optional)
//   onKey(event)           a key the common handler left; true when handled (optional)
// All text from the server goes through textContent, never innerHTML.
(function () {
  "use strict";

  window.LabelloopScreen = function (config, state, hooks) {
    const csrf = document.querySelector("[name=csrfmiddlewaretoken]").value;
    const api = `/api/projects/${config.projectId}`;
    const $ = (id) => document.getElementById(id);

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
        // A span's problem may come nested (an object per span): shown as JSON, not "[object Object]".
        const problem = Object.entries(data).map(([field, msg]) => `${field}: ${[].concat(msg).map((m) => typeof m === "string" ? m : JSON.stringify(m)).join(" ")}`).join("; ");
        throw new Error(problem || `HTTP ${response.status}`);
      }
      return data;
    }

    const claim = (exclude) => call("POST", "/queue/next", { exclude });

    function say(text, isError) {
      $("status").textContent = text;
      $("status").classList.toggle("error", !!isError);
    }

    // --- labels and their shortcuts -------------------------------------------------------------
    function labelButton(label, title, onClick) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "label";
      button.dataset.key = label.key;
      button.dataset.shortcut = (label.shortcut || "").toLowerCase();
      button.title = title;
      button.style.setProperty("--label-color", label.color);
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = label.name;
      button.appendChild(name);
      if (label.shortcut) {
        const keys = document.createElement("span");
        keys.className = "keys";
        [...label.shortcut].forEach((k) => {
          const kbd = document.createElement("kbd");
          kbd.textContent = k;
          keys.appendChild(kbd);
        });
        button.appendChild(keys);
      }
      button.addEventListener("click", onClick);
      $("labels").appendChild(button);
      return button;
    }

    // Every label has keys that choose it (labeller/shortcuts.py): one key, or a prefix and a second
    // key when there are more labels than keys. The codes are prefix-free, so one key never waits.
    const byShortcut = new Map(config.labels.filter((l) => l.shortcut).map((l) => [l.shortcut.toLowerCase(), l.key]));
    const prefixes = new Set([...byShortcut.keys()].filter((code) => code.length === 2).map((code) => code[0]));

    // A key pressed outside any input: a label's shortcut, or the first key of a two-key one.
    function pressShortcut(key) {
      const typed = state.pendingKey + key.toLowerCase();
      if (byShortcut.has(typed)) {
        setPending("");
        hooks.choose(byShortcut.get(typed));
        return true;
      }
      if (!state.pendingKey && prefixes.has(typed)) {
        setPending(typed);
        return true;
      }
      if (state.pendingKey) {
        setPending("");  // no label has that second key: drop the sequence
        return true;
      }
      return false;
    }

    function setPending(prefix) {
      state.pendingKey = prefix;
      $("labels").classList.toggle("pending", !!prefix);
      document.querySelectorAll("#labels .label").forEach((b) => b.classList.toggle("continues", !!prefix && b.dataset.shortcut.startsWith(prefix)));
      $("pending-key").textContent = prefix ? `${prefix} … now the second key (Escape cancels)` : (hooks.pendingHint ? hooks.pendingHint() : "");
    }

    // --- the queue ------------------------------------------------------------------------------
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
        hooks.show(state.ahead);
        state.ahead = null;
      } else {
        hooks.show(await claim(state.current ? [state.current.id] : []));
      }
      fetchAhead(); // in the background while the expert reads
    }

    const leadTime = () => Math.round(performance.now() - state.shownAt) / 1000;

    async function submit() {
      if (state.busy) return;  // a second Enter must not send it again
      state.busy = true;
      try {
        await hooks.submitNow();
      } finally {
        state.busy = false;
      }
    }

    // Send the labels on screen: the change to an earlier annotation being edited (then `back()`
    // to the item underneath), else the item's annotation, with the suggestion shown when there was
    // one (`suggested`: it records whether it was accepted), then the next item. `saidEdited(edited)`
    // and `saidLabelled` are the status line's words.
    async function sendLabels(labels, { suggested, saidEdited, saidLabelled, back }) {
      if (state.editing) {
        const edited = state.editing;
        try {
          const annotation = await call("PATCH", `/annotations/${edited.id}/`, { labels, lead_time: leadTime() });
          annotation.item_text = edited.item_text || annotation.item_text;
          remember(annotation);
          say(saidEdited(edited));
          back();
        } catch (err) {
          say(err.message, true);
        }
        return;
      }
      if (!state.current) return;
      const item = state.current;
      try {
        const body = { labels, lead_time: leadTime() };
        if (suggested !== undefined) body.suggested_labels = suggested;
        const annotation = await call("POST", `/items/${item.id}/annotations`, body);
        annotation.item_text = item.text;
        remember(annotation);
        state.done += annotation.item_done ? 1 : 0;
        say(saidLabelled);
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

    const clip = (text) => (text.length > 60 ? text.slice(0, 59) + "…" : text);

    // Numbered by hand: a long entry wraps, and an <ol>'s own number sat by its last line.
    function paintHistory() {
      const list = $("history");
      list.replaceChildren();
      state.history.forEach((annotation, index) => {
        const li = document.createElement("li");
        const number = document.createElement("span");
        number.className = "number";
        number.textContent = `${index + 1}.`;
        const button = document.createElement("button");
        button.type = "button";
        button.className = "link";
        const text = annotation.item_text || "(text not loaded)";
        button.textContent = hooks.historyText(annotation, text);
        button.title = text;
        button.addEventListener("click", () => hooks.edit(annotation));
        li.append(number, button);
        list.appendChild(li);
      });
    }

    const editLast = () => state.history.length && hooks.edit(state.history[0]);

    // --- keyboard: the keys both screens have; the rest goes to the screen's onKey ----------------
    document.addEventListener("keydown", (event) => {
      if (event.ctrlKey && event.code === "Space") {
        event.preventDefault();
        skip();
        return;
      }
      if (event.ctrlKey && event.key.toLowerCase() === "z") {
        event.preventDefault();
        editLast();
        return;
      }
      if (hooks.keyInInput && hooks.keyInInput(event)) return;
      if (event.target.tagName === "INPUT" || event.target.tagName === "TEXTAREA") return;
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      if (event.key === "Escape" && state.pendingKey) {
        setPending("");
      } else if (event.key === "Enter") {
        event.preventDefault();
        setPending("");
        submit();
      } else if (hooks.onKey && hooks.onKey(event)) {
        // the screen's own key
      } else if (event.key.length === 1 && pressShortcut(event.key)) {
        event.preventDefault();
      }
    });
    $("submit").addEventListener("click", submit);
    $("skip").addEventListener("click", skip);
    $("undo").addEventListener("click", editLast);

    // The clock runs while an item (or an edit) is on screen, and is blank on "No more items".
    function paintTimer() {
      $("timer").textContent = state.current || state.editing ? `${Math.floor(leadTime())} s on this item` : "";
    }
    setInterval(paintTimer, 1000);

    // The expert's last labels, then the first item and the one after it.
    async function start() {
      try {
        const history = await call("GET", "/annotations/?mine=true");
        state.history = history.results.slice(0, 10);
        paintHistory();
        setPending("");
        hooks.show(await claim([]));
        fetchAhead();
      } catch (err) {
        say(err.message, true);
      }
    }

    return { $, call, say, labelButton, setPending, paintProgress, leadTime, sendLabels, clip, paintTimer, start };
  };
})();
