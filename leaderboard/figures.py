"""The figures of a published leaderboard (matplotlib, Agg; labelled axes; the Okabe-Ito colour-blind-safe
palette, Okabe & Ito 2008, "Color Universal Design"). Entries are labelled ``name@version`` and keep one colour
(:func:`entry_styles`) in every figure; each ``*_figure`` function builds the figure, its namesake saves it."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def _style(i: int) -> dict:
    return {"color": OKABE_ITO[i % len(OKABE_ITO)], "marker": MARKERS[(i // len(OKABE_ITO)) % len(MARKERS)]}


def entry_styles(labels: Iterable[str]) -> dict[str, dict]:
    """One style (``color``, ``marker``) per entry label (``name@version``), given out in sorted label order: an
    entry keeps its colour in every figure drawn for the same entries (every plot of a published page, and the
    demo's ``z_deviation.png``), whatever the order it is ranked or listed in."""
    return {label: _style(i) for i, label in enumerate(sorted(set(labels)))}


def entry_labels(table: pd.DataFrame) -> pd.Series:
    """``name@version`` of every row of a per-case table (columns ``submission``, ``version``)."""
    from vsbench.leaderboard.data import entry_label

    return pd.Series([entry_label(s, v) for s, v in zip(table["submission"], table["version"], strict=True)],
                     index=table.index, dtype=object)


def save(fig: Figure, path: Path) -> Path:
    """Write ``fig`` to ``path`` (PNG, 90 dpi) and close it."""
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def z_deviation_figure(table: pd.DataFrame, order: list[str], metrics: list[str],
                       styles: dict[str, dict] | None = None) -> Figure:
    """One panel per group x metric: the mean over cases against the z-deviation, one line per entry
    (``order``: entry labels, ``name@version``; ``styles``: :func:`entry_styles`, default over ``order``)."""
    styles = styles or entry_styles(order)
    labels = entry_labels(table)
    groups = sorted(table["group"].dropna().unique())
    metrics = [m for m in metrics if (table["metric"] == m).any()]
    fig, axes = plt.subplots(len(metrics), len(groups), squeeze=False, sharex=True,
                             figsize=(3.3 * len(groups), 2.5 * len(metrics) + 0.6))
    for r, metric in enumerate(metrics):
        for c, group in enumerate(groups):
            ax = axes[r][c]
            in_cell = (table["metric"] == metric) & (table["group"] == group)
            cell = table[in_cell]
            if cell["value"].notna().sum() == 0:  # e.g. actin has no MAE on Light My Cells
                ax.axis("off")
                continue
            for name in order:
                line = cell[labels[in_cell] == name].groupby("z_deviation")["value"].mean()
                if not line.empty:
                    ax.plot(line.index, line.values, label=name, lw=1.5, ms=4, **styles[name])
            ax.set_title(f"{group}: {metric}", fontsize=9)
            ax.grid(alpha=0.3)
            if r == len(metrics) - 1:
                ax.set_xlabel("z-deviation (planes from focus)")
            if c == 0:
                ax.set_ylabel(metric)
    shown = entry_legend(fig, axes, order)
    fig.tight_layout(rect=(0, 0.06 + 0.02 * (len(shown) // 4), 1, 1))
    return fig


def entry_legend(fig: Figure, axes: np.ndarray, order: list[str]) -> list[str]:
    """One legend for the whole figure below its panels: every entry drawn in any of ``axes``, in ``order``,
    four to a row; returns the entries shown."""
    seen: dict[str, object] = {}
    for ax in axes.ravel():
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(label, handle)
    shown = [name for name in order if name in seen]
    if shown:
        fig.legend([seen[n] for n in shown], shown, loc="lower center", ncol=min(len(shown), 4), fontsize=8,
                   frameon=False)
    return shown


def z_deviation_curves(table: pd.DataFrame, order: list[str], path: Path, metrics: list[str],
                       styles: dict[str, dict] | None = None) -> Path:
    """:func:`z_deviation_figure`, saved as ``path``."""
    return save(z_deviation_figure(table, order, metrics, styles), path)


def rank_blobs_figure(samples: pd.DataFrame, order: list[str], reported: dict[str, int],
                      styles: dict[str, dict] | None = None) -> Figure:
    """The rank-stability blob plot (challengeR, Wiesenfarth et al. 2021): for each entry, a blob per rank
    sized by how often the bootstrap gave it, in the entry's colour; the reported rank as a cross. ``samples``:
    columns ``entry`` (``name@version``), ``rank`` (one row per bootstrap resample and entry); ``order`` and
    ``reported`` (the board's rank) by entry label."""
    styles = styles or entry_styles(order)
    fig, ax = plt.subplots(figsize=(max(4.8, 1.2 + 0.9 * len(order)), 3.8))
    for x, name in enumerate(order):
        ranks = samples.loc[samples["entry"] == name, "rank"].to_numpy()
        if ranks.size:
            values, counts = np.unique(ranks, return_counts=True)
            ax.scatter(np.full(values.size, x), values, s=600 * counts / ranks.size, alpha=0.7, label=name,
                       color=styles[name]["color"], edgecolor="black", linewidth=0.5)
        ax.scatter([x], [reported[name]], marker="x", color="black", s=40, zorder=3, label="_reported rank")
    ax.set_xticks(range(len(order)), order, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("rank (1 = best)")
    ax.set_xlabel("entry, in reported order\nblob area = bootstrap frequency, x = reported rank", fontsize=9)
    ax.set_xlim(-0.6, len(order) - 0.4)  # room for the largest blob at either end
    ax.set_ylim(len(order) + 0.5, 0.5)  # rank 1 on top, with room for its blob
    ax.set_yticks(range(1, len(order) + 1))
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


def rank_blobs(samples: pd.DataFrame, order: list[str], reported: dict[str, int], path: Path,
               styles: dict[str, dict] | None = None) -> Path:
    """:func:`rank_blobs_figure`, saved as ``path``."""
    return save(rank_blobs_figure(samples, order, reported, styles), path)


def tradeoff_figure(points: pd.DataFrame, styles: dict[str, dict] | None = None) -> Figure:
    """Pixel MAE against CellProfiler-feature MAE per entry (the Adipocyte seed's Fig. 9); lower-left is
    better on both. ``points``: columns ``entry`` (``name@version``), ``pixel_mae``, ``feature_mae``."""
    styles = styles or entry_styles(points["entry"])
    fig, ax = plt.subplots(figsize=(5.2, 4.2))
    for row in points.itertuples():
        ax.scatter(row.pixel_mae, row.feature_mae, s=60, label=row.entry, **styles[row.entry])
    ax.set_xlabel("pixel MAE (lower is better)")
    ax.set_ylabel("CellProfiler feature MAE (lower is better)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def tradeoff(points: pd.DataFrame, path: Path, styles: dict[str, dict] | None = None) -> Path:
    """:func:`tradeoff_figure`, saved as ``path``."""
    return save(tradeoff_figure(points, styles), path)


def image_panel(image: np.ndarray, path: Path) -> Path:
    """A greyscale PNG of ``image`` scaled between its 1st and 99.8th percentiles."""
    image = np.asarray(image, dtype=np.float64)
    lo, hi = np.nanpercentile(image, [1, 99.8])
    scaled = np.clip((image - lo) / (hi - lo if hi > lo else 1.0), 0, 1)
    plt.imsave(path, scaled, cmap="gray", vmin=0, vmax=1)
    return path
