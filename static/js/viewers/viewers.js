// The viewers' controls (templates/viewers/): zoom an image, hide a map to see the object's
// own colours, pick which word's C map is shown. Every control is a <button>: reachable by
// Tab, pressed with Enter or Space. Without this script the pictures show, unzoomed.
(function () {
  document.querySelectorAll(".viewer-controls").forEach((controls) => {
    controls.hidden = false;
    const figure = controls.parentElement;
    const zoomable = figure.querySelector(".zoomable");
    const zoom = controls.querySelector(".zoom");
    if (zoom && zoomable) {
      zoom.addEventListener("click", () => {
        const on = zoomable.classList.toggle("zoomed");
        zoom.setAttribute("aria-pressed", on ? "true" : "false");
        zoom.textContent = on ? "Zoom out" : "Zoom in";
      });
    }
    const toggle = controls.querySelector(".toggle-map");
    if (toggle && zoomable) {
      const hide = toggle.textContent;
      toggle.addEventListener("click", () => {
        const off = zoomable.classList.toggle("map-off");
        toggle.setAttribute("aria-pressed", off ? "true" : "false");
        toggle.textContent = off ? hide.replace("Hide", "Show") : hide;
      });
    }
  });

  document.querySelectorAll(".word-picker").forEach((picker) => {
    const section = picker.parentElement;
    const views = section.querySelectorAll(".picked");
    const buttons = picker.querySelectorAll(".pick");
    const show = (name) => {
      views.forEach((v) => { v.hidden = v.dataset.view !== name; });
      buttons.forEach((b) => b.setAttribute("aria-pressed", b.dataset.pick === name ? "true" : "false"));
    };
    buttons.forEach((b) => b.addEventListener("click", () => show(b.dataset.pick)));
    picker.hidden = false;
    if (buttons.length) show(buttons[0].dataset.pick);
  });
})();
