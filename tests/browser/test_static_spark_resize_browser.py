"""Issue 15's static-pod columns and access paths on the demo, issue 19's wall sparkline
and the resizable node column, in headless Chromium (screenshots in tests/artifacts/)."""

from __future__ import annotations

import json
import re

import pytest

from tests.browser.conftest import ARTIFACTS, USER
from tests.browser.test_wall_browser import _live, _new_wall, _tv

pytestmark = pytest.mark.browser

STATIC = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"]


def open_grid(page, server, query: str = ""):
    page.goto(f"{server}/clusters/demo/{query}")
    page.wait_for_selector("#grid a.c")
    page.wait_for_function("document.getElementById('ws-state').dataset.state === 'open'")


def test_static_pods_are_columns_of_their_own_after_the_daemonsets(page, server):
    open_grid(page, server)
    heads = page.evaluate("""() => [...document.querySelectorAll('#grid .gh .ch')].map(h => ({
      static: h.classList.contains('st'), name: h.querySelector('.n').textContent,
      title: h.title}))""")
    names = [h["name"] for h in heads if h["static"]]
    assert names == STATIC
    first_static = next(i for i, h in enumerate(heads) if h["static"])
    assert all(h["static"] for h in heads[first_static:])  # grouped after the DaemonSets
    etcd = next(h for h in heads if h["name"] == "etcd")
    assert "managed by the kubelet from a manifest file" in etcd["title"]
    assert "not by a DaemonSet" in etcd["title"] and "Runs on 3 of" in etcd["title"]
    assert page.locator("#grid .ch.st .stk").first.inner_text().lower() == "static"

    cells = page.evaluate("""() => [...document.querySelectorAll('#grid .grows [role=row]')]
      .map(r => ({node: r.dataset.node,
                  st: [...r.querySelectorAll('.c.st')].map(c => [c.className, c.title])}))""")
    assert all(len(r["st"]) == len(STATIC) for r in cells)
    healthy = [r for r in cells if all("s-healthy" in c[0] for c in r["st"][:3])]
    assert len(healthy) == 3  # the three control-plane nodes run etcd, apiserver, cm
    scheduler = [r["st"][3] for r in healthy]
    missing = [c for c in scheduler if "s-missing" in c[0]]
    assert len(missing) == 1
    assert "absent on this control-plane node while present on the other 2" in missing[0][1]
    others = [r for r in cells if r not in healthy]
    assert others and all("s-absent" in c[0] for r in others for c in r["st"])
    restarted = [c for r in healthy for c in r["st"] if "3 restarts" in c[1]]
    assert restarted and "static pod" in restarted[0][1]  # etcd with 3 restarts, last exit
    assert "static column" in page.inner_text(".legend").lower()

    # Access paths: the node exporter's Service, in its column head's tooltip.
    exporter = next(h for h in heads if h["name"] == "prometheus-node-exporter")
    assert (
        "Service prometheus-node-exporter.monitoring.svc.cluster.local (headless)"
        in (exporter["title"])
    )
    page.screenshot(path=str(ARTIFACTS / "grid-static-columns.png"), full_page=True)

    # The toggle leaves them out, and the URL says so.
    page.check("input[name=static]")
    page.click(".filters button[type=submit]")
    page.wait_for_selector("#grid a.c")
    assert "static=hide" in page.url
    assert page.locator("#grid .ch.st").count() == 0
    assert page.locator("#grid .c.st").count() == 0
    assert not page.errors


def test_daemonset_page_names_its_priority_class_and_how_it_is_reached(page, server):
    page.goto(f"{server}/clusters/demo/daemonsets/logging/fluent-bit/")
    spec = page.inner_text(".dsspec")
    assert "priority class" in spec and "system-cluster-critical" in spec
    body = page.inner_text("body")
    assert "fluent-bit.logging.svc.cluster.local" in body
    assert not page.errors


def test_wall_shows_static_rows_and_a_history_sparkline(page, server, browser):
    url = _new_wall(page, server, "TV static and sparkline")
    context, tv = _tv(browser)
    # History is written in batches: wait until the server has something recorded.
    tv.goto(url)
    _live(tv)
    spark_url = url.rstrip("/") + "/sparklines/"
    got = {}
    for _ in range(60):
        got = tv.evaluate(
            "async (u) => (await (await fetch(u, {cache: 'no-store'})).json())", spark_url
        )
        if got["clusters"]["demo"]["recorded"]:
            break
        tv.wait_for_timeout(1000)
    assert got["clusters"]["demo"]["recorded"], json.dumps(got)[:500]
    tv.reload()
    _live(tv)
    tv.wait_for_function("window.daemonvizWall.sparklines > 0")
    labels = tv.evaluate("""() => [...document.querySelectorAll('.wm .wl.wst')].map(l => ({
      text: l.textContent, title: l.title}))""")
    assert [x["text"] for x in labels] == [f"{n}static" for n in STATIC]
    assert all("managed by the kubelet" in x["title"] for x in labels)
    # The scheduler missing on one control-plane node is among the exceptions — unless the
    # demo's churn and rollouts fill the panel first (worst first, "+N more"): where the
    # static line ranks is the aggregate's unit tests' to check (test_static_columns_views).
    exceptions = tv.inner_text(".wlist")
    assert "kube-scheduler (static)" in exceptions or re.search(r"\+\d+ more", exceptions)
    spark = tv.evaluate("""() => { const f = document.querySelector('.wspark');
      return {line: f.querySelector('.line').getAttribute('d'),
              nodata: +f.querySelector('.nodata').getAttribute('width'),
              caption: f.querySelector('figcaption').textContent}; }""")
    assert spark["line"].startswith("M") and spark["nodata"] < 600
    assert spark["caption"].startswith("gaps, last 6 h: now ")
    tv.screenshot(path=str(ARTIFACTS / "wall-static-sparkline.png"))
    # A wrong token gets the page's 404, not data.
    status = tv.evaluate(
        "async (u) => (await fetch(u)).status", spark_url.replace("/wall/", "/wall/x")
    )
    assert status == 404
    assert tv.errors == []
    context.close()


CORNER = "() => Math.round(document.querySelector('#grid .corner').getBoundingClientRect().width)"


def test_node_column_resizes_by_drag_and_keyboard_and_is_remembered(page, server):
    open_grid(page, server)
    before = page.evaluate(CORNER)
    for _ in range(3):
        # A re-sync replaces the grid, handle included: one that lands mid-drag (the demo's
        # static pods change by themselves) ends that drag. Only an undisturbed drag counts.
        resyncs = page.evaluate("window.daemonviz.resyncs")
        box = page.locator("#grid [data-resize]").bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(x + 120, y, steps=6)
        page.mouse.move(x + 200, y, steps=6)
        page.mouse.up()
        # Under load, frames that arrive between measuring the handle and pressing on it may
        # move the grid (tiles and rows above it change height): a press beside the handle
        # moves nothing. Only a drag that started on the handle counts, too.
        undisturbed = page.evaluate("window.daemonviz.resyncs") == resyncs
        if undisturbed and page.evaluate(CORNER) != before:
            break
        page.evaluate(f"() => localStorage.removeItem('daemonviz.rowhead.{USER}')")
        open_grid(page, server)  # back to the default width, and try again
    dragged = page.evaluate(CORNER)
    assert abs(dragged - (before + 200)) <= 3, (before, dragged)
    # Cells follow the column (one CSS variable for every row).
    row_head = page.evaluate(
        "() => Math.round(document.querySelector('#grid .grows .rh').getBoundingClientRect().width)"
    )
    assert row_head == dragged
    stored = page.evaluate(f"() => localStorage.getItem('daemonviz.rowhead.{USER}')")
    assert stored and abs(int(stored) - dragged) <= 1
    page.screenshot(path=str(ARTIFACTS / "grid-resized-column.png"))

    page.reload()
    page.wait_for_selector("#grid a.c")
    assert abs(page.evaluate(CORNER) - dragged) <= 1  # remembered

    handle = page.locator("#grid [data-resize]")
    handle.focus()
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    assert abs(page.evaluate(CORNER) - (dragged - 32)) <= 1
    assert int(handle.get_attribute("aria-valuenow")) == page.evaluate(CORNER)
    page.keyboard.press("Shift+ArrowRight")
    assert abs(page.evaluate(CORNER) - (dragged + 32)) <= 1
    page.keyboard.press("Home")
    assert abs(page.evaluate(CORNER) - before) <= 1
    assert page.evaluate(f"() => localStorage.getItem('daemonviz.rowhead.{USER}')") is None
    assert not page.errors
