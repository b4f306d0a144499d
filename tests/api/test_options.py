"""``stabcheck.probe`` and ``stabcheck.memory`` (``stabcheck.api``) against
``config.options``: each takes the table's keywords for it, unset by default, and its
docstring documents each keyword or defers it to the command-line option of the same name.
Pure."""

from __future__ import annotations

import inspect
import re

import pytest

from stabcheck import api
from stabcheck.config.options import OPTIONS

# The functions' parameters that are no option of a run: the data as arrays or datasets,
# the memory ladder after the grid (the CLI decides it from the budget), the progress bar.
NOT_OPTIONS = {"x", "y", "validation_data", "memory_ladder", "progress"}
# Keywords a function requires: a memory ladder needs its batch sizes.
REQUIRED = {("memory", "batch_size")}


@pytest.mark.parametrize("function", ["probe", "memory"])
def test_each_function_takes_the_tables_keywords(function: str) -> None:
    params = inspect.signature(getattr(api, function)).parameters
    keywords = {name: p for name, p in params.items() if name not in NOT_OPTIONS}
    assert set(keywords) == {o.keyword for o in OPTIONS if function in o.functions}
    for name, param in keywords.items():
        required = (function, name) in REQUIRED or name == "model"
        assert param.default is (inspect.Parameter.empty if required else None), name


def test_the_docstring_documents_each_keyword_or_defers_to_the_cli() -> None:
    doc = inspect.getdoc(api.probe) or ""
    assert "The others: as the CLI's options of the same names." in doc
    documented = set(re.findall(r"^    (\w+):", doc, re.MULTILINE))
    for option in OPTIONS:
        if "probe" not in option.functions or option.keyword in documented:
            continue
        flag = (option.flag or "").partition("/")[0]
        assert flag == f"--{option.keyword.replace('_', '-')}", option.name
    assert NOT_OPTIONS <= documented

