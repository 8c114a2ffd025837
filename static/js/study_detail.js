// The study page: the live monitor of its groups and annotators, and the accuracy comparison.
(function () {
  // the live monitor: refreshed every 5 s without a reload; text only, never markup
  const monitorUrl = document.getElementById("monitor-conditions").dataset.url;
  function fill(table, rows, keys) {
    while (table.rows.length > 1) table.deleteRow(1);
    for (const r of rows) { const tr = table.insertRow(); for (const k of keys) tr.insertCell().textContent = r[k] ?? "–"; }
  }
  async function refresh() {
    const r = await fetch(monitorUrl);
    if (!r.ok) return;
    const data = await r.json();
    const stages = Object.fromEntries([...document.querySelectorAll("#monitor-conditions tr")].slice(1).map(tr => [tr.cells[0].textContent, tr.cells[1].textContent]));
    fill(document.getElementById("monitor-conditions"), data.conditions.map(c => ({...c, stages: stages[c.condition],
      target: c.target + (c.paused ? " (paused)" : "")})), ["condition", "stages", "enrolled", "active", "completed", "dropped", "declined", "screened_out", "target"]);
    fill(document.getElementById("monitor-annotators"), data.annotators.map(a => ({...a, progress: `${a.done} / ${a.of}`})),
      ["annotator", "condition", "state", "step", "progress", "minutes_since_seen", "median_seconds_per_item", "excluded"]);
    document.getElementById("monitor-at").textContent = "updated " + new Date(data.at).toLocaleTimeString();
  }
  refresh(); setInterval(refresh, 5000);
  const compare = document.getElementById("compare");
  if (compare) compare.addEventListener("submit", async (event) => {
    event.preventDefault();
    const q = new URLSearchParams(new FormData(compare));
    const r = await fetch(compare.dataset.url + "?" + q);
    const d = await r.json();
    document.getElementById("compare-result").textContent = r.ok
      ? (d.p_value === null ? "no annotators yet in one of the groups"
         : `difference ${(100 * d.difference).toFixed(1)} points, p = ${d.p_value.toFixed(3)} (${d.exact ? "exact" : d.n_permutations + " permutations"})`)
      : d.error;
  });
})();
