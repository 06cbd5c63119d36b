"""Plain-text tables for the benchmark reports."""
from __future__ import annotations

import resource
import sys
from typing import Callable, Optional, TextIO

#: A column of a printed table: what it shows for one row of numbers.
Cell = Callable[[dict], object]


def print_table(rows: list[dict], file: Optional[TextIO] = None) -> None:
    """Prints dicts sharing the same keys as an aligned table, to ``file`` or else to
    ``sys.stdout`` as it is at the call (a default bound at import would escape
    redirection: pytest's capsys, contextlib.redirect_stdout)."""
    if not rows:
        return
    file = file if file is not None else sys.stdout
    keys = list(rows[0])
    width = {k: max(len(k), *(len(str(r[k])) for r in rows)) for k in keys}
    line = "  ".join(k.ljust(width[k]) for k in keys)
    print(line, file=file)
    print("-" * len(line), file=file)
    for r in rows:
        print("  ".join(str(r[k]).ljust(width[k]) for k in keys), file=file)


def number(key: str, spec: str = ".1f", scale: float = 1.0, suffix: str = "") -> Cell:
    """A column showing ``row[key] / scale`` in the format ``spec``, then ``suffix``:
    ``number("edges_per_s", ".2f", 1e6, " M")`` shows 1234567.0 as "1.23 M". A None
    (a stage the row does not time, a comparison that did not run) shows as "-"."""

    def show(row: dict) -> str:
        value = row[key]
        return "-" if value is None else f"{value / scale:{spec}}{suffix}"

    return show


def formatted(rows: list[dict], columns: dict[str, Cell]) -> list[dict]:
    """The printed table of ``rows`` (numbers, as the JSON holds them): one cell per
    column header, in the order of ``columns``."""
    return [{header: cell(row) for header, cell in columns.items()} for row in rows]


def peak_rss_mib() -> float:
    """Peak resident memory of this process plus its finished children, in MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + children) / 1024
