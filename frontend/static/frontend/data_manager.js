// The data manager: reads pages of items from the table API, keeps the filters in the address bar,
// the chosen columns in localStorage, and sends bulk actions on a selection or on the whole filter.
(function () {
  "use strict";
  const root = document.getElementById("data-manager");
  if (!root) return;
  const project = root.dataset.project;
  const canAct = root.dataset.canAct === "true";
  const api = `/api/projects/${project}/items`;
  const csrf = document.querySelector("[name=csrfmiddlewaretoken]").value;
  const form = document.getElementById("filters");
  const body = document.querySelector("#items tbody");
  const countText = document.getElementById("dm-count");
  const errorBox = document.getElementById("dm-error");
  const columnsKey = `labelloop.dataManager.columns.${project}`;
  const chooser = [...document.querySelectorAll("#column-chooser input")];

  let cursors = [null]; // the cursor of each page visited, to go back
  let page = 0;
  let nextCursor = null;
  let total = null;
  let selected = new Set();
  let allMatching = false;
  let applied = {}; // the filters the rows on screen were read with (not what is typed since)

  // --- filters <-> address bar ---------------------------------------------------------------

  function filters() {
    const out = {};
    for (const [name, value] of new FormData(form)) {
      if (value === "" || (name === "status" && value === "all")) continue;
      out[name] = value;
    }
    return out;
  }

  function fromAddress() {
    const params = new URLSearchParams(location.search);
    for (const element of form.elements) {
      if (element.name && params.has(element.name)) element.value = params.get(element.name);
    }
  }

  // --- columns -------------------------------------------------------------------------------

  function shownColumns() {
    const saved = JSON.parse(localStorage.getItem(columnsKey) || "null");
    return new Set(saved || chooser.filter((c) => c.dataset.default === "true").map((c) => c.value));
  }

  function applyColumns() {
    const shown = shownColumns();
    chooser.forEach((c) => { c.checked = shown.has(c.value); });
    document.querySelectorAll("#items [data-column]").forEach((cell) => { cell.hidden = !shown.has(cell.dataset.column); });
  }

  chooser.forEach((c) => c.addEventListener("change", () => {
    localStorage.setItem(columnsKey, JSON.stringify(chooser.filter((x) => x.checked).map((x) => x.value)));
    applyColumns();
  }));

  // --- rows ----------------------------------------------------------------------------------

  const fmt = {
    share: (v) => (v === null ? "" : v.toFixed(2)),
    date: (v) => (v ? v.replace("T", " ").slice(0, 16) : ""),
    yes: (v) => (v ? "yes" : ""),
  };

  function tags(cell, values) {
    for (const value of values) {
      const span = document.createElement("span");
      span.className = "tag";
      span.textContent = value;
      cell.appendChild(span);
    }
  }

  // "3 spans: PER ×2, LOC ×1", or "no spans" (a text with no entity is an answer too).
  function spanSummary(spans) {
    if (!spans.length) return "no spans";
    const counts = new Map();
    spans.forEach((s) => counts.set(s.label, (counts.get(s.label) || 0) + 1));
    const used = [...counts].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([label, n]) => `${label} ×${n}`);
    return `${spans.length} span${spans.length === 1 ? "" : "s"}: ${used.join(", ")}`;
  }

  function cellFor(key, row) {
    const td = document.createElement("td");
    td.dataset.column = key;
    switch (key) {
      case "text": td.className = "text"; td.textContent = row.text; break;
      case "annotations":
        // A span project's labels are spans {start, end, label}: shown as the labels used and how often.
        tags(td, row.annotations.map((a) => `${a.annotator || a.source}: ${row.spans ? spanSummary(a.labels)
          : a.labels.join(", ") || "—"}`));
        break;
      case "majority":
        tags(td, row.spans ? Object.entries(row.spans).map(([label, n]) => `${label} ×${n}`) : row.majority);
        break;
      case "predicted": tags(td, row.predicted); break;
      case "agreement": td.textContent = fmt.share(row.agreement); break;
      case "confidence": td.textContent = fmt.share(row.confidence); break;
      case "disagrees": td.textContent = row.disagrees ? "disagree" : ""; td.classList.toggle("flag", row.disagrees); break;
      case "needs_review": td.textContent = fmt.yes(row.needs_review); td.classList.toggle("flag", row.needs_review); break;
      case "likely_mislabelled":
        if (row.likely_mislabelled) {
          const flag = row.likely_mislabelled;
          td.textContent = `→ ${flag.suggested.join(", ") || "?"} (given label at ${fmt.share(flag.self_confidence)}`
            + (flag.by === "second_opinion" ? `; second opinion at ${fmt.share(flag.second_opinion)})` : ")");
          td.classList.add("flag");
          // The evidence: the most similar labelled items and their labels (the item page lists them with their text).
          const near = (flag.similar || []).map((n) => `item ${n.item}: ${n.labels.join(", ")} (${fmt.share(n.similarity)})`);
          if (near.length) {
            const list = document.createElement("small");
            list.className = "muted label-error-similar";
            list.textContent = ` similar: ${near.join("; ")}`;
            td.appendChild(list);
          }
        }
        break;
      case "is_eval": td.textContent = fmt.yes(row.is_eval); break;
      case "created_at": case "labelled_at": td.textContent = fmt.date(row[key]); break;
      default: td.textContent = row[key];
    }
    return td;
  }

  function render(rows) {
    body.replaceChildren();
    const keys = chooser.map((c) => c.value);
    for (const row of rows) {
      const tr = document.createElement("tr");
      tr.dataset.item = row.id;
      if (canAct) {
        const td = document.createElement("td");
        const box = document.createElement("input");
        box.type = "checkbox";
        box.className = "select-item";
        box.value = row.id;
        box.checked = allMatching || selected.has(row.id);
        box.disabled = allMatching;
        box.setAttribute("aria-label", `Select item ${row.id}`);
        td.appendChild(box);
        tr.appendChild(td);
      }
      const idCell = document.createElement("td");
      const link = document.createElement("a");
      link.href = row.url;
      link.textContent = `#${row.id}`;
      idCell.appendChild(link);
      tr.appendChild(idCell);
      keys.forEach((key) => tr.appendChild(cellFor(key, row)));
      body.appendChild(tr);
    }
    if (!rows.length) {
      const tr = document.createElement("tr");
      const td = document.createElement("td");
      td.colSpan = keys.length + 2;
      td.className = "muted";
      td.textContent = "No item matches these filters.";
      tr.appendChild(td);
      body.appendChild(tr);
    }
    applyColumns();
    paintSelection();
  }

  function showError(problems) {
    errorBox.hidden = false;
    errorBox.textContent = typeof problems === "string" ? problems
      : Object.entries(problems).map(([field, messages]) => `${field}: ${[].concat(messages).join(" ")}`).join("; ");
  }

  let latest = 0; // the last load asked for: an answer to an earlier one arriving after it is dropped

  async function load() {
    const ticket = ++latest;
    const params = new URLSearchParams(applied);
    if (cursors[page]) params.set("cursor", cursors[page]);
    const response = await fetch(`${api}/table?${params}`, { credentials: "same-origin", headers: { Accept: "application/json" } });
    const answer = await response.json().catch(() => ({ detail: `The server answered ${response.status}.` }));
    if (ticket !== latest) return;
    if (!response.ok) {
      showError(answer);
      return;
    }
    errorBox.hidden = true;
    nextCursor = answer.next_cursor;
    if (answer.count) total = answer.count;
    countText.textContent = total ? `${total.text} item${total.value === 1 ? "" : "s"} · page ${page + 1}` : "";
    document.getElementById("prev-page").disabled = page === 0;
    document.getElementById("next-page").disabled = !nextCursor;
    render(answer.results);
  }

  function restart() {
    cursors = [null];
    page = 0;
    total = null;
    selected = new Set();
    allMatching = false;
    applied = filters();
    const query = new URLSearchParams(applied).toString();
    history.replaceState(null, "", query ? `?${query}` : location.pathname);
    load();
  }

  form.addEventListener("submit", (event) => { event.preventDefault(); restart(); });
  form.addEventListener("reset", () => setTimeout(restart)); // after the form has cleared its fields
  form.querySelectorAll("select").forEach((s) => s.addEventListener("change", restart));
  document.getElementById("next-page").addEventListener("click", () => {
    if (!nextCursor) return;
    cursors[page + 1] = nextCursor;
    page += 1;
    load();
  });
  document.getElementById("prev-page").addEventListener("click", () => {
    if (page === 0) return;
    page -= 1;
    load();
  });

  // --- selection and bulk actions ------------------------------------------------------------

  function paintSelection() {
    if (!canAct) return;
    const bar = document.getElementById("bulk-bar");
    const all = document.getElementById("select-all-matching");
    const boxes = [...body.querySelectorAll(".select-item")];
    bar.hidden = !allMatching && selected.size === 0;
    document.getElementById("select-page").checked = boxes.length > 0 && boxes.every((b) => b.checked);
    if (allMatching) {
      document.getElementById("selection-text").textContent = `All ${total ? total.text : ""} items matching the filter are selected.`;
      all.textContent = "Clear the selection";
      all.hidden = false;
    } else {
      document.getElementById("selection-text").textContent = `${selected.size} selected.`;
      all.textContent = `Select all ${total ? total.text : ""} items matching the filter`;
      all.hidden = !total || total.value <= selected.size;
    }
  }

  if (canAct) {
    body.addEventListener("change", (event) => {
      if (!event.target.classList.contains("select-item")) return;
      const id = Number(event.target.value);
      if (event.target.checked) selected.add(id); else selected.delete(id);
      paintSelection();
    });
    document.getElementById("select-page").addEventListener("change", (event) => {
      body.querySelectorAll(".select-item").forEach((box) => {
        box.checked = event.target.checked;
        const id = Number(box.value);
        if (box.checked) selected.add(id); else selected.delete(id);
      });
      paintSelection();
    });
    document.getElementById("select-all-matching").addEventListener("click", () => {
      allMatching = !allMatching;
      selected = new Set();
      load();
    });
    document.querySelectorAll("#bulk-bar [data-action]").forEach((button) => button.addEventListener("click", () => act(button.dataset.action)));
  }

  async function act(action) {
    const request = { action };
    if (allMatching) {
      const chosen = { ...applied };
      delete chosen.sort;
      request.filter = chosen;
    } else {
      request.ids = [...selected];
    }
    const how_many = allMatching ? (total ? total.text : "all matching") : String(selected.size);
    if (action === "delete") {
      if (!confirm(`Delete ${how_many} item(s) with their labels? This cannot be undone.`)) return;
      request.confirm = true;
    }
    if (action === "export") request.format = document.getElementById("export-format").value;
    const response = await fetch(`${api}/bulk`, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf }, body: JSON.stringify(request),
    });
    const answer = await response.json().catch(() => ({ detail: `The server answered ${response.status}.` }));
    if (!response.ok) {
      showError(answer);
      return;
    }
    const result = document.getElementById("bulk-result");
    result.hidden = false;
    result.textContent = action === "export"
      ? "Export started: find it on the project page when it is ready."
      : `${{ requeue: "Sent back to the queue", mark_review: "Marked for review", delete: "Deleted" }[action]}: ${answer.affected} item(s).`;
    restart();
  }

  const findErrors = document.getElementById("find-label-errors");
  if (findErrors) {
    findErrors.addEventListener("click", async () => {
      const result = document.getElementById("label-errors-result");
      findErrors.disabled = true;
      result.textContent = "Looking for likely label errors…";
      const response = await fetch(`/api/projects/${project}/label-errors`, {
        method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": csrf },
      });
      const answer = await response.json().catch(() => ({ detail: `The server answered ${response.status}.` }));
      findErrors.disabled = false;
      if (!response.ok) {
        result.textContent = "";
        showError(answer);
        return;
      }
      result.textContent = `${answer.flagged} likely mislabelled of ${answer.checked} labelled item(s) checked.`;
      restart();
    });
  }

  fromAddress();
  applied = filters();
  applyColumns();
  load();
})();
