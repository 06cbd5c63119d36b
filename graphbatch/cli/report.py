"""Plain-text tables for the benchmark reports."""
from __future__ import annotations

import resource
import sys
from typing import Optional, TextIO


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


def peak_rss_mib() -> float:
    """Peak resident memory of this process plus its finished children, in MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + children) / 1024
