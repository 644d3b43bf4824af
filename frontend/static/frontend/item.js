// The item page's "label similar" button says what it will do: "Label 3 items as Card arrival".
(function () {
  "use strict";
  const form = document.getElementById("label-similar");
  if (!form) return;
  const button = document.getElementById("label-similar-button");

  function update() {
    const count = form.querySelectorAll('input[name="items"]:checked').length;
    const chosen = [...form.querySelectorAll('select[name="labels"] option:checked, input[name="labels"]:checked')]
      .map((el) => (el.tagName === "OPTION" ? el.textContent : el.parentElement.textContent).trim());
    button.textContent = `Label ${count} item${count === 1 ? "" : "s"} as ${chosen.join(", ") || "…"}`;
    button.disabled = count === 0 || chosen.length === 0;
  }

  form.addEventListener("change", update);
  update();
})();
