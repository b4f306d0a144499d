"""``stabcheck probe`` and ``stabcheck memory`` against ``config.options``: each command takes
the table's options for it, under the table's flag, help text and type, and its help states
the table's defaults. Pure (the commands are inspected, not run)."""

from __future__ import annotations

import dataclasses
import re
import typing

import pytest
import typer.main

import stabcheck.cli.commands  # noqa: F401 - registers report, init, env
from stabcheck.cli import run as cli_run
from stabcheck.cli.app import app
from stabcheck.config.options import OPTIONS, Option

# The commands' parameters that are no option of a run: the config file, the report's detail.
NOT_OPTIONS = {"config", "verbose"}
COMMANDS = ("probe", "memory")


def _params(command: str) -> dict[str, typing.Any]:
    click_command = typer.main.get_command(app).commands[command]
    return {p.name: p for p in click_command.params if p.name not in NOT_OPTIONS}


def _flag(param: typing.Any) -> str:
    return "/".join([*param.opts, *param.secondary_opts])


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_takes_the_tables_options(command: str) -> None:
    params = _params(command)
    expected = {o.flag: o for o in OPTIONS if command in o.commands}
    assert {_flag(p) for p in params.values()} == set(expected)
    hints = typing.get_type_hints(getattr(cli_run, command), include_extras=True)
    for name, param in params.items():
        option = expected[_flag(param)]
        assert param.help == option.help, option.name
        assert param.default is None, option.name  # unset: the config or the default decides
        value_type = typing.get_args(typing.get_args(hints[name])[0])[0]  # Optional[T]'s T
        assert value_type == option.type, option.name


def test_the_commands_arguments_are_their_parameters() -> None:
    fields = {f.name for f in dataclasses.fields(cli_run.RunArguments)}
    for command in COMMANDS:
        params = set(_params(command))
        assert params <= fields, params - fields
    assert set(_params("probe")) == fields


def _states(option: Option) -> str | None:
    """What the help text must say of the default, where it speaks of one."""
    default = option.default
    if isinstance(default, bool) or default is None:
        return None
    if isinstance(default, int):
        return rf"\bdefault {default}\b"
    if isinstance(default, str):
        word = re.escape(default)
        return rf"\b{word}\b[^.;]*\bdefault\b|\bdefault\b[^.;]*\b{word}\b"
    if isinstance(default, tuple) and all(isinstance(v, str) for v in default):
        return re.escape(", ".join(default))
    return None


@pytest.mark.parametrize("option", [o for o in OPTIONS if o.flag], ids=lambda o: o.name)
def test_a_help_text_that_states_a_default_states_the_tables(option: Option) -> None:
    pattern = _states(option)
    if pattern is None or "default" not in option.help:
        return
    assert re.search(pattern, option.help), (option.name, option.default, option.help)
