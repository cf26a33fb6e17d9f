"""Figures where a reader would rather look than read."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from vsbench.metrics.lmc import ORGANELLE_METRICS  # noqa: E402


def plot_z_deviation(tables: dict[str, pd.DataFrame], path: Path, metrics=("PCC", "SSIM")) -> Path:
    """One panel per organelle x metric: the mean score against |image_z - best_z|, one line per
    algorithm. ``tables`` maps algorithm name to its tidy score table."""
    organelles = [o for o in ORGANELLE_METRICS if any((t["organelle"] == o).any() for t in tables.values())]
    fig, axes = plt.subplots(len(metrics), max(len(organelles), 1), squeeze=False,
                             figsize=(3.2 * max(len(organelles), 1), 2.6 * len(metrics)), sharex=True)
    for col, organelle in enumerate(organelles):
        for row, metric in enumerate(metrics):
            ax = axes[row][col]
            for name, table in tables.items():
                sel = table[(table["organelle"] == organelle) & (table["metric"] == metric)]
                sel = sel.dropna(subset=["z_deviation"])
                if sel.empty:
                    continue
                curve = sel.groupby(sel["z_deviation"].astype(int))["value"].mean()
                ax.plot(curve.index, curve.values, marker="o", ms=3, label=name)
            ax.set_title(f"{organelle} {metric}", fontsize=9)
            ax.grid(alpha=0.3)
            if row == len(metrics) - 1:
                ax.set_xlabel("|image_z - best_z| (planes)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
