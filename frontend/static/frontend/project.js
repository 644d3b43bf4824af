// Keeps the export list of the project page current while workers write the files.
(function () {
  "use strict";
  const list = document.querySelector("ul.exports");
  if (!list) return;
  const pending = () => [...list.querySelectorAll("li[data-export]")].filter((li) => ["queued", "running"].includes(li.dataset.status));

  async function refresh() {
    const open = pending();
    if (!open.length) return;
    for (const li of open) {
      const response = await fetch(`/api/projects/${list.dataset.project}/exports/${li.dataset.export}/`, { credentials: "same-origin" });
      if (!response.ok) continue;
      const job = await response.json();
      li.dataset.status = job.status;
      li.querySelector(".status").textContent = job.status;
      li.querySelector(".bar span").style.width = `${Math.round(job.progress * 100)}%`;
      if (job.status === "done" && job.download_url && !li.querySelector("a.download")) {
        const a = document.createElement("a");
        a.className = "download";
        a.href = job.download_url;
        const n = job.summary && job.summary.items_written !== undefined ? job.summary.items_written : job.total;
        a.textContent = `Download (${n} item${n === 1 ? "" : "s"})`;
        li.appendChild(a);
        const summary = document.createElement("span");
        summary.className = "summary muted";
        summary.textContent = job.summary_text;
        li.appendChild(summary);
      }
      if (job.error) {
        const span = document.createElement("span");
        span.className = "error";
        span.textContent = job.error;
        li.appendChild(span);
      }
    }
    setTimeout(refresh, 1000);
  }
  refresh();
})();

// Active learning: show encoding progress while a worker encodes; ask for a refresh on demand.
(function () {
  "use strict";
  const card = document.getElementById("active-learning");
  if (!card) return;
  const url = `/api/projects/${card.dataset.project}/active-learning`;
  const csrf = document.querySelector("[name=csrfmiddlewaretoken]");

  function paint(state) {
    document.getElementById("encode-bar").style.width = `${Math.round(state.encode_progress * 100)}%`;
    document.getElementById("encode-count").textContent = `${state.encode_done} / ${state.encode_total}`;
    const left = state.encode_seconds_left;
    document.getElementById("encode-status").textContent =
      left == null ? state.encode_status : `${state.encode_status}, about ${left < 90 ? `${Math.ceil(left)} s` : `${Math.ceil(left / 60)} min`} left`;
    if (state.last_refresh_at) {
      document.getElementById("refresh-line").textContent =
        `Last refresh: ${state.last_refresh_at.replace("T", " ").slice(0, 19)}, ${(state.last_refresh_seconds || 0).toFixed(2)} s, ` +
        `head fitted on ${state.head_trained_on} labels${state.refresh_requested || state.refresh_running ? " (another is on its way)" : ""}.`;
    }
    return state;
  }

  async function poll() {
    const response = await fetch(url, { credentials: "same-origin" });
    if (!response.ok) return;
    const state = paint(await response.json());
    if (["queued", "running"].includes(state.encode_status) || state.refresh_requested || state.refresh_running) {
      setTimeout(poll, 1000);
    }
  }

  const button = document.getElementById("refresh-now");
  if (button && csrf) {
    button.addEventListener("click", async () => {
      const response = await fetch(url, { method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": csrf.value } });
      if (response.ok) poll();
    });
  }
  if (["queued", "running"].includes(card.dataset.encoding)) poll();
})();
