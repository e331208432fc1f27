"""The HTML report in a real browser (headless Chromium, Debian's ``chromium`` package): it loads
without a console error, its figures are inline SVG that are drawn at their declared paper widths,
carry hover values and react to a click on a legend entry. Skipped when no Chromium is installed."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest

BROWSER = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)),
               None)
pytestmark = pytest.mark.skipif(BROWSER is None, reason="headless Chromium not installed (Debian: "
                                "apt-get install chromium); the report's browser checks need it")
CSS_PX_PER_IN = 96

# runs first in the page: every error (script errors, failed loads, console.error) is kept
CATCH = """<script>window.pmErrors = [];
window.addEventListener('error', function (e) { pmErrors.push(String(e.message || e.target.outerHTML)); }, true);
var pmConsoleError = console.error; console.error = function () {
  pmErrors.push(Array.from(arguments).join(' ')); pmConsoleError.apply(console, arguments); };
</script>"""
# runs last: what the page shows, measured by the browser, written into the DOM for --dump-dom
PROBE = """<script>window.addEventListener('load', function () {
  var out = {errors: pmErrors, figures: []};
  document.querySelectorAll('figure').forEach(function (f) {
    var svg = f.querySelector('svg'); var box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
    var entry = svg && svg.querySelector('[data-legend]'); var hidden = null;
    if (entry) {
      var key = entry.getAttribute('data-series');
      entry.dispatchEvent(new MouseEvent('click', {bubbles: true}));
      var marks = svg.querySelectorAll('[data-series="' + key + '"]:not([data-legend])');
      hidden = marks.length > 0 && Array.from(marks).every(function (m) { return getComputedStyle(m).display === 'none'; });
      entry.dispatchEvent(new MouseEvent('click', {bubbles: true}));
    }
    out.figures.push({id: f.id, declared: parseFloat(f.dataset.widthIn), width: box.width, height: box.height,
                      titles: svg ? svg.querySelectorAll('title').length : 0,
                      legend: svg ? svg.querySelectorAll('[data-legend]').length : 0, toggled: hidden});
  });
  var pre = document.createElement('pre'); pre.id = 'pm-probe'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});</script>"""


def _chromium(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--force-device-scale-factor=1", "--enable-logging=stderr", "--v=0",
                           f"--user-data-dir={tmp_path / 'profile'}", "--no-first-run",
                           "--disable-extensions", *args], capture_output=True, text=True, timeout=120)


def test_report_loads_in_chromium_without_errors(built, tmp_path):
    paths, out_dir = built
    html = paths["html"].read_text()
    assert "<script src" not in html and 'href="http' not in html  # nothing from outside is loaded
    page = out_dir / "probe.html"
    page.write_text(html.replace("<head>", "<head>" + CATCH, 1).replace("</body>", PROBE + "</body>", 1))
    run = _chromium(tmp_path, "--virtual-time-budget=10000", "--dump-dom", page.as_uri())
    found = re.search(r'<pre id="pm-probe">(.*?)</pre>', run.stdout, re.S)
    assert found, f"no probe output from Chromium:\n{run.stderr[-3000:]}"
    probe = json.loads(found.group(1).replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))
    console = [line for line in run.stderr.splitlines() if "CONSOLE" in line]
    assert probe["errors"] == [] and console == [], (probe["errors"], console)
    index = json.loads((out_dir / "figures" / "index.json").read_text())
    assert [f["id"] for f in probe["figures"]] == [f["name"] for f in index]
    for fig in probe["figures"]:
        assert fig["declared"] in (3.5, 7.1), fig
        assert abs(fig["width"] - fig["declared"] * CSS_PX_PER_IN) < 1, fig  # drawn at its paper width
        assert fig["height"] > 100 and fig["titles"] > 0, fig  # drawn, with hover values
        assert fig["legend"] > 0 and fig["toggled"] is True, fig  # a legend click hides its series


def test_screenshot_shows_every_figure_at_its_declared_width(built, tmp_path):
    """Every figure alone on a magenta page, one screenshot: each figure's white area is as wide as
    the figure says (3.5 in or 7.1 in at 96 px per inch)."""
    from PIL import Image

    _, out_dir = built
    index = json.loads((out_dir / "figures" / "index.json").read_text())
    svgs = [open(f["svg"], encoding="utf-8").read() for f in index]
    page = tmp_path / "figures.html"
    page.write_text("<!DOCTYPE html><html><head><meta charset='utf-8'><style>body{margin:0;"
                    "background:#f0f;}div{margin:0 0 20px 0;line-height:0}svg{display:block}</style></head>"
                    "<body>" + "".join(f"<div>{s}</div>" for s in svgs) + "</body></html>")
    height = int(sum(f["height_in"] for f in index) * CSS_PX_PER_IN + 20 * len(index) + 50)
    shot = tmp_path / "shot.png"
    run = _chromium(tmp_path, f"--window-size=1000,{height}", f"--screenshot={shot}", page.as_uri())
    assert shot.exists(), run.stderr[-3000:]
    rgb = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    magenta = (rgb[..., 0] > 240) & (rgb[..., 1] < 15) & (rgb[..., 2] > 240)
    rows = ~magenta.all(axis=1)
    # runs of rows that hold a figure, top to bottom
    edges = np.flatnonzero(np.diff(np.r_[0, rows.astype(int), 0]))
    bands = list(zip(edges[::2], edges[1::2], strict=True))
    assert len(bands) == len(index), (len(bands), [f["name"] for f in index])
    for (top, bottom), fig in zip(bands, index, strict=True):
        cols = np.flatnonzero(~magenta[top:bottom].all(axis=0))
        width, tall = cols.max() - cols.min() + 1, bottom - top
        assert abs(width - fig["width_in"] * CSS_PX_PER_IN) <= 1, (fig["name"], width)
        assert abs(tall - fig["height_in"] * CSS_PX_PER_IN) <= 1, (fig["name"], tall)
