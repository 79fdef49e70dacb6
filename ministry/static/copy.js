// Copy buttons for the commands on a page. Progressive enhancement: without
// this script the buttons stay hidden and the commands are plain, selectable
// text. The Clipboard API exists only on secure origins (https, localhost);
// a team index is often plain http, so the older execCommand path remains.
"use strict";

(function () {
  const status = document.getElementById("copy-status");

  function announce(button, state, message) {
    button.dataset.state = state;
    button.textContent = state === "copied" ? "Copied" : "Copy";
    if (status) status.textContent = message;
  }

  function selectText(element) {
    const range = document.createRange();
    range.selectNodeContents(element);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  async function copy(text, source) {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return;
    }
    selectText(source);
    if (!document.execCommand("copy")) throw new Error("copy refused");
  }

  for (const button of document.querySelectorAll("button[data-copy]")) {
    const source = document.getElementById(button.dataset.copy);
    if (!source) continue;
    const label = document.getElementById(button.getAttribute("aria-describedby"));
    const what = label ? label.textContent + ": " : "";
    button.hidden = false;
    button.addEventListener("click", async function () {
      try {
        await copy(source.textContent, source);
        announce(button, "copied", what + "copied to the clipboard.");
      } catch (error) {
        selectText(source);
        announce(button, "failed", what + "could not copy; the text is selected, press Ctrl+C.");
      }
      window.setTimeout(function () {
        if (button.dataset.state === "copied") announce(button, "ready", "");
      }, 4000);
    });
  }
})();
