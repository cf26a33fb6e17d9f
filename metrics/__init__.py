"""Metric functions: pure, array in, float out (``vsbench.metrics.lmc``), and aggregation.

Every metric declares its direction where it is defined, as torchmetrics' ``higher_is_better`` class attribute
does: the function that computes it is decorated with :func:`metric` (``@metric("SSIM", higher_is_better=True)``),
which sets ``fn.higher_is_better`` and ``fn.metric_names`` and records the names. :func:`higher_is_better` and
:func:`known_metrics` answer for every metric name vsbench produces; the modules that define metrics are listed in
:data:`METRIC_MODULES` and imported on the first question. An unknown name is an error, never a default.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)

# the modules whose import declares metrics (each with @metric next to the function that computes them)
METRIC_MODULES = ("vsbench.metrics.lmc", "vsbench.metrics.adipocyte", "vsbench.metrics.cp_nuclei")

_DIRECTIONS: dict[str, bool] = {}  # metric name -> higher is better
_WHERE: dict[str, str] = {}  # metric name -> the function that declared it
_TITLES: dict[str, str] = {}  # metric name -> how a table header or plot names it
_loaded = False


class UnknownMetricError(ValueError):
    """A metric name that no module of :data:`METRIC_MODULES` declares."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"unknown metric {name!r} (known: {', '.join(known_metrics())})")


def metric(*names: str, higher_is_better: bool, titles: dict[str, str] | None = None) -> Callable[[F], F]:
    """Decorator declaring that the function computes the metric(s) ``names`` and in which direction they improve.

    Sets ``fn.metric_names`` and ``fn.higher_is_better`` on the function and records every name for
    :func:`higher_is_better`; ``titles`` (name -> words, e.g. ``{"E_dist": "Euclidean distance"}``) is how tables
    and plots name a metric (:func:`metric_title`; default: the name). Declaring a name again with the other
    direction is a :class:`ValueError`."""
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ValueError("metric: give at least one metric name")
    if not isinstance(higher_is_better, bool):
        raise ValueError(f"metric: higher_is_better must be True or False, not {higher_is_better!r}")

    def declare(fn: F) -> F:
        where = f"{fn.__module__}.{fn.__qualname__}"
        for name in names:
            if name in _DIRECTIONS and _DIRECTIONS[name] != higher_is_better:
                raise ValueError(f"metric {name!r}: declared higher_is_better={_DIRECTIONS[name]} by "
                                 f"{_WHERE[name]}, not {higher_is_better} as {where} says")
        for name in names:
            _DIRECTIONS[name] = higher_is_better
            _WHERE.setdefault(name, where)
            _TITLES[name] = (titles or {}).get(name, name)
        fn.metric_names = tuple(names)
        fn.higher_is_better = higher_is_better
        return fn

    return declare


def _load() -> None:
    global _loaded
    if not _loaded:
        for module in METRIC_MODULES:
            importlib.import_module(module)
        _loaded = True


def higher_is_better(name: str) -> bool:
    """Whether a larger value of metric ``name`` is better; :class:`UnknownMetricError` (a :class:`ValueError`,
    one line listing the known names) when no metric module declares it."""
    _load()
    try:
        return _DIRECTIONS[name]
    except (KeyError, TypeError):
        raise UnknownMetricError(name) from None


def known_metrics() -> tuple[str, ...]:
    """Every metric name vsbench can produce, in declaration order (Light My Cells, Adipocyte, CellProfiler)."""
    _load()
    return tuple(_DIRECTIONS)


def metric_title(name: str, arrow: bool = True) -> str:
    """How a table header or plot names metric ``name``: its declared title and, with ``arrow``, its direction
    (``"PCC ↑"``, ``"pixel MAE ↓"``); :class:`UnknownMetricError` for an undeclared name."""
    better = higher_is_better(name)
    title = _TITLES.get(name, name)
    return f"{title} {'↑' if better else '↓'}" if arrow else title
