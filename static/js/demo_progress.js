// The home page while the demo is prepared: each step's state and, once ready, its links.
// Text and links the server built, set as text and href only (never markup).
(function () {
  const card = document.getElementById("demo-preparation");
  if (!card) return;
  const link = (href, text, cls) => {
    const a = document.createElement("a");
    a.href = href; a.textContent = text; a.className = cls;
    return a;
  };
  const timer = setInterval(async () => {
    let body;
    try {
      const r = await fetch(card.dataset.url, {credentials: "same-origin"});
      if (!r.ok) return;
      body = await r.json();
    } catch (e) { return; }  // the server restarting: try again at the next tick
    const p = body.preparation;
    if (!p) return;
    if (body.engine_demo && card.dataset.engineDemo === "0") { location.reload(); return; }
    const list = document.getElementById("demo-steps");
    list.replaceChildren(...p.steps.map(step => {
      const li = document.createElement("li");
      li.className = "step-" + step.status;
      const title = document.createElement("strong");
      title.textContent = step.title;
      li.append(title, " · ");
      const status = document.createElement("span");
      status.className = "status"; status.textContent = step.status;
      li.append(status);
      if (step.detail) {
        const detail = document.createElement("span");
        detail.className = "note"; detail.textContent = step.detail;
        li.append(" ", detail);
      }
      for (const l of step.links) {
        li.append(document.createElement("br"));
        if (l.annotate) li.append(link(l.annotate, "annotate (new annotator)", "annotate-link"), " · ");
        li.append(link(l.results, "results", "results-link"));
      }
      return li;
    }));
    const headline = document.getElementById("demo-headline");
    if (p.state === "ready") {
      headline.textContent = "The demo's studies";
      document.getElementById("demo-explanation").textContent =
        "Every study is open. The researcher's password is in the console that started the demo.";
      clearInterval(timer);
    } else if (p.state === "interrupted") {
      headline.textContent = "The demo's preparation was interrupted";
      document.getElementById("demo-explanation").textContent =
        "Run scripts/demo.sh again: it goes on where it stopped.";
      clearInterval(timer);
    } else {
      headline.textContent = `Preparing the demo: ${p.ready} of ${p.total} ready`;
    }
  }, 3000);
})();
