"""The ``stabcheck`` command line: a thin layer over ``stabcheck.run.engine``.

``app`` and ``main`` live here, the commands in ``cli.run`` (``probe``, ``memory``) and
``cli.commands`` (``report``, ``init``, ``env``). Expected errors end in one line on
stderr and their exit code (2 for usage, config and input errors); only an unexpected bug
shows a traceback (exit 3). Nothing here imports TensorFlow or any Keras backend.
"""

from __future__ import annotations

import importlib
import sys
from typing import Annotated, Optional

import typer

from stabcheck.about import __version__
from stabcheck.errors import StabcheckError

app = typer.Typer(
    add_completion=False,
    rich_markup_mode=None,  # plain help: wraps at any width, never cuts a word short
    no_args_is_help=True,
    help="Probe Keras training settings before a long job: which survive, which die "
    "numerically (NaN, divergence) and which die of memory exhaustion.",
)

def _version(value: bool) -> None:
    if value:
        typer.echo(f"stabcheck {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[Optional[bool], typer.Option(  # noqa: UP045 - typer needs Optional
        "--version", callback=_version, is_eager=True, help="Show the version and exit.")] = None,
) -> None:
    """stabcheck: which training settings will survive, and why the others die."""


def _click_exceptions() -> tuple[type[BaseException], ...]:
    """Click's usage-error class as typer raises it: typer's vendored copy
    (``typer._click``) in newer typer, click's own in older; with click installed beside
    a vendoring typer (import-linter brings it), both exist and only typer's is raised."""
    found: list[type[BaseException]] = []
    for module in ("typer._click.exceptions", "click"):
        try:
            found.append(importlib.import_module(module).ClickException)
        except (ImportError, AttributeError):
            continue
    return tuple(found)


def main() -> None:
    """Console-script entry point: expected errors become one line and an exit code."""
    # The command modules register their commands on ``app``, in --help's order.
    for module in ("stabcheck.cli.run", "stabcheck.cli.commands"):
        importlib.import_module(module)

    try:
        code = app(standalone_mode=False)
    except StabcheckError as exc:
        print(f"stabcheck: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("stabcheck: interrupted", file=sys.stderr)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # click's own usage errors arrive here too
        if isinstance(exc, _click_exceptions()):
            print(f"stabcheck: error: {exc.format_message()}", file=sys.stderr)
            sys.exit(2)
        # A bug in stabcheck: the traceback is for the report, exit code 3 for the caller.
        import traceback

        traceback.print_exc()
        print(f"stabcheck: internal error: {type(exc).__name__}: {exc} (please report it)",
              file=sys.stderr)
        sys.exit(3)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()

