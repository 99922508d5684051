// The 保証料の目安 calculator. The page is complete without it (the worked examples are in
// tables); it only shows the form. It computes as hosho's FeeRules::fee does: the band the
// whole amount falls in gives the rate (hundred-millionths, exact integers), yen below one
// are cut off, and the result is at least the minimum.
(function () {
  "use strict";
  var box = document.querySelector(".fee-calculator");
  if (!box || typeof BigInt !== "function") { return; }
  var rules = JSON.parse(box.getAttribute("data-rules") || "{}");
  var kind = document.getElementById("fee-kind");
  var amount = document.getElementById("fee-amount");
  var result = document.getElementById("fee-result");

  function fee(id, yen) {
    var table = rules[id];
    if (!table) { return null; }
    var band = null;
    for (var i = 0; i < table.bands.length; i++) {
      var b = table.bands[i];
      if (b.up_to === null || yen <= BigInt(b.up_to)) { band = b; break; }
    }
    if (!band) { return null; }
    var value = yen * BigInt(band.units) / 100000000n;
    if (table.minimum !== null && value < BigInt(table.minimum)) { value = BigInt(table.minimum); }
    return value;
  }

  function yenText(value) {
    return value.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",") + "円";
  }

  function update() {
    var typed = (amount.value || "").normalize("NFKC").replace(/[,，\s円]/g, "");
    if (typed === "") { result.textContent = "保証金額を入力してください"; return; }
    if (!/^\d{1,15}$/.test(typed)) { result.textContent = "保証金額は数字で入力してください"; return; }
    var value = fee(kind.value, BigInt(typed));
    result.textContent = value === null ? "この金額の料率は設定されていません" : yenText(value);
  }

  window.hoshoFee = function (id, yen) {
    var value = fee(id, BigInt(yen));
    return value === null ? null : value.toString();
  };
  kind.addEventListener("change", update);
  amount.addEventListener("input", update);
  box.hidden = false;
})();
