"""The run as ONE self-contained HTML file: grid, curves, memory, what to do, the
recommended configuration.

Everything the page needs is inside it: the charting library (uPlot, vendored under
``stabcheck/assets`` with its licence) and its stylesheet are inlined, and the probes' data
travels as a JSON blob in a ``<script type="application/json">`` element, with every ``<``
written as ``\\u003c`` so that no value can close the element. Nothing is fetched when the
file is opened; it can be mailed, archived as a CI artifact or opened offline.

The text is HTML written here, readable even with scripts off, in the terminal report's
order, the answer first: the verdict line (``judge.summary``), the grid, the recommended
configuration, the failures grouped by cause, memory, then one card per probe.
``assets/report.js`` draws the charts into the cards: loss and gradient norm per step on
log scales (small multiples, a failure marked at its step) and the peak host (and GPU)
memory per batch size against the budget, with its value and batch-size labels laid out so
that none overlaps another, and a legend in the bars' own colours.
"""

from __future__ import annotations

import json
from html import escape
from importlib import resources
from pathlib import Path
from typing import Any

from stabcheck.config.settings import FAIL_ON_DEFAULT
from stabcheck.files import write_text_atomic
from stabcheck.judge.advice import COUNT_WORDS, summary_counts
from stabcheck.judge.gate import fails
from stabcheck.judge.gridview import cell_text, column_label, grid_tables
from stabcheck.judge.quality import (
    MAX_QUALITY_ROWS,
    REGRESSION_COLUMNS,
    REGRESSION_NOTE,
    is_regression,
    regression_rows,
)
from stabcheck.judge.summary import RunSummary
from stabcheck.results import Category, Outcome, ProbeResult, RunReport
from stabcheck.text import executor_text
from stabcheck.units import human_bytes

__all__ = ["UPLOT_VERSION", "page_title", "render_html", "write_html"]

UPLOT_VERSION = "1.6.32"  # stabcheck/assets/README.md says where it comes from

# Chart colours per category (the stylesheet's --ok, --numerical...).
_COLORS = {"ok": "#16a34a", "numerical": "#dc2626", "memory": "#9333ea", "crash": "#b45309",
           "learning": "#d97706", "error": "#6b7280"}
# The memory chart's colours: one for the legend (written here) and the chart (report.js).
_MEMORY_COLORS = {"fits": "#60a5fa", "oom": _COLORS["memory"], "budget": "#dc2626"}


def _asset(name: str) -> str:
    return resources.files("stabcheck.report").joinpath("assets", name).read_text(encoding="utf-8")


def _script_json(value: Any) -> str:
    """JSON to embed in a ``<script>`` element: ``<`` escaped, so ``</script>`` can't occur."""
    text = json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _fail_step(result: ProbeResult) -> int | None:
    """Where to mark the failure on the curve: the step its evidence names."""
    if result.verdict.category in (Category.OK, Category.LEARNING, Category.ERROR):
        return None
    step = result.verdict.evidence.get("step")
    if isinstance(step, int) and not isinstance(step, bool) and step > 0:
        return step
    return None


def _probe_data(result: ProbeResult) -> dict[str, Any]:
    entry = result.to_json()
    return {
        "id": entry["id"],
        "category": entry["category"],
        "label": cell_text(result),
        "loss": entry["loss_history"],
        "grad": entry["grad_norm_history"],
        "fail_step": _fail_step(result),
    }


def _memory_data(report: RunReport) -> dict[str, Any]:
    """Per batch size: the highest peak that a probe of that size reached, and whether one
    of them ran out of memory; one chart for the host, one for the GPU where it was measured."""
    sizes = list(dict.fromkeys(r.probe.settings.batch_size for r in report.results))
    ran = [r for r in report.results if r.ran]
    charts: dict[str, Any] = {}
    for kind, title, outcome, budget_key in (
        ("host", "peak host memory", Outcome.OOM_HOST, "memory_budget"),
        ("gpu", "peak GPU memory", Outcome.OOM_GPU, "gpu_memory_budget"),
    ):
        def peak(r: ProbeResult, kind: str = kind) -> int | None:
            return r.run.memory.peak_host_bytes if kind == "host" else r.run.peak_gpu_bytes

        peaks = []
        for size in sizes:
            values = [peak(r) for r in ran if r.probe.settings.batch_size == size]
            known = [v for v in values if v is not None]
            peaks.append(max(known) if known else None)
        if kind == "gpu" and not any(p is not None for p in peaks):
            continue
        budget = report.config.get(budget_key)
        if kind == "host" and report.memory is not None and report.memory.budget_bytes:
            budget = report.memory.budget_bytes  # the ladder's, in bytes
        charts[kind] = {
            "title": title,
            "batch_sizes": sizes,
            "peak": peaks,
            "oom": [any(r.verdict.outcome is outcome and r.probe.settings.batch_size == size
                        for r in report.results) for size in sizes],
            "budget": budget if isinstance(budget, int) else None,
        }
    if report.memory is not None and report.memory.points:
        # The memory ladder measured more batch sizes (each in a fresh process), the
        # verified forecast and any forecast that was rejected: chart those.
        ordered = report.memory.measured()
        charts["host"] = {**charts["host"], "batch_sizes": [p.batch_size for p in ordered],
                          "peak": [p.peak_bytes for p in ordered],
                          "oom": [not p.fits for p in ordered]}
    return charts


def page_title(report: RunReport) -> str:
    """What the page is: ``stabcheck probe report: builtin:cnn on builtin:digits, 36
    probes``."""
    model = report.config.get("model")
    what = f"{model} on {report.dataset.source}" if model else report.dataset.source
    return f"stabcheck probe report: {what}, {len(report.results)} probes"


def _header(report: RunReport, policy: frozenset[str], summary: RunSummary) -> str:
    failing = sum(fails(r, policy) for r in report.results)
    if not report.results:
        badge = '<span class="badge none">NO PROBES</span>'
    elif failing:
        badge = f'<span class="badge fail">FAIL · {failing} of {len(report.results)}</span>'
    else:
        badge = '<span class="badge pass">PASS</span>'
    data, env, config = report.dataset, report.environment, report.config
    shape = "×".join("?" if d is None else str(d) for d in data.input_shape)
    rows = [
        ("model", f"<code>{escape(str(config.get('model', '—')))}</code>"),
        ("data", f"<code>{escape(data.source)}</code>: {data.n_samples:,} of {data.n_total:,} "
                 f"samples probed, {data.n_holdout:,} held out; input {escape(shape)}, "
                 + ("a regression target" if is_regression(report)
                    else f"{escape(data.label_format)} labels")),
    ]
    devices = ", ".join(
        str(d.get("name") or d.get("device_type") or d) if isinstance(d, dict) else str(d)
        for d in env.get("devices") or []
    )
    env_parts = [str(env.get("backend", "")), devices,
                 f"host memory {human_bytes(env.get('host_memory_bytes'))}"]
    if env.get("memory_enforcement"):
        env_parts.append(f"memory budget enforced by {env['memory_enforcement']}")
    env_parts.append(executor_text(env) or "")
    rows.append(("environment", escape(", ".join(p for p in env_parts if p))))
    steps = config.get("steps")
    gate = ", ".join(sorted(policy)) or "none"
    rows.append(("probes", f"{len(report.results)} of {report.probes_planned or '?'} planned"
                           + (f", {steps} steps each" if steps else "")
                           + f"; fails on: {escape(gate)}"))
    meta = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    counts = summary_counts(report.results)
    chips = "".join(
        f'<div class="count cat-{c.value}"><b>{counts[c]}</b>{word}</div>'
        for c, word in COUNT_WORDS if counts[c] or c is Category.OK
    )
    interrupted = (
        '<p class="badge fail">interrupted: the run did not finish</p>'
        if report.interrupted else ""
    )
    return (f"<header><h1>{escape(page_title(report))} {badge}</h1>{interrupted}"
            f"<p class='verdict'><b>{escape(summary.verdict)}</b></p>"
            + (f"<p class='spending'>{escape(summary.spending)}</p>" if summary.spending
               else "")
            + f'<dl class="meta">{meta}</dl><div class="counts">{chips}</div></header>')


def _grid(report: RunReport, index: dict[str, int]) -> str:
    parts = ['<section id="grid"><h2>Verdicts</h2>']
    regression = is_regression(report)
    row_head = "target" if regression else "class weight"
    for table in grid_tables(report):
        head = "".join(f"<th>{escape(a)}<br><span class='muted'>{escape(b)}</span></th>"
                       for a, b in (column_label(c) for c in table.columns))
        parts.append(f"<h3>batch size {table.batch_size}</h3><table class='grid'>"
                     f"<tr><th class='row'>{row_head}</th>{head}</tr>")
        for strategy, cells in table.rows:
            strategy = "regression" if regression else strategy
            tds = []
            for r in cells:
                if r is None:
                    tds.append("<td class='missing'>·</td>")
                    continue
                tds.append(
                    f"<td><a class='cat-{r.verdict.category.value}' href='#{_anchor(r, index)}'"
                    f" title='{escape(r.verdict.outcome.value + ': ' + r.verdict.summary)}'>"
                    f"{escape(cell_text(r))}</a></td>")
            parts.append(f"<tr><th class='row'>{escape(strategy)}</th>{''.join(tds)}</tr>")
        parts.append("</table>")
    parts.append("<p class='legend'>@N = at step N; a cell links to its probe's curves; "
                 "hover a cell for the evidence.</p></section>")
    return "".join(parts)


def _regression_errors(report: RunReport, index: dict[str, int]) -> str:
    """A regression run's held-out R², MAE and RMSE per probe that trained."""
    rows = regression_rows(report)
    if not rows:
        return ""
    head = "".join(f"<th>{escape(c)}</th>" for c in ("probe", *REGRESSION_COLUMNS))
    body = "".join(
        f"<tr><td class='row'>{_probe_link(r.probe.id, index)}</td>"
        + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>"
        for r, cells in rows[:MAX_QUALITY_ROWS])
    return (f'<section id="errors"><h2>Held-out errors of the settings that trained</h2>'
            f"<table class='classes'><tr>{head}</tr>{body}</table>"
            f"<p class='legend'>{escape(REGRESSION_NOTE)}</p></section>")


def _causes(summary: RunSummary, report: RunReport, index: dict[str, int]) -> str:
    """The failures grouped by cause (each with where, why and the fix), then the notes on
    the stable probes and the warnings."""
    items = []
    for cause in summary.causes:
        first = next((pid for pid in cause.probe_ids if pid in index), None)
        link = f" <a href='#p-{index[first]}'>curves</a>" if first is not None and any(
            r.probe.id == first and r.ran for r in report.results) else ""
        details = "".join(f"<li>{escape(d)}</li>" for d in cause.details)
        items.append(f"<li><b class='cat-{cause.category.value}'>{escape(cause.title)}</b>"
                     f"{link}" + (f"<ul>{details}</ul>" if details else "") + "</li>")
    notes = "".join(f"<li>{escape(n)}</li>" for n in summary.notes)
    warnings = "".join(f"<li>{escape(w)}</li>" for w in report.warnings)
    if not (items or notes or warnings):
        return ""
    return ('<section id="causes"><h2>Failures by cause</h2>'
            + (f'<div class="panel"><ul class="advice">{"".join(items)}</ul></div>'
               if items else "<p>No probe failed.</p>")
            + (f'<h3>Notes</h3><ul class="advice">{notes}</ul>' if notes else "")
            + (f'<h3>Warnings</h3><ul class="warnings">{warnings}</ul>' if warnings else "")
            + "</section>")


def _probe_link(probe_id: str, index: dict[str, int]) -> str:
    code = f"<code>{_breakable(probe_id)}</code>"
    return f"<a href='#p-{index[probe_id]}'>{code}</a>" if probe_id in index else code


_SETTING_STYLE = "font-size: 14px; font-weight: 600; padding: 3px 8px; border-radius: 6px"


def _recommendation(summary: RunSummary, index: dict[str, int]) -> str:
    """The recommended configuration panel: the settings, the probe and scores behind them,
    why, and the neighbours passed over (each probe links to its card)."""
    rec = summary.recommendation
    head = '<section id="recommendation"><h2>Recommended configuration</h2><div class="panel">'
    if rec is None:
        return (f"{head}<p><b>{escape(summary.no_recommendation or '')}</b></p>"
                "</div></section>")
    # report.css (an asset) has no rule for it: the settings stand out as the grid's ok cells.
    words = " ".join(f"<code class='cat-ok' style='{_SETTING_STYLE}'>{escape(w)}</code>"
                     for w in rec.words())
    scores = rec.scores()
    scores = f": {scores}" if scores else ""
    items = f"<li>{escape(rec.why())}</li>" + "".join(
        f"<li class='muted'>not {_probe_link(item.probe_id, index)}: "
        f"{escape(item.reason)}</li>" for item in rec.rejected)
    return (f"{head}<p class='recommended'>{words}</p>"
            f"<p>probe {_probe_link(rec.probe_id, index)}{escape(scores)}</p>"
            f"<ul class='advice'>{items}</ul></div></section>")


def _memory(charts: dict[str, Any]) -> str:
    """A chart per memory kind: its title says what it shows, the legend (in the bars' own
    colours) what the colours and the dashed line mean."""
    parts = ['<section id="memory"><h2>Memory by batch size</h2>']
    for kind, chart in charts.items():
        budget = human_bytes(chart["budget"]) if chart["budget"] else None
        swatch = "<span class='swatch' style='background:{}'></span>"
        legend = [f"<span data-legend='fits'>{swatch.format(_MEMORY_COLORS['fits'])}fits</span>"]
        if any(chart["oom"]):
            legend.append(f"<span data-legend='oom'>{swatch.format(_MEMORY_COLORS['oom'])}"
                          "ran out of memory</span>")
        if budget:
            legend.append(f"<span data-legend='budget'><span class='dash' style='border-color:"
                          f"{_MEMORY_COLORS['budget']}'></span>budget {budget}</span>")
        title = (f"Peak {'host' if kind == 'host' else 'GPU'} memory per batch size"
                 + (f" against the {budget} budget" if budget else " (no budget set)"))
        parts.append(f"<h3>{escape(title)}</h3><div class='panel'>"
                     f"<div class='chart-legend'>{''.join(legend)}</div>"
                     f"<div class='chart memory-chart' data-memory='{kind}'></div></div>")
    parts.append("</section>")
    return "".join(parts)


def _breakable(probe_id: str) -> str:
    """A probe id that wraps after its commas, not inside a setting."""
    return escape(probe_id).replace(",", ",<wbr>")


def _ran(result: ProbeResult) -> bool:
    return result.ran


def _anchor(result: ProbeResult, index: dict[str, int]) -> str:
    """The card a grid cell links to: its own, or for a probe not run, its source's."""
    source = result.verdict.evidence.get("inferred_from")
    if not _ran(result) and isinstance(source, str) and source in index:
        return f"p-{index[source]}"
    return f"p-{index[result.probe.id]}"


def _curves(report: RunReport, index: dict[str, int]) -> str:
    parts = ['<section id="curves"><h2>Loss and gradient norm per step</h2>'
             '<div class="key"><span><i class="loss"></i>loss (left axis, log)</span>'
             '<span><i class="grad"></i>gradient norm before clipping (right axis, log)</span>'
             '<span><i class="fail"></i>failure, at its step</span></div>']
    sizes = dict.fromkeys(r.probe.settings.batch_size for r in report.results)
    for size in sizes:
        of_size = [r for r in report.results if r.probe.settings.batch_size == size]
        parts.append(f"<h3>batch size {size}</h3><div class='multiples'>")
        for r in filter(_ran, of_size):
            cat, i = r.verdict.category.value, index[r.probe.id]
            parts.append(
                f"<article class='card {cat}' id='p-{i}'><header><code>{_breakable(r.probe.id)}"
                f"</code><span class='tag cat-{cat}'>{escape(cell_text(r))}</span></header>"
                f"<div class='summary'>{escape(r.verdict.summary)}</div>"
                f"<div class='chart' data-probe='{i}'></div></article>")
        parts.append("</div>")
        skipped = [r for r in of_size if not _ran(r)]
        if skipped:
            names = ", ".join(f"<code>{escape(r.probe.id)}</code>" for r in skipped)
            sources = dict.fromkeys(str(r.verdict.evidence.get("inferred_from")) for r in skipped)
            like = ", ".join(
                f"<a href='#p-{index[src]}'><code>{escape(src)}</code></a>" if src in index
                else f"<code>{escape(src)}</code>" for src in sources
            )
            parts.append(f"<p class='notrun'>Not run, as they would exhaust memory like {like}: "
                         f"{names}.</p>")
    parts.append("</section>")
    return "".join(parts)


def render_html(report: RunReport, summary: RunSummary,
                policy: frozenset[str] | None = None) -> str:
    """The whole HTML document for ``report``.

    Args:
        report: the run.
        summary: its judgement (``stabcheck.judge.summary.summarize``, once per run).
        policy: the ``--fail-on`` policy behind the PASS/FAIL badge (default: the
            contract's default, numerical, memory and crash).
    """
    policy = frozenset(FAIL_ON_DEFAULT) if policy is None else policy
    index = {r.probe.id: i for i, r in enumerate(report.results)}
    blob = {
        "colors": _COLORS,
        "memory_colors": _MEMORY_COLORS,
        "probes": [_probe_data(r) for r in report.results],
        "memory": _memory_data(report),
    }
    body = _header(report, policy, summary)
    if report.results:
        body += _grid(report, index) + _recommendation(summary, index)
        body += _causes(summary, report, index)
        body += _regression_errors(report, index) if is_regression(report) else ""
        body += _memory(blob["memory"])
        body += _curves(report, index)
    else:
        body += _causes(summary, report, index)
    title = page_title(report)
    return (
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{escape(title)}</title>"
        f"<style>{_asset('uplot.min.css')}</style>\n<style>{_asset('report.css')}</style>"
        f"</head>\n<body><main>{body}<footer>stabcheck {escape(report.stabcheck_version)} · "
        f"charts by uPlot {UPLOT_VERSION} (MIT licence), embedded</footer></main>\n"
        f"<script type='application/json' id='stabcheck-data'>{_script_json(blob)}</script>\n"
        f"<script>{_asset('uplot.iife.min.js')}</script>\n"
        f"<script>{_asset('report.js')}</script>\n</body></html>\n"
    )


def write_html(report: RunReport, summary: RunSummary, path: Path | str,
               policy: frozenset[str] | None = None) -> None:
    """Write ``render_html(report, summary, policy)`` to ``path`` (atomically; folders are
    created)."""
    write_text_atomic(Path(path), render_html(report, summary, policy))
