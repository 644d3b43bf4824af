// The models page while a version is queued or training: poll the versions API and move the
// progress bar, epoch, loss and ETA in place. Reload once a version's status changes (a run
// finished, failed or started), but never under an admin typing a reason: that would lose it.
(() => {
  const table = document.querySelector("table.versions");
  if (!table || table.dataset.busy !== "1") return;
  const POLL_MS = 2000;

  const typing = () => [...document.querySelectorAll("form input[name=reason]")].some((input) => input.value);

  // A run that has just started has no epoch, loss or ETA yet: say so rather than "epoch /, loss , ETA s".
  const progressText = (progress) => {
    const known = (value) => value !== null && value !== undefined && Number.isFinite(Number(value));
    if (![progress.epoch, progress.epochs, progress.loss, progress.eta_s].every(known)) return "starting…";
    return `epoch ${progress.epoch}/${progress.epochs}, loss ${Number(progress.loss).toFixed(3)}, ` +
      `ETA ${Math.round(progress.eta_s)} s`;
  };

  const show = (row, progress) => {
    const bar = row.querySelector(".bar > span");
    if (bar && progress.steps) bar.style.width = `${Math.round((100 * progress.step) / progress.steps)}%`;
    const text = row.querySelector(".progress-text");
    if (text) text.textContent = progressText(progress);
  };

  const poll = async () => {
    let changed = false;
    try {
      const response = await fetch(table.dataset.api, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (response.ok) {
        for (const version of (await response.json()).results) {
          const row = document.getElementById(`version-${version.number}`);
          if (!row || row.dataset.status !== version.status) changed = true;
          else if (version.status === "training") show(row, version.progress || {});
        }
      }
    } catch (error) {
      // The server restarting or the network blinking: try again at the next tick.
    }
    if (changed && !typing()) location.reload();
    else setTimeout(poll, POLL_MS);
  };
  setTimeout(poll, POLL_MS);
})();
