// daemonviz: the few things htmx does not do by itself.
//  - websocket state shown on the page; re-sync the grid after a reconnect;
//  - revision-gap detection on every pushed frame (re-fetch #grid, replay what came meanwhile);
//  - flash a cell whose restart count went up;
//  - re-sync when a pushed problem cell has no row on a filtered/collapsed page;
//  - open the cell detail panel.
(function () {
  "use strict";
  var resyncing = false, buffered = [], everOpened = false, missTimer = null, helloTimer = null;
  var stats = window.daemonviz = { resyncs: 0, frames: 0, reasons: [] };

  function grid() { return document.getElementById("grid"); }
  function attr(text, name) {
    var m = new RegExp(name + '="([^"]*)"').exec(text);
    return m ? m[1] : null;
  }
  function setWs(state, text) {
    var el = document.getElementById("ws-state");
    if (el) { el.dataset.state = state; el.textContent = text; }
  }

  function resync(why) {
    var g = grid();
    if (!g || resyncing) return;
    resyncing = true;
    stats.resyncs++;
    stats.reasons.push(why);
    setWs(document.getElementById("ws-state").dataset.state, "live: re-syncing…");
    htmx.ajax("GET", g.dataset.bodyUrl, { target: "#grid", swap: "outerHTML" }).then(function () {
      resyncing = false;
      var rev = +grid().dataset.revision, pending = buffered;
      buffered = [];
      pending.forEach(function (msg) {
        if (+attr(msg, "data-revision") > rev) apply(msg);
      });
      if (document.getElementById("ws-state").dataset.state === "open") setWs("open", "live: connected");
    }, function () { resyncing = false; });
  }

  // Decide what to do with one pushed frame; true means "let htmx swap it now".
  function accept(msg) {
    var g = grid();
    if (!g) return false;
    if (msg.indexOf('data-hello="1"') !== -1) {             // hello from the consumer
      var h = +attr(msg, "data-revision");
      clearTimeout(helloTimer);
      if (h > +g.dataset.revision) {
        // Changes between our render and the socket's join: wait for the frame carrying them.
        helloTimer = setTimeout(function () { if (+grid().dataset.revision < h) resync("hello"); }, 2000);
      }
      return true;
    }
    var rev = +attr(msg, "data-revision"), base = +attr(msg, "data-base");
    if (resyncing) { buffered.push(msg); return false; }
    if (attr(msg, "data-epoch") !== g.dataset.epoch || attr(msg, "data-resync") || base > +g.dataset.revision) {
      buffered.push(msg);
      resync(attr(msg, "data-resync") ? "columns" : base > +g.dataset.revision ? "gap" : "epoch");
      return false;
    }
    if (rev <= +g.dataset.revision) return false;          // already in what we rendered
    g.dataset.revision = rev;
    stats.frames++;
    return true;
  }
  // Swap one accepted frame. Cells (the bulk of every frame) are replaced directly: htmx's
  // out-of-band machinery does work quadratic in the number of elements of one frame
  // (every swap re-fires events over the whole settle list), which made a 1,000-cell
  // frame take seconds. Rows, heads, the summary and the marker still go through htmx.
  function swapFrame(msg) {
    var tpl = document.createElement("template"), rest = [];
    tpl.innerHTML = msg;
    Array.prototype.slice.call(tpl.content.children).forEach(function (fresh) {
      if (!fresh.classList.contains("c") || !fresh.id) { rest.push(fresh.outerHTML); return; }
      var old = document.getElementById(fresh.id);
      if (!old) { onMiss({ detail: { content: fresh, target: "#" + fresh.id } }); return; }
      fresh.removeAttribute("hx-swap-oob");
      markChange(old, fresh);
      old.replaceWith(fresh);
    });
    if (rest.length) htmx.swap(document.body, rest.join(""), { swapStyle: "none" });
    document.dispatchEvent(new CustomEvent("daemonviz:applied", { detail: { cells: tpl.content.children.length - rest.length } }));
  }
  function apply(msg) {
    if (accept(msg)) swapFrame(msg);
  }

  document.addEventListener("htmx:wsBeforeMessage", function (e) {
    e.preventDefault();                                    // we swap it ourselves
    apply(e.detail.message);
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
      return;
    }
    if (old.classList.contains("c")) markChange(old, fresh);
  });
  // A restart flashes the cell; any other change of state marks it briefly.
  function markChange(old, fresh) {
    if (+(fresh.dataset.r || 0) > +(old.dataset.r || 0)) fresh.classList.add("flash");
    else if (old.className !== fresh.className) fresh.classList.add("changed");
  }
  document.body && document.body.addEventListener("htmx:oobErrorNoTarget", onMiss);
  document.addEventListener("DOMContentLoaded", function () {
    document.body.addEventListener("htmx:oobErrorNoTarget", onMiss);
  });
  function onMiss(e) {
    var g = grid(), content = e.detail.content, target = e.detail.target || "";
    if (!g) return;
    var newGroup = target.indexOf("#gr-") === 0;
    var hiddenProblem = g.dataset.resyncOnMiss && content && content.dataset && content.dataset.p;
    if (newGroup || hiddenProblem) {
      clearTimeout(missTimer);
      missTimer = setTimeout(function () { resync(newGroup ? "new group" : "hidden problem"); },
                           newGroup ? 200 : 3000);
    }
  }

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
