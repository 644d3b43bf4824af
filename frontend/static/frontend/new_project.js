// The new project page: labels from pasted lines or a CSV column, with keys, shortcuts and colours
// filled in (the server's lists: labeller/label_defaults.py) and editable; a preview of an item
// and of the guidelines (rendered by the server's own Markdown filter, so exactly as shown later).
(() => {
  const $ = (id) => document.getElementById(id);
  const config = JSON.parse($("new-project-config").textContent);
  const text = $("labels-text");
  const tbody = $("label-table").querySelector("tbody");
  const csrf = document.querySelector("#new-project [name=csrfmiddlewaretoken]").value;

  // --- labels -------------------------------------------------------------------------------
  // A label posted back (the form was refused) keeps everything it had.
  let rows = config.labels.map((l) => ({ ...l, keyEdited: true, shortcutEdited: true, colorEdited: true }));
  if (rows.length && !text.value.trim()) text.value = rows.map((r) => r.name).join("\n");

  const keyFromName = (name) =>
    name.trim().toLowerCase().replace(/[^a-z0-9_.:-]+/g, "_").replace(/^_+|_+$/g, "").slice(0, 100) || "label";

  function fillDefaults() {
    const taken = new Set(rows.filter((r) => r.shortcutEdited && r.shortcut).map((r) => r.shortcut.toLowerCase()));
    const free = config.shortcuts.filter((c) => !taken.has(c));
    rows.forEach((r, i) => {
      if (!r.keyEdited) r.key = keyFromName(r.name);
      if (!r.shortcutEdited) r.shortcut = free.shift() || "";
      if (!r.colorEdited) r.color = config.palette[i % config.palette.length];
    });
  }

  function input(row, field, attrs) {
    const el = document.createElement("input");
    Object.assign(el, { name: `label_${field}`, value: row[field] || "" }, attrs);
    el.setAttribute("aria-label", `${attrs.title} of ${row.name}`);
    el.addEventListener("input", () => {
      row[field] = el.value;
      row[`${field}Edited`] = true;
      refresh();
    });
    row.inputs[field] = el;
    return el;
  }

  function render() {
    tbody.replaceChildren(...rows.map((row) => {
      row.inputs = {};
      const tr = document.createElement("tr");
      const name = document.createElement("th");
      name.scope = "row";
      name.textContent = row.name;
      const hidden = Object.assign(document.createElement("input"), { type: "hidden", name: "label_name", value: row.name });
      name.appendChild(hidden);
      const cells = [
        input(row, "key", { type: "text", maxLength: 100, spellcheck: false, title: "Key" }),
        input(row, "shortcut", { type: "text", maxLength: 1, size: 2, title: "Shortcut" }),
        input(row, "color", { type: "color", title: "Colour" }),
      ].map((el) => { const td = document.createElement("td"); td.appendChild(el); return td; });
      tr.append(name, ...cells);
      return tr;
    }));
    refresh();
  }

  // Write the filled-in values into the inputs nobody is typing in; flag a shortcut used twice.
  function refresh() {
    fillDefaults();
    const count = new Map();
    rows.forEach((r) => r.shortcut && count.set(r.shortcut.toLowerCase(), (count.get(r.shortcut.toLowerCase()) || 0) + 1));
    rows.forEach((r) => {
      for (const field of ["key", "shortcut", "color"]) {
        if (document.activeElement !== r.inputs[field]) r.inputs[field].value = r[field] || "";
      }
      const twice = r.shortcut && count.get(r.shortcut.toLowerCase()) > 1;
      r.inputs.shortcut.setCustomValidity(twice ? "another label has this shortcut" : "");
    });
  }

  function fromText() {
    const names = [...new Set(text.value.split(/\r?\n/).map((s) => s.trim()).filter(Boolean))];
    const old = new Map(rows.map((r) => [r.name, r]));
    rows = names.map((name) => old.get(name) || { name });
    render();
  }
  text.addEventListener("input", fromText);

  // --- labels from a CSV column -------------------------------------------------------------
  function parseCsv(source) {
    const out = [];
    let row = [], field = "", quoted = false;
    for (let i = 0; i < source.length; i++) {
      const c = source[i];
      if (quoted) {
        if (c === '"' && source[i + 1] === '"') { field += '"'; i++; }
        else if (c === '"') quoted = false;
        else field += c;
      } else if (c === '"') quoted = true;
      else if (c === ",") { row.push(field); field = ""; }
      else if (c === "\n" || c === "\r") {
        if (c === "\r" && source[i + 1] === "\n") i++;
        row.push(field); out.push(row); row = []; field = "";
      } else field += c;
    }
    if (field || row.length) { row.push(field); out.push(row); }
    return out;
  }

  let csvRows = [];
  const column = $("labels-csv-column");
  function fromColumn() {
    const i = Number(column.value);
    text.value = [...new Set(csvRows.slice(1).map((r) => (r[i] || "").trim()).filter(Boolean))].join("\n");
    fromText();
  }
  $("labels-csv").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (!file) return;
    csvRows = parseCsv(await file.text());
    const header = csvRows[0] || [];
    column.replaceChildren(...header.map((h, i) => new Option(h || `column ${i + 1}`, String(i))));
    const guess = header.findIndex((h) => /label|category|intent|class/i.test(h));
    column.value = String(Math.max(0, guess));
    column.hidden = $("labels-csv-column-label").hidden = false;
    fromColumn();
  });
  column.addEventListener("change", fromColumn);

  // --- what an item looks like --------------------------------------------------------------
  const SAMPLE = { string: "…", number: 12.5, integer: 3, boolean: true };
  function previewItem() {
    const textField = $("id_text_field").value.trim() || "text";
    const required = $("id_required_fields").value.split(/[\s,]+/).filter(Boolean);
    const types = {};
    document.querySelectorAll("#field-types .field-type").forEach((div) => {
      const name = div.querySelector("input").value.trim();
      if (name) types[name] = div.querySelector("select").value;
    });
    const item = { [textField]: "The text your experts read and label" };
    for (const f of [...required, ...Object.keys(types)]) if (!(f in item)) item[f] = SAMPLE[types[f] || "string"];
    const optional = Object.keys(types).filter((f) => f !== textField && !required.includes(f));
    $("item-preview").textContent = `${JSON.stringify(item)}\n\nAs CSV, the header row: ${Object.keys(item).join(",")}\n`
      + `Required: ${[textField, ...required.filter((f) => f !== textField)].join(", ")}`
      + (optional.length ? `\nOptional: ${optional.join(", ")}` : "");
  }
  $("new-project").addEventListener("input", (event) => {
    if (event.target.closest("#field-types") || ["id_text_field", "id_required_fields"].includes(event.target.id)) previewItem();
  });
  $("new-project").addEventListener("change", (event) => { if (event.target.closest("#field-types")) previewItem(); });
  $("add-field").addEventListener("click", () => {
    const last = document.querySelector("#field-types .field-type:last-child");
    const copy = last.cloneNode(true);
    copy.querySelector("input").value = "";
    last.after(copy);
    copy.querySelector("input").focus();
  });

  // --- guidelines preview -------------------------------------------------------------------
  let timer = null;
  async function previewGuidelines() {
    const body = new URLSearchParams({ guidelines: $("id_guidelines").value });
    const answer = await fetch(config.previewUrl, { method: "POST", body, headers: { "X-CSRFToken": csrf }, credentials: "same-origin" });
    if (answer.ok) $("guidelines-preview").innerHTML = await answer.text(); // sanitised by the server (bleach)
  }
  $("id_guidelines").addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(previewGuidelines, 250);
  });

  render();
  previewItem();
  if ($("id_guidelines").value.trim()) previewGuidelines();
})();
