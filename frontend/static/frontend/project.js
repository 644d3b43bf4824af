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
        a.textContent = `Download (${job.total} items)`;
        li.appendChild(a);
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
