// Adds a "filter by name" field above every table marked data-filterable.
// The tables are complete without it: this only hides rows while a clerk types.
(function () {
  "use strict";
  function normalise(text) {
    return (text || "").normalize("NFKC").replace(/\s+/g, "").toLowerCase();
  }
  var tables = document.querySelectorAll("table[data-filterable]");
  Array.prototype.forEach.call(tables, function (table, index) {
    var rows = table.tBodies.length ? table.tBodies[0].rows : [];
    var id = "filter-" + (table.id || index);
    var box = document.createElement("div");
    box.className = "table-filter";
    var label = document.createElement("label");
    label.htmlFor = id;
    label.textContent = "発注者名で絞り込む";
    var hint = document.createElement("p");
    hint.className = "support-text";
    hint.id = id + "-hint";
    hint.textContent = "名前の一部を入力すると、その文字を含む行だけを表示します。";
    var input = document.createElement("input");
    input.type = "search";
    input.id = id;
    input.setAttribute("aria-describedby", hint.id + " " + id + "-status");
    input.autocomplete = "off";
    var status = document.createElement("p");
    status.id = id + "-status";
    status.className = "filter-status";
    status.setAttribute("role", "status");
    status.setAttribute("aria-live", "polite");
    box.appendChild(label);
    box.appendChild(hint);
    box.appendChild(input);
    box.appendChild(status);
    var wrapper = table.closest(".table-scroll") || table;
    wrapper.parentNode.insertBefore(box, wrapper);
    input.addEventListener("input", function () {
      var wanted = normalise(input.value);
      var shown = 0;
      Array.prototype.forEach.call(rows, function (row) {
        var match = wanted === "" || normalise(row.textContent).indexOf(wanted) !== -1;
        row.hidden = !match;
        if (match) { shown += 1; }
      });
      status.textContent = wanted === "" ? "" : rows.length + "団体のうち " + shown + "団体を表示しています。";
    });
  });
})();
