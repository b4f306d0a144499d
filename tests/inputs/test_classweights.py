"""Tests of ``stabcheck.inputs.classweights``: each strategy against hand-computed weights."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest

from stabcheck.errors import InputError
from stabcheck.inputs.classweights import (
    class_weights_for,
    custom_defaults_warning,
    weights_by_name,
)


def names_for(counts: Sequence[int]) -> list[str]:
    return [str(i) for i in range(len(counts))]


def weights(strategy: str, counts: Sequence[int], **kwargs: object) -> list[float] | None:
    return class_weights_for(strategy, counts, class_names=names_for(counts), **kwargs)


# --------------------------------------------------------------------------- balanced / sqrt


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        # n / (k * count_c)
        ([90, 10], [100 / 180, 100 / 20]),  # 0.5556, 5.0
        ([50, 50], [1.0, 1.0]),
        ([50, 30, 20], [100 / 150, 100 / 90, 100 / 60]),
        ([999, 1], [1000 / 1998, 500.0]),
        ([25, 25, 25, 25], [1.0, 1.0, 1.0, 1.0]),
        ([10, 90], [5.0, 100 / 180]),
    ],
)
def test_balanced(counts: list[int], expected: list[float]) -> None:
    assert weights("balanced", counts) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ([90, 10], [math.sqrt(100 / 180), math.sqrt(5.0)]),
        ([50, 30, 20], [math.sqrt(100 / 150), math.sqrt(100 / 90), math.sqrt(100 / 60)]),
        ([50, 50], [1.0, 1.0]),
    ],
)
def test_sqrt(counts: list[int], expected: list[float]) -> None:
    assert weights("sqrt", counts) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("counts", [[90, 10], [50, 30, 20], [1000, 10, 1]])
def test_sqrt_is_square_root_of_balanced(counts: list[int]) -> None:
    balanced = weights("balanced", counts)
    assert balanced is not None
    assert weights("sqrt", counts) == pytest.approx([math.sqrt(w) for w in balanced])


# --------------------------------------------------------------------------- effective


def _effective_by_hand(counts: Sequence[int], beta: float) -> list[float]:
    raw = [(1 - beta) / (1 - beta**c) for c in counts]
    return [w * len(counts) / sum(raw) for w in raw]


@pytest.mark.parametrize(
    ("counts", "beta"),
    [
        ([900, 90, 10], 0.999),
        ([90, 10], 0.999),
        ([90, 10], 0.9),
        ([5000, 50], 0.9999),
        ([100, 100], 0.99),
    ],
)
def test_effective_matches_cui_et_al(counts: list[int], beta: float) -> None:
    got = weights("effective", counts, effective_beta=beta)
    assert got == pytest.approx(_effective_by_hand(counts, beta), rel=1e-12)
    assert sum(got) == pytest.approx(len(counts))


def test_effective_hand_computed_values() -> None:
    # beta 0.9, counts 90 and 10: raw weights 0.1/(1-0.9**90) and 0.1/(1-0.9**10)
    raw0 = 0.1 / (1 - 0.9**90)  # 0.1000076
    raw1 = 0.1 / (1 - 0.9**10)  # 0.1535340
    expected = [2 * raw0 / (raw0 + raw1), 2 * raw1 / (raw0 + raw1)]
    got = weights("effective", [90, 10], effective_beta=0.9)
    assert got == pytest.approx(expected, rel=1e-12)
    assert got == pytest.approx([0.788885, 1.211115], abs=1e-6)


@pytest.mark.parametrize("counts", [[1000, 300, 100, 10, 1], [5, 50, 500], [60, 20, 40]])
def test_effective_decreases_with_count(counts: list[int]) -> None:
    got = weights("effective", counts)
    assert got is not None
    by_count = [w for _, w in sorted(zip(counts, got, strict=True))]
    assert all(a > b for a, b in zip(by_count, by_count[1:], strict=False))


# --------------------------------------------------------------------------- xN stress


@pytest.mark.parametrize(
    ("strategy", "counts", "expected"),
    [
        ("x100", [90, 10], [100 / 180, 500.0]),
        ("x10", [10, 90], [50.0, 100 / 180]),
        ("x1e3", [90, 10], [100 / 180, 5000.0]),
        ("x10", [60, 30, 10], [100 / 180, 10 * 100 / 90, 10 * 100 / 30]),
        ("x2.5", [80, 20], [100 / 160, 2.5 * 100 / 40]),
    ],
)
def test_stress(strategy: str, counts: list[int], expected: list[float]) -> None:
    assert weights(strategy, counts) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("strategy", "factor"), [("x10", 10.0), ("x100", 100.0), ("x1e3", 1000.0)]
)
@pytest.mark.parametrize("counts", [[90, 10], [10, 90], [700, 200, 100]])
def test_stress_grows_rare_to_common_ratio_n_fold(
    strategy: str, factor: float, counts: list[int]
) -> None:
    balanced = weights("balanced", counts)
    stressed = weights(strategy, counts)
    assert balanced is not None and stressed is not None
    common = counts.index(max(counts))
    rare = counts.index(min(counts))
    assert stressed[common] == pytest.approx(balanced[common])
    ratio_before = balanced[rare] / balanced[common]
    ratio_after = stressed[rare] / stressed[common]
    assert ratio_after == pytest.approx(factor * ratio_before)


# --------------------------------------------------------------------------- none / custom


@pytest.mark.parametrize("counts", [[90, 10], [1, 2, 3]])
def test_none_is_no_weighting(counts: list[int]) -> None:
    assert weights("none", counts) is None


@pytest.mark.parametrize(
    ("names", "table", "expected"),
    [
        (["0", "1"], {"0": 1.0, "1": 1000.0}, [1.0, 1000.0]),
        (["cat", "dog"], {"cat": 1.0, "dog": 10.0}, [1.0, 10.0]),
        (["cat", "dog"], {"dog": 10.0, "cat": 1.0}, [1.0, 10.0]),  # by name, not table order
        (["a", "b", "c"], {"c": 3, "a": 1, "b": 2}, [1.0, 2.0, 3.0]),
    ],
)
def test_custom_by_class_name(
    names: list[str], table: dict[str, float], expected: list[float]
) -> None:
    got = class_weights_for("custom", [50] * len(names), class_names=names, custom=table)
    assert got == expected
    assert all(isinstance(w, float) for w in got)


@pytest.mark.parametrize(
    ("names", "table", "needle"),
    [
        (["cat", "dog"], {"cat": 1.0, "dog": 2.0, "bird": 3.0}, "'bird'"),
        (["0", "1"], {"0": 1.0, "1": 2.0, "2": 3.0}, "'2'"),
        (["cat", "dog"], {"Cat": 1.0, "dog": 2.0}, "'Cat'"),
    ],
)
def test_custom_unknown_key(names: list[str], table: dict[str, float], needle: str) -> None:
    with pytest.raises(InputError) as excinfo:
        class_weights_for("custom", [5, 5], class_names=names, custom=table)
    assert excinfo.value.exit_code == 2
    assert needle in str(excinfo.value)
    assert "not a label" in str(excinfo.value)


@pytest.mark.parametrize(
    ("names", "table", "expected"),
    [
        # fit gives a class its dict leaves out 1.0 (class_weight.get(label, 1.0))
        (["cat", "dog"], {"cat": 3.0}, [3.0, 1.0]),
        (["0", "1", "2"], {"0": 2.0, "2": 5.0}, [2.0, 1.0, 5.0]),
        ([str(i) for i in range(10)], {"9": 20.0}, [1.0] * 9 + [20.0]),
    ],
)
def test_custom_partial_table_weighs_the_rest_1_as_fit_does(
    names: list[str], table: dict[str, float], expected: list[float]
) -> None:
    got = class_weights_for("custom", [5] * len(names), class_names=names, custom=table)
    assert got == expected


@pytest.mark.parametrize("table", [None, {}])
def test_custom_without_a_table(table: dict[str, float] | None) -> None:
    with pytest.raises(InputError) as excinfo:
        class_weights_for("custom", [5, 5], class_names=["0", "1"], custom=table)
    assert excinfo.value.exit_code == 2
    assert "empty" in str(excinfo.value)


@pytest.mark.parametrize(("keyword", "start"), [
    ("custom_class_weight", "custom_class_weight key 'bird' is not a label"),
    ("class_weight", "class_weight key 'bird' is not a label"),  # the API's own keyword
])
def test_a_key_that_is_no_label_names_the_callers_keyword(keyword: str, start: str) -> None:
    with pytest.raises(InputError) as excinfo:
        class_weights_for("custom", [5, 5], class_names=["cat", "dog"],
                          custom={"cat": 1.0, "bird": 3.0}, keyword=keyword)
    assert str(excinfo.value).startswith(start)
    assert excinfo.value.exit_code == 2


@pytest.mark.parametrize(("names", "table", "keyword", "expected"), [
    (["0", "1"], {"0": 1.0, "1": 9.0}, "custom_class_weight", None),
    (["0", "1"], None, "custom_class_weight", None),
    ([str(i) for i in range(10)], {"9": 20.0}, "custom_class_weight",
     "custom_class_weight gives no weight for classes 0, 1, 2, 3, 4, 5, 6, 7, 8: they weigh "
     "1, as Keras's fit(class_weight=...) weighs a class the dict leaves out"),
    (["cat", "dog"], {"dog": 4.0}, "class_weight",
     "the class_weight dict gives no weight for class cat: it weighs 1, as Keras's "
     "fit(class_weight=...) weighs a class the dict leaves out"),
    ([str(i) for i in range(30)], {"29": 2.0}, "custom_class_weight",
     "custom_class_weight gives no weight for classes "
     + ", ".join(str(i) for i in range(20)) + ", ... (29 in all): they weigh 1, as Keras's "
     "fit(class_weight=...) weighs a class the dict leaves out"),
])
def test_custom_defaults_warning_names_the_classes_that_weigh_1(
    names: list[str], table: dict[str, float] | None, keyword: str, expected: str | None
) -> None:
    assert custom_defaults_warning(table, names, keyword) == expected


def test_unknown_strategy() -> None:
    with pytest.raises(InputError) as excinfo:
        weights("heavy", [90, 10])
    assert "'heavy'" in str(excinfo.value)


def test_absent_class_gets_finite_weight() -> None:
    got = weights("balanced", [100, 0])
    assert got is not None and all(math.isfinite(w) for w in got)


# --------------------------------------------------------------------------- weights_by_name


@pytest.mark.parametrize(
    ("weights_", "names", "expected"),
    [
        (None, ["0", "1"], None),
        ([100 / 180, 5.0], ["0", "1"], {"0": 100 / 180, "1": 5.0}),  # full precision
        ([1.0, 2.0, 3.0], ["a", "b", "c"], {"a": 1.0, "b": 2.0, "c": 3.0}),
        ([1 / 3], [7], {"7": 1 / 3}),
        ([1.0, 4.3966e-06], ["0", "1"], {"0": 1.0, "1": 4.3966e-06}),  # not 4e-06
    ],
)
def test_weights_by_name(
    weights_: list[float] | None, names: list[object], expected: dict[str, float] | None
) -> None:
    assert weights_by_name(weights_, names) == expected  # type: ignore[arg-type]


def test_weights_by_name_length_mismatch() -> None:
    with pytest.raises(ValueError):
        weights_by_name([1.0, 2.0], ["a"])


# --------------------------------------------------------------------------- a real run


def test_a_partial_custom_table_trains_as_fit_would_and_the_report_says_so(probe_run) -> None:
    """``{9: 20.0}`` on the digits: the probe trains (no input error) with the nine other
    classes at 1.0, and the report says which classes got 1.0."""
    report, data, _ = probe_run(
        'model = "builtin:mlp"\ndata = "builtin:digits"\nclass_weight = ["custom"]\n'
        "lr = [1e-3]\nsteps = 5\n[custom_class_weight]\n9 = 20.0\n")
    (result,) = report.results
    assert result.verdict.category.value != "error", result.verdict.summary
    (probe,) = data["probes"]
    assert probe["settings"]["class_weights"] == {**{str(i): 1.0 for i in range(9)}, "9": 20.0}
    assert any(w.startswith("custom_class_weight gives no weight for classes 0, 1, 2")
               for w in data["warnings"])
