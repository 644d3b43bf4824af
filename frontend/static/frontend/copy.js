// A button with data-copy copies that text to the clipboard and says so; where the clipboard is
// refused (an insecure origin, a denied permission), it says to copy by hand, and selects the text.
// The button is rendered hidden and shown only once it works: a click before this script ran (or
// without scripts) would otherwise do nothing and say nothing.
(() => {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    const said = document.getElementById(button.dataset.status);
    const say = (text) => { if (said) said.textContent = text; };
    button.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(button.dataset.copy);
        say("Copied to the clipboard.");
      } catch (error) {
        const shown = document.getElementById(button.dataset.select);
        if (shown) window.getSelection().selectAllChildren(shown);
        say("Could not reach the clipboard: the token is selected, press Ctrl+C (⌘C) to copy it.");
      }
    });
    button.hidden = false;
  }
})();
