// Copy buttons (the tokens page): <button data-copy="ID" data-copy-status="ID" hidden> copies the
// value of the element with id ID. Without JavaScript the button stays hidden and the token can
// still be selected by hand.

function say(element, text) {
  if (element) element.textContent = text;
}

for (const button of document.querySelectorAll("button[data-copy]")) {
  const source = document.getElementById(button.dataset.copy);
  const status = document.getElementById(button.dataset.copyStatus || "");
  if (!source) continue;
  button.hidden = false;
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(source.value);
      say(status, "Copied.");
    } catch {
      // No clipboard access (an insecure origin, a refused permission): select it for Ctrl+C.
      source.focus();
      source.select();
      say(status, "Selected: press Ctrl+C (⌘C) to copy.");
    }
  });
}
