"""The probe grid: settings x class-weight strategies x learning rates x clipping x batch
sizes, as a list of ``Probe`` with stable ids (``probe_ids.grid_id``). No framework, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

from stabcheck.config.settings import DEFAULT_LR_FACTORS, Settings
from stabcheck.probe_ids import grid_id
from stabcheck.protocol.vocabulary import Clip, is_focal
from stabcheck.results import Probe, ProbeSettings


def learning_rates(settings: Settings, baseline_lr: float) -> tuple[float, ...]:
    """The learning-rate grid: explicit, or the baseline rate x {0.1, 1, 10}."""
    if settings.lr is not None:
        return settings.lr
    return tuple(float(f"{baseline_lr * f:.6g}") for f in DEFAULT_LR_FACTORS)


def plan_probes(
    settings: Settings,
    *,
    lrs: Sequence[float],
    loss: str,
    optimizer: str,
    weights_by_strategy: dict[str, dict[str, float] | None],
    n_samples: int | None = None,
) -> list[Probe]:
    """Every probe of the grid, batch size outermost (one worker serves one batch size).

    A batch size above ``n_samples`` (the training sample) trains on ``n_samples`` rows a
    step, as ``fit`` would: its settings say so in ``effective_batch_size``."""
    probes = []
    seen = set()
    for batch_size in settings.batch_size:
        for strategy in settings.class_weight:
            for lr in lrs:
                for clip in settings.clip:
                    pid = grid_id(strategy, lr, _label(clip), batch_size)
                    if pid in seen:
                        continue
                    seen.add(pid)
                    probes.append(Probe(pid, ProbeSettings(
                        class_weight=strategy,
                        class_weights=weights_by_strategy[strategy],
                        learning_rate=lr,
                        clip=_label(clip),
                        batch_size=batch_size,
                        optimizer=optimizer,
                        loss=_focal_name(loss) if is_focal(strategy) else loss,
                        effective_batch_size=effective_batch_size(batch_size, n_samples),
                    ), settings.steps))
    return probes


def effective_batch_size(batch_size: int, n_samples: int | None) -> int | None:
    """The batch ``fit`` trains on when ``batch_size`` exceeds the ``n_samples`` training
    samples (it caps a batch at the data there is); None when ``batch_size`` fits."""
    if n_samples is None or batch_size <= n_samples:
        return None
    return max(1, n_samples)


def _focal_name(loss: str) -> str:
    """The focal loss a ``focal`` probe trains with, in place of ``loss``."""
    return "binary_focal_crossentropy" if "binary" in loss else "categorical_focal_crossentropy"


def _label(clip: Clip) -> str:
    return clip.label
