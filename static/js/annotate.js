// The annotator's item page: time on item, keyboard shortcuts, live second-order gradients.
(function () {
  const form = document.getElementById("answer");
  if (!form) return;
  const shown = performance.now();
  let sent = false;
  form.addEventListener("submit", (event) => {
    // a preview saves nothing; one submit per page: no double clicks
    if (sent || "preview" in form.dataset) { event.preventDefault(); return; }
    form.elements.seconds_on_item.value = ((performance.now() - shown) / 1000).toFixed(1);
    sent = true;
  });

  // 1–9 pick the n-th choice of the first group of radios; Enter submits when valid.
  document.addEventListener("keydown", (event) => {
    const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(event.target.tagName) && event.target.type !== "radio";
    // Enter on a page's own control (zoom, a word, a tab, a video) does what that control does
    const control = event.target.closest && event.target.closest("button:not([type=submit]), summary, a, video, audio");
    if (event.key === "Enter" && control && !form.contains(control)) return;
    if (event.key === "Enter" && !typing) {
      event.preventDefault();
      if (form.reportValidity()) form.requestSubmit();
      return;
    }
    if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
    const n = parseInt(event.key, 10);
    if (n >= 1 && n <= 9) {
      const first = form.querySelector("fieldset");
      const radios = first ? first.querySelectorAll("input[type=radio]") : [];
      if (radios[n - 1]) { radios[n - 1].checked = true; radios[n - 1].focus(); }
    }
  });

  const live = document.querySelector(".live-sog");
  if (!live) return;
  const status = live.querySelector(".live-status");
  live.querySelectorAll(".word").forEach((b) => b.addEventListener("click", () => {
    b.setAttribute("aria-pressed", b.getAttribute("aria-pressed") === "true" ? "false" : "true");
  }));
  live.querySelector(".show-sog").addEventListener("click", async () => {
    const picked = [...live.querySelectorAll(".word[aria-pressed=true]")].map((b) => b.dataset.pos);
    if (!picked.length) { status.textContent = "Pick at least one word."; return; }
    status.textContent = "Computing…";
    try {
      const r = await fetch(`${live.dataset.url}?positions=${picked.join(",")}`);
      const data = await r.json();
      if (!r.ok) { status.textContent = data.error || "Something went wrong; try again."; return; }
      const fig = document.getElementById("live-result");
      fig.querySelector("img").src = data.heatmap;
      fig.querySelector("figcaption").textContent = `C · where “${data.words.join(" ")}” interacts with the image`;
      fig.hidden = false;
      status.textContent = "";
    } catch (e) {
      status.textContent = "The server could not be reached; try again.";
    }
  });
})();
