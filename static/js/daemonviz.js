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
      applyWiden();
      recount();
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
      // The grid's body came fresh, the tiles did not: frames skipped while re-syncing
      // may have moved them (a node that joined meanwhile).
      refreshSummary();
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
    tallies(g);
    var corner = g.querySelector('[data-count="corner"]'), summary = document.getElementById("summary");
    var inCluster = summary ? +summary.dataset.nodes : matching;
    if (corner && (matching || corner.textContent.indexOf("no data") === -1)) {
      corner.textContent = rendered + " of " + plural(matching, "node") +
        (matching !== inCluster ? " (" + inCluster + " in cluster)" : "");
    }
    g.setAttribute("aria-rowcount", matching);
  }
  stats.recount = recount;
  // The page shows a whole revision: no re-sync under way or due (a row that joined into a
  // group the page does not have yet waits ~200 ms for one, and meanwhile the corner says
  // so: "39 of 39 nodes (40 in cluster)"). Tests and the benches read counts only then.
  stats.settled = function () { return !resyncing && !missTimer; };

  // Group heads carry per-column tallies: "27/27" healthy of targeted, and the count and
  // symbol of the worst problem class present ("3 ↻"). Read off the rows, like the counts.
  var BAD = /\bs-(missing|failed|unschedulable|init-error|image-error|config-error|crash-looping)\b/;
  var MIS = /\bs-misscheduled\b/;
  function tallies(g) {
    g.querySelectorAll("section.group:not(.collapsed)").forEach(function (sec) {
      var heads = sec.querySelectorAll(".gsum .gt");
      if (!heads.length) return;
      var n = heads.length, targeted = [], healthy = [], worst = [];
      for (var i = 0; i < n; i++) { targeted.push(0); healthy.push(0); worst.push({}); }
      sec.querySelectorAll(".grows > [role=row][data-node]").forEach(function (r) {
        var cells = r.querySelectorAll("[role=gridcell]");
        for (var i = 0; i < n && i < cells.length; i++) {
          var cl = cells[i].className;
          if (cl.indexOf("s-not-targeted") !== -1 || cl.indexOf("s-none") !== -1 || cl.indexOf("s-absent") !== -1) continue;
          targeted[i]++;
          if (cl.indexOf("s-healthy") !== -1 || cl.indexOf("s-outdated") !== -1) { healthy[i]++; continue; }
          var rank = BAD.test(cl) ? 3 : MIS.test(cl) ? 2 : 1, sym = cells[i].textContent;
          var w = worst[i];
          if (!w.rank || rank > w.rank) { w.rank = rank; w.by = {}; }
          if (rank === w.rank) w.by[sym] = (w.by[sym] || 0) + 1;
        }
      });
      for (i = 0; i < n; i++) {
        var text = targeted[i] ? healthy[i] + "/" + targeted[i] : "·", kind = targeted[i] ? "ok" : "idle";
        var w = worst[i], label = healthy[i] + " of " + targeted[i] + " targeted nodes healthy";
        if (w.rank) {
          var top = Object.keys(w.by).sort(function (a, b) { return w.by[b] - w.by[a]; })[0];
          text += "\n" + w.by[top] + " " + top;
          kind = w.rank === 3 ? "bad" : "prog";
          label += "; " + w.by[top] + " " + top;
        } else if (targeted[i]) text += " ✓";
        if (heads[i].textContent !== text) heads[i].textContent = text;
        heads[i].className = "gt " + kind;
        heads[i].title = label;
      }
    });
  }

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
      pageKey = location.pathname + location.search;   // going back to the old query reloads
    }, function () { location.href = a.href; });
  });
  var pageKey = location.pathname + location.search;
  window.addEventListener("popstate", function (e) {
    if (!grid()) return;
    if (location.pathname + location.search === pageKey) { fromHash(); return; }  // the cell panel
    if (!(e.state && e.state.htmx)) location.reload();
  });

  // Cell detail panel: links work without JS (a full page); with JS they fill the aside.
  // The open cell is in the URL (#cell=<node>&ds=<ns/name>): a shareable link, and the
  // back button closes the panel.
  var opener = null;
  // Every open and close takes a new number: a panel whose content arrives after the user
  // went on (Back twice in a row: open, then close) must not reopen it.
  var panelTurn = 0;
  function cellHref(node, ds) {
    var any = document.querySelector("#grid a.c");
    if (!any) return null;
    var base = any.getAttribute("href").split("?")[0];
    return base + "?node=" + encodeURIComponent(node) + "&ds=" + encodeURIComponent(ds);
  }
  function cellHash() {
    var m = /^#cell=/.test(location.hash) ? new URLSearchParams(location.hash.slice(1)) : null;
    return m && m.get("cell") && m.get("ds") ? { node: m.get("cell"), ds: m.get("ds") } : null;
  }
  function openCell(href, push) {
    var panel = document.getElementById("detail");
    if (!panel) return;
    var q = new URLSearchParams(href.split("?")[1] || "");
    if (push) {
      var hash = "#cell=" + encodeURIComponent(q.get("node")) + "&ds=" + encodeURIComponent(q.get("ds"));
      if (location.hash !== hash) history.pushState({ daemonvizCell: 1 }, "", pageKey + hash);
    }
    var turn = ++panelTurn;
    htmx.ajax("GET", href, { target: "#detail", swap: "innerHTML" }).then(function () {
      if (turn !== panelTurn) return;
      panel.hidden = false;
      var h = panel.querySelector("h2");
      if (h) { h.tabIndex = -1; h.focus(); }
    });
  }
  function fromHash() {
    var c = cellHash(), href = c && cellHref(c.node, c.ds);
    if (href) openCell(href, false); else hideDetail();
  }
  document.addEventListener("click", function (e) {
    var a = e.target.closest && e.target.closest("#grid a.c");
    if (a && !e.ctrlKey && !e.metaKey && !e.shiftKey) {
      e.preventDefault();
      opener = a.id;
      openCell(a.getAttribute("href"), true);
      return;
    }
    if (e.target.closest && e.target.closest("[data-close-detail]")) closeDetail();
    var copy = e.target.closest && e.target.closest("[data-copy]");
    if (copy) copyCommand(copy);
    var widen = e.target.closest && e.target.closest("#grid [data-widen]");
    if (widen) {
      try { localStorage.setItem("daemonviz.widenames", grid().classList.contains("widenames") ? "" : "1"); } catch (err) { /* private mode */ }
      applyWiden();
    }
  });
  function hideDetail() {
    panelTurn++;
    var panel = document.getElementById("detail");
    if (panel && !panel.hidden) { panel.hidden = true; panel.innerHTML = ""; }
    var back = opener && document.getElementById(opener);
    if (back) back.focus();
  }
  function closeDetail() {
    if (cellHash() && history.state && history.state.daemonvizCell) history.back();  // popstate hides it
    else {
      if (cellHash()) history.replaceState(null, "", pageKey);
      hideDetail();
    }
  }
  // kubectl commands: a copy button beside each (the text stays selectable without JS).
  function copyCommand(btn) {
    var pre = btn.parentNode.querySelector("code"), text = pre ? pre.textContent : "";
    var done = function () { btn.textContent = "copied"; setTimeout(function () { btn.textContent = "copy"; }, 1500); };
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(text).then(done, function () {});
    else {
      var r = document.createRange(); r.selectNodeContents(pre);
      var sel = window.getSelection(); sel.removeAllRanges(); sel.addRange(r);
      try { document.execCommand("copy"); done(); } catch (err) { /* selected: Ctrl+C */ }
    }
  }

  // Arrow keys move between cells (rows across groups, skipping cells without a link);
  // Enter opens the focused cell (it is a link); Esc closes the panel.
  function move(cell, key) {
    var row = cell.closest("[role=row]"), cells = Array.prototype.slice.call(row.querySelectorAll("[role=gridcell]"));
    var i = cells.indexOf(cell);
    if (key === "ArrowLeft" || key === "ArrowRight") {
      var step = key === "ArrowLeft" ? -1 : 1;
      for (var j = i + step; j >= 0 && j < cells.length; j += step) if (cells[j].tagName === "A") return cells[j];
      return null;
    }
    var rows = Array.prototype.slice.call(grid().querySelectorAll(".grows > [role=row][data-node]"));
    var k = rows.indexOf(row), dir = key === "ArrowUp" ? -1 : 1;
    for (k += dir; k >= 0 && k < rows.length; k += dir) {
      var c = rows[k].querySelectorAll("[role=gridcell]")[i];
      if (c && c.tagName === "A") return c;
    }
    return null;
  }
  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape") { closeDetail(); return; }
    var cell = e.target.closest && e.target.closest("#grid a.c");
    if (!cell || e.altKey || e.ctrlKey || e.metaKey) return;
    if (["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown"].indexOf(e.key) === -1) return;
    var next = move(cell, e.key);
    e.preventDefault();
    if (next) { next.focus(); next.scrollIntoView({ block: "nearest", inline: "nearest" }); }
  });

  // "Wider names": the first column's width, remembered per browser.
  function applyWiden() {
    var g = grid(), on = false;
    try { on = !!localStorage.getItem("daemonviz.widenames"); } catch (err) { /* private mode */ }
    if (!g) return;
    g.classList.toggle("widenames", on);
    var b = g.querySelector("[data-widen]");
    if (b) { b.setAttribute("aria-pressed", on ? "true" : "false"); b.textContent = on ? "⇔ narrower names" : "⇔ wider names"; }
    applyRowhead();
  }

  // The first column's width, dragged (or moved with the arrow keys) on the handle at the
  // corner's right edge; remembered in localStorage per signed-in user. A width set here
  // wins over "wider names"; Home (or a double click) goes back to the default.
  var RH_MIN = 160, RH_STEP = 16;
  function rowheadKey() { var g = grid(); return "daemonviz.rowhead." + ((g && g.dataset.user) || ""); }
  function savedRowhead() {
    try { return +localStorage.getItem(rowheadKey()) || 0; } catch (err) { return 0; }
  }
  function rhMax() { return Math.max(RH_MIN, Math.floor(window.innerWidth * 0.8)); }
  function applyRowhead(px) {
    var g = grid();
    if (!g) return;
    if (px === undefined) px = savedRowhead();
    var handle = g.querySelector("[data-resize]");
    if (px) {
      px = Math.max(RH_MIN, Math.min(rhMax(), Math.round(px)));
      g.style.setProperty("--rowhead", px + "px");
    } else g.style.removeProperty("--rowhead");
    if (handle) {
      var now = Math.round(g.querySelector(".corner").getBoundingClientRect().width);
      handle.setAttribute("aria-valuemin", String(RH_MIN));
      handle.setAttribute("aria-valuemax", String(rhMax()));
      handle.setAttribute("aria-valuenow", String(now));
      handle.setAttribute("aria-valuetext", now + " pixels" + (px ? "" : " (default)"));
    }
  }
  function setRowhead(px) {
    try {
      if (px) localStorage.setItem(rowheadKey(), String(Math.round(px)));
      else localStorage.removeItem(rowheadKey());
    } catch (err) { /* private mode: this page only */ }
    applyRowhead(px || 0);
  }
  function cornerWidth() { var c = grid().querySelector(".corner"); return c ? c.getBoundingClientRect().width : RH_MIN; }
  document.addEventListener("pointerdown", function (e) {
    var handle = e.target.closest && e.target.closest("#grid [data-resize]");
    if (!handle || e.button !== 0) return;
    e.preventDefault();
    var x0 = e.clientX, w0 = cornerWidth(), last = w0;
    handle.setPointerCapture(e.pointerId);
    handle.classList.add("dragging");
    function moveTo(ev) { last = w0 + ev.clientX - x0; applyRowhead(last); }
    function done() {
      handle.removeEventListener("pointermove", moveTo);
      handle.removeEventListener("pointerup", done);
      handle.removeEventListener("pointercancel", done);
      handle.classList.remove("dragging");
      setRowhead(Math.max(RH_MIN, Math.min(rhMax(), last)));
    }
    handle.addEventListener("pointermove", moveTo);
    handle.addEventListener("pointerup", done);
    handle.addEventListener("pointercancel", done);
  });
  document.addEventListener("dblclick", function (e) {
    if (e.target.closest && e.target.closest("#grid [data-resize]")) setRowhead(0);
  });
  document.addEventListener("keydown", function (e) {
    var handle = e.target.closest && e.target.closest("#grid [data-resize]");
    if (!handle) return;
    var step = e.shiftKey ? RH_STEP * 4 : RH_STEP, w = cornerWidth();
    if (e.key === "ArrowRight" || e.key === "ArrowUp") setRowhead(w + step);
    else if (e.key === "ArrowLeft" || e.key === "ArrowDown") setRowhead(Math.max(RH_MIN, w - step));
    else if (e.key === "Home") setRowhead(0);
    else if (e.key === "End") setRowhead(rhMax());
    else return;
    e.preventDefault();
  });
  function start() {
    applyWiden();
    recount();
    if (cellHash()) fromHash();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
