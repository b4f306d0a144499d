"""The command line (typer): one module per command, the one error -> exit code mapping.

The only part that imports typer; with ``report.terminal`` the only one that imports rich.
"""

from stabcheck.cli.app import main

__all__ = ["main"]
