"""The run's inputs, loaded and checked once: settings in, one validated ``Inputs`` out.

The engine hands the settings here a single time (load, sample, check, weigh) and reads
everything else from the ``Inputs`` it gets back: the plan, the runners and the report
take the data, the class-weight table, the warnings and the settings as the run applies
them (a regression run probes ``class_weight = none`` alone) from it. The two steps that
need the model the first worker described return a new ``Inputs``: ``as_regression`` (a
compiled regression loss on whole-number targets) and ``checked_against`` (the model's
outputs, input shape, loss and activation against the data).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from stabcheck.config.settings import (
    MAX_AUTO_SAMPLE_BYTES,
    MIN_SAMPLE_ROWS,
    Settings,
    sample_rows,
)
from stabcheck.errors import InputError
from stabcheck.inputs.classweights import (
    class_weights_for,
    custom_defaults_warning,
    weights_by_name,
)
from stabcheck.inputs.data import load_dataset
from stabcheck.inputs.datafn import is_data_function, load_function_dataset
from stabcheck.inputs.models import parse_model_spec
from stabcheck.inputs.preflight.losses import (
    check_label_values,
    check_labels_vs_loss,
    check_task_vs_loss,
    is_regression_loss,
)
from stabcheck.inputs.preflight.outputs import (
    check_input_shape,
    check_model_outputs,
    check_output_activation,
    check_regression_outputs,
    regression_output_warnings,
)
from stabcheck.inputs.preflight.weights import (
    check_class_weights,
    check_loss_weights,
    check_regression_class_weights,
    check_sample_weight_conflict,
)
from stabcheck.inputs.readers.npz import npz_has_sample_weight
from stabcheck.inputs.sampling import rare_class_warning
from stabcheck.protocol.dataset import Dataset
from stabcheck.protocol.model_spec import ModelSpec
from stabcheck.protocol.vocabulary import base_strategy

# Whole-number targets with at least this many distinct values, most of them seen at most
# twice, look like a quantity (prices, counts) rather than classes.
_QUANTITY_MIN_VALUES = 50


@dataclass(frozen=True)
class Inputs:
    """What a run trains on and with, validated.

    Attributes:
        settings: the settings as the run applies them.
        spec: the model specification the workers build from.
        dataset: the sampled, split data set.
        weights: class weight per class index under each strategy (None: no weighting).
        warnings: softer findings of the checks, for the report.
        hint: a sentence added to a later ``InputError`` when ``auto`` may have taken a
            quantity for classes.
    """

    settings: Settings
    spec: ModelSpec
    dataset: Dataset
    weights: dict[str, list[float] | None]
    warnings: tuple[str, ...] = ()
    hint: str | None = None

    @property
    def weights_by_name(self) -> dict[str, dict[str, float] | None]:
        """The class-weight table by class name, as ``fit(class_weight=...)`` and the
        report show it."""
        return {s: weights_by_name(w, self.dataset.class_names)
                for s, w in self.weights.items()}

    def is_regression_model(self, model: dict[str, Any]) -> bool:
        """Whether ``auto`` took whole-number targets for classes that the model's own
        (compiled) regression loss takes as numbers."""
        return (self.settings.task == "auto" and self.dataset.task == "classification"
                and self.dataset.label_values is not None
                and is_regression_loss(model["loss"]))

    def as_regression(self) -> Inputs:
        """The same inputs with the targets reloaded as a regression target."""
        settings = _regression_settings(self.settings)
        dataset = _load(settings, "regression")
        return replace(self, settings=settings, dataset=dataset,
                       weights=_weights_table(settings, dataset))

    def checked_against(self, model: dict[str, Any]) -> Inputs:
        """Check the model the first worker described against the data; its warnings are
        added. ``input_shape`` (one sample's shape, None for a free dimension; None or
        absent when unknown) is checked against the data's rows."""
        dataset = self.dataset
        declared = self.settings.task != "auto"
        with _hinted(self.hint):
            check_model_outputs(model["n_outputs"])
            check_input_shape(model.get("input_shape"), dataset.x_train.shape[1:])
            check_task_vs_loss(dataset.task, model["loss"], declared=declared)
            if dataset.task == "regression":
                check_regression_outputs(model["output_units"], dataset.target_width)
                found = regression_output_warnings(model["output_activation"],
                                                   dataset.summary().target)
            else:
                check_loss_weights(model.get("loss_weights"), dataset.class_names)
                check_label_values(model["loss"], dataset.label_values, model["output_units"])
                found = check_labels_vs_loss(model["loss"], dataset.label_format,
                                             dataset.n_classes, model["output_units"])
                found += check_output_activation(model["loss"], model["from_logits"],
                                                 model["output_activation"])
        return replace(self, warnings=self.warnings + tuple(found))


def load_inputs(settings: Settings, say: Callable[[str], None] | None = None) -> Inputs:
    """Parse the model spec, load and sample the data, and run every check that needs no
    model; ``say`` hears what is being loaded.

    Raises:
        InputError: a bad model spec, data set, label, loss or class weight (exit 2).
    """
    spec = parse_model_spec(settings.model, settings.custom_objects, settings.import_dirs)
    if settings.loss:  # --task classification with a regression loss: before any loading
        check_task_vs_loss(settings.task, settings.loss, declared=True)
    task = settings.task
    if task == "auto" and is_regression_loss(settings.loss):
        task = "regression"
    if say is not None:
        say(f"loading {settings.data}")
    dataset = _load(settings, task)
    if dataset.task == "regression":
        settings = _regression_settings(settings)
    check_sample_weight_conflict(npz_has_sample_weight(settings.data), settings.class_weight)
    warnings: list[str] = []
    if settings.loss:
        check_task_vs_loss(dataset.task, settings.loss, declared=settings.task != "auto")
    hint = _quantity_hint(settings, dataset)
    if hint:
        warnings.append(hint)
    rare = rare_class_warning(dataset)
    if rare:
        warnings.append(rare)
    if settings.loss and dataset.task == "classification":
        with _hinted(hint):
            check_label_values(settings.loss, dataset.label_values)
        warnings += check_labels_vs_loss(settings.loss, dataset.label_format, dataset.n_classes)
    weights = _weights_table(settings, dataset)
    warnings += check_class_weights(weights, dataset.class_names)
    if any(base_strategy(s) == "custom" for s in settings.class_weight):
        defaults = custom_defaults_warning(settings.custom_class_weight, dataset.class_names,
                                           settings.custom_class_weight_keyword)
        warnings += [defaults] if defaults else []
    return Inputs(settings, spec, dataset, weights, tuple(warnings), hint)


def _quantity_hint(settings: Settings, dataset: Dataset) -> str | None:
    """A sentence for ``auto`` taking whole-number targets of many rare values for classes."""
    if settings.task != "auto" or dataset.task != "classification" or \
            dataset.label_values is None or dataset.n_classes < _QUANTITY_MIN_VALUES:
        return None
    counts = [c for c in dataset.summary().class_counts if c]
    if sorted(counts)[len(counts) // 2] > 2:
        return None
    return (f"the target has {dataset.n_classes:,} distinct whole numbers, most seen once or "
            "twice, taken for classes: if it is a quantity (a price, a count), pass --task "
            "regression")


@contextlib.contextmanager
def _hinted(hint: str | None) -> Iterator[None]:
    """Add ``hint`` to an ``InputError`` raised inside (the cause may be the task)."""
    try:
        yield
    except InputError as exc:
        if hint is None:
            raise
        raise InputError(f"{exc}; {hint}") from None


def _load(settings: Settings, task: str) -> Dataset:
    sampling = dict(target=settings.target, max_samples=sample_rows(settings),
                    holdout=settings.holdout, imbalance=settings.imbalance, seed=settings.seed,
                    task=task)
    if is_data_function(settings.data):  # called in a child process (it may import TF)
        return load_function_dataset(settings.data, search_dirs=settings.import_dirs,
                                     timeout=settings.timeout, **sampling)
    auto = settings.max_samples is None
    return load_dataset(settings.data, **sampling,
                        max_bytes=MAX_AUTO_SAMPLE_BYTES if auto else None,
                        holdout_base=MIN_SAMPLE_ROWS if auto else None)


def _regression_settings(settings: Settings) -> Settings:
    """A regression run probes no class weights: a given strategy other than ``none`` is
    refused, the default grid becomes ``none`` alone."""
    check_regression_class_weights(settings.class_weight, settings.class_weight_given)
    return replace(settings, class_weight=("none",))


def _weights_table(settings: Settings, dataset: Dataset) -> dict[str, list[float] | None]:
    counts = dataset.summary().class_counts
    return {
        strategy: class_weights_for(strategy, counts, class_names=dataset.class_names,
                                    custom=settings.custom_class_weight,
                                    effective_beta=settings.effective_beta,
                                    keyword=settings.custom_class_weight_keyword)
        for strategy in settings.class_weight
    }
