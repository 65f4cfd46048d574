// daemonviz wall display: an operations-room TV, no controls, running for weeks.
//
// Each cluster panel is drawn from a bounded snapshot (dashboard/wall/aggregate.py) — first from the
// data embedded in the page, then from every `cluster` frame of the socket — and updated
// in place: elements are only created when the data's *shape* changes (a node joins, a
// group appears), and then the old ones are replaced, never appended to. Lists are capped
// to what fits. So the DOM size depends on the data, never on how long the page has run.
//
// The socket reconnects forever with capped exponential back-off and jitter; a watchdog
// closes it when the server's 5-second status heartbeat stops arriving. When the socket is
// down or a cluster goes stale, a banner says since when and the last known state stays.
// A revoked token (close code 4403, or a 404 for the page) shows "access revoked".
(function () {
  "use strict";
  var initial = JSON.parse(document.getElementById("wall-data").textContent);
  var STATES = {};
  initial.states.forEach(function (s) { STATES[s.code] = s; });
  var CONN = initial.connection_states;   // {SYNCED: "synced", ...}: ConnectionState, from the server
  var NONE = { code: "-", symbol: "", label: "no data", kind: "none" };
  var body = document.body;
  var WS_PATH = body.dataset.ws;
  var ROTATE_MS = Math.max(5, +body.dataset.rotation || 20) * 1000;
  var ANIM = !body.classList.contains("no-anim");
  var UNITS = 6;                 // a page is 6 units wide; a panel takes 2, 3 or 6
  var EXC_LINE_REM = 3;          // .wlist li height in wall.css
  var BACKOFF_BASE = 1000, BACKOFF_CAP = 30000;
  var WATCHDOG_MS = 20000;       // no frame for this long on an open socket: reconnect

  // Read-only counters for tests and curious operators (window.daemonvizWall).
  var stats = window.daemonvizWall = {
    frames: 0, applied: 0, rebuilds: 0, connects: 0, delays: [], state: "connecting", slugs: {}
  };

  var panels = [], bySlug = {};
  var pages = [], page = 0, rotateTimer = null;
  var ws = null, attempt = 0, lastFrame = 0, downSince = null, asOf = null, nextTry = 0;
  var retryTimer = null, revoked = false;
  var el = {
    grid: document.getElementById("wall"),
    banner: document.getElementById("wbanner"),
    conn: document.getElementById("wconn"),
    connText: document.querySelector("#wconn .wconn-text"),
    asof: document.getElementById("wasof"),
    clock: document.getElementById("wclock"),
    pages: document.getElementById("wpages"),
    revoked: document.getElementById("wrevoked")
  };

  // ------------------------------------------------------------------ helpers

  function mk(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function setText(e, text) { if (e.textContent !== text) e.textContent = text; }
  function setClass(e, cls) { if (e.className !== cls) e.className = cls; }
  function pad(n) { return n < 10 ? "0" + n : "" + n; }
  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  function hms(d) { return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()); }
  function when(d) {   // a time, with the date when it is not today
    if (!d) return "–";
    var now = new Date();
    if (d.toDateString() === now.toDateString()) return hms(d);
    return d.getDate() + " " + MONTHS[d.getMonth()] + " " + hms(d);
  }
  function parseTime(s) { if (!s) return null; var d = new Date(s); return isNaN(d) ? null : d; }
  function ago(d) {
    var s = Math.max(0, Math.round((Date.now() - d.getTime()) / 1000));
    if (s < 90) return s + " s";
    if (s < 5400) return Math.round(s / 60) + " min";
    if (s < 172800) return Math.round(s / 3600) + " h";
    return Math.round(s / 86400) + " days";
  }
  function rem() { return parseFloat(getComputedStyle(document.documentElement).fontSize) || 16; }

  // ------------------------------------------------------------------ panels

  function Panel(section, info) {
    this.el = section;
    this.slug = info.slug;
    this.data = null;
    this.shape = "";
    this.span = 3;
    this.slots = 0;
    this.visible = false;
    this.needsSize = true;
    this.body = section.querySelector(".wbody");
    this.mat = section.querySelector(".wmatrix");
    this.list = section.querySelector(".wlist");
    this.excCount = section.querySelector(".wexcn");
    this.stale = section.querySelector(".wstale");
    this.k = {};
    var ks = section.querySelectorAll("[data-k]");
    for (var i = 0; i < ks.length; i++) this.k[ks[i].dataset.k] = ks[i];
    this.stat = {};
    var ss = section.querySelectorAll("[data-s]");
    for (i = 0; i < ss.length; i++) this.stat[ss[i].dataset.s] = ss[i];
    this.nr = section.querySelector("[data-nr]");
    this.items = [];   // exception <li>s, reused
    this.cells = [];   // cells mode: [row][col] elements; groups mode: [row][col] {el, pct, bars}
    this.codes = [];
    this.heads = [];
    this.note = null;
    this.conn = null;  // the cluster's connection status, from the heartbeat
  }

  Panel.prototype.apply = function (data) {
    this.data = data;
    if (!data) return;
    this.headline(data.headline);
    var before = this.span;
    this.matrix();
    this.exceptions();
    this.span = spanOf(data);
    if (this.span !== before) layout();
    else if (this.needsSize && this.visible) this.size();
  };

  Panel.prototype.headline = function (h) {
    if (!h) return;
    var cov = h.coverage === null || h.coverage === undefined ? "–" : h.coverage.toFixed(1) + "%";
    if (h.coverage === 100) cov = "100%";
    setText(this.k.coverage, cov);
    var level = h.coverage === null ? "" : h.coverage >= 100 ? "cov-ok" : h.coverage >= 95 ? "cov-warn" : "cov-bad";
    this.el.classList.toggle("cov-ok", level === "cov-ok");
    this.el.classList.toggle("cov-warn", level === "cov-warn");
    this.el.classList.toggle("cov-bad", level === "cov-bad");
    var keys = ["missing", "crash_looping", "outdated", "nodes", "daemonsets", "nodes_not_ready"];
    // Never synced: zeros would read as "nothing missing".
    var st = this.conn, none = st && st.state !== CONN.SYNCED && st.state !== CONN.STALE && !h.nodes && !h.daemonsets;
    for (var i = 0; i < keys.length; i++) {
      if (this.k[keys[i]]) setText(this.k[keys[i]], none ? "–" : String(h[keys[i]] || 0));
    }
    setClass(this.stat.missing, h.missing ? "bad" : "");
    setClass(this.stat.crash_looping, h.crash_looping ? "bad" : "");
    setClass(this.stat.outdated, h.outdated ? "old" : "");
    this.nr.hidden = !h.nodes_not_ready;
  };

  function shapeOf(d) {
    var names = d.daemonsets.map(function (x) { return x[1]; }).join("\u0000");
    if (d.mode === "cells") return "c\u0001" + names + "\u0001" + d.node_names.join("\u0000");
    return "g\u0001" + names + "\u0001" + d.label + "\u0001" + d.groups.map(function (g) { return g[0]; }).join("\u0000");
  }

  Panel.prototype.matrix = function () {
    var d = this.data, shape = shapeOf(d);
    if (shape !== this.shape) {
      this.shape = shape;
      stats.rebuilds++;
      if (d.mode === "cells") this.buildCells(d); else this.buildGroups(d);
      this.needsSize = true;
    }
    if (d.mode === "cells") this.updateCells(d); else this.updateGroups(d);
    if (this.note) {
      setText(this.note, d.hidden_daemonsets ? "+" + d.hidden_daemonsets + " DaemonSets without problems not shown" : "");
      this.note.hidden = !d.hidden_daemonsets;
    }
  };

  // A row's label: a DaemonSet, or a static pod's manifest (third element set), marked so
  // it never reads as a DaemonSet.
  function rowLabel(ds) {
    var l = mk("span", ds[2] ? "wl wst" : "wl", ds[1]);
    if (ds[2]) {
      l.title = ds[0] + "/" + ds[1] + " — static pod: managed by the kubelet from a manifest file on the node, not by a DaemonSet";
      l.appendChild(mk("i", "wstk", "static"));
    }
    return l;
  }

  Panel.prototype.buildCells = function (d) {
    var m = mk("div", "wm cells"), cols = d.node_names.length;
    m.style.setProperty("--cols", cols);
    this.cells = []; this.codes = []; this.heads = [];
    for (var r = 0; r < d.daemonsets.length; r++) {
      m.appendChild(rowLabel(d.daemonsets[r]));
      var row = [];
      for (var c = 0; c < cols; c++) { var cell = mk("span", "wc k-none"); m.appendChild(cell); row.push(cell); }
      this.cells.push(row);
      this.codes.push("");
    }
    this.note = mk("p", "wnote");
    this.mat.replaceChildren(m, this.note);
    this.grid = m;
  };

  Panel.prototype.updateCells = function (d) {
    for (var r = 0; r < this.cells.length; r++) {
      var codes = d.cells[r] || "", old = this.codes[r];
      if (codes === old) continue;
      var row = this.cells[r];
      for (var c = 0; c < row.length; c++) {
        var code = codes.charAt(c);
        if (old && old.charAt(c) === code) continue;
        var s = STATES[code] || NONE;
        row[c].className = "wc k-" + s.kind;
        row[c].textContent = s.symbol;
      }
      this.codes[r] = codes;
    }
  };

  Panel.prototype.buildGroups = function (d) {
    var m = mk("div", "wm groups"), cols = d.groups.length;
    m.style.setProperty("--cols", cols);
    var label = d.label ? d.label.split("/").pop() : "nodes";
    m.appendChild(mk("span", "wcorner", label));
    this.heads = [];
    for (var c = 0; c < cols; c++) {
      var h = mk("span", "wgh"), name = mk("b", "", d.groups[c][0] || "(none)"), n = mk("span", "", "");
      h.appendChild(name); h.appendChild(n);
      m.appendChild(h);
      this.heads.push(n);
    }
    this.cells = [];
    for (var r = 0; r < d.daemonsets.length; r++) {
      m.appendChild(rowLabel(d.daemonsets[r]));
      var row = [];
      for (c = 0; c < cols; c++) {
        var cell = mk("div", "wg k-idle"), sym = mk("span", "wgs", ""), pct = mk("span", "wgp", "·");
        var bar = mk("span", "wbar"), bars = [];
        for (var b = 0; b < 4; b++) { var i = mk("i", "b" + b); bar.appendChild(i); bars.push(i); }
        cell.appendChild(sym); cell.appendChild(pct); cell.appendChild(bar);
        m.appendChild(cell);
        row.push({ el: cell, sym: sym, pct: pct, bars: bars, key: "" });
      }
      this.cells.push(row);
    }
    this.note = mk("p", "wnote");
    this.mat.replaceChildren(m, this.note);
    this.grid = m;
  };

  Panel.prototype.updateGroups = function (d) {
    for (var c = 0; c < this.heads.length; c++) setText(this.heads[c], d.groups[c][1] + " nodes");
    for (var r = 0; r < this.cells.length; r++) {
      var row = this.cells[r], tallies = d.tally[r] || [];
      for (c = 0; c < row.length; c++) {
        var t = tallies[c] || [0, 0, 0, 0, 0], cell = row[c], key = t.join(",");
        if (cell.key === key) continue;
        cell.key = key;
        var targeted = t[0] + t[1] + t[2] + t[3];
        var kind = targeted === 0 ? "idle" : t[3] ? "bad" : t[2] ? "prog" : t[1] ? "old" : "ok";
        setClass(cell.el, "wg k-" + kind);
        var text = "·";
        if (targeted) {
          var pct = Math.floor(1000 * (t[0] + t[1]) / targeted) / 10;
          text = pct === 100 ? "100%" : pct.toFixed(1) + "%";
        }
        setText(cell.pct, text);
        setText(cell.sym, kind === "bad" ? "✗" : kind === "prog" ? "…" : kind === "old" ? "↑" : "");
        for (var b = 0; b < 4; b++) {
          var grow = String(t[b]);
          if (cell.bars[b].style.flexGrow !== grow) cell.bars[b].style.flexGrow = grow;
        }
      }
    }
  };

  // Node names often share a domain (ip-10-0-3-7.eu-west-1.compute.internal): drop it when
  // every name shown has the same one.
  function shortener(lines) {
    var suffix = null;
    for (var i = 0; i < lines.length; i++) {
      for (var j = 0; j < lines[i][3].length; j++) {
        var n = lines[i][3][j], dot = n.indexOf(".");
        var s = dot > 0 ? n.slice(dot) : "";
        if (suffix === null) suffix = s;
        else if (suffix !== s) return function (x) { return x; };
      }
    }
    if (!suffix) return function (x) { return x; };
    return function (x) { return x.slice(0, x.length - suffix.length); };
  }

  Panel.prototype.exceptions = function () {
    var d = this.data, lines = d.exceptions || [], rollouts = d.rollouts || [];
    var total = (d.exception_lines || 0) + rollouts.length;
    var slots = this.slots || 6, want = [], short = shortener(lines);
    var st = this.conn, state = st ? st.state : CONN.SYNCED;
    if (!total && state !== CONN.SYNCED) {
      // A tick claims "all fine": only a synced cluster can say so. Before its first sync
      // there is no data at all; a stale one only has the last known state.
      var since = st && parseTime(st.since), at = since ? " since " + when(since) : "";
      var text = state === CONN.FAILED ? "Failed" + at + " — no data yet"
        : state === CONN.STALE ? "No exceptions in the last known state (stale" + at + ")"
        : state === CONN.CONNECTING || !d.daemonsets.length ? "No data yet"
        : "No exceptions in the last known state (" + state + at + ")";
      want.push(["nodata", "", text, "", "", "", ""]);
    } else if (!total) {
      want.push(["ok", "✓", "No exceptions", "", "", "", ""]);
    } else {
      var show = total > slots ? Math.max(0, slots - 1) : total;
      show = Math.min(show, lines.length + rollouts.length);
      // Rollouts that wait come first: one line names what holds a whole DaemonSet.
      for (var r = 0; r < rollouts.length && r < show; r++) {
        var y = rollouts[r], held = y[3].map(short), many = y[4];
        var whom = held.join(", ") + (many > held.length ? " +" + (many - held.length) : "");
        want.push(["rollout", "⏸", y[1], y[2] === "on-delete" ? "OnDelete: old template" : "rollout " + y[2],
          many === 1 ? "1 node" : many + " nodes", whom, y[5] ? "· " + y[5] : ""]);
      }
      show -= want.length;
      for (var i = 0; i < show; i++) {
        var x = lines[i], s = STATES[x[2]] || NONE, nodes = x[3].map(short), count = x[4];
        var who = nodes.join(", ") + (count > nodes.length ? " +" + (count - nodes.length) : "");
        want.push([s.kind, s.symbol, x[1], s.label, count === 1 ? "1 node" : count + " nodes", who, x[5] ? "· " + x[5] : ""]);
      }
      if (total > want.length) want.push(["more", "", "+" + (total - want.length) + " more", "", "", "", ""]);
    }
    setText(this.excCount, d.exception_cells ? "· " + d.exception_cells + " problem cells" : "");
    while (this.items.length > want.length) this.list.removeChild(this.items.pop().li);
    while (this.items.length < want.length) {
      var li = mk("li"), l1 = mk("div", "l1"), l2 = mk("div", "l2"), parts = [];
      ["sym", "ds", "st", "n"].forEach(function (c) { var e = mk(c === "ds" ? "b" : "span", c); l1.appendChild(e); parts.push(e); });
      ["nodes", "why"].forEach(function (c) { var e = mk("span", c); l2.appendChild(e); parts.push(e); });
      li.appendChild(l1); li.appendChild(l2);
      this.list.appendChild(li);
      this.items.push({ li: li, parts: parts });
    }
    for (i = 0; i < want.length; i++) {
      var w = want[i], item = this.items[i];
      setClass(item.li, w[0] === "more" ? "more" : "k-" + w[0]);
      for (var p = 0; p < 6; p++) setText(item.parts[p], w[p + 1]);
    }
  };

  // Fit the matrix into the panel and count the exception lines that fit below/beside it.
  Panel.prototype.size = function () {
    var d = this.data;
    if (!d || !this.grid) return;
    var W = this.body.clientWidth, H = this.body.clientHeight;
    if (!W || !H) { this.needsSize = true; return; }
    this.needsSize = false;
    var R = rem(), rows = Math.max(1, d.daemonsets.length), gap = Math.max(1, Math.floor(R * 0.1));
    var note = this.note && !this.note.hidden ? 1.4 * R : 0;
    var stackedH = H * (d.exception_lines ? 0.64 : 0.95) - note;
    var cols = d.mode === "cells" ? Math.max(1, d.node_names.length) : 1;
    function labelW(mw) { return Math.floor(Math.min(11 * R, mw * 0.3)); }
    function cellFor(mw, mh) {
      return Math.floor(Math.min(2.4 * R, (mw - labelW(mw) - cols * gap) / cols, (mh - rows * gap) / rows));
    }
    // Side by side on wide panels, unless a cell matrix gets much bigger cells stacked.
    var wide = W > 1.5 * H;
    if (wide && d.mode === "cells" && cellFor(W, stackedH) > 1.25 * cellFor(W * 0.6, H - note)) wide = false;
    this.body.classList.toggle("wide", wide);
    var mw = wide ? W * 0.6 : W, mh = wide ? H - note : stackedH;
    var lw = labelW(mw);
    var g = this.grid.style;
    g.setProperty("--lw", lw + "px");
    g.setProperty("--gap", gap + "px");
    if (d.mode === "cells") {
      // Square cells when they are large enough to carry a label's line; otherwise taller
      // than wide, so the DaemonSet names stay readable.
      var cw = Math.max(4, cellFor(mw, mh));
      var ch = Math.max(cw, Math.floor(Math.min(1.2 * R, (mh - rows * gap) / rows)));
      g.setProperty("--cell", cw + "px");
      g.setProperty("--ch", ch + "px");
      g.setProperty("--lf", Math.min(R, ch * 0.8) + "px");
      g.setProperty("--lh", ch + "px");
    } else {
      var hh = Math.round(2.6 * R);
      var rowh = Math.floor(Math.min(3 * R, (mh - hh - rows * gap) / rows));
      rowh = Math.max(8, rowh);
      g.setProperty("--hh", hh + "px");
      g.setProperty("--rowh", rowh + "px");
      g.setProperty("--gf", Math.min(1.3 * R, rowh * 0.55) + "px");
      g.setProperty("--lf", Math.min(1.05 * R, rowh * 0.62) + "px");
      g.setProperty("--lh", rowh + "px");
    }
    var slots = Math.max(1, Math.floor(this.list.clientHeight / (EXC_LINE_REM * R)));
    if (slots !== this.slots) { this.slots = slots; this.exceptions(); }
  };

  Panel.prototype.status = function (st) {
    if (!st) return;
    var changed = !this.conn || this.conn.state !== st.state;
    this.conn = st;
    if (changed && this.data) { this.headline(this.data.headline); this.exceptions(); }
    var stale = st.state !== CONN.SYNCED, since = parseTime(st.since);
    this.el.classList.toggle("is-stale", stale);
    this.stale.hidden = !stale;
    if (stale) {
      var what = st.state === "absent" ? "No collector is running for this cluster"
        : st.state === CONN.CONNECTING ? "Connecting to the cluster"
        : st.state === CONN.CRASHED ? "The collector crashed and is restarting"
        : "Cluster data " + st.state;
      setText(this.stale, what + (since ? " since " + when(since) + " (" + ago(since) + ")" : "") + " — showing the last known state");
    }
    if (this.k.last_update) setText(this.k.last_update, when(parseTime(st.last_update)));
  };

  function spanOf(d) {
    if (!d) return 2;
    var rows = d.daemonsets.length;
    if (d.mode === "cells") {
      var n = d.node_names.length;
      if (rows > 16 || n > 48) return 6;
      return n <= 20 && rows <= 10 ? 2 : 3;
    }
    return d.groups.length <= 6 && rows <= 16 ? 3 : 6;
  }

  // ------------------------------------------------------------------ pages and rotation

  function layout() {
    var next = [], cur = [], units = 0;
    panels.forEach(function (p) {
      if (units + p.span > UNITS && cur.length) { next.push(cur); cur = []; units = 0; }
      cur.push(p); units += p.span;
    });
    if (cur.length) next.push(cur);
    pages = next;
    if (page >= pages.length) page = 0;
    while (el.pages.children.length > (pages.length > 1 ? pages.length : 0)) el.pages.removeChild(el.pages.lastChild);
    while (pages.length > 1 && el.pages.children.length < pages.length) el.pages.appendChild(mk("i"));
    show(false);
  }

  function show(animate) {
    var visible = pages[page] || [], units = 0;
    visible.forEach(function (p) { units += p.span; });
    el.grid.style.setProperty("--units", units || 1);
    panels.forEach(function (p) {
      var on = visible.indexOf(p) !== -1;
      p.el.hidden = !on;
      if (on) p.el.style.setProperty("--span", p.span);
      if (on && !p.visible) p.needsSize = true;
      p.visible = on;
      if (ANIM && animate && on) { p.el.classList.remove("enter"); void p.el.offsetWidth; p.el.classList.add("enter"); }
      else if (!ANIM || !animate) p.el.classList.remove("enter");
    });
    for (var i = 0; i < el.pages.children.length; i++) setClass(el.pages.children[i], i === page ? "on" : "");
    sizeVisible(true);
  }

  function sizeVisible(all) {
    panels.forEach(function (p) { if (p.visible && (all || p.needsSize)) p.size(); });
  }

  function rotate() {
    if (pages.length > 1 && !revoked) { page = (page + 1) % pages.length; show(true); }
  }

  // ------------------------------------------------------------------ the socket

  function setConn(state, text) {
    stats.state = state;
    el.conn.dataset.state = state;
    setText(el.connText, text);
    body.classList.toggle("is-down", state === "down");
  }

  function connect() {
    if (revoked) return;
    stats.connects++;
    var opened = false, sock;
    setConn(downSince ? "down" : "connecting", downSince ? "reconnecting" : "connecting");
    try {
      sock = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + WS_PATH);
    } catch (e) { retry(false); return; }
    ws = sock;
    sock.onopen = function () { opened = true; lastFrame = Date.now(); };
    sock.onmessage = function (e) { if (ws === sock) { lastFrame = Date.now(); frame(e.data); } };
    sock.onclose = function (e) {
      if (ws !== sock) return;
      ws = null;
      if (e.code === 4403) { revoke(); return; }
      retry(opened);
    };
  }

  function retry(wasOpen) {
    if (revoked) return;
    if (downSince === null) downSince = new Date();
    if (wasOpen) attempt = 0;
    // Capped exponential back-off with "equal jitter": after a server restart, the TVs of
    // a building come back spread out rather than all at once.
    var exp = Math.min(BACKOFF_CAP, BACKOFF_BASE * Math.pow(2, attempt));
    var delay = Math.round(exp / 2 + Math.random() * exp / 2);
    attempt = Math.min(attempt + 1, 16);
    stats.delays.push(delay);
    if (stats.delays.length > 20) stats.delays.shift();
    nextTry = Date.now() + delay;
    setConn("down", "reconnecting");
    banner();
    // The handshake keeps failing: is the URL revoked (the page would be a 404)?
    if (!wasOpen && attempt >= 2) checkPage(false);
    clearTimeout(retryTimer);
    retryTimer = setTimeout(connect, delay);
  }

  function checkPage(reload) {
    fetch(location.href, { method: reload ? "GET" : "HEAD", cache: "no-store", credentials: "omit" })
      .then(function (r) {
        if (r.status === 404) revoke();
        else if (reload && r.ok) location.reload();
      }, function () { /* server unreachable: keep trying */ });
  }

  function revoke() {
    revoked = true;
    clearTimeout(retryTimer);
    clearInterval(rotateTimer);
    if (ws) { var s = ws; ws = null; try { s.close(); } catch (e) { /* already closed */ } }
    // The token no longer grants anything: the clusters' state leaves the screen too.
    el.grid.replaceChildren();
    panels = []; bySlug = {};
    el.banner.hidden = true;
    el.revoked.hidden = false;
    setConn("revoked", "access revoked");
  }

  function banner() {
    if (downSince === null || revoked) { el.banner.hidden = true; return; }
    var wait = Math.max(0, Math.ceil((nextTry - Date.now()) / 1000));
    var text = "Connection lost since " + when(downSince) + " (" + ago(downSince) + ") — showing the last known state" +
      (asOf ? " as of " + when(asOf) : "") + ". " + (ws ? "Reconnecting…" : "Retrying in " + wait + " s.");
    setText(el.banner, text);
    el.banner.hidden = false;
  }

  function frame(text) {
    var f;
    try { f = JSON.parse(text); } catch (e) { return; }
    stats.frames++;
    asOf = new Date();
    setText(el.asof, hms(asOf));
    var p;
    switch (f.t) {
      case "hello":
        attempt = 0;
        downSince = null;
        banner();
        setConn("live", "live");
        break;
      case "cluster":
        stats.slugs[String(f.slug)] = (stats.slugs[String(f.slug)] || 0) + 1;   // what the socket sent, for tests
        p = bySlug[f.slug];
        if (p) { p.apply(f.data); stats.applied++; }
        break;
      case "headline":
        p = bySlug[f.slug];
        if (p) p.headline(f.headline);
        break;
      case "status":
        for (var slug in f.clusters) {
          if (bySlug[slug]) bySlug[slug].status(f.clusters[slug]);
        }
        break;
      case "reload":
        checkPage(true);   // reload only once the page answers: never onto an error page
        break;
    }
  }

  function tick() {
    var now = new Date();
    setText(el.clock, hms(now));
    if (ws && ws.readyState === 1 && Date.now() - lastFrame > WATCHDOG_MS) {
      try { ws.close(); } catch (e) { /* ignore */ }   // half-open: start over
    }
    if (downSince !== null) banner();
  }

  // ------------------------------------------------------------------ sparklines

  // Each cluster's history (cells without a serving daemon, the last hours) from
  // /wall/<token>/sparklines/, drawn into the inline SVG of its header: the server sends
  // the path data, only attributes are set here (no inline style or script: the CSP).
  var SPARK_MS = 60000;
  function sparklines() {
    if (revoked) return;
    var url = location.pathname.replace(/\/?$/, "/") + "sparklines/";
    fetch(url, { cache: "no-store", credentials: "omit" })
      .then(function (r) {
        if (r.status === 404) { checkPage(false); return null; }
        return r.ok ? r.json() : null;
      })
      .then(function (data) {
        if (!data) return;
        stats.sparklines = (stats.sparklines || 0) + 1;
        var all = el.grid.querySelectorAll(".wallcluster");
        for (var i = 0; i < all.length; i++) {
          var s = data.clusters[all[i].dataset.slug], fig = all[i].querySelector("[data-spark]");
          if (s && fig) drawSpark(fig, s);
        }
      }, function () { /* server unreachable: the socket's banner says so; retry later */ });
  }
  function drawSpark(fig, s) {
    var svg = fig.querySelector("svg"), cap = fig.querySelector("figcaption");
    svg.querySelector(".nodata").setAttribute("width", String(s.recorded ? s.no_data : s.width));
    svg.querySelector(".area").setAttribute("d", s.recorded ? s.area : "");
    svg.querySelector(".line").setAttribute("d", s.recorded ? s.path : "");
    var hours = s.hours + " h";
    var text = !s.recorded ? "last " + hours + ": no data (nothing recorded)"
      : "gaps, last " + hours + ": now " + s.now + " · max " + s.peak;
    setText(cap, text);
    fig.classList.toggle("bad", !!s.now);
    fig.setAttribute("aria-label", text + " (cells without a serving daemon)");
    fig.title = "Cells without a serving daemon (missing, failing, not ready) over the last " + hours +
      "; hatched: nothing recorded. Zero is fully served.";
  }

  // ------------------------------------------------------------------ start

  initial.clusters.forEach(function (c) {
    var section = null, all = el.grid.querySelectorAll(".wallcluster");
    for (var i = 0; i < all.length; i++) if (all[i].dataset.slug === c.slug) section = all[i];
    if (!section) return;
    var p = new Panel(section, c);
    panels.push(p);
    bySlug[c.slug] = p;
    if (c.data) p.apply(c.data);
    p.span = spanOf(c.data);
    p.status(c.status);
  });
  layout();
  window.addEventListener("resize", function () { sizeVisible(true); });
  setInterval(tick, 1000);
  rotateTimer = setInterval(rotate, ROTATE_MS);
  tick();
  connect();
  sparklines();
  setInterval(sparklines, SPARK_MS);
})();
