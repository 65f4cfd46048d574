"""The wall display in headless Chromium: a TV page at 1080p and 4K (screenshots in
tests/artifacts/), nothing clipped, animations off on request, a dropped socket's banner
with the last state kept, a revoked token, and a 10,000-update soak whose JS heap and DOM
size must stay flat."""

from __future__ import annotations

import json
import os
import re
import sys
import time

import pytest

from dashboard.wall.aggregate import MAX_EXCEPTIONS
from tests.browser.conftest import ARTIFACTS, CHROMIUM
from tests.helpers.daphne import manage, running_daphne

pytestmark = pytest.mark.browser

DEMO = "Demo (simulated)"


def _new_wall(page, server, name, *, animations=True, theme="dark") -> str:
    """Create a wall display of the demo cluster in the admin; its URL (shown once)."""
    page.goto(f"{server}/admin/dashboard/walldisplay/add/")
    page.fill("#id_name", name)
    page.select_option("#id_clusters_from", label=DEMO)
    page.click("#id_clusters_add")
    if not animations:
        page.uncheck("#id_animations")
    page.select_option("#id_theme", theme)
    page.click("input[name=_save]")
    return page.inner_text("pre.wall-url").strip()


def _tv(browser, width=1920, height=1080, scale=1.0):
    context = browser.new_context(
        viewport={"width": width, "height": height}, device_scale_factor=scale
    )
    tv = context.new_page()
    tv.errors = []
    tv.on("pageerror", lambda exc: tv.errors.append(str(exc)))
    return context, tv


def _live(tv, timeout=20000):
    tv.wait_for_function(
        "window.daemonvizWall && window.daemonvizWall.state === 'live'"
        " && window.daemonvizWall.applied > 0",
        timeout=timeout,
    )


# Everything visible must lie inside its panel and the panels inside the screen; the text
# must be large enough to read from across a room (relative to the root size, which follows
# the viewport: ≈21 px at 1080p).
LAYOUT_CHECK = """() => {
  const bad = [], vw = innerWidth, vh = innerHeight;
  const inside = (r, b) => r.left >= b.left - 1 && r.right <= b.right + 1 &&
                           r.top >= b.top - 1 && r.bottom <= b.bottom + 1;
  const screen = {left: 0, top: 0, right: vw, bottom: vh};
  const panels = [...document.querySelectorAll('.wallcluster:not([hidden])')];
  for (const p of panels) {
    const pr = p.getBoundingClientRect();
    if (!inside(pr, screen)) bad.push('panel outside the screen: ' + p.dataset.slug);
    for (const e of p.querySelectorAll('.wch > *, .wm, .wexc h3')) {
      if (!inside(e.getBoundingClientRect(), pr)) bad.push('clipped: ' + e.className);
    }
    const box = p.querySelector('.wmatrix').getBoundingClientRect();
    if (!inside(p.querySelector('.wm').getBoundingClientRect(), box)) bad.push('matrix clipped');
    const lr = p.querySelector('.wlist').getBoundingClientRect();
    for (const li of p.querySelectorAll('.wlist li')) {
      if (!inside(li.getBoundingClientRect(), lr)) bad.push('exception line cut off');
    }
  }
  const root = parseFloat(getComputedStyle(document.documentElement).fontSize);
  const size = (sel) => Math.min(...[...document.querySelectorAll(sel)]
      .map(e => parseFloat(getComputedStyle(e).fontSize)));
  return {
    bad, root, panels: panels.length,
    scroll: [document.documentElement.scrollWidth - vw, document.documentElement.scrollHeight - vh],
    coverage: size('.wallcov b'), stats: size('.wstats dd'), labels: size('.wstats dt, .wsub'),
    exceptions: size('.wlist .l1'), exceptionDetail: size('.wlist .l2'), names: size('.wm .wl'),
    clock: size('.wclock'),
  };
}"""


@pytest.mark.parametrize(
    ("label", "width", "height", "scale"),
    [("1080p", 1920, 1080, 1.0), ("4k", 3840, 2160, 1.0), ("1080p-at-2x", 1920, 1080, 2.0)],
)
def test_wall_fills_a_tv_readably_at_1080p_and_4k(
    page, server, browser, label, width, height, scale
):
    url = _new_wall(page, server, f"TV {label}")
    context, tv = _tv(browser, width, height, scale)
    tv.goto(url)
    _live(tv)
    tv.wait_for_timeout(1500)  # a few deltas, transitions settled
    tv.screenshot(path=str(ARTIFACTS / f"wall-{label}.png"))
    m = tv.evaluate(LAYOUT_CHECK)
    assert m["panels"] == 1 and m["bad"] == [] and m["scroll"] == [0, 0], m
    # Type scales with the screen: same proportions at 1080p and 4K, sharp at 4K.
    css_height = height
    assert abs(m["root"] - css_height * 0.0195) < 1.0, m
    unit = css_height / 1080  # CSS px per 1080p px
    assert m["coverage"] >= 80 * unit and m["stats"] >= 50 * unit and m["clock"] >= 40 * unit, m
    assert m["labels"] >= 20 * unit and m["exceptions"] >= 25 * unit, m
    assert m["exceptionDetail"] >= 20 * unit and m["names"] >= 15 * unit, m
    assert tv.inner_text(".wname") == DEMO
    # No controls, nothing to click.
    assert tv.evaluate("document.querySelectorAll('a, button, input, select').length") == 0
    assert tv.errors == []
    context.close()


def test_animations_off_and_theme(page, server, browser):
    url = _new_wall(page, server, "Raspberry Pi", animations=False, theme="high-contrast")
    context, tv = _tv(browser)
    tv.goto(url)
    _live(tv)
    tv.wait_for_timeout(1000)
    assert tv.evaluate("document.body.classList.contains('no-anim')")
    assert tv.evaluate("document.documentElement.dataset.theme") == "high-contrast"
    durations = tv.evaluate(
        "[...document.querySelectorAll('.wc, .wg, .wbar i, .wallcluster')]"
        ".map(e => getComputedStyle(e).transitionDuration + '/' + getComputedStyle(e).animationName)"
    )
    assert durations and set(durations) == {"0s/none"}, set(durations)
    assert tv.evaluate("document.getAnimations().length") == 0
    tv.screenshot(path=str(ARTIFACTS / "wall-high-contrast-no-anim.png"))
    context.close()
    # With animations on, cells do fade between states.
    url = _new_wall(page, server, "Animated")
    context, tv = _tv(browser)
    tv.goto(url)
    _live(tv)
    assert tv.evaluate("getComputedStyle(document.querySelector('.wc, .wg')).transitionDuration")
    assert (
        tv.evaluate("getComputedStyle(document.querySelector('.wc, .wg')).transitionDuration")
        != "0s"
    )
    context.close()


def test_dropped_socket_keeps_the_last_state_and_reconnects(page, server, browser):
    url = _new_wall(page, server, "Flaky network")
    context, tv = _tv(browser)
    allow, routes = {"on": True}, []

    def handler(ws):
        if allow["on"]:
            ws.connect_to_server()
            routes.append(ws)
        else:
            ws.close(code=1011)

    tv.route_web_socket(re.compile(r".*/ws/wall/.*"), handler)
    tv.goto(url)
    _live(tv)
    allow["on"] = False
    routes[-1].close(code=1006)
    tv.wait_for_selector("#wbanner:not([hidden])")
    # Read what is on screen once the socket is down (a frame may land until then).
    before = tv.inner_text(".wallcluster")
    cells = tv.evaluate("document.querySelectorAll('.wc, .wg').length")
    # A fixed window on purpose (a few refused reconnects): the last state must outlast it.
    tv.wait_for_timeout(2500)
    banner = tv.inner_text("#wbanner")
    assert re.search(r"Connection lost since \d\d:\d\d:\d\d", banner), banner
    assert "last known state" in banner
    assert tv.evaluate("window.daemonvizWall.state") == "down"
    # The last known state stays on screen.
    assert tv.evaluate("document.querySelectorAll('.wc, .wg').length") == cells
    assert tv.inner_text(".wallcluster .wallcov b") in before
    tv.screenshot(path=str(ARTIFACTS / "wall-connection-lost.png"))
    delays = tv.evaluate("window.daemonvizWall.delays")
    assert delays and all(0 < d <= 30000 for d in delays)
    allow["on"] = True
    tv.wait_for_function("window.daemonvizWall.state === 'live'", timeout=15000)
    assert tv.is_hidden("#wbanner")
    assert tv.errors == []
    context.close()


def test_a_cluster_that_is_not_synced_says_so(page, server, browser):
    """The banner of a cluster follows its connection state, as wall.js reads the state
    names from the page's data (ConnectionState): shown unless synced, hidden again."""
    url = _new_wall(page, server, "Status words")
    context, tv = _tv(browser)
    routes = []

    def handler(ws):
        upstream = ws.connect_to_server()
        # The server's own status heartbeats (synced) stay out: the test sends the states.
        upstream.on_message(lambda m: None if json.loads(m)["t"] == "status" else ws.send(m))
        routes.append(ws)

    def send_state(state):
        routes[-1].send(json.dumps({"t": "status", "clusters": {"demo": {
            "state": state, "since": None, "last_update": None}}}))  # fmt: skip

    def banner_is(text):
        tv.wait_for_function(
            "t => document.querySelector('.wallcluster .wstale').textContent.startsWith(t)",
            arg=text,
            timeout=5000,
        )

    tv.route_web_socket(re.compile(r".*/ws/wall/.*"), handler)
    tv.goto(url)
    _live(tv)
    assert tv.is_hidden(".wallcluster .wstale")  # synced, from the page's own data
    send_state("connecting")
    banner_is("Connecting to the cluster")
    send_state("stale")
    banner_is("Cluster data stale")
    assert tv.is_visible(".wallcluster .wstale")
    assert tv.evaluate("document.querySelector('.wallcluster').classList.contains('is-stale')")
    send_state("synced")
    tv.wait_for_selector(".wallcluster .wstale", state="hidden", timeout=5000)
    assert not tv.evaluate("document.querySelector('.wallcluster').classList.contains('is-stale')")
    assert tv.errors == []
    context.close()


def test_revoked_token_shows_access_revoked_and_closes_the_socket(page, server, browser):
    url = _new_wall(page, server, "Soon revoked")
    context, tv = _tv(browser)
    tv.goto(url)
    _live(tv)
    # A wall token opens nothing else: the grid of its own cluster asks for a sign-in.
    assert "/accounts/login/" in tv.evaluate(
        "fetch('/clusters/demo/', {redirect: 'follow'}).then(r => r.url)"
    )
    assert tv.evaluate("Object.keys(window.daemonvizWall.slugs)") == ["demo"]
    page.goto(f"{server}/admin/dashboard/walldisplay/")
    page.click("text=Soon revoked")
    page.click("button:has-text('Revoke URL')")
    tv.wait_for_function("window.daemonvizWall.state === 'revoked'", timeout=10000)
    assert tv.is_visible("#wrevoked") and "Access revoked" in tv.inner_text("#wrevoked")
    assert tv.evaluate("document.querySelectorAll('.wallcluster').length") == 0
    connects = tv.evaluate("window.daemonvizWall.connects")
    tv.wait_for_timeout(2500)  # a fixed window on purpose: no reconnect may happen in it
    assert tv.evaluate("window.daemonvizWall.connects") == connects  # no reconnecting
    tv.screenshot(path=str(ARTIFACTS / "wall-revoked.png"))
    response = tv.goto(url)
    assert response.status == 404 and "Access revoked" in tv.inner_text("body")
    context.close()


# --------------------------------------------------------------------------- soak

SOAK_UPDATES = 10_000
CHECK_EVERY = 2_000
HEAP_GROWTH_BOUND = 2 * 1024 * 1024  # bytes, end vs. start, after forced GC
# The document's elements are a function of the data on screen, never of the time the page
# has run. The data's size moves all the time (nodes join and leave the small cluster, the
# exception lists are as long as the problems of the moment: two CI runs saw the page shrink
# by 75 and 99 elements), so a size bound against the start is noise. What a leak breaks is
# the shape: every element outside the matrices, exception lists and page dots is the
# page's fixed frame (its count never changes), each matrix holds exactly the cells its
# rows × columns call for, each exception line has its nine elements, and no list is longer
# than the panel allows.
ELEMENTS_PER_EXCEPTION = 9
SHAPE_JS = """(() => {
  const inside = (e) => e.getElementsByTagName('*').length;
  const lists = [...document.querySelectorAll('.wlist')];
  const mats = [...document.querySelectorAll('.wmatrix')];
  const dots = document.getElementById('wpages');
  const matrixOk = (m) => {
    const grids = m.querySelectorAll(':scope > .wm');
    if (grids.length === 0) return inside(m) <= 1;  // "no data" paragraph only
    if (grids.length !== 1) return false;
    const g = grids[0], rows = g.querySelectorAll(':scope > .wl').length;
    const cols = +g.style.getPropertyValue('--cols');
    const cells = g.classList.contains('cells');
    const children = cells ? rows * (1 + cols) : 1 + cols + rows * (1 + cols);
    const tags = g.querySelectorAll(':scope > .wl .wstk').length;  // static-pod rows' tag
    const all = (cells ? children : children + 2 * cols + 7 * rows * cols) + tags;
    return g.children.length === children && inside(g) === all && inside(m) === all + 2;
  };
  return {
    applied: window.daemonvizWall.applied, rebuilds: window.daemonvizWall.rebuilds,
    frame: inside(document) - lists.reduce((n, l) => n + inside(l), 0)
      - mats.reduce((n, m) => n + inside(m), 0) - (dots ? inside(dots) : 0),
    matrices_exact: mats.every(matrixOk),
    page_dots: dots ? dots.children.length : 0, panels: mats.length,
    longest_list: Math.max(...lists.map((l) => l.children.length)),
    item_sizes: [...new Set(lists.flatMap((l) => [...l.children]).map((i) => inside(i) + 1))],
  };
})()"""
# All DOM nodes Blink holds (text nodes and detached ones included, CDP getDOMCounters).
# Frames keep arriving while we measure (a matrix rebuild makes ~350 nodes) and Blink's GC
# is not exact, so this one is noisy (the least of three samples is taken); the bound is
# half a node per update — a leak of one per update, or of one rebuild, would break it.
DOM_NODES_SLACK = SOAK_UPDATES // 2

SETUP = """
import json
from dashboard import access
from dashboard.models import Cluster, WallDisplay
small = Cluster.objects.create(name="Soak small", slug="soak-small", scenario="demo")
big = Cluster.objects.create(
    name="Soak big", slug="soak-big", scenario="large", sim_nodes=300, sim_daemonsets=12
)
both = WallDisplay.objects.create(name="Soak", rotation_seconds=3600)
both.clusters.set([small, big])
only = WallDisplay.objects.create(name="Soak small only")
only.clusters.set([small])
print(json.dumps({"both": access.issue_token(both), "small": access.issue_token(only)}))
"""


@pytest.fixture(scope="module")
def soak_server(tmp_path_factory):
    """A daphne whose simulated clusters are stepped by their collectors (soak_asgi.py):
    two clusters, one drawn cell by cell and one by node groups, ~100 deltas a second."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing")
    tmp = tmp_path_factory.mktemp("soak")
    env = {
        **os.environ,
        "DAEMONVIZ_SQLITE_PATH": str(tmp / "db.sqlite3"),
        "DAEMONVIZ_SIM_CHURN": "1200",
        "DAEMONVIZ_COALESCE_SECONDS": "0.005",
        "DAEMONVIZ_DEBUG": "0",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    manage(env, "migrate", "--noinput")
    tokens = json.loads(manage(env, "shell", "-c", SETUP).stdout.strip().splitlines()[-1])
    with running_daphne(tmp, env, "tests.browser.soak_asgi:application", "-v", "0") as url:
        yield url, tokens


def _measure(cdp, tv) -> dict:
    samples = []
    for _ in range(3):
        cdp.send("HeapProfiler.collectGarbage")
        samples.append(
            (cdp.send("Runtime.getHeapUsage")["usedSize"], cdp.send("Memory.getDOMCounters"))
        )
    heap = min(h for h, _ in samples)
    counters = min((c for _, c in samples), key=lambda c: c["nodes"])
    stats = tv.evaluate(SHAPE_JS)
    return {
        "updates": stats["applied"],
        "heap_used": heap,
        "frame_elements": stats["frame"],
        "matrices_exact": stats["matrices_exact"],
        "page_dots": stats["page_dots"],
        "panels": stats["panels"],
        "longest_list": stats["longest_list"],
        "item_sizes": stats["item_sizes"],
        "dom_nodes": counters["nodes"],
        "listeners": counters["jsEventListeners"],
        "rebuilds": stats["rebuilds"],
    }


@pytest.mark.slow
def test_soak_10000_updates_heap_and_dom_stay_flat(soak_server, browser):
    url, tokens = soak_server
    context, tv = _tv(browser)
    tv.goto(f"{url}/wall/{tokens['both']}/")
    _live(tv, timeout=60000)
    cdp = context.new_cdp_session(tv)
    cdp.send("HeapProfiler.enable")
    rows = [_measure(cdp, tv)]
    started = time.monotonic()
    for target in range(CHECK_EVERY, SOAK_UPDATES + 1, CHECK_EVERY):
        tv.wait_for_function(
            f"window.daemonvizWall.applied >= {target}", timeout=600_000, polling=500
        )
        rows.append(_measure(cdp, tv))
    elapsed = time.monotonic() - started
    tv.screenshot(path=str(ARTIFACTS / "wall-soak-end.png"))
    start, end = rows[0], rows[-1]
    result = {
        "updates": end["updates"] - start["updates"],
        "seconds": round(elapsed, 1),
        "heap_growth_bound": HEAP_GROWTH_BOUND,
        "dom_nodes_slack": DOM_NODES_SLACK,
        "rows": rows,
        "connects": tv.evaluate("window.daemonvizWall.connects"),
    }
    (ARTIFACTS / "wall-soak.json").write_text(json.dumps(result, indent=2))
    sys.stdout.write(json.dumps(result, indent=2) + "\n")
    assert result["connects"] == 1 and tv.errors == []
    assert end["rebuilds"] > start["rebuilds"]  # shapes changed: the rebuild path ran too
    assert end["heap_used"] - start["heap_used"] < HEAP_GROWTH_BOUND, rows
    for row in rows:
        assert row["frame_elements"] == start["frame_elements"], rows
        assert row["matrices_exact"], rows
        assert row["page_dots"] <= row["panels"], rows
        assert row["longest_list"] <= MAX_EXCEPTIONS + 1, rows  # + the "+N more" line
        assert row["item_sizes"] == [ELEMENTS_PER_EXCEPTION], rows
        assert row["listeners"] <= start["listeners"], rows
    # Detached nodes would show here: the document's nodes never pile up. One sample can
    # catch a rebuild's garbage in flight (a CI run under load saw 6,533 mid-run and 1,528
    # at the next sample); a leak never gives back, so the last two samples must both stay
    # low: the lesser of them is held to the bound.
    assert min(row["dom_nodes"] for row in rows[-2:]) <= start["dom_nodes"] + DOM_NODES_SLACK, rows
    context.close()


def test_wall_socket_brings_only_its_clusters(soak_server, browser):
    url, tokens = soak_server
    context, tv = _tv(browser)
    tv.goto(f"{url}/wall/{tokens['small']}/")
    _live(tv, timeout=60000)
    tv.wait_for_function("window.daemonvizWall.applied > 50", timeout=60000)
    assert tv.evaluate("Object.keys(window.daemonvizWall.slugs)") == ["soak-small"]
    assert "Soak big" not in tv.content()
    context.close()
