"""The dashboard in headless Chromium against a live daphne with a churning demo cluster.

The simulator churns by itself (DAEMONVIZ_SIM_CHURN events per minute), so the tests wait
for *some* cell change or node join rather than causing a specific one. A sentinel set on
`window` proves the page was never reloaded.
"""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import ARTIFACTS, CAPTURE_SOCKET

pytestmark = pytest.mark.browser

SNAPSHOT_CELLS = """() => Object.fromEntries(
  [...document.querySelectorAll('#grid .c[id]')].map(c => [c.id, c.className + '|' + (c.dataset.r || '')]))"""
ROW_NAMES = (
    "() => [...document.querySelectorAll('#grid [role=row][data-node]')].map(r => r.dataset.node)"
)


def open_grid(page, server, query: str = ""):
    page.goto(f"{server}/clusters/demo/{query}")
    page.wait_for_selector("#grid a.c")
    page.wait_for_function("document.getElementById('ws-state').dataset.state === 'open'")
    page.evaluate("window.__noReload = 1")


def test_overview_shows_the_demo_cluster(page, server):
    page.wait_for_selector(".card.cluster")
    text = page.inner_text(".cards")
    assert "Demo" in text and "coverage" in text and "synced" in text
    page.screenshot(path=str(ARTIFACTS / "overview.png"))


def test_grid_renders_and_cells_change_without_reload(page, server):
    open_grid(page, server)
    assert page.locator("#grid [role=columnheader].ch").count() >= 5
    assert page.locator("#grid a.c").count() > 100
    cell = page.locator("#grid a.c").first
    assert cell.get_attribute("title") and cell.get_attribute("aria-label")
    assert re.match(r"^.$", cell.inner_text().strip())  # a symbol, not only a colour
    page.screenshot(path=str(ARTIFACTS / "grid-initial.png"))

    # Cells and revision in one evaluation: a frame landing between two separate reads
    # would pair old cells with the new revision.
    snap = page.evaluate(
        f"() => ({{cells: ({SNAPSHOT_CELLS})(), rev: +document.getElementById('grid').dataset.revision}})"
    )
    before, rev = snap["cells"], snap["rev"]
    page.wait_for_function(
        """(before) => [...document.querySelectorAll('#grid .c[id]')].some(
             c => before[c.id] !== undefined && before[c.id] !== c.className + '|' + (c.dataset.r || ''))""",
        arg=before,
        timeout=30_000,
    )
    assert int(page.get_attribute("#grid", "data-revision")) > rev
    assert page.evaluate("window.__noReload") == 1
    page.screenshot(path=str(ARTIFACTS / "grid-changed.png"))
    assert not page.errors


# Cells the page rebuilt from pushed frames since this ran.
TRACK_PUSHED = """() => {
  window.__pushed = new Set();
  document.addEventListener('daemonviz:applied', (e) => e.detail.cells.forEach(id => window.__pushed.add(id)));
}"""
# Fetch the grid as the server renders it now, synchronously (no frame can land meanwhile),
# and pair each pushed cell on the page with the server's rendering of it.
PUSHED_VS_RENDERED = """() => {
  const g = document.getElementById('grid');
  const xhr = new XMLHttpRequest();
  xhr.open('GET', g.dataset.bodyUrl, false);
  xhr.send();
  const t = document.createElement('template');
  t.innerHTML = xhr.responseText;
  const fresh = t.content.getElementById('grid');
  const pairs = [];
  for (const id of window.__pushed) {
    const mine = document.getElementById(id), theirs = t.content.getElementById(id);
    if (!mine || !theirs) continue;
    const copy = mine.cloneNode(true);
    copy.classList.remove('changed', 'flash');  // the page's own transient marks
    pairs.push([id, copy.outerHTML, theirs.outerHTML]);
  }
  return {page: +g.dataset.revision, server: +fresh.dataset.revision, pairs};
}"""


def test_pushed_cells_equal_a_fresh_render(page, server):
    """The page rebuilds pushed cells from skeletons and the names it holds: the result must
    be exactly what the server renders for the same revision (names, link, title, label)."""
    open_grid(page, server)
    page.evaluate(TRACK_PUSHED)
    page.wait_for_function("window.__pushed.size >= 5", timeout=60_000)
    for _ in range(60):
        got = page.evaluate(PUSHED_VS_RENDERED)
        if got["page"] == got["server"] and got["pairs"]:
            break
        page.wait_for_timeout(100)  # the server is a frame ahead of the page: try again
    else:
        pytest.fail(f"page and server never at the same revision: {got['page']}/{got['server']}")
    assert len(got["pairs"]) >= 5
    for cid, mine, theirs in got["pairs"]:
        assert mine == theirs, cid
    assert page.evaluate("window.daemonviz.frames") > 0 and not page.errors


def test_restart_flashes_a_cell(page, server):
    open_grid(page, server)
    page.wait_for_selector("#grid a.c.flash", state="attached", timeout=45_000)
    flashed = page.locator("#grid a.c.flash").first
    assert int(flashed.get_attribute("data-r")) > 0
    assert page.evaluate("window.__noReload") == 1
    page.screenshot(path=str(ARTIFACTS / "grid-flash.png"))


def test_node_join_adds_a_row(page, server):
    open_grid(page, server)
    before = set(page.evaluate(ROW_NAMES))
    page.wait_for_function(
        f"(before) => ({ROW_NAMES})().some(n => !before.includes(n))",
        arg=sorted(before),
        timeout=45_000,
    )
    new = sorted(set(page.evaluate(ROW_NAMES)) - before)
    row = page.locator(f'#grid [role=row][data-node="{new[0]}"]')
    assert row.locator("[role=gridcell]").count() == page.locator("#grid .ch").count()

    assert page.evaluate("window.__noReload") == 1
    row.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "grid-node-joined.png"))


DISPATCH_JOIN = """([frame, pool]) => {
  const g = document.getElementById('grid'), rev = +g.dataset.revision;
  const f = {...JSON.parse(frame), rev: rev + 1, base: rev, epoch: g.dataset.epoch};
  window.__socket.dispatchEvent(new MessageEvent('message', {data: JSON.stringify(f)}));
  return [...document.getElementById('gr-' + pool).querySelectorAll('[role=row][data-node]')]
    .map(r => r.dataset.node);
}"""


def test_joining_row_takes_its_place_by_name(page, server):
    """Simulated nodes join with ever higher numbers (they land last anyway), so hand the
    page a joining row whose name sorts between two rows it shows."""
    from urllib.parse import parse_qs, urlsplit

    from dashboard.grid import frames
    from dashboard.grid.model import GridFilters, dom_id

    page.add_init_script(CAPTURE_SOCKET)
    open_grid(page, server)
    query = parse_qs(urlsplit(page.get_attribute("#live", "ws-connect")).query)
    label = query["group"][0]
    first = page.locator("#grid [role=row][data-node]").first
    pool = page.evaluate("(r) => r.parentNode.id.slice(3)", first.element_handle())
    names = page.evaluate(
        "(id) => [...document.getElementById(id).querySelectorAll('[role=row][data-node]')]"
        ".map(r => r.dataset.node)",
        "gr-" + pool,
    )
    joining = names[0].replace(".", "x.", 1)  # right after names[0], before names[1]
    group_value = page.evaluate(
        "(r) => r.closest('section').querySelector('.gname').textContent", first.element_handle()
    )
    assert dom_id("group:" + group_value) == pool
    payload = {
        "revision": 1,
        "rows_added": [
            {
                "node": joining,
                "labels": {label: group_value},
                "problem": False,
                "head": '<div class="rh" role="rowheader">joining</div>',
                "cells": [],
            }
        ],
    }
    frame = frames.client_frame(payload, GridFilters(group=label))
    after = page.evaluate(DISPATCH_JOIN, [frame, pool])
    assert after == [names[0], joining, *names[1:]]
    assert page.evaluate("window.__noReload") == 1 and not page.errors


def test_revision_gap_resyncs_the_grid(page, server):
    open_grid(page, server)
    # Pretend we missed frames: the next frame's base is ahead of us.
    page.evaluate("document.getElementById('grid').dataset.revision = '0'")
    with page.expect_response(re.compile(r"/clusters/demo/grid/"), timeout=30_000):
        pass
    page.wait_for_function("+document.getElementById('grid').dataset.revision > 0")
    assert page.evaluate("window.__noReload") == 1  # re-fetched the grid, not the page
    assert page.evaluate("window.daemonviz.resyncs") >= 1
    assert page.locator("#grid a.c").count() > 100


def test_filters(page, server):
    open_grid(page, server)
    page.select_option("select[name=namespace]", "logging")
    page.click("form.filters button[type=submit]")
    page.wait_for_url(re.compile(r"namespace=logging"))
    headers = page.locator("#grid .ch .dsn .ns").all_inner_texts()
    assert headers and set(headers) == {"logging"}

    open_grid(page, server, "?state=problems")
    assert page.locator("select[name=state]").input_value() == "problems"
    # Live pushes may heal a shown row at any moment, so judge the filter on the server's
    # rendering (same session) rather than on the DOM as it evolves.
    html = page.request.get(server + "/clusters/demo/grid/?state=problems").text()
    rows = html.split('<div id="r-')[1:]  # each chunk runs to the next row
    assert rows
    for row in rows:
        assert 'data-p="1"' in row or 'class="badge' in row

    open_grid(page, server, "?selector=eks.amazonaws.com/nodegroup%3Dgeneral&q=0-1")
    names = page.evaluate(ROW_NAMES)
    assert names and all("0-1" in n for n in names)
    metas = page.locator("#grid [role=row][data-node] .meta").all_inner_texts()
    assert all("general" in m for m in metas)
    page.screenshot(path=str(ARTIFACTS / "grid-filtered.png"))


def test_cell_detail_panel(page, server):
    open_grid(page, server)
    page.locator("#grid a.c.s-healthy").first.click()
    page.wait_for_selector("#detail:not([hidden]) .celldetail")
    text = page.inner_text("#detail")
    assert "kubectl -n" in text and "describe pod" in text and "Node" in text
    assert page.evaluate("window.__noReload") == 1
    page.screenshot(path=str(ARTIFACTS / "cell-detail.png"))
    page.keyboard.press("Escape")
    assert page.locator("#detail").is_hidden()
