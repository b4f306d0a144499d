"""The HTML report: self-contained, script-safe, and drawn by a real headless Chromium."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from stabcheck.judge.summary import summarize
from stabcheck.report.html import render_html, write_html
from stabcheck.results import Outcome, Verdict
from tests.report.terminal.test_report import make_report as make_grid_report
from tests.report.terminal.test_report import quality_grid
from tests.sample_report import make_report

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BROWSER = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
needs_browser = pytest.mark.skipif(
    BROWSER is None,
    reason="no chromium binary on PATH: run scripts/install-chromium.sh (apt-get, as root)",
)

_BLOB = re.compile(
    r"<script type='application/json' id='stabcheck-data'>(.*?)</script>", re.DOTALL
)


def _blob(html: str) -> dict:
    found = _BLOB.findall(html)
    assert len(found) == 1
    return json.loads(found[0])


def test_is_self_contained():
    html = render_html(make_report(), summarize(make_report()))
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html, re.IGNORECASE)
    assert "@import" not in html
    assert "uPlot" in html and "charts by uPlot 1.6.32" in html  # the library is inlined
    assert html.count("<script") == 3  # the data, uPlot, and the report's own script


def test_data_blob_cannot_close_its_script_element(tmp_path: Path):
    report = make_report()
    first = report.results[0]
    hostile = "</script><script>alert(1)</script><!--"
    probe = dataclasses.replace(first.run.probe, id=f"cw=none{hostile}")
    odd = dataclasses.replace(first, run=dataclasses.replace(first.run, probe=probe),
                              verdict=Verdict(Outcome.STABLE, {}, hostile))
    report = dataclasses.replace(report, results=(odd, *report.results[1:]))
    path = tmp_path / "r.html"
    write_html(report, summarize(report), path)
    html = path.read_text(encoding="utf-8")
    assert "<script>alert(1)" not in html
    data = _blob(html)
    assert data["probes"][0]["id"] == f"cw=none{hostile}"


def test_blob_has_the_curves_failure_steps_and_memory():
    data = _blob(render_html(make_report(), summarize(make_report())))
    probes = {p["id"]: p for p in data["probes"]}
    nan = probes["cw=x100,lr=0.1,clip=none,bs=32"]
    assert nan["fail_step"] == 37 and nan["label"] == "NaN @37"
    assert len(nan["loss"]) == 37 and nan["loss"][-1] is None
    assert probes["cw=none,lr=0.001,clip=none,bs=32"]["fail_step"] is None
    assert probes["cw=x100,lr=0.001,clip=none,bs=32"]["fail_step"] is None  # learning
    host = data["memory"]["host"]
    assert host["batch_sizes"] == [32, 4096] and host["oom"] == [False, True]
    assert host["budget"] == 2 * 1024**3 and host["peak"][1] == 2 * 1024**3 + 3 * 1024**2
    assert "gpu" not in data["memory"]  # no GPU peak was measured


def _open(path: Path, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr",
         "--v=0", "--virtual-time-budget=5000", "--hide-scrollbars", *extra,
         path.resolve().as_uri()],
        capture_output=True, text=True, timeout=120,
    )


def _console_lines(stderr: str) -> list[str]:
    """Every message the page wrote to the console (Chromium logs them all as CONSOLE,
    errors and logs alike; the report writes none) and every uncaught exception."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


@needs_browser
@pytest.mark.e2e
def test_console_check_catches_a_broken_page(tmp_path: Path):
    """The check below is only worth something if it sees a page's errors."""
    page = tmp_path / "broken.html"
    page.write_text("<!doctype html><script>console.error('bad');"
                    "throw new Error('boom')</script>")
    lines = _console_lines(_open(page, tmp_path, "--dump-dom").stderr)
    assert any("bad" in line for line in lines)
    assert any("Uncaught Error: boom" in line for line in lines)


@needs_browser
@pytest.mark.e2e
def test_chromium_draws_every_chart_without_console_errors(tmp_path: Path):
    report = make_report()
    path = tmp_path / "report.html"
    write_html(report, summarize(report), path)
    done = _open(path, tmp_path, "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    assert _console_lines(done.stderr) == []
    dom = done.stdout
    assert 'data-charts="drawn"' in dom  # report.js ran to its end
    ran = [r for r in report.results if r.verdict.evidence.get("ran") is not False]
    with_steps = [r for r in ran if r.run.steps]
    # uPlot wraps each chart in a div.uplot holding a <canvas>: one per curve, one memory.
    assert dom.count('class="uplot') == len(with_steps) + 1
    assert dom.count("<canvas") == len(with_steps) + 1
    assert "no training step was recorded" in dom  # the OOM probe that died at once
    assert dom.count("<article class=\"card") == len(ran)


@needs_browser
@pytest.mark.e2e
def test_chromium_screenshot_is_not_blank(tmp_path: Path):
    from PIL import Image

    path = tmp_path / "report.html"
    write_html(make_report(), summarize(make_report()), path)
    shot = tmp_path / "shot.png"
    done = _open(path, tmp_path, f"--screenshot={shot}", "--window-size=1400,2600")
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    image = Image.open(shot).convert("RGB")
    assert image.size == (1400, 2600)
    colours = image.getcolors(maxcolors=1_000_000) or []
    assert len(colours) > 200  # text, grid cells and charts, not an empty page
    # The red of a failure marker and the purple of an exhausted batch size are drawn.
    pixels = {rgb for _count, rgb in colours}
    assert (220, 38, 38) in pixels and (147, 51, 234) in pixels


def test_a_gpu_memory_chart_appears_where_gpu_peaks_were_measured():
    report = make_report()
    first = report.results[0]
    gpu = dataclasses.replace(first, run=dataclasses.replace(first.run, peak_gpu_bytes=3 << 30))
    report = dataclasses.replace(report, results=(gpu, *report.results[1:]),
                                 config={**report.config, "gpu_memory_budget": 8 << 30})
    html = render_html(report, summarize(report))
    chart = _blob(html)["memory"]["gpu"]
    assert chart["peak"] == [3 << 30, None] and chart["budget"] == 8 << 30
    assert "data-memory='gpu'" in html and "data-memory='host'" in html


def test_shows_the_recommended_configuration_panel():
    report = make_grid_report(quality_grid())
    html = render_html(report, summarize(report))
    panel = html[html.index('<section id="recommendation">'):]
    panel = panel[:panel.index("</section>")]
    settings = re.findall(r"<code class='cat-ok'[^>]*>([^<]*)</code>", panel)
    assert settings == ["class_weight=balanced", "lr=0.01", "clip=global_norm=1",
                        "batch_size=32"]
    chosen = [r.probe.id for r in report.results].index(
        "cw=balanced,lr=0.01,clip=global_norm=1,bs=32")
    assert f"probe <a href='#p-{chosen}'>" in panel
    assert ": macro-F1 0.79, minority recall 0.80 (class 1), PR-AUC 0.70, accuracy 90.0%" in panel
    assert "not <a href='#p-2'>" in panel and "but lr 0.1 next to it failed" in panel
    # the answer first: the verdict, the grid, the recommendation, the causes, memory
    assert html.index("class='verdict'") < html.index('id="grid"') < html.index(
        'id="recommendation"') < html.index('id="causes"') < html.index('id="memory"')


def test_recommendation_panel_says_so_when_nothing_was_stable():
    report = make_report()
    unstable = tuple(r for r in report.results if r.verdict.outcome is not Outcome.STABLE)
    none_stable = dataclasses.replace(report, results=unstable)
    html = render_html(none_stable, summarize(none_stable))
    assert ('<section id="recommendation"><h2>Recommended configuration</h2><div class="panel">'
            "<p><b>No setting in this grid was stable") in html


# ---------------------------------------------------------------- the memory chart

_MEASURE = """<script>setTimeout(function () {
  var out = [];
  document.querySelectorAll("[data-memory]").forEach(function (el) {
    function box(node) {
      var r = node.getBoundingClientRect();
      return {left: r.left, right: r.right, top: r.top, bottom: r.bottom};
    }
    var canvas = el.querySelector("canvas");
    var ctx = canvas.getContext("2d");
    var ratio = canvas.width / canvas.getBoundingClientRect().width;
    var bars = JSON.parse(el.getAttribute("data-bars")).map(function (b) {
      var p = ctx.getImageData(Math.round(b.x * ratio), Math.round(b.y * ratio), 1, 1).data;
      return {fill: b.fill, pixel: [p[0], p[1], p[2]]};
    });
    var panel = el.parentElement;
    out.push({
      title: panel.previousElementSibling.textContent,
      chart: box(el),
      labels: Array.prototype.map.call(el.querySelectorAll(".chart-label"), function (l) {
        return Object.assign({text: l.textContent, cls: l.className}, box(l));
      }),
      legend: Array.prototype.map.call(panel.querySelectorAll(".chart-legend > span"),
        function (s) {
          var mark = s.querySelector(".swatch, .dash");
          var style = getComputedStyle(mark);
          return {kind: s.getAttribute("data-legend"), text: s.textContent,
                  color: mark.classList.contains("dash") ? style.borderTopColor
                                                          : style.backgroundColor};
        }),
      bars: bars,
    });
  });
  var pre = document.createElement("pre");
  pre.id = "measured";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
}, 200);</script>"""


def crowded_memory_report():
    """The 36-probe grid with a memory ladder of 16 batch sizes close together, peaks near
    each other and near the budget, the last four out of memory."""
    from stabcheck.system.forecast import MemoryPoint
    from tests.report.terminal.test_compact import grid_36

    report = grid_36()
    mib = 1 << 20
    points = tuple(
        MemoryPoint(1000 + 10 * i, (1900 + 9 * i) * mib, i < 12,
                    "stable" if i < 12 else "oom_host", f"ladder:bs={1000 + 10 * i}")
        for i in range(16))
    memory = dataclasses.replace(report.memory, points=points, verified=None, rejected=())
    return dataclasses.replace(report, memory=memory)


def _rgb(hex_color: str) -> tuple[int, int, int]:
    return tuple(int(hex_color[i:i + 2], 16) for i in (1, 3, 5))


def _overlap(a: dict, b: dict) -> bool:
    return min(a["right"], b["right"]) - max(a["left"], b["left"]) > 0.5 and \
        min(a["bottom"], b["bottom"]) - max(a["top"], b["top"]) > 0.5


@needs_browser
@pytest.mark.e2e
@pytest.mark.parametrize("window", ["1400,1600", "760,1400"])
def test_memory_chart_labels_do_not_overlap_and_the_legend_matches(tmp_path: Path, window):
    """Chromium lays the page out; the boxes of the chart's labels come from the browser,
    and the bars' colours from the canvas's own pixels."""
    import html as html_lib

    report = crowded_memory_report()
    page = render_html(report, summarize(report)).replace("\n</body>", _MEASURE + "\n</body>")
    path = tmp_path / "report.html"
    path.write_text(page, encoding="utf-8")
    done = _open(path, tmp_path, "--dump-dom", f"--window-size={window}")
    assert done.returncode == 0, done.stderr[-2000:]
    # the page writes nothing to the console (the measuring script's readback notice aside)
    assert [line for line in _console_lines(done.stderr)
            if "readback operations" not in line] == []
    found = re.search(r'<pre id="measured">(.*?)</pre>', done.stdout, re.DOTALL)
    assert found, done.stdout[-2000:]
    (chart,) = json.loads(html_lib.unescape(found.group(1)))

    assert chart["title"] == "Peak host memory per batch size against the 2.0 GiB budget"
    labels = chart["labels"]
    assert len(labels) == 2 * 16  # a value and a batch size per bar
    assert [lab["text"] for lab in labels if "batch" in lab["cls"]] == [
        str(1000 + 10 * i) for i in range(16)]
    clashes = [(a["text"], b["text"]) for i, a in enumerate(labels) for b in labels[i + 1:]
               if _overlap(a, b)]
    assert not clashes, clashes
    box = chart["chart"]
    for lab in labels:  # inside the chart's own box: nothing spills onto the page
        assert box["left"] - 1 <= lab["left"] and lab["right"] <= box["right"] + 1, lab
        assert box["top"] - 1 <= lab["top"] and lab["bottom"] <= box["bottom"] + 1, lab

    legend = {item["kind"]: item for item in chart["legend"]}
    assert set(legend) == {"fits", "oom", "budget"}
    assert legend["budget"]["text"] == "budget 2.0 GiB"
    fills = {bar["fill"] for bar in chart["bars"]}
    assert {f"rgb{_rgb(fill)}".replace(" ", "") for fill in fills} == {
        legend[k]["color"].replace(" ", "") for k in ("fits", "oom")}
    for bar in chart["bars"]:  # the bar drawn is the colour its legend says
        assert all(abs(p - q) <= 3 for p, q in zip(bar["pixel"], _rgb(bar["fill"]),
                                                   strict=True)), bar

    title = re.search(r"<title>(.*?)</title>", done.stdout).group(1)
    assert title == "stabcheck probe report: builtin:cnn on builtin:digits, 36 probes"
