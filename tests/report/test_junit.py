"""JUnit XML: valid against the schema Jenkins uses, one test case per probe, failures
exactly where the --fail-on policy says."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema

from stabcheck.judge.gate import fails, parse_fail_on
from stabcheck.report.junit import junit_xml, write_junit
from stabcheck.results import Outcome, Verdict
from tests.conftest import TESTS
from tests.sample_report import make_report

XSD = xmlschema.XMLSchema(TESTS / "schemas" / "junit-10.xsd")
DEFAULT = parse_fail_on(["numerical,memory,crash"])


def _cases(xml: str) -> dict[str, ET.Element]:
    root = ET.fromstring(xml)
    return {case.get("name"): case for case in root.iter("testcase")}


@pytest.mark.parametrize("policy", [
    ["numerical,memory,crash"], ["any"], ["none"], ["non_finite", "learning"], ["oom_host"],
])
def test_validates_against_the_jenkins_schema_and_fails_by_the_policy(policy, tmp_path: Path):
    report = make_report()
    parsed = parse_fail_on(policy)
    path = tmp_path / "out" / "junit.xml"
    write_junit(report, path, parsed)
    XSD.validate(str(path))
    cases = _cases(path.read_text(encoding="utf-8"))
    assert list(cases) == [r.probe.id for r in report.results]
    for result in report.results:
        case = cases[result.probe.id]
        failure = case.find("failure")
        out = case.find("system-out")
        assert (failure is not None) == fails(result, parsed), result.probe.id
        if failure is not None:
            outcome = result.verdict.outcome.value
            assert failure.get("type") == outcome
            assert failure.get("message") == f"{outcome}: {result.verdict.summary}"
            assert out is None
        elif result.verdict.outcome is Outcome.STABLE:
            assert list(case) == []
        else:  # not ok, but not counted: the verdict is shown, the test passes
            assert out is not None and "not counted by --fail-on" in out.text
    suite = ET.parse(path).getroot().find("testsuite")
    assert suite.get("name") == "stabcheck"
    assert suite.get("tests") == str(len(report.results))
    assert suite.get("failures") == str(sum(fails(r, parsed) for r in report.results))


def test_testcase_attributes_and_evidence_text():
    report = make_report()
    cases = _cases(junit_xml(report, DEFAULT))
    nan = cases["cw=x100,lr=0.1,clip=none,bs=32"]
    assert nan.get("classname") == "stabcheck.x100"
    assert nan.get("time") == "1.250"
    text = nan.find("failure").text
    assert text.startswith("the loss became nan at step 37\n")
    assert "  step: 37" in text and "  value: nan" in text and "  where: loss" in text
    assert "steps: 37 of 40" in text
    exploding = cases["cw=balanced,lr=0.1,clip=none,bs=32"].find("failure").text
    assert "  peak_grad_norm: inf" in exploding  # non-finite evidence as the JSON's string
    crashed = cases["cw=none,lr=0.1,clip=none,bs=32"].find("failure").text
    assert "  stderr_tail: \n    Fatal Python error: Segmentation fault\n    <stack>" in crashed
    learning = cases["cw=x100,lr=0.001,clip=none,bs=32"].find("system-out").text
    assert learning.startswith("overcorrected (learning, not counted by --fail-on): class")


def test_properties_and_warnings():
    root = ET.fromstring(junit_xml(make_report(), DEFAULT))
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["fail_on"] == "crash,memory,numerical"
    assert props["model"] == "model.keras" and props["data"] == "data.npz"
    assert "900:1" in root.find("testsuite/system-err").text


def test_control_characters_from_stderr_stay_valid_xml():
    report = make_report()
    crashed = report.results[1]
    evidence = {**crashed.verdict.evidence, "stderr_tail": "bad \x00\x07\x1b[31m bytes"}
    odd = dataclasses.replace(crashed, verdict=Verdict(Outcome.CRASHED, evidence, "died\x08"))
    report = dataclasses.replace(report, results=(odd,))
    xml = junit_xml(report, DEFAULT)
    XSD.validate(xml)
    assert "bad \ufffd\ufffd\ufffd[31m bytes" in ET.fromstring(xml).find(".//failure").text


def test_an_empty_run_is_a_valid_suite():
    xml = junit_xml(dataclasses.replace(make_report(), results=(), probes_planned=0), DEFAULT)
    XSD.validate(xml)
    assert ET.fromstring(xml).find("testsuite").get("tests") == "0"
