"""Tests of ``stabcheck.results``: strict-JSON values, signal names, round trips and the
contract's outcome -> category table.
"""

from __future__ import annotations

import json
import math
from enum import Enum
from typing import Any

import pytest

from stabcheck.results import (
    Category,
    DatasetSummary,
    MemoryEvidence,
    Outcome,
    Probe,
    ProbeResult,
    ProbeRun,
    ProbeSettings,
    StepRecord,
    Termination,
    Verdict,
    finite_or_none,
    json_value,
    signal_name,
)

NAN, INF = math.nan, math.inf


class Color(Enum):
    RED = "red"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (NAN, "nan"),
        (INF, "inf"),
        (-INF, "-inf"),
        (1.5, 1.5),
        (0.0, 0.0),
        (3, 3),
        (None, None),
        (True, True),
        ("nan", "nan"),
        (Outcome.NON_FINITE, "non_finite"),
        (Color.RED, "red"),
        ([1.0, NAN, INF], [1.0, "nan", "inf"]),
        ((NAN, -INF), ["nan", "-inf"]),
        ({"loss": NAN, "step": 37}, {"loss": "nan", "step": 37}),
        ({1: INF}, {"1": "inf"}),
        ({"a": {"b": [NAN, {"c": -INF}]}, "d": (1.0,)},
         {"a": {"b": ["nan", {"c": "-inf"}]}, "d": [1.0]}),
    ],
)
def test_json_value(value: Any, expected: Any) -> None:
    got = json_value(value)
    assert got == expected
    json.dumps(got, allow_nan=False)  # strict RFC 8259


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), (NAN, None), (INF, None), (-INF, None), (1.0, 1.0), (-2.5, -2.5), (3, 3.0),
     (0, 0.0)],
)
def test_finite_or_none(value: float | None, expected: float | None) -> None:
    got = finite_or_none(value)
    assert got == expected
    if expected is not None:
        assert type(got) is float


@pytest.mark.parametrize(
    ("returncode", "expected"),
    [
        (-9, "SIGKILL(-9)"),
        (-11, "SIGSEGV(-11)"),
        (-6, "SIGABRT(-6)"),
        (-15, "SIGTERM(-15)"),
        (-2, "SIGINT(-2)"),
        (0, "exit(0)"),
        (1, "exit(1)"),
        (3, "exit(3)"),
        (None, "unknown"),
        (-999, "signal(-999)"),
    ],
)
def test_signal_name(returncode: int | None, expected: str) -> None:
    assert signal_name(returncode) == expected


# --------------------------------------------------------------------------- JSON forms


SETTINGS = ProbeSettings(
    class_weight="balanced", class_weights={"0": 0.55, "1": 5.0}, learning_rate=0.01,
    clip="none", batch_size=32, optimizer="adam", loss="sparse_categorical_crossentropy",
)
PROBE = Probe("cw=balanced,lr=0.01,clip=none,bs=32", SETTINGS, 50)


@pytest.mark.parametrize(
    "settings",
    [
        SETTINGS,
        ProbeSettings("none", None, 1e-4, "global_norm=1", 8, "sgd", "binary_crossentropy"),
        ProbeSettings("custom", {"cat": 1.0, "dog": 1000.0}, 0.3, "value=0.5", 1,
                      "rmsprop", "categorical_crossentropy"),
    ],
)
def test_probe_round_trip(settings: ProbeSettings) -> None:
    probe = Probe("some-id", settings, 123)
    assert ProbeSettings.from_json(settings.to_json()) == settings
    assert Probe.from_json(probe.to_json()) == probe
    # through a real JSON text too (the process boundary)
    assert Probe.from_json(json.loads(json.dumps(probe.to_json()))) == probe


def test_probe_settings_json_matches_contract() -> None:
    assert SETTINGS.to_json() == {
        "class_weight": "balanced", "class_weights": {"0": 0.55, "1": 5.0},
        "learning_rate": 0.01, "clip": "none", "batch_size": 32, "optimizer": "adam",
        "loss": "sparse_categorical_crossentropy",
    }


def test_probe_settings_json_copies_the_weights() -> None:
    data = SETTINGS.to_json()
    data["class_weights"]["1"] = 99.0
    assert SETTINGS.class_weights == {"0": 0.55, "1": 5.0}


@pytest.mark.parametrize(
    ("losses", "history"),
    [
        ([0.7, 0.5, NAN], [0.7, 0.5, None]),
        ([0.7, INF], [0.7, None]),
        ([-INF], [None]),
        ([0.7, 0.6], [0.7, 0.6]),
        ([], []),
    ],
)
def test_probe_result_to_json_loss_history(losses: list[float], history: list[Any]) -> None:
    steps = tuple(StepRecord(i, loss, NAN) for i, loss in enumerate(losses, start=1))
    run = ProbeRun(PROBE, Termination.NON_FINITE, steps=steps,
                   memory=MemoryEvidence(123456789, None, None), duration_s=1.23456)
    verdict = Verdict(Outcome.NON_FINITE, {"step": len(losses), "value": NAN, "loss": -INF},
                      "NaN at step 3 in loss")
    data = ProbeResult(run, verdict).to_json()
    assert data["loss_history"] == history
    assert data["grad_norm_history"] == [None] * len(losses)
    assert data["evidence"] == {"step": len(losses), "value": "nan", "loss": "-inf"}
    assert data["outcome"] == "non_finite"
    assert data["category"] == "numerical"
    assert data["id"] == PROBE.id
    assert data["settings"] == SETTINGS.to_json()
    assert data["steps_completed"] == len(losses)
    assert data["steps_planned"] == 50
    assert data["peak_host_bytes"] == 123456789
    assert data["peak_gpu_bytes"] is None
    assert data["duration_s"] == 1.235
    text = json.dumps(data, allow_nan=False)  # raises on a bare NaN or Infinity
    assert json.loads(text) == data


def test_dataset_summary_to_json() -> None:
    summary = DatasetSummary("builtin:digits", 900, 1797, 180, ("0", "1"), (810, 90), (64,),
                             "sparse")
    data = summary.to_json()
    assert data["class_counts"] == {"0": 810, "1": 90}
    assert data["input_shape"] == [64]
    assert data["n_samples"] == 900


# --------------------------------------------------------------------------- categories


CONTRACT_TABLE = {
    "stable": "ok",
    "non_finite": "numerical",
    "diverged": "numerical",
    "exploding_gradients": "numerical",
    "stalled": "learning",
    "minority_collapse": "learning",
    "overcorrected": "learning",
    "oom_host": "memory",
    "oom_gpu": "memory",
    "crashed": "crash",
    "timeout": "crash",
    "error": "error",
}


@pytest.mark.parametrize(("outcome", "category"), sorted(CONTRACT_TABLE.items()))
def test_outcome_category_matches_contract(outcome: str, category: str) -> None:
    assert Outcome(outcome).category is Category(category)
    verdict = Verdict(Outcome(outcome), {}, "")
    assert verdict.category is Category(category)


def test_outcomes_are_exactly_the_contracts() -> None:
    assert {o.value for o in Outcome} == set(CONTRACT_TABLE)
    assert len(Outcome) == 12
    assert {c.value for c in Category} == set(CONTRACT_TABLE.values())
