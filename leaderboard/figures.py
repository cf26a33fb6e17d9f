"""The figures of a published leaderboard (matplotlib, Agg; labelled axes; the Okabe-Ito colour-blind-safe
palette, Okabe & Ito 2008, "Color Universal Design")."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def _style(i: int) -> dict:
    return {"color": OKABE_ITO[i % len(OKABE_ITO)], "marker": MARKERS[(i // len(OKABE_ITO)) % len(MARKERS)]}


def z_deviation_curves(table: pd.DataFrame, order: list[str], path: Path, metrics: list[str]) -> Path:
    """One panel per group x metric: the mean over cases against the z-deviation, one line per submission."""
    groups = sorted(table["group"].dropna().unique())
    metrics = [m for m in metrics if (table["metric"] == m).any()]
    fig, axes = plt.subplots(len(metrics), len(groups), squeeze=False, sharex=True,
                             figsize=(3.3 * len(groups), 2.5 * len(metrics) + 0.6))
    for r, metric in enumerate(metrics):
        for c, group in enumerate(groups):
            ax = axes[r][c]
            cell = table[(table["metric"] == metric) & (table["group"] == group)]
            if cell["value"].notna().sum() == 0:  # e.g. actin has no MAE on Light My Cells
                ax.axis("off")
                continue
            for i, name in enumerate(order):
                line = cell[cell["submission"] == name].groupby("z_deviation")["value"].mean()
                if not line.empty:
                    ax.plot(line.index, line.values, label=name, lw=1.5, ms=4, **_style(i))
            ax.set_title(f"{group}: {metric}", fontsize=9)
            ax.grid(alpha=0.3)
            if r == len(metrics) - 1:
                ax.set_xlabel("z-deviation (planes from focus)")
            if c == 0:
                ax.set_ylabel(metric)
    seen: dict[str, object] = {}
    for ax in axes.ravel():
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(label, handle)
    labels = [name for name in order if name in seen]
    if labels:
        fig.legend([seen[n] for n in labels], labels, loc="lower center", ncol=min(len(labels), 4), fontsize=8,
                   frameon=False)
    fig.tight_layout(rect=(0, 0.06 + 0.02 * (len(labels) // 4), 1, 1))
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def rank_blobs(samples: pd.DataFrame, order: list[str], reported: dict[str, int], path: Path) -> Path:
    """The rank-stability blob plot (challengeR, Wiesenfarth et al. 2021): for each submission, a blob per rank
    sized by how often the bootstrap gave it; the reported rank as a cross. ``samples``: columns
    ``submission``, ``rank`` (one row per bootstrap resample and submission)."""
    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * len(order), 3.6))
    for x, name in enumerate(order):
        ranks = samples.loc[samples["submission"] == name, "rank"].to_numpy()
        if ranks.size:
            values, counts = np.unique(ranks, return_counts=True)
            ax.scatter(np.full(values.size, x), values, s=600 * counts / ranks.size, alpha=0.7,
                       color=OKABE_ITO[x % len(OKABE_ITO)], edgecolor="black", linewidth=0.5)
        ax.scatter([x], [reported[name]], marker="x", color="black", s=40, zorder=3)
    ax.set_xticks(range(len(order)), order, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("rank (1 = best)")
    ax.set_xlabel("submission (reported order); blob area = bootstrap frequency, x = reported rank")
    ax.invert_yaxis()
    ax.set_yticks(range(1, len(order) + 1))
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def tradeoff(points: pd.DataFrame, path: Path) -> Path:
    """Pixel MAE against CellProfiler-feature MAE per submission (the Adipocyte seed's Fig. 9); lower-left is
    better on both. ``points``: columns ``submission``, ``pixel_mae``, ``feature_mae``."""
    fig, ax = plt.subplots(figsize=(5.2, 4.2))
    for i, row in enumerate(points.itertuples()):
        ax.scatter(row.pixel_mae, row.feature_mae, s=60, label=row.submission, **_style(i))
    ax.set_xlabel("pixel MAE (lower is better)")
    ax.set_ylabel("CellProfiler feature MAE (lower is better)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def image_panel(image: np.ndarray, path: Path) -> Path:
    """A greyscale PNG of ``image`` scaled between its 1st and 99.8th percentiles."""
    image = np.asarray(image, dtype=np.float64)
    lo, hi = np.nanpercentile(image, [1, 99.8])
    scaled = np.clip((image - lo) / (hi - lo if hi > lo else 1.0), 0, 1)
    plt.imsave(path, scaled, cmap="gray", vmin=0, vmax=1)
    return path
