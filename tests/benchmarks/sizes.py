"""The one switch between the two sizes of the benchmarks in ``tests/benchmarks/``.

``VSBENCH_BENCH=full`` (``make bench`` sets it): the full sizes, whose timings the README quotes (2048x2048 LMC
pairs, 2154x2554 Adipocyte image sets, 64 Dask cases of 1024x1024, 32 container cases, paper-size models on
full-size images). Unset or ``smoke`` (``make test``, a plain ``pytest``): the smallest sizes that run the same
code paths and the same correctness checks (values equal to the reference, shapes, the paper models' parameter
counts, both container strategies) in a fraction of the time. Smoke timings mean nothing: speed-up lines printed
in a smoke run are labelled so (:func:`label`). Each module picks its sizes with :func:`pick`.
"""

from __future__ import annotations

import os
from typing import TypeVar

import pytest

ENV = "VSBENCH_BENCH"
MODES = ("smoke", "full")

T = TypeVar("T")


def _mode() -> str:
    raw = os.environ.get(ENV, "")
    value = raw.strip().lower() or "smoke"
    if value not in MODES:
        raise pytest.UsageError(f"{ENV}={raw!r}: expected 'full' (the sizes make bench runs) or 'smoke' (default)")
    return value


MODE = _mode()
FULL = MODE == "full"

#: marks for a module or test that is slow only at the full sizes (``pytestmark = SLOW_IN_FULL``)
SLOW_IN_FULL: list[pytest.MarkDecorator] = [pytest.mark.slow] if FULL else []


def pick(full: T, smoke: T) -> T:
    """``full`` under ``VSBENCH_BENCH=full``, else ``smoke``."""
    return full if FULL else smoke


def label(text: str) -> str:
    """A speed report's label, marked as a smoke-size figure (not a measurement) outside ``make bench``."""
    return text if FULL else f"[smoke size: not a measurement; make bench for the full size] {text}"
