"""The options of the commands, as typer annotations (``# noqa: UP045``: typer needs
``Optional``); ``probe`` and ``memory`` share most of them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

_LIST = "Repeat the flag or give a comma-separated list."

_JunitOpt = Annotated[Optional[Path], typer.Option(  # noqa: UP045
    "--junit", help="Write JUnit XML here (one test case per probe).")]
_MarkdownOpt = Annotated[Optional[Path], typer.Option(  # noqa: UP045
    "--markdown", help="Write a Markdown summary here (for a pull-request comment).")]
_HtmlOpt = Annotated[Optional[Path], typer.Option(  # noqa: UP045
    "--html", help="Write a self-contained HTML report with charts here.")]
_Verbose = Annotated[bool, typer.Option(
    "--verbose", "-v", help="Show the details in the terminal report too: the classes and "
    "their weights, every probe's evidence, the per-class quality, the per-strategy summary.")]


# Options shared by `probe` and `memory` (`# noqa: UP045`: typer needs Optional).
_Config = Annotated[Optional[Path], typer.Argument(  # noqa: UP045
    help="A TOML config; flags override it.", show_default=False)]
_Model = Annotated[Optional[str], typer.Option(  # noqa: UP045
    help="A .keras or .h5 file, file.py:function, package.module:function, or "
    "builtin:mlp / builtin:cnn.")]
_Data = Annotated[Optional[str], typer.Option(  # noqa: UP045
    help="An .npz (x, y[, x_val, y_val]), a .csv or .parquet with --target, an image "
    "folder, builtin:digits / builtin:breast_cancer, or file.py:function / "
    "package.module:function returning (x, y), (x, y, x_val, y_val), a dict, a "
    "tf.data.Dataset or a PyDataset (called in a process of its own).")]
_Target = Annotated[Optional[str], typer.Option(  # noqa: UP045
    help="Label column of a CSV or Parquet file.")]
_Task = Annotated[Optional[str], typer.Option(  # noqa: UP045
    help="auto (default), classification or regression. auto: float targets with "
    "non-integer values, or a regression loss (mse, mae, huber, msle, log_cosh, poisson), "
    "make a regression probe (learning rate x clipping x batch size, no class weights).")]
_Loss = Annotated[Optional[str], typer.Option(help="Override the compiled loss.")]  # noqa: UP045
_Optimizer = Annotated[Optional[str], typer.Option(  # noqa: UP045
    help="Override the compiled optimizer.")]
_Lr = Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
    "--lr", help=f"Learning rates (default: the baseline x 0.1, 1, 10). {_LIST}")]
_ClassWeight = Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
    "--class-weight", help="Strategies: none, balanced, sqrt, effective, xN (e.g. x100), "
    f"custom, and the remedies normalized, normalized-<strategy>, focal. {_LIST}")]
_Clip = Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
    "--clip", help=f"none, norm=V, value=V, global_norm=V. {_LIST}")]
_BatchSize = Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
    "--batch-size", help=f"Batch sizes. {_LIST}")]
_Steps = Annotated[Optional[int], typer.Option(  # noqa: UP045
    help="A probe's planned optimizer steps (default 100): every setting trains the first "
    "rung (a quarter), the contenders for the recommendation train to them, and beyond "
    "while their learning verdict is unsettled.")]
_Budget = Annotated[Optional[str], typer.Option(  # noqa: UP045
    help="What the whole run may spend: optimizer steps (5000) or time (90s, 10m, 1.5h). "
    "Default: twice the steps of a plain fit of every setting; a run spends only the "
    "steps its verdicts need.")]
_MemoryBudget = Annotated[Optional[str], typer.Option(  # noqa: UP045
    "--memory-budget", help="Host memory a probe may use, e.g. 2GiB.")]
_GpuBudget = Annotated[Optional[str], typer.Option(  # noqa: UP045
    "--gpu-memory-budget", help="GPU memory a probe may use (simulates a smaller card).")]
_Timeout = Annotated[Optional[float], typer.Option(  # noqa: UP045
    help="Wall-clock seconds one probe may take.")]
_Json = Annotated[Optional[Path], typer.Option(  # noqa: UP045
    "--json", help="Write the machine-readable result here.")]
_Journal = Annotated[Optional[Path], typer.Option(  # noqa: UP045
    help="Append each probe's result here as it arrives (JSON lines).")]
_Resume = Annotated[Optional[Path], typer.Option(  # noqa: UP045
    help="Finish an interrupted run from its journal, without re-running its probes.")]
_Seed = Annotated[Optional[int], typer.Option(help="Seed (default 0).")]  # noqa: UP045
_Seeds = Annotated[Optional[int], typer.Option(  # noqa: UP045
    help="Seeds behind the recommendation: the leading finalist is re-probed under N-1 "
    "more seeds (the next one too when the leader's worst seed falls behind it), ranked "
    "by their worst seed (default 3; 1: no re-probes).")]
_MaxSamples = Annotated[Optional[int], typer.Option(  # noqa: UP045
    "--max-samples", help="Cap on the stratified training sample (default: enough rows "
    "that --steps at the largest batch size train on each row at most once, 20,000 to "
    "250,000 and within 512 MiB of input); a dataset from a data function is read for at "
    "most this many samples.")]
_Imbalance = Annotated[Optional[float], typer.Option(  # noqa: UP045
    help="Make the data long-tailed for a demonstration: the rarest class keeps this "
    "fraction.")]
_FailOn = Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
    "--fail-on", help="Categories or outcomes that fail the run (exit 1); default: "
    f"numerical, memory, crash, error; also any, none. A run in which every probe ended "
    f"error exits 2. {_LIST}")]
_CustomObjects = Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
    "--custom-objects", metavar="MODULE",
    help="A module (mypkg.layers) or .py file imported in the worker before the model is "
    "loaded, so that the classes it registers with "
    "@keras.saving.register_keras_serializable load with safe_mode=True. "
    f"{_LIST}")]
_Workers = Annotated[Optional[int], typer.Option(  # noqa: UP045
    help="Probe workers in parallel (default: one per core, at most 4; one per GPU).")]
_Executor = Annotated[Optional[str], typer.Option(  # noqa: UP045
    help="Where the probe workers run: local (processes here, the default) or ray (actors "
         "of a Ray cluster: --ray-address, else a local one for the run).")]
_RayAddress = Annotated[Optional[str], typer.Option(  # noqa: UP045
    "--ray-address", metavar="ADDR",
    help="The Ray cluster of --executor ray (auto, host:6379, ray://host:10001); default: "
         "start a local one with the run.")]
_Backend = Annotated[Optional[str], typer.Option(  # noqa: UP045
    help="Keras backend of the probes: tensorflow, jax or torch (default: KERAS_BACKEND, "
         "else tensorflow).")]
_CheckNumerics = Annotated[Optional[bool], typer.Option(  # noqa: UP045
    "--check-numerics/--no-check-numerics",
    help="Re-run non-finite probes with TensorFlow's check-numerics to name the operation "
    "that produced the first NaN/Inf.")]


