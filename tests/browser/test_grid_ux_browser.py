"""The grid as a place to work in (issue 19 §2): keyboard navigation, the open cell in the
URL, group-head tallies, the legend, the layout using the screen, fitting kubectl commands."""

from __future__ import annotations

import pytest

from tests.browser.conftest import ARTIFACTS

pytestmark = pytest.mark.browser

FOCUSED = """() => { const a = document.activeElement, r = a.closest('[role=row]');
  return {id: a.id, node: r ? r.dataset.node : null,
          col: r ? [...r.querySelectorAll('[role=gridcell]')].indexOf(a) : -1}; }"""


def open_grid(page, server, query: str = ""):
    page.goto(f"{server}/clusters/demo/{query}")
    page.wait_for_selector("#grid a.c")
    page.wait_for_function("document.getElementById('ws-state').dataset.state === 'open'")


def test_arrow_keys_enter_escape_and_the_cell_in_the_url(page, server):
    open_grid(page, server)
    first = page.locator("#grid .grows a.c").first
    first.focus()
    start = page.evaluate(FOCUSED)
    page.keyboard.press("ArrowDown")
    down = page.evaluate(FOCUSED)
    assert down["node"] != start["node"] and down["col"] == start["col"]
    page.keyboard.press("ArrowRight")
    right = page.evaluate(FOCUSED)
    assert right["node"] == down["node"] and right["col"] > down["col"]
    page.keyboard.press("Enter")
    page.wait_for_selector("#detail:not([hidden]) .celldetail")
    url = page.url
    assert "#cell=" in url and "&ds=" in url
    page.keyboard.press("Escape")
    page.wait_for_function("document.getElementById('detail').hidden")
    assert "#cell=" not in page.url
    assert page.evaluate("document.activeElement.id") == right["id"]  # focus goes back

    # The link is shareable: opening it opens the panel; the back button closes it.
    page.goto(url)
    page.wait_for_selector("#detail:not([hidden]) .celldetail")
    assert right["node"] in page.inner_text("#detail")
    page.locator("#grid .grows a.c").nth(3).click()
    page.wait_for_function("location.hash.startsWith('#cell=')")
    page.go_back()
    page.wait_for_function("location.hash.startsWith('#cell=')")  # the first cell again
    page.go_back()
    page.wait_for_function("document.getElementById('detail').hidden")
    assert "#cell=" not in page.url and page.locator("#grid a.c").count() > 100
    assert not page.errors


def test_group_heads_carry_per_column_tallies(page, server):
    open_grid(page, server)
    got = page.evaluate("""() => [...document.querySelectorAll('#grid section.group')].map(s => {
      const rows = [...s.querySelectorAll('.grows > [role=row][data-node]')];
      const cols = [...s.querySelectorAll('.gsum .gt')].map((t, i) => {
        const cells = rows.map(r => r.querySelectorAll('[role=gridcell]')[i]);
        const targeted = cells.filter(c => !/s-not-targeted|s-none|s-absent/.test(c.className)).length;
        const healthy = cells.filter(c => /s-healthy|s-outdated/.test(c.className)).length;
        return [t.textContent, healthy, targeted];
      });
      return cols; })""")
    assert got and all(got)
    for cols in got:
        for text, healthy, targeted in cols:
            if targeted:
                assert text.split("\n")[0].startswith(f"{healthy}/{targeted}"), (text, healthy)
            else:
                assert text == "·"


def test_legend_explains_the_column_heads_and_the_grid_uses_the_screen(browser, server):
    from tests.browser.conftest import signed_in_page

    with signed_in_page(browser, server) as page:
        page.set_viewport_size({"width": 1600, "height": 1000})
        open_grid(page, server)
        legend = page.locator("details.legend")
        assert legend.get_attribute("open") is not None
        assert "D desired" in legend.inner_text() and "A available" in legend.inner_text()
        box = page.locator("#grid").bounding_box()
        assert box["width"] > 1000  # not a 460 px island on a 1600 px screen
        # A full node name fits its column (no ellipsis) with the default width.
        cut = page.evaluate(
            "() => [...document.querySelectorAll('#grid .rh .nn')]"
            ".filter(a => a.scrollWidth > a.clientWidth && !a.closest('.grow').textContent.includes('control-plane')).length"
        )
        assert cut == 0
        # The page scrolls, not a box inside it: the head sticks to the top of the window.
        page.mouse.wheel(0, 600)
        page.wait_for_function("window.scrollY > 300")
        head = page.locator("#grid .gh").bounding_box()
        assert abs(head["y"]) < 2
        page.screenshot(path=str(ARTIFACTS / "grid-1600-scrolled.png"))


def test_cell_detail_offers_only_fitting_commands_with_a_copy_button(page, server):
    open_grid(page, server)
    # node-problem-detector's image cannot be pulled in the demo: no logs to read.
    image = page.locator("#grid a.c.s-image-error").first
    image.click()
    page.wait_for_selector("#detail:not([hidden]) .celldetail")
    text = page.inner_text("#detail")
    assert "describe pod" in text and "--previous" not in text and "logs" not in text
    assert page.locator("#detail [data-copy]").count() >= 2
    reason = page.inner_text("#detail .reason")
    assert text.count(reason) == 1  # the reason once, not again as "Rule"
    page.screenshot(path=str(ARTIFACTS / "grid-cell-detail.png"))
