"""Figures where a reader would rather look than read."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from vsbench.metrics import metric_title  # noqa: E402
from vsbench.metrics.lmc import ORGANELLE_METRICS  # noqa: E402


def z_deviation_figure(tables: dict[str, pd.DataFrame], metrics=("PCC", "SSIM"),
                       styles: dict[str, dict] | None = None) -> Figure:
    """One panel per organelle x metric: the mean score against |image_z - best_z|, one line per entry, and one
    legend right of the panels (:func:`vsbench.leaderboard.figures.entry_legend`, as on the published site).
    ``tables`` maps an entry label (``name@version``) to its tidy score table; ``styles`` (default
    :func:`vsbench.leaderboard.figures.entry_styles` of the labels) gives each entry the colour, marker and line
    style it has on the published leaderboard of the same entries."""
    from vsbench.leaderboard.figures import entry_legend, entry_styles

    styles = styles or entry_styles(tables)
    organelles = [o for o in ORGANELLE_METRICS if any((t["organelle"] == o).any() for t in tables.values())]
    fig, axes = plt.subplots(len(metrics), max(len(organelles), 1), squeeze=False, layout="constrained",
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
                ax.plot(curve.index, curve.values, ms=4, lw=1.5, label=name, **styles[name])
            ax.set_title(f"{organelle}: {metric_title(metric)}", fontsize=10)
            ax.grid(alpha=0.3)
            if row == len(metrics) - 1:
                ax.set_xlabel("|image_z - best_z| (planes)")
    entry_legend(fig, axes, list(tables))
    return fig


def plot_z_deviation(tables: dict[str, pd.DataFrame], path: Path, metrics=("PCC", "SSIM"),
                     styles: dict[str, dict] | None = None) -> Path:
    """:func:`z_deviation_figure`, saved as ``path`` (PNG) by :func:`vsbench.leaderboard.figures.save` (nothing
    clipped, the site's resolution)."""
    from vsbench.leaderboard.figures import save

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save(z_deviation_figure(tables, metrics, styles), path)
