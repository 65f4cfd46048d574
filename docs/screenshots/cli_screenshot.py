"""The README's picture of the `coverage` CLI: the demo cluster's table, in colour, as a
100-column terminal shows it (docs/screenshots/cli.png).

Usage: python docs/screenshots/cli_screenshot.py [--out docs/screenshots/cli.png] [--columns 100]

The input is what `make run` shows: the simulated demo cluster, dumped as
`kubectl get … -A -o json` would, anchored at the present like the running demo. The CLI
runs in a subprocess with `COLUMNS` set and `--color always` (as on a terminal), its ANSI
colours become HTML (ansi2html, from requirements-dev.txt), and headless Chromium
(/usr/bin/chromium, through Playwright, as the browser tests) takes the picture.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from dashboard.simulator.cluster import Simulator  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
RESOURCES = ("nodes", "daemonsets", "pods", "controllerrevisions", "services", "endpointslices")


def demo_snapshot(path: Path) -> None:
    sim = Simulator.from_scenario("demo", seed=1, churn=0, start=datetime.now(UTC))
    sim.step(90)  # a minute and a half: crash loops have restarted, slices are written
    items = [json.loads(data) for r in RESOURCES for _, data in sim.store.list(r)[0]]
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))


def cli_output(snapshot: Path, columns: int) -> str:
    env = {**os.environ, "COLUMNS": str(columns), "LINES": "50"}
    env.pop("NO_COLOR", None)
    cmd = [sys.executable, "-m", "dashboard.cli.main", "coverage", "--snapshot", str(snapshot),
           "--color", "always"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if proc.returncode not in (0, 1, 2):  # below the threshold is fine; an error is not
        raise SystemExit(f"the CLI failed ({proc.returncode}): {proc.stderr}")
    return f"$ daemonviz coverage --snapshot demo.json\n{proc.stdout}"


def page(text: str, columns: int) -> str:
    from ansi2html import Ansi2HTMLConverter

    body = Ansi2HTMLConverter(dark_bg=True, inline=True, line_wrap=False).convert(text, full=False)
    return f"""<!doctype html><meta charset="utf-8"><style>
html, body {{ margin: 0; background: #1d1f21; }}
pre {{ margin: 0; padding: 14px 16px; width: {columns}ch; color: #d8dee9; white-space: pre;
       font: 14px/1.35 "DejaVu Sans Mono", ui-monospace, monospace; }}
</style><pre id="term">{body}</pre>"""


def screenshot(html: str, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        pg = browser.new_page(viewport={"width": 1200, "height": 400}, device_scale_factor=1)
        pg.set_content(html)
        pg.locator("#term").screenshot(path=str(out))
        browser.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots" / "cli.png"))
    ap.add_argument("--columns", type=int, default=100)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="daemonviz-cli-shot-") as tmp:
        snap = Path(tmp) / "demo.json"
        demo_snapshot(snap)
        text = cli_output(snap, args.columns)
    screenshot(page(text, args.columns), Path(args.out))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
