// Kopilka ops dashboard: the few things plain HTML cannot do.
"use strict";

// A block with data-live="/url" data-every="N" replaces its content with the url's every N s.
// A redirect (the session ended) reloads the page, which then shows the login form.
function keepLive(block) {
  const status = document.getElementById("live-status");
  const every = Number(block.dataset.every || 5) * 1000;
  async function refresh() {
    try {
      const response = await fetch(block.dataset.live, { credentials: "same-origin" });
      if (response.redirected || response.status === 401 || response.status === 403) {
        window.location.reload();
        return;
      }
      if (response.ok) {
        block.innerHTML = await response.text();
        if (status) status.textContent = "updated " + new Date().toLocaleTimeString();
      } else if (status) {
        status.textContent = "refresh failed (" + response.status + "), retrying";
      }
    } catch (error) {
      if (status) status.textContent = "offline, retrying";
    }
    setTimeout(refresh, every);
  }
  setTimeout(refresh, every);
}

// <button data-confirm="text"> asks before submitting its form.
function confirmBeforeSubmit(event) {
  const button = event.submitter;
  if (button && button.dataset.confirm && !window.confirm(button.dataset.confirm)) {
    event.preventDefault();
  }
}

// <input type=checkbox data-select-all="name"> ticks every checkbox called `name`.
function selectAll(event) {
  const box = event.target;
  if (!box.dataset || !box.dataset.selectAll) return;
  document.querySelectorAll('input[type=checkbox][name="' + box.dataset.selectAll + '"]')
    .forEach((other) => { other.checked = box.checked; });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-live]").forEach(keepLive);
  document.addEventListener("submit", confirmBeforeSubmit);
  document.addEventListener("change", selectAll);
});
