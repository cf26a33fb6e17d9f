"""Plain-text tables of scores for the terminal."""

from __future__ import annotations

import pandas as pd

from vsbench.metrics import aggregate, higher_is_better


def _fmt(value: float) -> str:
    if pd.isna(value):
        return "-"
    return f"{value:.1f}" if abs(value) >= 100 else f"{value:.3f}"


def _labels(index) -> list[str]:
    width = max([7] + [len(m) + 1 for _, m in index])  # longer names: the CP_* metrics of --cellprofiler
    return [f"{o:<13}{m:<{width}}{'↑' if higher_is_better(m) else '↓'}" for o, m in index]


def deviation_table_text(table: pd.DataFrame, title: str = "") -> str:
    """Organelle x metric rows, z-deviation columns (and ``all``)."""
    if table.empty:
        return f"{title}\n(no scores)"
    shown = table.map(_fmt)
    shown.index = _labels(table.index)
    shown.columns = [f"dz={c}" if c != "all" else "all" for c in table.columns]
    head = f"{title}\n" if title else ""
    return head + shown.to_string()


def metrics_table_text(tidy: pd.DataFrame, title: str = "") -> str:
    return deviation_table_text(aggregate.deviation_table(tidy), title)


def comparison_text(tables: dict[str, pd.DataFrame]) -> str:
    """Overall mean per organelle x metric, one column per algorithm."""
    cols = {}
    for name, tidy in tables.items():
        if not tidy.empty:
            cols[name] = tidy.groupby(["organelle", "metric"])["value"].mean()
    if not cols:
        return "(no scores)"
    frame = pd.DataFrame(cols)
    order = aggregate.deviation_table(next(t for t in tables.values() if not t.empty)).index
    frame = frame.reindex(order)
    shown = frame.map(_fmt)
    shown.index = _labels(frame.index)
    return shown.to_string()
