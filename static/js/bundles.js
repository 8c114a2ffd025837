// The bundles page: precompute progress.
(function () {
  // live progress without a reload; text only, never markup from the server
  const state = f => f.imported ? "imported as " + f.imported : f.finished ? "finished, not imported" : "computing or interrupted";
  setInterval(async () => {
    const r = await fetch(document.getElementById("folders").dataset.url);
    if (!r.ok) return;
    const table = document.getElementById("folders");
    while (table.rows.length > 1) table.deleteRow(1);
    for (const f of (await r.json()).folders) {
      const row = table.insertRow();
      for (const text of [f.name, `${f.done} / ${f.total}`, state(f)]) row.insertCell().textContent = text;
    }
  }, 3000);
})();
