// The new-study form: the presets shown follow the chosen task.
(function () {
  // show only the presets of the chosen task; unchecked presets of other tasks are not sent
  const task = document.getElementById("task"), bundle = document.getElementById("bundle");
  function sync() {
    for (const fs of document.querySelectorAll("fieldset.presets")) {
      const on = fs.dataset.task === task.value;
      fs.hidden = !on;
      for (const box of fs.querySelectorAll("input")) box.disabled = !on;
    }
  }
  // what the chosen bundle's C maps show (its measured specificity), as text
  const cNote = () => { document.getElementById("c-note").textContent = bundle.selectedOptions[0].dataset.cNote; };
  bundle.addEventListener("change", () => { task.value = bundle.selectedOptions[0].dataset.task; sync(); cNote(); });
  task.addEventListener("change", sync);
  task.value = bundle.selectedOptions[0].dataset.task; sync(); cNote();
})();
