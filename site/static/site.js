// Sorting and filtering for the tables. Without JavaScript the tables read as they are.
"use strict";

function cellValue(row, index, numeric) {
  const cell = row.children[index];
  const raw = cell.dataset.sort !== undefined ? cell.dataset.sort : cell.textContent.trim();
  if (!numeric) return raw.toLowerCase();
  const value = parseFloat(raw);
  return Number.isNaN(value) ? null : value;
}

function sortTable(table, header) {
  const index = Array.prototype.indexOf.call(header.parentNode.children, header);
  const numeric = header.dataset.type === "number";
  const ascending = header.getAttribute("aria-sort") !== "ascending";
  table.querySelectorAll("thead th").forEach((th) => th.removeAttribute("aria-sort"));
  header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  rows.sort((a, b) => {
    const x = cellValue(a, index, numeric);
    const y = cellValue(b, index, numeric);
    if (x === y) return 0;
    if (x === null) return 1;  // empty cells last in both directions
    if (y === null) return -1;
    return (x < y ? -1 : 1) * (ascending ? 1 : -1);
  });
  rows.forEach((row) => body.appendChild(row));
}

function applyFilters(container) {
  const table = document.getElementById(container.dataset.table);
  const hardware = container.querySelector('[data-filter="hardware"]').value;
  const rankedOnly = container.querySelector('[data-filter="ranked"]').checked;
  Array.from(table.tBodies[0].rows).forEach((row) => {
    const visible = (!hardware || row.dataset.hardware === hardware) &&
      (!rankedOnly || row.dataset.ranked === "yes");
    row.hidden = !visible;
  });
}

document.querySelectorAll("table.sortable").forEach((table) => {
  table.querySelectorAll("thead th").forEach((header) => {
    header.addEventListener("click", () => sortTable(table, header));
  });
});

document.querySelectorAll(".filters").forEach((container) => {
  container.hidden = false;
  container.querySelectorAll("select, input").forEach((control) => {
    control.addEventListener("change", () => applyFilters(container));
  });
});
