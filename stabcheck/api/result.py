"""What ``stabcheck.probe`` returns: the run's ``RunReport``, with its views at hand.

``Result`` is a ``RunReport`` (the same fields, the same data) that shows itself: the rich
terminal report in a terminal (``print(result)``, IPython's display, ``rich.print``), the
HTML report inline in Jupyter (``_repr_html_``: grid, curves, recommendation, in an
isolated frame), and a one-line ``repr``. ``recommended`` gives the recommended setting as
the keyword arguments of ``compile`` and ``fit``; ``failures`` the probes that fail the
run's ``fail_on`` policy; ``to_json`` the contract's JSON result.
"""

from __future__ import annotations

import functools
import html
import io
from collections import Counter
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from stabcheck.judge.gate import fails, parse_fail_on
from stabcheck.judge.summary import RunSummary, summarize
from stabcheck.protocol.vocabulary import parse_clip
from stabcheck.report.json import result_json, write_json
from stabcheck.results import ProbeResult, RunReport


@dataclass(frozen=True)
class Recommendation:
    """The recommended setting, as ``compile`` and ``fit`` take it.

    ``model.compile(loss=..., **rec.compile)`` and ``model.fit(x, y, **rec.fit)``.
    ``compile`` builds the optimizer class with the probed learning rate and clipping and
    Keras's defaults otherwise: where your optimizer has arguments of its own, build it
    yourself with ``learning_rate=rec.learning_rate, **rec.clip``.

    Attributes:
        probe_id: the probe it comes from.
        optimizer: the optimizer's name as probed (``adam``).
        learning_rate: the learning rate.
        clip: the optimizer's clipping argument (``{"global_clipnorm": 1.0}``; empty: none).
        class_weight: ``fit``'s ``class_weight`` (class index -> weight), or None.
        batch_size: ``fit``'s ``batch_size``.
        loss: the loss it was probed with (``compile``'s ``loss`` stays yours).
        reasons: why this setting, in sentences.
    """

    probe_id: str
    optimizer: str
    learning_rate: float
    clip: dict[str, float]
    class_weight: dict[int, float] | None
    batch_size: int
    loss: str
    reasons: tuple[str, ...] = ()

    @property
    def compile(self) -> dict[str, Any]:
        """``compile``'s ``optimizer``, as a config Keras builds the optimizer from."""
        config = {"learning_rate": self.learning_rate, **self.clip}
        return {"optimizer": {"class_name": self.optimizer, "config": config}}

    @property
    def fit(self) -> dict[str, Any]:
        """``fit``'s ``class_weight`` and ``batch_size``."""
        return {"class_weight": None if self.class_weight is None else dict(self.class_weight),
                "batch_size": self.batch_size}

    def __repr__(self) -> str:
        clip = ", ".join(f"{k}={v:g}" for k, v in self.clip.items()) or "no clipping"
        return (f"<Recommendation {self.probe_id}: {self.optimizer} lr={self.learning_rate:g}, "
                f"{clip}, class_weight={self.class_weight}, batch_size={self.batch_size}>")


@dataclass(frozen=True)
class Result(RunReport):
    """A ``RunReport`` that shows itself; see the module's docstring."""

    @classmethod
    def of(cls, report: RunReport) -> Result:
        return cls(**{f.name: getattr(report, f.name) for f in fields(RunReport)})

    # ------------------------------------------------------------------ answers

    @property
    def policy(self) -> frozenset[str]:
        """The run's ``fail_on`` policy."""
        from stabcheck.config.settings import FAIL_ON_DEFAULT

        return parse_fail_on(self.config.get("fail_on") or FAIL_ON_DEFAULT)

    @property
    def failures(self) -> tuple[ProbeResult, ...]:
        """The probes that fail the run's ``fail_on`` policy (what makes the CLI exit 1)."""
        policy = self.policy
        return tuple(r for r in self.results if fails(r, policy))

    @property
    def recommended(self) -> Recommendation | None:
        """The recommended setting as ``compile``/``fit`` keyword arguments; None when no
        setting was stable."""
        rec = self.judgement.recommendation
        if rec is None:
            return None
        chosen = next(r for r in self.results if r.probe.id == rec.probe_id)
        settings = chosen.probe.settings
        return Recommendation(
            probe_id=rec.probe_id, optimizer=settings.optimizer,
            learning_rate=float(rec.learning_rate),
            clip=parse_clip(rec.clip).keras_kwargs,
            class_weight=self._fit_class_weight(rec.class_weight),
            batch_size=int(rec.batch_size), loss=settings.loss, reasons=rec.reasons)

    def _fit_class_weight(self, strategy: str) -> dict[int, float] | None:
        """``fit``'s keys: the integer labels (the class names of integer data), else the
        class index (string labels are numbered in sorted order)."""
        table = self.class_weight_table.get(strategy)
        if not table:
            return None
        names = self.dataset.class_names
        if all(n.lstrip("-").isdigit() for n in names):
            return {int(name): float(table[name]) for name in names if name in table}
        return {i: float(table[name]) for i, name in enumerate(names) if name in table}

    @functools.cached_property
    def judgement(self) -> RunSummary:
        """The run's one judgement (``stabcheck.judge.summary.summarize``): the verdict line,
        the causes, the recommendation, the notes; judged once, every view renders it."""
        return summarize(self.as_run_report())

    # ------------------------------------------------------------------ views

    def as_run_report(self) -> RunReport:
        """The plain ``RunReport`` (what the report modules take)."""
        return RunReport(**{f.name: getattr(self, f.name) for f in fields(RunReport)})

    def to_json(self) -> dict[str, Any]:
        """The contract's JSON result (what ``--json`` writes), as a dict."""
        return result_json(self.as_run_report(), self.judgement)

    def write_json(self, path: str | Path) -> None:
        """Write the JSON result to ``path``."""
        write_json(self.as_run_report(), self.judgement, Path(path))

    def to_html(self) -> str:
        """The self-contained HTML report (what ``--html`` writes)."""
        from stabcheck.report.html import render_html

        return render_html(self.as_run_report(), self.judgement, self.policy)

    def write_html(self, path: str | Path) -> None:
        """Write the HTML report to ``path``."""
        from stabcheck.files import write_text_atomic

        write_text_atomic(Path(path), self.to_html())

    def _repr_html_(self) -> str:
        """Jupyter: the HTML report inline, in a frame (its styles and scripts stay in it)."""
        return (f"<iframe srcdoc=\"{html.escape(self.to_html(), quote=True)}\" "
                "style=\"width:100%;height:900px;border:1px solid #ddd\" "
                "sandbox=\"allow-scripts\" title=\"stabcheck report\"></iframe>")

    def __rich_console__(self, console: Any, options: Any) -> Any:
        """``rich.print(result)``: the terminal report."""
        from rich.console import Console
        from rich.text import Text

        from stabcheck.report.terminal.report import render_report

        buffer = Console(file=io.StringIO(), width=options.max_width, force_jupyter=False,
                         force_terminal=console.is_terminal, color_system=console.color_system)
        render_report(self.as_run_report(), self.judgement, buffer)
        yield Text.from_ansi(buffer.file.getvalue())

    def __str__(self) -> str:
        """The terminal report as plain text (``print(result)``)."""
        from rich.console import Console

        from stabcheck.report.terminal.report import render_report

        buffer = Console(file=io.StringIO(), width=110, color_system=None, force_jupyter=False)
        render_report(self.as_run_report(), self.judgement, buffer)
        return buffer.file.getvalue()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython in a terminal: the report."""
        printer.text(repr(self) if cycle else str(self))

    def __repr__(self) -> str:
        grid = [r for r in self.results if not r.is_memory_search]
        failed = Counter(r.verdict.category.value for r in self.failures)
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(failed.items()))
        rec = self.recommended
        best = f"; recommended {rec.probe_id}" if rec is not None else "; nothing stable"
        return (f"<stabcheck Result: {len(grid)} probes, {len(self.failures)} failed"
                f"{f' ({kinds})' if kinds else ''}{best}>")
