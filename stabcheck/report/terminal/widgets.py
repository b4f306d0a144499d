"""Small rich pieces the terminal report's sections share."""

from __future__ import annotations

from rich.console import Group
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from stabcheck.judge.summary import Cause
from stabcheck.results import Category

# The mark and colour of a cause's category.
_CAUSE_STYLES = {
    Category.NUMERICAL: ("✗", "bold red"),
    Category.MEMORY: ("✗", "bold magenta"),
    Category.CRASH: ("✗", "bold yellow"),
    Category.LEARNING: ("!", "bold yellow"),
    Category.ERROR: ("✗", "bold"),
}


def bullet(line: str, style: str = "") -> Table:
    """A terminal bullet whose wrapped lines hang under the text, not under the bullet."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row(Text("•", style=style), Text(line, style=style))
    return grid


def cause_lines(cause: Cause, *, beside_memory: bool = False) -> Group:
    """A cause of failures: its title on one line, its sentences indented under it (less
    the memory forecast where the memory section, ``beside_memory``, states it)."""
    mark, style = _CAUSE_STYLES.get(cause.category, ("•", "bold"))
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row(Text(mark, style=style), Text(cause.title, style=style))
    lines = cause.details_beside_memory() if beside_memory else cause.details
    details = [Padding(Text(line), (0, 0, 0, 2), expand=False) for line in lines]
    return Group(grid, *details)
