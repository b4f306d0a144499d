"""Tests of ``stabcheck.plan``: probe ids, grid size and order, the learning-rate grid."""

from __future__ import annotations

import itertools

import pytest

from stabcheck.config.settings import Settings
from stabcheck.plan import learning_rates, plan_probes
from stabcheck.probe_ids import grid_id as probe_id
from stabcheck.protocol.vocabulary import Clip

WEIGHTS = {
    "none": None,
    "balanced": {"0": 0.555556, "1": 5.0},
    "x100": {"0": 0.555556, "1": 500.0},
    "sqrt": {"0": 0.745356, "1": 2.236068},
}


def make_settings(**kwargs: object) -> Settings:
    return Settings(model="builtin:mlp", data="builtin:digits", **kwargs)  # type: ignore[arg-type]


def plan(settings: Settings, lrs: tuple[float, ...] = (1e-3,)) -> list:
    return plan_probes(
        settings, lrs=lrs, loss="sparse_categorical_crossentropy", optimizer="adam",
        weights_by_strategy=WEIGHTS,
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("balanced", 0.01, "none", 32), "cw=balanced,lr=0.01,clip=none,bs=32"),
        (("none", 0.001, "none", 32), "cw=none,lr=0.001,clip=none,bs=32"),
        (("x100", 1e-4, "global_norm=1", 64), "cw=x100,lr=0.0001,clip=global_norm=1,bs=64"),
        (("sqrt", 3e-4, "norm=0.5", 8), "cw=sqrt,lr=0.0003,clip=norm=0.5,bs=8"),
        (("effective", 1e-5, "value=1", 1), "cw=effective,lr=1e-05,clip=value=1,bs=1"),
        (("custom", 0.1, "none", 256), "cw=custom,lr=0.1,clip=none,bs=256"),
        (("balanced", 1.0, "none", 32), "cw=balanced,lr=1,clip=none,bs=32"),
    ],
)
def test_probe_id(args: tuple[str, float, str, int], expected: str) -> None:
    assert probe_id(*args) == expected


def test_probe_ids_in_plan_match_contract() -> None:
    settings = make_settings(class_weight=("balanced",), clip=(Clip(None),), batch_size=(32,))
    probes = plan(settings, lrs=(0.01,))
    assert [p.id for p in probes] == ["cw=balanced,lr=0.01,clip=none,bs=32"]
    clipped = plan(make_settings(class_weight=("x100",), clip=(Clip("global_norm", 1.0),)))
    assert clipped[0].id == "cw=x100,lr=0.001,clip=global_norm=1,bs=32"


@pytest.mark.parametrize(
    ("class_weight", "lrs", "clip", "batch_size"),
    [
        (("none",), (1e-3,), (Clip(None),), (32,)),
        (("none", "balanced"), (1e-4, 1e-3, 1e-2), (Clip(None),), (32,)),
        (("none", "balanced", "x100"), (1e-3, 1e-2), (Clip(None), Clip("norm", 1.0)), (16, 64)),
        (("balanced", "sqrt"), (1e-2,), (Clip(None), Clip("value", 0.5),
                                          Clip("global_norm", 1.0)), (8, 16, 32)),
    ],
)
def test_grid_size_is_product(
    class_weight: tuple[str, ...], lrs: tuple[float, ...], clip: tuple[Clip, ...],
    batch_size: tuple[int, ...],
) -> None:
    settings = make_settings(class_weight=class_weight, clip=clip, batch_size=batch_size)
    probes = plan(settings, lrs=lrs)
    assert len(probes) == len(class_weight) * len(lrs) * len(clip) * len(batch_size)
    assert len({p.id for p in probes}) == len(probes)


def test_order_batch_size_outermost_then_strategy_lr_clip() -> None:
    clips = (Clip(None), Clip("norm", 1.0))
    settings = make_settings(class_weight=("none", "balanced"), clip=clips, batch_size=(64, 16))
    lrs = (1e-3, 1e-2)
    probes = plan(settings, lrs=lrs)
    expected = [
        probe_id(cw, lr, clip.label, bs)
        for bs, cw, lr, clip in itertools.product((64, 16), ("none", "balanced"), lrs, clips)
    ]
    assert [p.id for p in probes] == expected
    sizes = [p.settings.batch_size for p in probes]
    assert sizes == [64] * 8 + [16] * 8


def test_probe_settings_filled_in() -> None:
    settings = make_settings(class_weight=("none", "x100"), steps=37,
                             clip=(Clip("global_norm", 1.0),), batch_size=(128,))
    probes = plan(settings, lrs=(0.01,))
    for probe, strategy in zip(probes, ("none", "x100"), strict=True):
        assert probe.steps == 37
        s = probe.settings
        assert s.class_weight == strategy
        assert s.class_weights == WEIGHTS[strategy]
        assert s.learning_rate == 0.01
        assert s.clip == "global_norm=1"
        assert s.batch_size == 128
        assert s.optimizer == "adam"
        assert s.loss == "sparse_categorical_crossentropy"


@pytest.mark.parametrize(
    ("baseline", "expected"),
    [
        (0.001, (0.0001, 0.001, 0.01)),
        (0.01, (0.001, 0.01, 0.1)),
        (3e-4, (3e-5, 3e-4, 3e-3)),
        (0.1, (0.01, 0.1, 1.0)),
        (1e-5, (1e-6, 1e-5, 1e-4)),
    ],
)
def test_default_lr_grid(baseline: float, expected: tuple[float, ...]) -> None:
    assert learning_rates(make_settings(), baseline) == expected  # exact, no float noise


@pytest.mark.parametrize(
    ("explicit", "baseline"), [((0.5,), 0.001), ((1e-3, 1e-2), 0.1), ((0.2, 0.1), 0.001)]
)
def test_explicit_lr_kept(explicit: tuple[float, ...], baseline: float) -> None:
    assert learning_rates(make_settings(lr=explicit), baseline) == explicit


@pytest.mark.parametrize(
    ("class_weight", "lrs", "clip", "batch_size", "expected_ids"),
    [
        (("balanced", "balanced"), (0.01,), (Clip(None),), (32,),
         ["cw=balanced,lr=0.01,clip=none,bs=32"]),
        (("none",), (0.01, 0.01, 0.1), (Clip(None),), (32,),
         ["cw=none,lr=0.01,clip=none,bs=32", "cw=none,lr=0.1,clip=none,bs=32"]),
        (("none",), (0.01,), (Clip("norm", 1.0), Clip(None), Clip("norm", 1.0)), (32,),
         ["cw=none,lr=0.01,clip=norm=1,bs=32", "cw=none,lr=0.01,clip=none,bs=32"]),
        (("none",), (0.01,), (Clip(None),), (32, 16, 32),
         ["cw=none,lr=0.01,clip=none,bs=32", "cw=none,lr=0.01,clip=none,bs=16"]),
    ],
)
def test_duplicates_removed_first_kept(
    class_weight: tuple[str, ...], lrs: tuple[float, ...], clip: tuple[Clip, ...],
    batch_size: tuple[int, ...], expected_ids: list[str],
) -> None:
    settings = make_settings(class_weight=class_weight, clip=clip, batch_size=batch_size)
    assert [p.id for p in plan(settings, lrs=lrs)] == expected_ids


def test_empty_lr_grid_plans_nothing() -> None:
    assert plan(make_settings(), lrs=()) == []


def test_a_batch_size_above_the_training_sample_trains_on_the_whole_sample():
    settings = make_settings(batch_size=(32, 489, 16384), class_weight=("none",))
    probes = plan_probes(settings, lrs=(1e-3,), loss="sparse_categorical_crossentropy",
                         optimizer="adam", weights_by_strategy=WEIGHTS, n_samples=489)
    by_size = {p.settings.batch_size: p.settings for p in probes}
    assert {b: s.effective_batch_size for b, s in by_size.items()} == {
        32: None, 489: None, 16384: 489}
    assert {b: s.trained_batch_size for b, s in by_size.items()} == {
        32: 32, 489: 489, 16384: 489}
    # Written only where it differs from batch_size; read back as it was written.
    assert "effective_batch_size" not in by_size[32].to_json()
    assert by_size[16384].to_json()["effective_batch_size"] == 489
    assert type(by_size[16384]).from_json(by_size[16384].to_json()) == by_size[16384]
    assert [p.id for p in probes][-1] == "cw=none,lr=0.001,clip=none,bs=16384"  # id as asked
    unknown = plan(make_settings(batch_size=(16384,)))  # n_samples not given: nothing capped
    assert {p.settings.effective_batch_size for p in unknown} == {None}
