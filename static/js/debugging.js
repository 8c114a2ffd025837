// The debugging report page: follow a run without a reload (text only, never markup);
// reload once it is over, to show it.
(function () {
  const run = document.getElementById("run");
  if (!run || (run.dataset.status !== "queued" && run.dataset.status !== "running")) return;
  const poll = setInterval(async () => {
    const r = await fetch(run.dataset.url);
    if (!r.ok) return;
    const s = await r.json();
    if (s.status !== "queued" && s.status !== "running") { clearInterval(poll); location.reload(); return; }
    document.getElementById("report-progress").value = s.progress;
    document.getElementById("report-percent").textContent = s.progress + " %";
    document.getElementById("report-stage").textContent = s.stage || "waiting for a worker";
  }, 2000);
})();
