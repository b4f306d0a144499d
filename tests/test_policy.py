"""The --fail-on gate: categories and outcomes, and the memory ladder's own probes."""

from __future__ import annotations

import dataclasses

import pytest

from stabcheck.errors import ConfigError
from stabcheck.policy import fails, parse_fail_on
from stabcheck.results import MEMORY_SEARCH_TAGS, Outcome, ProbeResult
from tests.test_report import make_result

DEFAULT = parse_fail_on(["numerical,memory,crash"])


def tagged(result: ProbeResult, tag: str) -> ProbeResult:
    probe = dataclasses.replace(result.probe, id=f"{tag}:{result.probe.id}")
    return dataclasses.replace(result, run=dataclasses.replace(result.run, probe=probe))


@pytest.mark.parametrize("policy", [DEFAULT, parse_fail_on(["any"]),
                                    parse_fail_on(["oom_host"])])
def test_a_user_batch_size_that_runs_out_fails_and_a_search_probe_does_not(policy):
    grid = make_result(Outcome.OOM_HOST, bs=4096)
    assert fails(grid, policy)
    for tag in MEMORY_SEARCH_TAGS:
        assert not fails(tagged(grid, tag), policy), tag


def test_a_search_probe_that_crashes_still_fails():
    assert fails(tagged(make_result(Outcome.CRASHED), "verify"), DEFAULT)


def test_only_known_tags_make_a_search_probe():
    assert fails(tagged(make_result(Outcome.OOM_HOST), "mine"), DEFAULT)


@pytest.mark.parametrize(("items", "expected"), [
    (["numerical,memory"], {"numerical", "memory"}),
    (["oom_host", " Crash "], {"oom_host", "crash"}),
    (["none"], {"none"}),
])
def test_parse_fail_on(items, expected):
    assert parse_fail_on(items) == frozenset(expected)


def test_parse_fail_on_rejects_unknown_names():
    with pytest.raises(ConfigError, match="unknown --fail-on value 'nans'"):
        parse_fail_on(["numerical,nans"])
