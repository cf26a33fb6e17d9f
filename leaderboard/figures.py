"""The figures of a published leaderboard (matplotlib, Agg; labelled axes; the Okabe-Ito colour-blind-safe
palette, Okabe & Ito 2008, "Color Universal Design"). Entries are labelled ``name@version`` and keep one style
(:func:`entry_styles`: colour, marker, line style) in every figure; each ``*_figure`` function builds the figure,
its namesake saves it (:func:`save`: nothing clipped). Legends sit beside their plots (:func:`entry_legend`) and
:func:`legend_entries` reads back the entries a figure's legend lists. :func:`image_panel` and
:func:`difference_panel` write the PNG panels of example cases."""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.artist import Artist  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.legend import Legend  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patheffects import withStroke  # noqa: E402

from vsbench.metrics import metric_title  # noqa: E402

# Okabe & Ito 2008, "Color Universal Design" (https://jfly.uni-koeln.de/color/), all eight colours. ENTRY_COLOURS
# orders seven of them so that every prefix (the colours of a board of 2, 3, ... entries) is within 92 % of the
# largest worst-case separation any as many of the seven allow, in CIE76 Delta E over normal vision and the Machado
# et al. 2009 protan, deutan and tritan simulations (severity 1.0; checked in tests/test_figures.py): sky blue,
# vermillion, black, blue, reddish purple, orange, bluish green. Yellow (#F0E442) is left out: on a white page it
# is the faintest (L* 89) of the eight.
OKABE_ITO = ("#56B4E9", "#D55E00", "#000000", "#0072B2", "#CC79A7", "#E69F00", "#009E73", "#F0E442")
ENTRY_COLOURS = OKABE_ITO[:7]
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", ":", "-.")
# The line style of each ENTRY_COLOURS slot (an index into LINESTYLES): the colour pairs that come closest under
# some simulated colour-vision deficiency (Delta E < 20: sky blue/bluish green, blue/bluish green, reddish
# purple/bluish green, orange/reddish purple, orange/vermillion) also differ in line style (and marker).
_SLOT_LINESTYLE = (0, 0, 0, 0, 0, 1, 2)
LEGEND_FONTSIZE = 9  # points; tick labels and titles are at least this size too
DPI = 100  # of the saved PNGs; figures are built at matplotlib's default 100 dpi so pixel sizes match
FRAME_COLOUR = (0xE6, 0x9F, 0x00)  # Okabe-Ito orange: the frame of a constant (or all-NaN) panel
NAN_COLOUR = (0xCC, 0x79, 0xA7)  # Okabe-Ito reddish purple: NaN pixels of a greyscale panel
DIFF_NAN_COLOUR = (0x80, 0x80, 0x80)  # NaN pixels of a difference panel (mid-grey is not in PuOr)
FRAME_PX = 3  # width of that frame in the PNG
PANEL_MAX_PX = 512  # panels are shown ~200 px wide: native resolution up to this, downsampled beyond
PANEL_MIN_PX = 128  # smaller images are enlarged by a whole factor (nearest) so the frame stays thin


def _style(i: int) -> dict:
    slot, block = i % len(ENTRY_COLOURS), i // len(ENTRY_COLOURS)
    # within a block of seven, every marker differs; an entry of block b takes the marker (and line style) of the
    # block-0 entry shifted by b, so (colour, marker) pairs are unique for 7 x 8 = 56 entries
    return {"color": ENTRY_COLOURS[slot], "marker": MARKERS[(slot + block) % len(MARKERS)],
            "linestyle": LINESTYLES[(_SLOT_LINESTYLE[slot] + block) % len(LINESTYLES)]}


def entry_styles(labels: Iterable[str]) -> dict[str, dict]:
    """One style (``color``, ``marker``, ``linestyle``) per entry label (``name@version``), given out in sorted
    label order: an entry keeps its style in every figure drawn for the same entries (every plot of a published
    page, and the demo's ``z_deviation.png``), whatever the order it is ranked or listed in. The first seven
    entries get seven colours that stay apart under colour-vision deficiencies (see ``ENTRY_COLOURS``) and seven
    different markers; (colour, marker) pairs are unique for the first 56 entries."""
    return {label: _style(i) for i, label in enumerate(sorted(set(labels)))}


def entry_labels(table: pd.DataFrame) -> pd.Series:
    """``name@version`` of every row of a per-case table (columns ``submission``, ``version``)."""
    from vsbench.leaderboard.data import entry_label

    return pd.Series([entry_label(s, v) for s, v in zip(table["submission"], table["version"], strict=True)],
                     index=table.index, dtype=object)


def save(fig: Figure, path: Path) -> Path:
    """Write ``fig`` to ``path`` (PNG, ``DPI``) cropped to everything drawn plus a small margin
    (``bbox_inches="tight"``: a legend beside the panels, rotated tick labels and blobs past the axes are all
    kept), and close it. The layout (constrained) is run once and then frozen, so the PNG holds the figure as
    drawn and a later draw (a test measuring it) lays it out the same."""
    fig.set_dpi(DPI)
    fig.draw_without_rendering()  # lays the figure out (constrained), once, without painting pixels
    if fig.get_layout_engine() is not None:
        fig.set_layout_engine(None)  # frozen; with no engine at all (not "none"'s placeholder) savefig lays out nothing
    # the tight box of that draw, given explicitly: savefig then draws once more, not twice
    box = fig.get_tightbbox(fig.canvas.get_renderer()).padded(0.05)
    fig.savefig(path, dpi=DPI, bbox_inches=box, pil_kwargs={"compress_level": 3})
    plt.close(fig)
    return path


def entry_legend(fig: Figure, axes: Iterable | np.ndarray, order: list[str], notes: dict[str, str] | None = None,
                 handles: dict[str, Artist] | None = None) -> list[str]:
    """The one legend of ``fig``, beside its panels (right of them, top-aligned, ``LEGEND_FONTSIZE``): every entry
    drawn in any of ``axes`` (or, when given, in ``handles``: entry label -> legend handle), in ``order``, labelled
    ``name@version`` plus `` (note)`` where ``notes`` has one. A figure of one Axes gets that Axes' legend outside
    its right edge; a figure of several a figure legend (``outside right upper`` under constrained layout, else
    past the figure's right edge, which :func:`save` keeps). The figure widens by the legend's width so the panels
    keep theirs, and the legend takes more columns when one would be taller than the figure. Each legend text
    carries its bare entry label as its ``gid`` (:func:`legend_entries`). Returns the entries shown."""
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    axes_list = list(np.ravel(np.asarray(axes, dtype=object)))
    seen: dict[str, Artist] = dict(handles or {})
    if handles is None:
        for ax in axes_list:
            for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
                seen.setdefault(label, handle)
    shown = [name for name in order if name in seen]
    if not shown:
        return shown
    notes = notes or {}
    texts = [f"{name} ({notes[name]})" if notes.get(name) else name for name in shown]
    kwargs = {"fontsize": LEGEND_FONTSIZE, "frameon": False, "handlelength": 3.0}
    constrained = isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine)

    def make(ncol: int) -> Legend:
        artists = [seen[name] for name in shown]
        if len(axes_list) == 1:
            return axes_list[0].legend(artists, texts, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                                       borderaxespad=0.0, ncol=ncol, **kwargs)
        if constrained:
            return fig.legend(artists, texts, loc="outside right upper", ncol=ncol, **kwargs)
        return fig.legend(artists, texts, loc="upper left", bbox_to_anchor=(1.0, 1.0), ncol=ncol, **kwargs)

    renderer = fig.canvas.get_renderer()
    legend = make(1)
    box = legend.get_window_extent(renderer)
    room = 0.9 * fig.get_figheight() * fig.dpi
    if box.height > room:  # too tall for the figure: more columns
        legend.remove()
        legend = make(math.ceil(box.height / room))
        box = legend.get_window_extent(renderer)
    fig.set_figwidth(fig.get_figwidth() + box.width / fig.dpi + 0.15)
    for text, name in zip(legend.get_texts(), shown, strict=True):
        text.set_gid(name)
    return shown


def legend_entries(fig: Figure) -> list[str]:
    """The entry labels (``name@version``) listed in the legends of ``fig`` (figure legends, then each Axes'
    legend), in the order shown, without the notes :func:`entry_legend` appends."""
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    return [text.get_gid() or text.get_text() for legend in legends for text in legend.get_texts()]


def z_deviation_figure(table: pd.DataFrame, order: list[str], metrics: list[str],
                       styles: dict[str, dict] | None = None, notes: dict[str, str] | None = None,
                       emphasis: str | None = None) -> Figure:
    """One panel per group x metric: the mean over cases against the z-deviation, one line per entry
    (``order``: entry labels, ``name@version``, in legend order; ``styles``: :func:`entry_styles`, default over
    ``order``), and one legend right of the panels (:func:`entry_legend`; ``notes`` appends `` (note)`` to an
    entry's legend label). The ``emphasis`` entry's line is drawn thicker and on top."""
    styles = styles or entry_styles(order)
    labels = entry_labels(table)
    groups = sorted(table["group"].dropna().unique())
    metrics = [m for m in metrics if (table["metric"] == m).any()]
    fig, axes = plt.subplots(max(len(metrics), 1), max(len(groups), 1), squeeze=False, sharex=True,
                             figsize=(3.3 * max(len(groups), 1), 2.5 * max(len(metrics), 1) + 0.4),
                             layout="constrained")
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
                    strong = name == emphasis
                    ax.plot(line.index, line.values, label=name, lw=3.0 if strong else 1.5, ms=6 if strong else 4,
                            zorder=3 if strong else 2, **styles[name])
            ax.set_title(f"{group}: {metric_title(metric)}", fontsize=10)
            ax.grid(alpha=0.3)
            if r == len(metrics) - 1:
                ax.set_xlabel("z-deviation (planes from focus)")
            if c == 0:
                ax.set_ylabel(metric_title(metric, arrow=False))
    entry_legend(fig, axes, order, notes)
    return fig


def z_deviation_curves(table: pd.DataFrame, order: list[str], path: Path, metrics: list[str],
                       styles: dict[str, dict] | None = None, notes: dict[str, str] | None = None,
                       emphasis: str | None = None) -> Path:
    """:func:`z_deviation_figure`, saved as ``path``."""
    return save(z_deviation_figure(table, order, metrics, styles, notes, emphasis), path)


BLOB_AREA = 600  # points^2 of a blob at bootstrap frequency 1 (radius ~12 pt)


def rank_blobs_figure(samples: pd.DataFrame, order: list[str], reported: dict[str, int],
                      styles: dict[str, dict] | None = None) -> Figure:
    """The rank-stability blob plot (challengeR, Wiesenfarth et al. 2021): for each entry, a blob per rank
    sized by how often the bootstrap gave it, in the entry's colour; the reported rank as a cross. ``samples``:
    columns ``entry`` (``name@version``), ``rank`` (one row per bootstrap resample and entry); ``order`` and
    ``reported`` (the board's rank) by entry label. The figure grows with the entries (both axes run over them),
    blobs are never clipped at the axes' corners, and the legend right of the plot keys the colours."""
    styles = styles or entry_styles(order)
    n = len(order)
    fig, ax = plt.subplots(figsize=(max(4.8, 1.2 + 0.9 * n), max(3.8, 2.2 + 0.45 * n)), layout="constrained")
    for x, name in enumerate(order):
        ranks = samples.loc[samples["entry"] == name, "rank"].to_numpy()
        if ranks.size:
            values, counts = np.unique(ranks, return_counts=True)
            ax.scatter(np.full(values.size, x), values, s=BLOB_AREA * counts / ranks.size, alpha=0.7, label=name,
                       color=styles[name]["color"], edgecolor="black", linewidth=0.5, clip_on=False, zorder=2)
        ax.scatter([x], [reported[name]], marker="x", color="black", s=40, zorder=3, label="_reported rank",
                   clip_on=False, path_effects=[withStroke(linewidth=3, foreground="white")])
    ax.set_xticks(range(n), order, rotation=30, ha="right", rotation_mode="anchor", fontsize=9)
    ax.set_ylabel("rank (1 = best)")
    ax.set_xlabel("entry, in reported order\nblob area = bootstrap frequency, × = reported rank", fontsize=9)
    ax.set_xlim(-0.6, n - 0.4)  # room for the largest blob at either end
    ax.set_ylim(n + 0.5, 0.5)  # rank 1 on top, with room for its blob
    ax.set_yticks(range(1, n + 1))
    ax.grid(alpha=0.3, axis="y")
    keys = {name: Line2D([], [], color=styles[name]["color"], marker="o", linestyle="none", markersize=9, alpha=0.7,
                         markeredgecolor="black", markeredgewidth=0.5) for name in order}
    entry_legend(fig, [ax], order, handles=keys)
    return fig


def rank_blobs(samples: pd.DataFrame, order: list[str], reported: dict[str, int], path: Path,
               styles: dict[str, dict] | None = None) -> Path:
    """:func:`rank_blobs_figure`, saved as ``path``."""
    return save(rank_blobs_figure(samples, order, reported, styles), path)


def tradeoff_figure(points: pd.DataFrame, styles: dict[str, dict] | None = None) -> Figure:
    """Pixel MAE against CellProfiler-feature MAE per entry (the Adipocyte seed's Fig. 9); lower-left is
    better on both. ``points``: columns ``entry`` (``name@version``), ``pixel_mae``, ``feature_mae``, one row per
    entry in legend order; the legend sits right of the plot."""
    styles = styles or entry_styles(points["entry"])
    fig, ax = plt.subplots(figsize=(5.2, 4.2), layout="constrained")
    for row in points.itertuples():
        style = styles[row.entry]
        ax.scatter(row.pixel_mae, row.feature_mae, s=60, label=row.entry, color=style["color"],
                   marker=style["marker"], clip_on=False, zorder=2)
    ax.set_xlabel("pixel MAE (lower is better)")
    ax.set_ylabel("CellProfiler feature MAE (lower is better)")
    ax.margins(0.12)  # no marker cut by the frame, at the extremes either
    ax.grid(alpha=0.3)
    entry_legend(fig, [ax], list(points["entry"]))
    return fig


def tradeoff(points: pd.DataFrame, path: Path, styles: dict[str, dict] | None = None) -> Path:
    """:func:`tradeoff_figure`, saved as ``path``."""
    return save(tradeoff_figure(points, styles), path)


def _write_panel(pixels: np.ndarray, path: Path, framed: bool) -> None:
    """Write ``pixels`` (uint8, H x W greyscale or H x W x 3 RGB) as a PNG: enlarged by a whole factor (nearest)
    below ``PANEL_MIN_PX``, area-downsampled above ``PANEL_MAX_PX`` (long side), with a dashed ``FRAME_PX`` frame
    in ``FRAME_COLOUR`` when ``framed``."""
    from PIL import Image

    long_side = max(pixels.shape[:2])
    if long_side < PANEL_MIN_PX:
        k = PANEL_MIN_PX // long_side
        pixels = pixels.repeat(k, axis=0).repeat(k, axis=1)
    image = Image.fromarray(np.ascontiguousarray(pixels))
    if long_side > PANEL_MAX_PX:
        scale = PANEL_MAX_PX / long_side
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                             Image.Resampling.BOX)
    if framed:
        rgb = np.array(image.convert("RGB"))
        h, w = rgb.shape[:2]
        edge = np.zeros((h, w), dtype=bool)
        edge[:FRAME_PX, :] = edge[-FRAME_PX:, :] = edge[:, :FRAME_PX] = edge[:, -FRAME_PX:] = True
        yy, xx = np.mgrid[0:h, 0:w]
        dashes = ((xx + yy) % 12) < 8  # 8 px on, 4 px off, along every edge
        rgb[edge & dashes] = FRAME_COLOUR
        image = Image.fromarray(rgb)
    image.save(path, compress_level=3)  # zlib level 3: within a few % of the size of 9, several times faster


def _plane(image: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """``image`` as a 2-D float64 array, its finite mask, its finite values, and whether it is constant (every
    finite pixel equal, or none finite); ValueError naming ``what`` for another shape."""
    a = np.squeeze(np.asarray(image, dtype=np.float64))
    if a.ndim != 2:
        raise ValueError(f"{what} needs a 2-D image, got shape {np.shape(image)}")
    finite = np.isfinite(a)
    values = a[finite]
    return a, finite, values, values.size == 0 or bool(values.min() == values.max())


def image_panel(image: np.ndarray, path: Path, lo: float | None = None, hi: float | None = None) -> dict:
    """A greyscale PNG of ``image`` (2-D after squeezing) scaled between ``lo`` and ``hi`` (default: its 1st and
    99.8th percentiles; give both to show several images, e.g. a case's truth and prediction, on one scale).
    NaN pixels are drawn in ``NAN_COLOUR``. A constant image (every finite pixel equal, or none finite) is drawn
    mid-grey (at its level on the given scale when ``lo`` and ``hi`` are given; all ``NAN_COLOUR`` when all NaN)
    inside a dashed frame in ``FRAME_COLOUR``, so it never looks like a missing image. Returns ``{"constant":
    bool, "value": the constant value or None, "lo": float, "hi": float}`` (the scale used; NaN for an all-NaN
    image without ``lo``/``hi``)."""
    a, finite, values, constant = _plane(image, "image_panel")
    value = float(values[0]) if constant and values.size else None
    if values.size:
        p_lo, p_hi = (float(p) for p in np.percentile(values, [1, 99.8]))
    else:
        p_lo = p_hi = float("nan")
    lo = p_lo if lo is None else float(lo)
    hi = p_hi if hi is None else float(hi)
    if constant and (value is None or not (hi > lo)):
        scaled = np.full(a.shape, 0.5)
    else:
        scaled = np.clip((np.where(finite, a, lo) - lo) / (hi - lo if hi > lo else 1.0), 0, 1)
    grey = np.round(255 * scaled).astype(np.uint8)
    if finite.all():
        pixels = grey
    else:
        pixels = np.repeat(grey[..., None], 3, axis=2)
        pixels[~finite] = NAN_COLOUR
    _write_panel(pixels, Path(path), framed=constant)
    return {"constant": constant, "value": value, "lo": lo, "hi": hi}


DIFFERENCE_CMAP = "PuOr_r"  # ColorBrewer PuOr (Harrower & Brewer 2003): a diverging scheme marked colour-blind
#   safe, its purple-orange axis stays apart for protan, deutan and tritan viewers alike; reversed so orange =
#   prediction brighter than truth, purple = darker
DIFFERENCE_PERCENTILE = 99.5  # of |difference|: the symmetric colour limit


def difference_panel(diff: np.ndarray, path: Path) -> dict:
    """A PNG of ``diff`` (prediction minus truth, 2-D after squeezing) in the diverging ``DIFFERENCE_CMAP``,
    white at zero, with symmetric limits +/- the ``DIFFERENCE_PERCENTILE`` th percentile of |diff| (the largest
    |diff| when that percentile is 0). NaN pixels are mid-grey. A constant difference (zero: a perfect prediction; or
    none finite) is framed like a constant :func:`image_panel`. Returns ``{"limit": float, "constant": bool}``."""
    a, finite, values, constant = _plane(diff, "difference_panel")
    limit = float(np.percentile(np.abs(values), DIFFERENCE_PERCENTILE)) if values.size else 0.0
    if limit == 0.0 and values.size:
        limit = float(np.abs(values).max())
    position = np.clip(np.where(finite, a, 0.0) / limit, -1, 1) * 0.5 + 0.5 if limit > 0 else np.full(a.shape, 0.5)
    rgb = np.round(255 * matplotlib.colormaps[DIFFERENCE_CMAP](position)[..., :3]).astype(np.uint8)
    rgb[~finite] = DIFF_NAN_COLOUR
    _write_panel(rgb, Path(path), framed=constant)
    return {"limit": limit, "constant": constant}
