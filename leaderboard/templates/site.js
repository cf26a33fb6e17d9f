// vsbench leaderboard site: sort a table by a column when its header is clicked (Enter or Space on a focused
// header too). Cells carry the raw value in data-sort; numeric columns (data-type="num") sort as numbers, missing
// values last in either direction. No server, no library: works from file:// and offline.
(function () {
  "use strict";
  function key(row, col) {
    var c = row.cells[col];
    if (!c) return "";
    return c.hasAttribute("data-sort") ? c.getAttribute("data-sort") : c.textContent.trim();
  }
  function sortBy(table, th) {
    var col = parseInt(th.getAttribute("data-col"), 10);
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    var numeric = th.getAttribute("data-type") === "num";
    Array.prototype.forEach.call(table.querySelectorAll("th[aria-sort]"), function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a, col), y = key(b, col);
      if (numeric) {
        var fx = x === "" ? NaN : parseFloat(x), fy = y === "" ? NaN : parseFloat(y);
        var nx = isNaN(fx), ny = isNaN(fy);
        if (nx || ny) return (nx ? 1 : 0) - (ny ? 1 : 0);
        return ascending ? fx - fy : fy - fx;
      }
      return ascending ? x.localeCompare(y) : y.localeCompare(x);
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
      Array.prototype.forEach.call(table.querySelectorAll("th[data-col]"), function (th) {
        th.tabIndex = 0;
        th.title = (th.title ? th.title + " - " : "") + "click to sort";
        th.addEventListener("click", function () { sortBy(table, th); });
        th.addEventListener("keydown", function (e) {
          if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortBy(table, th); }
        });
      });
    });
  });
})();
