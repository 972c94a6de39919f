// Keyboard shortcuts for fast review. The pages work without this file; it only adds keys.
(function () {
  "use strict";
  function typing(event) {
    var tag = (event.target.tagName || "").toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || event.ctrlKey || event.metaKey || event.altKey;
  }
  function mover(rows, onEnter) {
    var index = -1;
    function show(next) {
      if (!rows.length) { return; }
      if (index >= 0) { rows[index].classList.remove("current"); }
      index = Math.max(0, Math.min(rows.length - 1, next));
      rows[index].classList.add("current");
      rows[index].scrollIntoView({ block: "nearest" });
    }
    return {
      key: function (key) {
        if (key === "j") { show(index + 1); return true; }
        if (key === "k") { show(index - 1); return true; }
        if (key === "Enter" && index >= 0 && onEnter) { onEnter(rows[index]); return true; }
        return false;
      },
      current: function () { return index >= 0 ? rows[index] : null; }
    };
  }
  document.addEventListener("DOMContentLoaded", function () {
    var list = document.querySelectorAll("#decision-list tbody tr[data-href]");
    list.forEach(function (row) {
      row.addEventListener("click", function (e) { if (e.target.tagName !== "A") { window.location = row.dataset.href; } });
    });
    var form = document.getElementById("review-form");
    var marks = form ? mover(form.querySelectorAll("tr.mark-row")) : null;
    var rows = list.length ? mover(list, function (row) { window.location = row.dataset.href; }) : null;
    var choice = { c: "correct", f: "false_flag", m: "missed" };
    document.addEventListener("keydown", function (event) {
      if (typing(event)) { return; }
      if (marks) {
        if (marks.key(event.key)) { event.preventDefault(); return; }
        var row = marks.current();
        if (row && choice[event.key]) {
          var radio = row.querySelector('input[value="' + choice[event.key] + '"]');
          if (radio) { radio.checked = true; }
          event.preventDefault();
          return;
        }
        if (event.key === "n") { document.getElementById("note").focus(); event.preventDefault(); return; }
        if (event.key === "s") { form.requestSubmit(); event.preventDefault(); return; }
      } else if (rows && rows.key(event.key)) {
        event.preventDefault();
      }
    });
    // Keys pressed before this point are lost; tests and scripted reviewers wait for the mark.
    document.documentElement.dataset.keys = "ready";
  });
})();
