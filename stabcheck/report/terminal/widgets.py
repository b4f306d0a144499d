"""Small rich pieces the terminal report's sections share."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text


def bullet(line: str, style: str = "") -> Table:
    """A terminal bullet whose wrapped lines hang under the text, not under the bullet."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row(Text("•", style=style), Text(line, style=style))
    return grid
