"""Argument types of the ``vsbench`` parsers: numbers that refuse what makes no sense (a usage error, exit 2).

No imports beyond argparse: building the parser stays cheap (and works in the solution images' runtime).
"""

from __future__ import annotations

import argparse


def _number(text: str, kind: type) -> int | float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {'an integer' if kind is int else 'a number'}, "
                                         f"not {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0 (e.g. ``--bootstrap 0``: none, ``--decimals 0``)."""
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, not {text}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1 (counts of workers, steps, images, pixels)."""
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, not {text}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (seconds, CPUs, tolerances)."""
    value = _number(text, float)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, not {text}")
    return value
