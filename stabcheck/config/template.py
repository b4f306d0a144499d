"""``stabcheck init``: a commented starter ``stabcheck.toml``.

Every key of ``config.options`` marked ``starter`` is in the file, set to a sensible
starting value or commented out, with a comment that says what it does. The file parses as
it is written (``tests/cli/test_outputs.py`` checks that with
``config.settings.build_settings``), and what it sets is the table's default but where it
shows an alternative on purpose (``tests/config/test_options.py``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from stabcheck.errors import UsageError
from stabcheck.files import write_text_atomic

__all__ = ["starter_config", "write_starter"]

DEMO_MODEL = "builtin:mlp"
DEMO_DATA = "builtin:breast_cancer"

_TEMPLATE = """\
# stabcheck configuration, written by `stabcheck init`.
# Run it with:  stabcheck probe {config_name}
# Every key can also be given as a flag (batch_size as --batch-size); a flag wins.
# Paths in this file are relative to this file's folder.

# The model: a Keras 3 .keras file (loaded with safe_mode=True), a legacy .h5 file,
# a factory "file.py:function" or "package.module:function" returning a model
# (compiled or not), or a template: "builtin:mlp", "builtin:cnn".{model_note}
model = {model}
# Modules imported before the model is loaded, for the custom layers, losses or metrics it
# uses (registered with @keras.saving.register_keras_serializable()): module names
# ("mypkg.layers") or .py files ("layers.py"), found beside this file or on sys.path.
# custom_objects = ["layers.py"]

# The data: an .npz holding arrays x and y (optionally x_val, y_val), a .csv or .parquet
# file (then set target), a folder of class sub-folders of images, or a built-in data set:
# "builtin:digits", "builtin:breast_cancer".{data_note}
data = {data}
{target_line}
# What the target is: "auto" (floats with non-integer values, or a regression loss such
# as mse, make a regression probe: no class weights, held-out MAE/RMSE/R²),
# "classification" or "regression".
# task = "auto"

# Override what the model was compiled with. Without a compiled model and without these:
# sparse_categorical_crossentropy or binary_crossentropy (from the labels), and adam.
# loss = "sparse_categorical_crossentropy"
# optimizer = "adam"

# Learning rates to probe. Unset: the model's baseline rate x 0.1, 1 and 10.
# lr = [1e-4, 1e-3, 1e-2]

# Class-weight strategies to probe: none; balanced (n / (k * count_c)); sqrt (its square
# root); effective (class-balanced weights, Cui et al. 2019); xN, a stress test (balanced
# with every class but the most frequent multiplied by N, e.g. "x100"); custom (the
# [custom_class_weight] table at the end of this file). Unset: none and balanced (none
# alone for a regression target, which has no classes).
# class_weight = ["none", "balanced"]
# effective_beta = 0.999           # beta of the "effective" strategy, in (0, 1)

# Gradient clipping settings to probe: "none", "norm=V" (Keras clipnorm), "value=V"
# (clipvalue), "global_norm=V" (global_clipnorm).
clip = ["none", "global_norm=1.0"]

# Batch sizes to probe: a larger batch needs more memory (activations, gradients).
batch_size = [32]

# Optimizer steps per probe: enough to see a loss blow up, short enough to be quick.
steps = 100

# Host memory one probe may use; a probe that needs more is a memory-exhaustion verdict
# (oom_host), never a hang or a crash of stabcheck. Unset: no budget.
# memory_budget = "2GiB"
# The same for GPU memory (simulates a smaller card). Unset: the whole GPU.
# gpu_memory_budget = "8GiB"

# The Keras backend the probes train with, as your fit does: tensorflow, jax or torch.
# Unset: KERAS_BACKEND from the environment, else tensorflow.
# backend = "jax"

# Where the probe workers run: local (processes of this machine) or ray (actors of a Ray
# cluster, pip install 'stabcheck[ray]'); ray_address: the cluster (unset: a local one).
# executor = "ray"
# ray_address = "auto"

# Wall-clock seconds one probe may take before it is ended (a "timeout" verdict).
timeout = 300

# Seed for sampling, weight initialisation and shuffling: makes a run repeatable.
seed = 0

# Seeds behind the recommendation: its leading candidate is probed again under this many
# seeds in all (the next candidate too when the leader's worst seed falls behind it),
# ranked by their worst seed. 1: no re-probes.
seeds = 3

# What the whole run may spend: optimizer steps (5000) or a time ("10m"). Every setting
# trains a first rung (a quarter of steps); only the contenders for the recommendation
# train on. Default: twice the steps of a plain fit of every setting.
# budget = "10m"

# Cap on the stratified sample of the data used for probing (default: enough rows that
# the steps at the largest batch size train on each row at most once, as fit's first
# epoch does: 20,000 to 250,000, within 512 MiB of input), and the fraction held out to
# check what the model learned (minority collapse, over-correction).
# max_samples = 100000
# holdout = 0.2

# Make the data long-tailed for a demonstration: the rarest class keeps this fraction.
# imbalance = 0.05

# What fails the run (exit code 1): categories (numerical, memory, crash, learning,
# error), outcomes (non_finite, diverged, oom_host, ...), "any" or "none". A run in which
# every probe ended "error" is an input error (exit code 2) whatever this says.
fail_on = ["numerical", "memory", "crash", "error"]

# Outputs written on every run (uncomment the ones you want):
# json = "stabcheck-result.json"       # the machine-readable result
# junit = "stabcheck-junit.xml"        # JUnit XML for CI test reports
# markdown = "stabcheck-summary.md"    # a summary for a pull-request comment
# html = "stabcheck-report.html"       # one self-contained page with charts
# journal = ".stabcheck/journal.jsonl" # each probe's result as it arrives

# For class_weight "custom": a weight per label; a label left out weighs 1.0, as in fit.
# [custom_class_weight]
# 0 = 1.0
# 1 = 10.0
"""


def _toml_string(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(text, ensure_ascii=False)


def _relative_spec(spec: str, config_dir: Path) -> str:
    """A model/data spec given on the command line, made relative to the config's folder
    (the config resolves paths against its own folder, not against the current one)."""
    if spec.startswith("builtin:"):
        return spec
    file_part, sep, func = spec.partition(":")
    if sep and not file_part.endswith(".py") and "/" not in file_part:
        return spec  # package.module:function
    path = Path(file_part if sep else spec).resolve()
    try:
        rel = os.path.relpath(path, config_dir.resolve())
    except ValueError:  # another drive on Windows
        rel = str(path)
    return f"{rel}:{func}" if sep else rel


def _target_line(target: tuple[str, str] | None) -> str:
    if target is None:
        return '# target = "label"                 # the label column of a CSV or Parquet file'
    name, why = target
    return (f"# The label column: {why}, chosen by `stabcheck init`; check it.\n"
            f"target = {_toml_string(name)}")


def starter_config(model: str | None, data: str | None, config_path: Path,
                   target: tuple[str, str] | None = None) -> str:
    """The starter file's text for ``model`` and ``data`` (None: a built-in demo), and the
    label column of a table file with why it was chosen (``inputs.tables.guess_target``)."""
    folder = config_path.parent
    note = "\n# The built-in {} below lets this file run as it is: replace it with yours."
    return _TEMPLATE.format(
        config_name=config_path.name,
        model=_toml_string(_relative_spec(model, folder) if model else DEMO_MODEL),
        model_note="" if model else note.format("model"),
        data=_toml_string(_relative_spec(data, folder) if data else DEMO_DATA),
        data_note="" if data else note.format("data set"),
        target_line=_target_line(target),
    )


def write_starter(path: Path, model: str | None, data: str | None, force: bool,
                  target: tuple[str, str] | None = None) -> None:
    """Write the starter config to ``path`` (``target``: as ``starter_config`` takes it).

    Raises:
        UsageError: ``path`` exists and ``force`` is false, or is a folder.
    """
    if path.is_dir():
        raise UsageError(f"{path} is a folder: give the config file's name with --output")
    if path.exists() and not force:
        raise UsageError(f"{path} already exists: pass --force to overwrite it")
    try:
        write_text_atomic(path, starter_config(model, data, path, target))
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
