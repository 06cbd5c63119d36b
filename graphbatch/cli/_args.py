"""Argument checks shared by the ``graphbatch bench`` commands.

Bad settings end in argparse's usage error (exit status 2) naming the option and the
value, at parsing, rather than in a ZeroDivisionError once the benchmark's graph has
been built. Single values are checked by the ``type`` of their option; combinations
(batches asked against batches an epoch gives) by a check run right after parsing.
"""
from __future__ import annotations

import argparse
from typing import Callable, Optional

#: Returns None, or an error message naming the options whose values do not fit together.
Check = Callable[[argparse.Namespace], Optional[str]]


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse ``type``: an int no smaller than ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an int, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = f"int >= {minimum}"  # argparse names the type in some messages
    return parse


positive_int = int_at_least(1)
nonnegative_int = int_at_least(0)


def add_check(parser: argparse.ArgumentParser, check: Check) -> None:
    """Has :func:`run_check` apply ``check`` to what ``parser`` parsed. The check is a
    parser default, so a subcommand's replaces its parent command's, and a subcommand
    without one inherits its parent's: ``graphbatch bench`` itself has none."""
    parser.set_defaults(_check=(parser, check))


def run_check(args: argparse.Namespace) -> None:
    """Exits through the parsing command's ``parser.error`` (status 2) when its check,
    if it has one, reports an error."""
    parser, check = getattr(args, "_check", (None, None))
    if check is not None:
        message = check(args)
        if message is not None:
            parser.error(message)
