/* peak serve: keeps a deployment's page current from its JSON twin (/api/live/...).
   Values are written with textContent only (never as HTML), formatted exactly as the
   server formats them (peakdsl/serve/render.py FORMATS), every `data-refresh` seconds. */
"use strict";
(function () {
  const root = document.querySelector("[data-live-api]");
  if (!root) { return; }
  const api = root.dataset.liveApi;
  const every = Math.max(0.5, Number(root.dataset.refresh) || 5) * 1000;
  const DASH = "\u2014";

  function number(value) {
    if (value === "inf") { return Infinity; }
    if (value === "-inf") { return -Infinity; }
    return typeof value === "number" ? value : null;
  }
  function grouped(x, min, max) {
    return x.toLocaleString("en-US", { minimumFractionDigits: min, maximumFractionDigits: max });
  }
  function finite(format) {
    return function (value) {
      const x = number(value);
      if (x === null) { return value === null || value === undefined ? DASH : String(value); }
      if (Number.isNaN(x)) { return DASH; }
      if (!Number.isFinite(x)) { return x > 0 ? "\u221e" : "-\u221e"; }
      return format(x);
    };
  }
  function time(value) {
    const x = number(value);
    if (x === null || !Number.isFinite(x)) { return DASH; }
    return new Date(x).toISOString().slice(0, 19).replace("T", " ");
  }
  const FORMATS = {
    text: function (v) { return v === null || v === undefined || v === "" ? DASH : String(v); },
    money: finite(function (x) { return grouped(x, 2, 2); }),
    signed: finite(function (x) { return (x >= 0 ? "+" : "-") + grouped(Math.abs(x), 2, 2); }),
    pct: finite(function (x) { return (100 * x).toFixed(1) + "%"; }),
    num: finite(function (x) { return grouped(x, 0, 4); }),
    qty: finite(function (x) { return grouped(x, 0, 8); }),
    time: time,
    kill: function (v) { return v === null || v === undefined ? DASH : (v ? "ENGAGED" : "released"); }
  };

  function pick(doc, path) {
    return path.split(".").reduce(function (at, key) {
      return at !== null && typeof at === "object" ? at[key] : undefined;
    }, doc);
  }
  function show(value, format) { return (FORMATS[format] || FORMATS.text)(value); }
  function isNumeric(format) { return format !== "text" && format !== "time"; }

  function fill(body, items) {
    const columns = body.dataset.cols.split(",").map(function (c) { return c.split(":"); });
    const rows = [];
    if (!Array.isArray(items) || items.length === 0) {
      const tr = document.createElement("tr");
      const td = document.createElement("td");
      tr.className = "none";
      td.colSpan = columns.length;
      td.textContent = "none";
      tr.appendChild(td);
      rows.push(tr);
    } else {
      items.forEach(function (item) {
        const tr = document.createElement("tr");
        columns.forEach(function (column) {
          const td = document.createElement("td");
          td.textContent = show(item[column[0]], column[1]);
          if (isNumeric(column[1])) { td.className = "num"; }
          tr.appendChild(td);
        });
        rows.push(tr);
      });
    }
    body.replaceChildren.apply(body, rows);
  }

  function apply(doc) {
    root.querySelectorAll("[data-bind]").forEach(function (el) {
      const value = pick(doc, el.dataset.bind);
      el.textContent = show(value, el.dataset.format || "text");
      if (el.dataset.format === "kill") { el.dataset.state = value ? "on" : "off"; }
    });
    root.querySelectorAll("[data-show]").forEach(function (el) {
      const value = pick(doc, el.dataset.show);
      el.hidden = value === null || value === undefined || value === "";
    });
    root.querySelectorAll("tbody[data-rows]").forEach(function (body) {
      fill(body, pick(doc, body.dataset.rows));
    });
  }

  const state = document.getElementById("live-state");
  function refresh() {
    fetch(api, { credentials: "same-origin", cache: "no-store",
                 headers: { "Accept": "application/json" } })
      .then(function (answer) { return answer.json(); })
      .then(function (doc) { apply(doc); state.textContent = ""; })
      .catch(function (error) { state.textContent = "(not updated: " + error.message + ")"; })
      .finally(function () { window.setTimeout(refresh, every); });
  }
  window.setTimeout(refresh, every);
}());
