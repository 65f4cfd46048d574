// daemonviz: the few things htmx does not do by itself.
//  - websocket state shown on the page; re-sync the grid after a reconnect;
//  - apply pushed JSON frames: cells rebuilt from skeletons, the rest swapped by htmx;
//  - revision-gap detection on every pushed frame (re-fetch #grid, replay what came meanwhile);
//  - flash a cell whose restart count went up;
//  - re-sync when a pushed problem cell has no row on a filtered/collapsed page;
//  - keep every count (corner, group heads, tiles) in step with the rows shown;
//  - open the cell detail panel.
(function () {
  "use strict";
  var resyncing = false, buffered = [], everOpened = false, missTimer = null, helloTimer = null;
  var joined = [];                                         // ids of rows a frame just added
  var stats = window.daemonviz = { resyncs: 0, frames: 0, reasons: [] };

  function grid() { return document.getElementById("grid"); }
  function setWs(state, text) {
    var el = document.getElementById("ws-state");
    if (el) { el.dataset.state = state; el.textContent = text; }
  }

  // Replace #grid with a fresh rendering in one step. htmx's outerHTML swap inserts the new
  // grid before it removes the old one: for a moment every cell id exists twice, and
  // Chromium then drops its id -> element cache for all of them, so every later
  // getElementById of a cell walks the whole document (a 1,000-cell rollout frame took
  // ~0.4 s instead of ~40 ms). replaceWith never holds both.
  function replaceGrid(url) {
    return fetch(url, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) throw new Error("grid: HTTP " + r.status);
      return r.text();
    }).then(function (html) {
      var tpl = document.createElement("template");
      tpl.innerHTML = html;
      var fresh = tpl.content.querySelector("#grid"), g = grid();
      if (!fresh || !g) throw new Error("grid: no #grid in the response");
      g.replaceWith(fresh);
      htmx.process(fresh);
    });
  }

  function resync(why) {
    var g = grid();
    if (!g || resyncing) return;
    resyncing = true;
    stats.resyncs++;
    stats.reasons.push(why);
    setWs(document.getElementById("ws-state").dataset.state, "live: re-syncing…");
    replaceGrid(g.dataset.bodyUrl).then(function () {
      resyncing = false;
      var rev = +grid().dataset.revision, pending = buffered;
      buffered = [];
      pending.forEach(function (f) { if (f.rev > rev) apply(f); });
      if (document.getElementById("ws-state").dataset.state === "open") setWs("open", "live: connected");
    }, function () { resyncing = false; });
  }

  // Frames are JSON (dashboard/grid/frames.py). Decide what to do with one; true = apply it now.
  function accept(f) {
    var g = grid();
    if (!g) return false;
    if (f.hello) {                                         // hello from the consumer
      clearTimeout(helloTimer);
      if (f.rev > +g.dataset.revision) {
        // Changes between our render and the socket's join: wait for the frame carrying them.
        helloTimer = setTimeout(function () { if (+grid().dataset.revision < f.rev) resync("hello"); }, 2000);
      }
      return false;
    }
    if (resyncing) { buffered.push(f); return false; }
    if (f.epoch !== g.dataset.epoch || f.resync || f.base > +g.dataset.revision) {
      buffered.push(f);
      resync(f.resync ? "columns" : f.base > +g.dataset.revision ? "gap" : "epoch");
      return false;
    }
    if (f.rev <= +g.dataset.revision) return false;        // already in what we rendered
    g.dataset.revision = f.rev;
    stats.frames++;
    return true;
  }

  // A pushed cell is a skeleton of `_cell.html` (one per distinct state, reason and
  // restart count) with markers for what differs per cell; the names come from the cell
  // being replaced ("<ds> on <node>: …" in its aria-label, the node from its row), so a
  // frame does not repeat them. Markers as in dashboard/grid/fragments.py `_MARKS`.
  var MARK_ID = "\u0000I\u0000", MARK_NODE = "\u0000N\u0000", MARK_DS = "\u0000D\u0000", MARK_HREF = "\u0000H\u0000";
  var ESC = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;" };
  function esc(s) { return s.replace(/[&<>"']/g, function (c) { return ESC[c]; }); }
  function cellHtml(skel, old, cellUrl) {
    var row = old.closest("[data-node]"), node = row ? row.dataset.node : "";
    var label = old.getAttribute("aria-label") || "", cut = label.indexOf(" on " + node + ":");
    if (!node || cut < 1) return null;
    var ds = label.slice(0, cut);
    var href = cellUrl + "node=" + encodeURIComponent(node) + "&ds=" + encodeURIComponent(ds);
    return skel.split(MARK_ID).join(old.id).split(MARK_NODE).join(esc(node))
      .split(MARK_DS).join(esc(ds)).split(MARK_HREF).join(esc(href));
  }

  // Swap one accepted frame. Cells (the bulk of every frame) are replaced directly, parsed
  // in one go: htmx's out-of-band machinery does work quadratic in the number of elements
  // of one frame (every swap re-fires events over the whole settle list), which made a
  // 1,000-cell frame take seconds. Rows, heads and the summary still go through htmx.
  function swapFrame(f) {
    var skel = f.skel || [], olds = [], parts = [], ids = [], broken = false;
    (f.cells || []).forEach(function (c) {
      var old = document.getElementById(c[0]), s = skel[c[1]];
      if (!old) { onMiss("#" + c[0], s.indexOf(' data-p="1"') !== -1); return; }
      var html = cellHtml(s, old, f.cell_url);
      if (html === null) { broken = true; return; }
      olds.push(old);
      parts.push(html);
      ids.push(c[0]);
    });
    if (parts.length) {
      var tpl = document.createElement("template");
      tpl.innerHTML = parts.join("");
      Array.prototype.slice.call(tpl.content.children).forEach(function (fresh, i) {
        markChange(olds[i], fresh);
        olds[i].replaceWith(fresh);
      });
    }
    if (f.html) {
      htmx.swap(document.body, f.html, { swapStyle: "none" });
      joined.splice(0).forEach(placeRow);
    }
    if (broken) resync("unreadable cell");
    recount();
    if (f.summary) refreshSummary();
    document.dispatchEvent(new CustomEvent("daemonviz:applied", { detail: { cells: ids } }));
  }
  function apply(f) {
    if (accept(f)) swapFrame(f);
  }

  // Every count on the page follows every frame: rows join and leave, cells turn bad.
  // The server rendered the counts once; from then on they are read off the rows shown
  // (plus what collapsed groups left out, and the cluster's node total from the tiles).
  function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }
  function isProblem(row) {
    return !!row.querySelector('[data-p="1"], .rh .badge:not(.deleting)');
  }
  function recount() {
    var g = grid();
    if (!g) return;
    var rendered = 0, matching = 0;
    g.querySelectorAll("section.group").forEach(function (sec) {
      var rows = sec.querySelectorAll(".grows > [role=row][data-node]"), problems = 0;
      rows.forEach(function (r) {
        var p = isProblem(r);
        r.classList.toggle("prob", p);
        problems += p;
      });
      var hidden = +(sec.dataset.hidden || 0), total = rows.length + hidden;
      problems += +(sec.dataset.hiddenProblems || 0);
      rendered += rows.length;
      matching += total;
      var head = sec.querySelector('[data-count="group"]');
      if (head) {
        head.textContent = plural(total, "node");
        if (problems) {
          var b = document.createElement("b");
          b.className = "badtext";
          b.textContent = problems + " with problems";
          head.append(", ", b);
        }
      }
    });
    var corner = g.querySelector('[data-count="corner"]'), summary = document.getElementById("summary");
    var inCluster = summary ? +summary.dataset.nodes : matching;
    if (corner && (matching || corner.textContent.indexOf("no data") === -1)) {
      corner.textContent = rendered + " of " + plural(matching, "node") +
        (matching !== inCluster ? " (" + inCluster + " in cluster)" : "");
    }
    g.setAttribute("aria-rowcount", matching);
  }
  stats.recount = recount;

  // A filtered page's tiles count its own view: the server renders them on request, at
  // most once a second however fast frames come (the last frame always gets its fetch).
  var summaryTimer = null, summaryDue = false;
  function refreshSummary() {
    if (summaryTimer) { summaryDue = true; return; }
    var g = grid(), url = g && g.dataset.summaryUrl;
    if (!url) return;
    summaryTimer = setTimeout(function () {
      summaryTimer = null;
      if (summaryDue) { summaryDue = false; refreshSummary(); }
    }, 1000);
    fetch(url, { credentials: "same-origin" }).then(function (r) {
      return r.ok ? r.text() : null;
    }).then(function (html) {
      var old = document.getElementById("summary");
      if (!html || !old) return;
      var tpl = document.createElement("template");
      tpl.innerHTML = html.trim();
      var fresh = tpl.content.querySelector("#summary");
      if (fresh) { old.replaceWith(fresh); recount(); }
    }, function () { /* the next frame tries again */ });
  }

  document.addEventListener("htmx:wsBeforeMessage", function (e) {
    e.preventDefault();                                    // we apply it ourselves
    var f;
    try { f = JSON.parse(e.detail.message); } catch (err) { return; }
    apply(f);
  });
  document.addEventListener("htmx:wsConnecting", function () { setWs("connecting", "live: connecting…"); });
  document.addEventListener("htmx:wsOpen", function () {
    setWs("open", "live: connected");
    if (everOpened) resync("reconnect");                               // we may have missed frames
    everOpened = true;
  });
  document.addEventListener("htmx:wsClose", function () { setWs("closed", "live: reconnecting…"); });
  document.addEventListener("htmx:wsError", function () { setWs("closed", "live: reconnecting…"); });

  document.addEventListener("htmx:oobBeforeSwap", function (e) {
    var old = e.detail.target, fresh = e.detail.fragment && e.detail.fragment.firstElementChild;
    if (!fresh) return;
    if (old.id.indexOf("gr-") === 0) {
      // A joining row: drop a stale copy first (the node left and came back).
      var stale = document.getElementById(fresh.id);
      if (stale) stale.remove();
      joined.push(fresh.id);
    }
  });
  // A joining row lands at the end of its group (htmx "beforeend"); move it to where the
  // server would have sorted it by name (node-2 before node-10, as grid._natural). Under
  // "problems first" the order needs data the page lacks: the next re-sync places it.
  function placeRow(id) {
    var row = document.getElementById(id), g = grid();
    if (!row || !g || g.dataset.sort !== "name") return;
    for (var s = row.parentNode.firstElementChild; s; s = s.nextElementSibling) {
      if (s !== row && s.dataset.node && natural(s.dataset.node, row.dataset.node) > 0) {
        row.parentNode.insertBefore(row, s);
        return;
      }
    }
  }
  function natural(a, b) {
    var x = a.split(/(\d+)/), y = b.split(/(\d+)/);
    for (var i = 0; i < Math.min(x.length, y.length); i++) {
      if (x[i] === y[i]) continue;
      if (i % 2) { var d = +x[i] - +y[i]; if (d) return d; continue; }
      return x[i] < y[i] ? -1 : 1;
    }
    return x.length - y.length;
  }

  // A restart flashes the cell; any other change of state marks it briefly.
  function markChange(old, fresh) {
    if (+(fresh.dataset.r || 0) > +(old.dataset.r || 0)) fresh.classList.add("flash");
    else if (old.className !== fresh.className) fresh.classList.add("changed");
  }
  // An out-of-band piece (htmx) whose target is not on the page. Cells never go this way
  // (swapFrame reports their misses), so such a miss is never a problem cell.
  function onOobMiss(e) { onMiss(e.detail.target || "", false); }
  document.body && document.body.addEventListener("htmx:oobErrorNoTarget", onOobMiss);
  document.addEventListener("DOMContentLoaded", function () {
    document.body.addEventListener("htmx:oobErrorNoTarget", onOobMiss);
  });
  // A pushed piece found no target: a row in a group the page does not have yet (re-sync
  // soon), or a problem cell of a row this filtered / collapsed page does not show (re-sync
  // so the newly broken row appears). One pending re-sync serves every miss until it runs
  // (re-arming it on each miss starved it during a rollout, when misses never stop), and
  // problem re-syncs are spaced >= 10 s apart: each one re-renders a big grid.
  var missDue = 0, lastMissResync = 0;
  function onMiss(target, problem) {
    var g = grid();
    if (!g) return;
    var newGroup = target.indexOf("#gr-") === 0;
    if (!newGroup && !(problem && g.dataset.resyncOnMiss)) return;
    var due = Date.now() + (newGroup ? 200 : Math.max(3000, lastMissResync + 10000 - Date.now()));
    if (missTimer && missDue <= due) return;
    clearTimeout(missTimer);
    missDue = due;
    missTimer = setTimeout(function () {
      missTimer = null;
      lastMissResync = Date.now();
      resync(newGroup ? "new group" : "hidden problem");
    }, due - Date.now());
  }

  // "show N more" of a collapsed group: without JS a full page; with JS the grid alone.
  // The URL keeps the expanded groups (shareable); going back reloads that page.
  document.addEventListener("click", function (e) {
    var a = e.target.closest && e.target.closest("#grid a.expand[data-body]");
    if (!a || e.ctrlKey || e.metaKey || e.shiftKey) return;
    e.preventDefault();
    replaceGrid(a.dataset.body).then(function () {
      history.pushState({ daemonviz: 1 }, "", a.getAttribute("href"));
    }, function () { location.href = a.href; });
  });
  window.addEventListener("popstate", function (e) {
    if (grid() && !(e.state && e.state.htmx)) location.reload();
  });

  // Cell detail panel: links work without JS (a full page); with JS they fill the aside.
  document.addEventListener("click", function (e) {
    var a = e.target.closest && e.target.closest("#grid a.c");
    if (a && !e.ctrlKey && !e.metaKey && !e.shiftKey) {
      e.preventDefault();
      var panel = document.getElementById("detail");
      htmx.ajax("GET", a.getAttribute("href"), { target: "#detail", swap: "innerHTML" }).then(function () {
        panel.hidden = false;
        var h = panel.querySelector("h2");
        if (h) { h.tabIndex = -1; h.focus(); }
      });
      return;
    }
    if (e.target.closest && e.target.closest("[data-close-detail]")) closeDetail();
  });
  function closeDetail() {
    var panel = document.getElementById("detail");
    if (panel && !panel.hidden) { panel.hidden = true; panel.innerHTML = ""; }
  }
  document.addEventListener("keydown", function (e) { if (e.key === "Escape") closeDetail(); });
})();
