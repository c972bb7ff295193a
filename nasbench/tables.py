"""Console tables that fit the terminal: no name or number is ever cut short ("…").

Tables are compact (a rule under the header, no frame), columns that hold numbers
never wrap, long names fold onto a second line, and a table with more columns than
the console holds is printed as several narrower tables. The width is the
terminal's, or ``$COLUMNS`` where it is set; output into a pipe or a file is 160
columns wide unless ``$COLUMNS`` says otherwise.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

PIPED_WIDTH = 160  # wide enough for a 64-character hash and a handful of metrics


def stdout_console():
    """A rich Console on stdout: the terminal's width or ``$COLUMNS``; piped, 160 columns."""
    from rich.console import Console

    wide = not sys.stdout.isatty() and not os.environ.get("COLUMNS", "").isdigit()
    return Console(file=sys.stdout, width=PIPED_WIDTH if wide else None)


def compact_table(title: str | None = None, **options: Any):
    """A table with a rule under its header and no frame: two columns of padding less per
    column than rich's default, which is what lets most tables fit 80 columns."""
    from rich import box
    from rich.table import Table

    # At least as wide as its title (up to the console's width), so that a narrow table's
    # title stays on one line and can be searched for.
    options = {
        "box": box.SIMPLE_HEAD,
        "show_edge": False,
        "pad_edge": False,
        "header_style": "bold",
        "title_justify": "left",
        "min_width": len(title) if title else None,
        **options,
    }
    return Table(title=title, **options)


def natural_width(console, table) -> int:
    """The width ``table``'s columns take when nothing in them is wrapped or cut (a long
    title wraps, so it does not count)."""
    from rich.measure import Measurement

    min_width, table.min_width = table.min_width, None
    try:
        return Measurement.get(console, console.options.update_width(100_000), table).maximum
    finally:
        table.min_width = min_width


def print_fitted(console, build: Callable[[list], Any], columns: list) -> None:
    """Print ``build(columns)``, a table with a column per item; when it is wider than the
    console, as several tables of as many of those columns as fit (``build`` repeats the
    columns that name the rows, the later tables are titled "(continued)"), so that no
    name or number is cut."""

    def fits(chosen) -> bool:
        return natural_width(console, build(chosen)) <= console.width

    chunks: list[list] = []
    for column in columns:
        if chunks and fits(chunks[-1] + [column]):
            chunks[-1].append(column)
        else:
            chunks.append([column])
    for number, chunk in enumerate(chunks or [[]]):
        table = build(chunk)
        if number:
            table.title, table.min_width = "(continued)", None
        console.print(table)
