"""The --fail-on gate: categories and outcomes, and the memory ladder's own probes."""

from __future__ import annotations

import dataclasses

import pytest

from stabcheck.errors import ConfigError
from stabcheck.judge.gate import fails, parse_fail_on, unprobed_cause
from stabcheck.probe_ids import MEMORY_SEARCH_TAGS
from stabcheck.results import Outcome, ProbeResult
from tests.report.terminal.test_report import make_result

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


def test_the_default_policy_fails_a_probe_that_ended_error():
    from stabcheck.config.settings import FAIL_ON_DEFAULT

    policy = parse_fail_on(FAIL_ON_DEFAULT)
    assert "error" in FAIL_ON_DEFAULT
    assert fails(make_result(Outcome.ERROR), policy)
    assert not fails(make_result(Outcome.STABLE), policy)
    assert not fails(make_result(Outcome.ERROR), parse_fail_on(["numerical,memory,crash"]))


def test_unprobed_cause_names_the_first_probe_when_every_probe_ended_error():
    first = make_result(Outcome.ERROR, lr=0.01,
                        summary="ValueError while training: Input 0 is\nincompatible")
    second = make_result(Outcome.ERROR, lr=0.1, summary="ValueError while training: other")
    cause = unprobed_cause([first, second])
    assert cause == ("all 2 probes ended in an error; the first "
                     "(cw=balanced,lr=0.01,clip=none,bs=32): ValueError while training: "
                     "Input 0 is incompatible")
    assert "\n" not in cause
    assert unprobed_cause([first]).startswith(
        "the probe cw=balanced,lr=0.01,clip=none,bs=32 ended in an error: ValueError")


@pytest.mark.parametrize("others", [[], [Outcome.STABLE], [Outcome.NON_FINITE],
                                    [Outcome.OOM_HOST, Outcome.ERROR]])
def test_unprobed_cause_is_none_once_anything_else_happened(others):
    results = [make_result(o, lr=0.1 * (i + 1)) for i, o in enumerate(others)]
    if others:
        results.insert(0, make_result(Outcome.ERROR, lr=0.001))
    assert unprobed_cause(results) is None


def test_unprobed_cause_quotes_the_error_not_the_call_context_keras_wraps_it_in():
    message = ("Exception encountered when calling RefusesToTrain.call().\n\n"
               "\x1b[1mRefusesToTrain cannot be trained\x1b[0m\n\n"
               "Arguments received by RefusesToTrain.call():\n  • x=tf.Tensor(shape=(32, 4))\n"
               "  • training=True")
    result = make_result(Outcome.ERROR, summary="ValueError while training: • training=True",
                         evidence={"exception_type": "ValueError", "message": message,
                                   "phase": "train", "step": 0})
    assert unprobed_cause([result]).endswith(
        "ended in an error: ValueError while training: RefusesToTrain cannot be trained")
