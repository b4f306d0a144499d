"""The options of the commands, as typer annotations (``# noqa: UP045``: typer needs
``Optional``); ``probe`` and ``memory`` share most of them. Their flags and help texts are
``config.options``' (``tests/cli/test_options.py`` holds the commands to that table)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from stabcheck.config.options import LIST_HELP, OPTION

_LIST = LIST_HELP


def _option(name: str, **extra: Any) -> Any:
    """typer's option for the option ``name`` of ``config.options``: its flag and help."""
    option = OPTION[name]
    return typer.Option(option.flag, help=option.help, **extra)


_JunitOpt = Annotated[Optional[Path], _option("junit")]  # noqa: UP045
_MarkdownOpt = Annotated[Optional[Path], _option("markdown")]  # noqa: UP045
_HtmlOpt = Annotated[Optional[Path], _option("html")]  # noqa: UP045
_Verbose = Annotated[bool, typer.Option(
    "--verbose", "-v", help="Show the details in the terminal report too: the classes and "
    "their weights, every probe's evidence, the per-class quality, the per-strategy summary.")]


# Options shared by `probe` and `memory` (`# noqa: UP045`: typer needs Optional).
_Config = Annotated[Optional[Path], typer.Argument(  # noqa: UP045
    help="A TOML config; flags override it.", show_default=False)]
_Model = Annotated[Optional[str], _option("model")]  # noqa: UP045
_Data = Annotated[Optional[str], _option("data")]  # noqa: UP045
_Target = Annotated[Optional[str], _option("target")]  # noqa: UP045
_Task = Annotated[Optional[str], _option("task")]  # noqa: UP045
_Loss = Annotated[Optional[str], _option("loss")]  # noqa: UP045
_Optimizer = Annotated[Optional[str], _option("optimizer")]  # noqa: UP045
_Lr = Annotated[Optional[list[str]], _option("lr")]  # noqa: UP045
_ClassWeight = Annotated[Optional[list[str]], _option("class_weight")]  # noqa: UP045
_Clip = Annotated[Optional[list[str]], _option("clip")]  # noqa: UP045
_BatchSize = Annotated[Optional[list[str]], _option("batch_size")]  # noqa: UP045
_Steps = Annotated[Optional[int], _option("steps")]  # noqa: UP045
_Budget = Annotated[Optional[str], _option("budget")]  # noqa: UP045
_MemoryBudget = Annotated[Optional[str], _option("memory_budget")]  # noqa: UP045
_GpuBudget = Annotated[Optional[str], _option("gpu_memory_budget")]  # noqa: UP045
_Timeout = Annotated[Optional[float], _option("timeout")]  # noqa: UP045
_Json = Annotated[Optional[Path], _option("json")]  # noqa: UP045
_Journal = Annotated[Optional[Path], _option("journal")]  # noqa: UP045
_Resume = Annotated[Optional[Path], _option("resume")]  # noqa: UP045
_Seed = Annotated[Optional[int], _option("seed")]  # noqa: UP045
_Seeds = Annotated[Optional[int], _option("seeds")]  # noqa: UP045
_MaxSamples = Annotated[Optional[int], _option("max_samples")]  # noqa: UP045
_Imbalance = Annotated[Optional[float], _option("imbalance")]  # noqa: UP045
_FailOn = Annotated[Optional[list[str]], _option("fail_on")]  # noqa: UP045
_CustomObjects = Annotated[Optional[list[str]],  # noqa: UP045
                           _option("custom_objects", metavar="MODULE")]
_Workers = Annotated[Optional[int], _option("workers")]  # noqa: UP045
_Executor = Annotated[Optional[str], _option("executor")]  # noqa: UP045
_RayAddress = Annotated[Optional[str], _option("ray_address", metavar="ADDR")]  # noqa: UP045
_Backend = Annotated[Optional[str], _option("backend")]  # noqa: UP045
_CheckNumerics = Annotated[Optional[bool], _option("check_numerics")]  # noqa: UP045
