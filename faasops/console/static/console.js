// faasops console: progressive enhancement only. Every page works without this script; with it,
// the parts marked data-refresh follow (tasks, logs, chart) and error links jump to their line.
"use strict";

function refresh(box) {
  const interval = Number(box.dataset.interval || "3000");
  // Tasks: fast while an apply runs, slow otherwise (each refresh reads the state).
  const idle = Number(box.dataset.idleInterval || box.dataset.interval || "3000");
  const toggle = box.dataset.followToggle ? document.getElementById(box.dataset.followToggle) : null;
  const tick = async () => {
    if (toggle && !toggle.checked) { return schedule(); }
    let answer;
    try {
      answer = await fetch(box.dataset.refresh, { credentials: "same-origin", headers: { "Accept": "text/html" } });
    } catch (err) { return schedule(); }
    if (answer.status === 401 || answer.status === 404) { return; }  // signed out, or gone: stop polling
    if (!answer.ok) { return schedule(); }
    const wasRunning = box.querySelector('[data-running="1"]') !== null;
    // The fragment is rendered (and escaped) by the server's templates.
    box.innerHTML = await answer.text();
    const running = box.querySelector('[data-running="1"]') !== null;
    if (wasRunning && !running && box.dataset.reloadWhenDone) {
      // The apply finished: the page's deployed state (artifact, status) changed with it.
      window.location.assign(box.dataset.reloadWhenDone);
      return;
    }
    schedule();
  };
  const schedule = () => window.setTimeout(
    tick, box.querySelector('[data-running="1"]') || !box.querySelector("[data-running]") ? interval : idle);
  schedule();
}

function gotoLine(textarea, line) {
  const lines = textarea.value.split("\n");
  const start = lines.slice(0, line - 1).reduce((sum, text) => sum + text.length + 1, 0);
  textarea.focus();
  textarea.setSelectionRange(start, start + (lines[line - 1] || "").length);
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-refresh]").forEach(refresh);
  const textarea = document.getElementById("code");
  document.querySelectorAll("[data-goto-line]").forEach((link) => {
    link.addEventListener("click", (event) => {
      if (!textarea) { return; }
      event.preventDefault();
      gotoLine(textarea, Number(link.dataset.gotoLine));
    });
  });
  const result = document.getElementById("invoke-result");
  if (result) { result.focus(); }
});
