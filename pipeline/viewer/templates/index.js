// duplexsynth viewer index: filter the table by language, speaker count and phenomenon.
(function () {
  "use strict";
  var language = document.getElementById("f-language");
  var speakers = document.getElementById("f-speakers");
  var phenomenon = document.getElementById("f-phenomenon");
  var shown = document.getElementById("shown");
  var rows = Array.prototype.slice.call(document.querySelectorAll("tr.row"));
  function apply() {
    var count = 0;
    rows.forEach(function (row) {
      var keep = (!language.value || row.dataset.language === language.value) &&
        (!speakers.value || row.dataset.speakers === speakers.value) &&
        (!phenomenon.value || row.dataset.phenomena.split(" ").indexOf(phenomenon.value) >= 0);
      row.classList.toggle("hidden", !keep);
      if (keep) count += 1;
    });
    shown.textContent = count + " shown";
  }
  [language, speakers, phenomenon].forEach(function (select) { select.addEventListener("change", apply); });
  apply();
})();
