"""The options of a run, declared once: each with its name, type, default, help text, config
key, command-line flag, API keyword, and whether it belongs to the run's identity.

The config reader's known keys (``config.settings``), ``--resume``'s identity
(``run.engine.run_identity``), the API's keyword list (``stabcheck.api``) and the CLI's help
texts (``cli.options``) read this table. The surfaces that must spell their options out
(typer's parameters, the API's signatures and docstrings, ``Settings``' fields, the
``init`` template) are tested against it (``tests/*/test_options.py``): adding an option
is an edit here, and a test names each surface that has not learned it yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stabcheck.config.thresholds import DEFAULT_THRESHOLDS
from stabcheck.protocol.vocabulary import BACKENDS, Clip

__all__ = [
    "CONFIG_KEYS", "FAIL_ON_DEFAULT", "LISTED", "LIST_HELP", "NOT_IDENTITY", "OPTION",
    "OPTIONS", "Option",
]

# A gate never passes a config it could not probe: ``error`` fails the run too.
FAIL_ON_DEFAULT = ("numerical", "memory", "crash", "error")

LIST_HELP = "Repeat the flag or give a comma-separated list."

BOTH = ("probe", "memory")
PROBE = ("probe",)


@dataclass(frozen=True)
class Option:
    """One option of ``stabcheck probe`` / ``memory``, of their config and of the API.

    Attributes:
        name: the key ``config.settings.build_settings`` takes it under (with ``_``), the
            ``Settings`` field that holds it where there is one.
        type: what one value is on the command line (``list[str]``: a list option).
        default: ``Settings``' default (None: unset, or required as model and data are).
        help: the command line's help text.
        config: the TOML key; None: not in the config file.
        flag: the command-line flag as typer spells it; None: not on the command line.
        commands: the commands that take the flag.
        keyword: the Python API's keyword; None: not an API keyword.
        functions: the API functions that take the keyword.
        identity: decides what the probes compute: ``--resume`` refuses a journal whose
            run differed in it.
        listed: takes several values (repeated flags, comma-separated lists, TOML arrays).
        starter: ``stabcheck init``'s starter config documents it.
    """

    name: str
    type: Any
    default: Any
    help: str
    config: str | None = None
    flag: str | None = None
    commands: tuple[str, ...] = BOTH
    keyword: str | None = None
    functions: tuple[str, ...] = BOTH
    identity: bool = True
    listed: bool = False
    starter: bool = True


def _option(name: str, type: Any, default: Any, help: str, *, config: bool = True,
            flag: str | None = "", commands: tuple[str, ...] = BOTH, keyword: str | None = "",
            functions: tuple[str, ...] = BOTH, identity: bool = True,
            starter: bool = True) -> Option:
    """An option named alike everywhere unless told: config key ``name``, flag
    ``--name-with-dashes``, API keyword ``name`` (None: not on that surface)."""
    return Option(
        name=name, type=type, default=default, help=help,
        config=name if config else None,
        flag=f"--{name.replace('_', '-')}" if flag == "" else flag,
        commands=commands if flag is not None else (),
        keyword=name if keyword == "" else keyword,
        functions=functions if keyword is not None else (),
        identity=identity, listed=type == list[str], starter=starter,
    )


OPTIONS: tuple[Option, ...] = (
    _option("model", str, None, "A .keras or .h5 file, file.py:function, "
            "package.module:function, or builtin:mlp / builtin:cnn."),
    _option("data", str, None, "An .npz (x, y[, x_val, y_val]), a .csv or .parquet with "
            "--target, an image folder, builtin:digits / builtin:breast_cancer, or "
            "file.py:function / package.module:function returning (x, y), (x, y, x_val, "
            "y_val), a dict, a tf.data.Dataset or a PyDataset (called in a process of its "
            "own).", keyword=None),  # the API's x, y and validation_data
    _option("target", str, None, "Label column of a CSV or Parquet file.", keyword=None),
    _option("task", str, "auto", "auto (default), classification or regression. auto: float "
            "targets with non-integer values, or a regression loss (mse, mae, huber, msle, "
            "log_cosh, poisson), make a regression probe (learning rate x clipping x batch "
            "size, no class weights)."),
    _option("loss", str, None, "Override the compiled loss."),
    _option("optimizer", str, None, "Override the compiled optimizer."),
    _option("lr", list[str], None,
            f"Learning rates (default: the baseline x 0.1, 1, 10). {LIST_HELP}"),
    _option("class_weight", list[str], ("none", "balanced"), "Strategies: none, balanced, "
            "sqrt, effective, xN (e.g. x100), custom, and the remedies normalized, "
            f"normalized-<strategy>, focal. {LIST_HELP}"),
    # The API takes the table as a dict among class_weight's strategies.
    _option("custom_class_weight", dict, None, "The custom strategy's weight per label.",
            flag=None, keyword=None),
    # Not in the result's config (``Settings.to_json``), so --resume has nothing to compare.
    _option("effective_beta", float, 0.999, "Beta of the effective strategy, in (0, 1).",
            flag=None, keyword=None, identity=False),
    _option("clip", list[str], (Clip(None),), f"none, norm=V, value=V, global_norm=V. {LIST_HELP}"),
    _option("batch_size", list[str], (32,), f"Batch sizes. {LIST_HELP}"),
    _option("steps", int, 100, "A probe's planned optimizer steps (default 100): every "
            "setting trains the first rung (a quarter), the contenders for the recommendation "
            "train to them, and beyond while their learning verdict is unsettled.",
            commands=PROBE, functions=PROBE),
    _option("memory_budget", str, None, "Host memory a probe may use, e.g. 2GiB."),
    _option("gpu_memory_budget", str, None,
            "GPU memory a probe may use (simulates a smaller card)."),
    _option("timeout", float, 300.0, "Wall-clock seconds one probe may take.", identity=False),
    _option("json", Path, None, "Write the machine-readable result here.", keyword=None,
            identity=False),
    _option("journal", Path, None,
            "Append each probe's result here as it arrives (JSON lines).", identity=False),
    _option("resume", Path, None,
            "Finish an interrupted run from its journal, without re-running its probes.",
            config=False, commands=PROBE, keyword=None, identity=False, starter=False),
    _option("seed", int, 0, "Seed (default 0)."),
    # Changes only the re-probes, which are journaled with their seed.
    _option("seeds", int, 3, "Seeds behind the recommendation: the leading finalist is "
            "re-probed under N-1 more seeds (the next one too when the leader's worst seed "
            "falls behind it), ranked by their worst seed (default 3; 1: no re-probes).",
            commands=PROBE, functions=PROBE, identity=False),
    _option("budget", str, None, "What the whole run may spend: optimizer steps (5000) or "
            "time (90s, 10m, 1.5h). Default: twice the steps of a plain fit of every setting; "
            "a run spends only the steps its verdicts need.", commands=PROBE, functions=PROBE),
    _option("max_samples", int, None, "Cap on the stratified training sample (default: enough "
            "rows that --steps at the largest batch size train on each row at most once, "
            "20,000 to 250,000 and within 512 MiB of input); a dataset from a data function is "
            "read for at most this many samples."),
    _option("holdout", float, 0.2, "The fraction of the data held out to check what the model "
            "learned.", flag=None, keyword=None),
    _option("imbalance", float, None, "Make the data long-tailed for a demonstration: the "
            "rarest class keeps this fraction.", commands=PROBE, functions=PROBE),
    _option("fail_on", list[str], FAIL_ON_DEFAULT, "Categories or outcomes that fail the run "
            "(exit 1); default: numerical, memory, crash, error; also any, none. A run in "
            f"which every probe ended error exits 2. {LIST_HELP}", functions=PROBE,
            identity=False),
    _option("check_numerics", bool, False, "Re-run non-finite probes with TensorFlow's "
            "check-numerics to name the operation that produced the first NaN/Inf.",
            flag="--check-numerics/--no-check-numerics", commands=PROBE, functions=PROBE,
            identity=False, starter=False),
    _option("workers", int, None,
            "Probe workers in parallel (default: one per core, at most 4; one per GPU).",
            commands=PROBE, functions=PROBE, identity=False, starter=False),
    _option("thresholds", dict, DEFAULT_THRESHOLDS, "The verdicts' thresholds by name.",
            flag=None, keyword=None, starter=False),
    _option("custom_objects", list[str], (), "A module (mypkg.layers) or .py file imported in "
            "the worker before the model is loaded, so that the classes it registers with "
            "@keras.saving.register_keras_serializable load with safe_mode=True. "
            f"{LIST_HELP}"),
    _option("backend", str, BACKENDS[0], "Keras backend of the probes: tensorflow, jax or "
            "torch (default: KERAS_BACKEND, else tensorflow).", keyword=None),
    _option("executor", str, "local", "Where the probe workers run: local (processes here, "
            "the default) or ray (actors of a Ray cluster: --ray-address, else a local one "
            "for the run).", functions=PROBE, identity=False),
    _option("ray_address", str, None, "The Ray cluster of --executor ray (auto, host:6379, "
            "ray://host:10001); default: start a local one with the run.", functions=PROBE,
            identity=False),
    _option("junit", Path, None, "Write JUnit XML here (one test case per probe).",
            keyword=None, identity=False),
    _option("markdown", Path, None,
            "Write a Markdown summary here (for a pull-request comment).", keyword=None,
            identity=False),
    _option("html", Path, None, "Write a self-contained HTML report with charts here.",
            keyword=None, identity=False),
)

OPTION: dict[str, Option] = {option.name: option for option in OPTIONS}
# The keys a config file may hold.
CONFIG_KEYS = frozenset(option.config for option in OPTIONS if option.config)
# Settings that do not change what a probe computes: a resumed run may differ in them.
NOT_IDENTITY = frozenset(option.name for option in OPTIONS if not option.identity)
# Options of several values: one value, a list, or comma-separated lists.
LISTED = frozenset(option.name for option in OPTIONS if option.listed)
