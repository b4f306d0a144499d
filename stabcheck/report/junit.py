"""The run as JUnit XML, the test report format every CI system displays.

One ``<testsuite name="stabcheck">`` with one ``<testcase>`` per probe: ``classname`` is
``stabcheck.<class_weight>`` (so CI groups the probes by strategy), ``name`` the probe id,
``time`` its duration. A probe that fails under the ``--fail-on`` policy carries
``<failure type="<outcome>" message="<outcome>: <summary>">`` with its evidence as text;
another probe that is not ``ok`` (a learning problem, say, when the policy does not count
learning) passes with its verdict in ``<system-out>``. The output validates against the
Jenkins xUnit plugin's ``junit-10.xsd``.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from stabcheck.files import write_text_atomic
from stabcheck.judge.gate import fails
from stabcheck.results import Category, ProbeResult, RunReport

__all__ = ["junit_xml", "write_junit"]

SUITE_NAME = "stabcheck"

# XML 1.0 forbids these characters, even escaped; a stderr tail may hold them.
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str) -> str:
    return _INVALID_XML.sub("\ufffd", text)


def _seconds(value: float) -> str:
    return f"{max(0.0, value):.3f}"


def _evidence_text(result: ProbeResult) -> str:
    """The verdict, the settings and every evidence item, one per line."""
    settings = result.probe.settings
    lines = [
        result.verdict.summary,
        "",
        f"outcome: {result.verdict.outcome.value} ({result.verdict.category.value})",
        f"settings: class_weight={settings.class_weight} learning_rate={settings.learning_rate:g}"
        f" clip={settings.clip} batch_size={settings.batch_size}"
        f" optimizer={settings.optimizer} loss={settings.loss}",
        f"steps: {result.run.steps_completed} of {result.probe.steps}",
        "evidence:",
    ]
    for key, value in result.to_json()["evidence"].items():
        text = value if isinstance(value, str) else json.dumps(value, allow_nan=False)
        if "\n" in text:
            text = "\n    " + "\n    ".join(text.splitlines())
        lines.append(f"  {key}: {text}")
    return _clean("\n".join(lines))


def _testcase(result: ProbeResult, policy: frozenset[str]) -> ET.Element:
    settings = result.probe.settings
    case = ET.Element("testcase", {
        "classname": f"{SUITE_NAME}.{settings.class_weight}",
        "name": _clean(result.probe.id),
        "time": _seconds(result.run.duration_s),
    })
    verdict = result.verdict
    if fails(result, policy):
        failure = ET.SubElement(case, "failure", {
            "type": verdict.outcome.value,
            "message": _clean(f"{verdict.outcome.value}: {verdict.summary}"),
        })
        failure.text = _evidence_text(result)
    elif verdict.category is not Category.OK:
        out = ET.SubElement(case, "system-out")
        why = ("found by the memory ladder's search, never counted"
               if verdict.category is Category.MEMORY and result.is_memory_search
               else "not counted by --fail-on")
        out.text = (
            f"{verdict.outcome.value} ({verdict.category.value}, {why}): "
            + _evidence_text(result)
        )
    return case


def _properties(report: RunReport, policy: frozenset[str]) -> ET.Element:
    props: dict[str, Any] = {
        "stabcheck_version": report.stabcheck_version,
        "data": report.dataset.source,
        "model": report.config.get("model"),
        "backend": report.environment.get("backend"),
        "fail_on": ",".join(sorted(policy)) or "none",
        "probes_planned": report.probes_planned,
        "interrupted": str(report.interrupted).lower(),
    }
    element = ET.Element("properties")
    for name, value in props.items():
        if value is not None:
            ET.SubElement(element, "property", {"name": name, "value": _clean(str(value))})
    return element


def junit_xml(report: RunReport, policy: frozenset[str]) -> str:
    """The JUnit XML document for ``report`` judged by ``policy`` (see ``stabcheck.judge.gate``)."""
    results = report.results
    failures = sum(fails(r, policy) for r in results)
    total = _seconds(sum(r.run.duration_s for r in results))
    counts = {"tests": str(len(results)), "failures": str(failures), "errors": "0"}
    root = ET.Element("testsuites", {"name": SUITE_NAME, **counts, "time": total})
    suite = ET.SubElement(root, "testsuite", {
        "name": SUITE_NAME, **counts, "skipped": "0", "time": total,
    })
    suite.append(_properties(report, policy))
    for result in results:
        suite.append(_testcase(result, policy))
    if report.warnings:
        ET.SubElement(suite, "system-err").text = _clean(
            "\n".join(f"warning: {w}" for w in report.warnings)
        )
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(report: RunReport, path: Path | str, policy: frozenset[str]) -> None:
    """Write ``report`` as JUnit XML to ``path`` (atomically; folders are created).

    Args:
        report: the run.
        path: the destination file.
        policy: the ``--fail-on`` policy that decides which probes are ``<failure>``s.
    """
    write_text_atomic(Path(path), junit_xml(report, policy))
