// An item's pages (templates/annotate/item_pages.html) as tabs, as the paper showed them:
// Overview, then Features, Prediction, Transformer, one at a time, the answer form beside
// them. The tabs are links: reachable by Tab, followed with Enter. A link to something on
// another page (a feature named in the prediction) opens that page at it. Without this
// script every page shows, one under the other.
(function () {
  const nav = document.querySelector("nav.tabs");
  if (!nav) return;
  const tabs = [...nav.querySelectorAll('a[href^="#"]')];
  const pages = tabs.map((a) => document.getElementById(a.getAttribute("href").slice(1))).filter(Boolean);
  if (pages.length < 2) return;

  const show = (page) => {
    pages.forEach((p) => { p.hidden = p !== page; });
    tabs.forEach((a) => {
      if (a.getAttribute("href") === "#" + page.id) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    });
  };
  const pageOf = (hash) => {
    let target = null;
    try { target = hash.length > 1 ? document.getElementById(decodeURIComponent(hash.slice(1))) : null; } catch (e) { /* a malformed hash */ }
    const page = target && pages.find((p) => p.contains(target));
    return page ? { page, target } : null;
  };

  document.addEventListener("click", (event) => {
    const link = event.target.closest && event.target.closest('a[href^="#"]');
    const found = link && pageOf(link.getAttribute("href"));
    if (!found) return;
    event.preventDefault();
    show(found.page);
    history.replaceState(null, "", link.getAttribute("href"));
    found.target.scrollIntoView({ block: "start" });
  });

  const start = pageOf(location.hash);
  show(start ? start.page : pages[0]);
  if (start) start.target.scrollIntoView({ block: "start" });
  nav.classList.add("tabbed");
})();
