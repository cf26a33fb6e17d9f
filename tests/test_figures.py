"""The leaderboard's figures and panels fit and can be told apart: entry styles stay distinct under simulated
colour-vision deficiencies, every saved figure holds all its text, legends and blobs, legends sit beside their
plots and list every entry drawn, and constant images are framed so they never look missing."""

from __future__ import annotations

import itertools
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex, to_rgb
from PIL import Image

from vsbench.leaderboard import figures

# --- colour difference under simulated colour-vision deficiency -------------------------------------------------

# Machado, Oliveira & Fernandes 2009, "A Physiologically-based Model for Simulation of Color Vision Deficiency",
# IEEE TVCG 15(6):1291-1298, severity 1.0 (dichromacy); they act on linear RGB
# (https://www.inf.ufrgs.br/~oliveira/pubs_files/CVD_Simulation/CVD_Simulation.html).
MACHADO_2009 = {
    "normal": np.eye(3),
    "protan": np.array([[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                        [-0.003882, -0.048116, 1.051998]]),
    "deutan": np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                        [-0.011820, 0.042940, 0.968881]]),
    "tritan": np.array([[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602],
                        [0.004733, 0.691367, 0.303900]]),
}
# linear sRGB -> CIE XYZ, D65 (IEC 61966-2-1)
SRGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]])
# CIE76 Delta E: 2.3 is a just-noticeable difference for large patches (Mahy et al. 1994); thresholds grow several
# fold for marks as small as plot markers and thin lines (Szafir 2017, "Modeling Color Difference for Visualization
# Design", IEEE TVCG 24(1)), so "distinct" asks for about four JNDs, and pairs under 20 count as close enough to
# need a second cue (marker and line style).
DISTINCT = 10.0
CLOSE = 20.0


def _lab(colour: str, vision: str) -> np.ndarray:
    """CIE L*a*b* (D65) of an sRGB colour as seen under ``vision`` (Machado 2009 simulation)."""
    c = np.asarray(to_rgb(colour))
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = SRGB_TO_XYZ @ np.clip(MACHADO_2009[vision] @ linear, 0, 1)
    t = xyz / SRGB_TO_XYZ.sum(axis=1)  # relative to the D65 white
    d = 6 / 29
    f = np.where(t > d ** 3, np.cbrt(t), t / (3 * d * d) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def _worst_delta_e(a: str, b: str) -> float:
    """The smallest CIE76 Delta E between two colours over normal vision and the three simulations."""
    return min(float(np.linalg.norm(_lab(a, v) - _lab(b, v))) for v in MACHADO_2009)


def _worst_of(colours) -> float:
    return min(_worst_delta_e(a, b) for a, b in itertools.combinations(colours, 2))


def _given_out(n: int) -> list[dict]:
    """The styles of ``n`` entries in the order :func:`entry_styles` gives them out."""
    labels = [f"entry-{i:03d}@1" for i in range(n)]
    styles = figures.entry_styles(labels)
    return [styles[label] for label in labels]


def test_the_colour_difference_reproduces_known_values():
    assert np.allclose(_lab("#FFFFFF", "normal"), [100, 0, 0], atol=0.01)
    for vision, matrix in MACHADO_2009.items():
        assert np.allclose(matrix.sum(axis=1), 1, atol=1e-5), vision  # grey stays grey
    assert _worst_delta_e("#FF0000", "#00FF00") < 50 < float(np.linalg.norm(_lab("#FF0000", "normal")
                                                                              - _lab("#00FF00", "normal")))


def test_the_first_seven_colours_stay_apart_under_every_vision():
    colours = [s["color"] for s in _given_out(7)]
    assert len({to_hex(c) for c in colours}) == 7
    assert {to_hex(c) for c in colours} <= {to_hex(c) for c in figures.OKABE_ITO}
    for a, b in itertools.combinations(colours, 2):
        assert _worst_delta_e(a, b) >= DISTINCT, (a, b)


def test_each_prefix_of_the_colours_is_nearly_the_most_distinct_set_of_its_size():
    """A board of k entries gets the first k colours: for every k they are (within 10 %) as far apart, under the
    worst vision, as any k of the seven colours given out."""
    colours = [s["color"] for s in _given_out(7)]
    for k in range(2, 8):
        best = max(_worst_of(subset) for subset in itertools.combinations(colours, k))
        assert _worst_of(colours[:k]) >= 0.9 * best, (k, colours[:k])


def test_close_colours_differ_in_marker_and_line_style():
    """No seven Okabe-Ito colours stay CLOSE apart under every vision, so the pairs that come close differ in
    marker and line style too; within the first seven, every marker differs."""
    assert max(_worst_of(s) for s in itertools.combinations(figures.OKABE_ITO, 7)) < CLOSE
    styles = _given_out(7)
    assert len({s["marker"] for s in styles}) == 7
    for a, b in itertools.combinations(styles, 2):
        if _worst_delta_e(a["color"], b["color"]) < CLOSE:
            assert a["marker"] != b["marker"] and a["linestyle"] != b["linestyle"], (a, b)


def test_entry_styles_are_unique_for_many_entries_and_ignore_the_order_given():
    styles = _given_out(56)
    assert all(set(s) == {"color", "marker", "linestyle"} for s in styles)
    assert len({(to_hex(s["color"]), s["marker"]) for s in styles}) == 56
    labels = ["b@1", "a@2", "c@1", "a@1"]
    assert figures.entry_styles(labels) == figures.entry_styles(sorted(labels, reverse=True))
    assert figures.entry_styles(labels)["a@1"] == _given_out(1)[0]  # given out in sorted label order


# --- figures fit in their saved PNG -----------------------------------------------------------------------------

LONG = ["adipocyte-patchgan-tiny@committed", "input@1", "model@v1", "model@v2", "ridge@1",
        "unet-with-a-rather-long-name@2024-05-01", "vqgan@tiny", "zeta@9"]


def _per_case_table(entries: list[str], groups=("20x", "40x", "60x"), metrics=("pixel_mae", "feature_mae")):
    rows = [{"submission": e.split("@")[0], "version": e.split("@")[1], "split": "test", "case": f"c{z}",
             "group": g, "metric": m, "z_deviation": z, "value": i + 0.1 * z, "higher_is_better": False}
            for i, e in enumerate(entries) for g in groups for m in metrics for z in range(4)]
    rows += [{"submission": "input", "version": "1", "split": "test", "case": "c0", "group": "60x",
              "metric": "SSIM", "z_deviation": 0, "value": np.nan, "higher_is_better": True}]  # an empty panel
    return pd.DataFrame(rows)


def _renderer(fig):
    """A renderer of ``fig`` as drawn (:func:`figures.save` closed it, which detaches its Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig).draw()
    return fig.canvas.get_renderer()


def _saved_region(fig, path: Path):
    """The region of ``fig`` (display pixels) that ``path`` holds, after checking that the PNG has a blank margin
    on every side (nothing runs off the image) and is the size of that region."""
    png = np.asarray(Image.open(path).convert("RGB"))
    for edge in (png[:2], png[-2:], png[:, :2], png[:, -2:]):
        assert (edge >= 250).all(), f"something drawn runs off an edge of {path.name}"
    assert fig.dpi == figures.DPI
    region = fig.get_tightbbox(_renderer(fig)).padded(0.05).transformed(fig.dpi_scale_trans)
    assert abs(region.width - png.shape[1]) <= 2 and abs(region.height - png.shape[0]) <= 2
    return region


def _inside(box, region, what) -> None:
    assert (box.x0 >= region.x0 - 1 and box.x1 <= region.x1 + 1 and box.y0 >= region.y0 - 1
            and box.y1 <= region.y1 + 1), f"{what} at {box} is outside the saved {region}"


def _texts(fig):
    """Every text the figure draws: titles, axis labels, tick labels in view, legend texts."""
    out = []
    for ax in fig.axes:
        out.append(ax.title)
        if ax.axison:
            out += [ax.xaxis.label, ax.yaxis.label]
            for axis, (lo, hi) in ((ax.xaxis, sorted(ax.get_xlim())), (ax.yaxis, sorted(ax.get_ylim()))):
                out += [t.label1 for t in axis.get_major_ticks() if lo - 1e-9 <= t.get_loc() <= hi + 1e-9]
    for legend in _legends(fig):
        out += legend.get_texts()
    return [t for t in out if t.get_visible() and t.get_text().strip()]


def _legends(fig):
    return list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]


def _check_fits(fig, path: Path) -> None:
    """Saved: every text and the legend inside the PNG; one legend, right of every Axes, readable."""
    figures.save(fig, path)
    region = _saved_region(fig, path)
    renderer = _renderer(fig)
    for text in _texts(fig):
        _inside(text.get_window_extent(renderer), region, repr(text.get_text()))
    (legend,) = _legends(fig)
    box = legend.get_window_extent(renderer)
    _inside(box, region, "the legend")
    assert box.x0 >= max(ax.get_window_extent(renderer).x1 for ax in fig.axes) - 1  # beside, to the right
    assert all(t.get_fontsize() >= 9 for t in legend.get_texts())


def test_z_deviation_figure_fits_with_its_legend_beside_it(tmp_path):
    table = _per_case_table(LONG)
    notes = {"vqgan@tiny": "board's best"}
    fig = figures.z_deviation_figure(table, LONG, ["pixel_mae", "feature_mae", "SSIM"], notes=notes,
                                     emphasis="model@v2")
    _check_fits(fig, tmp_path / "z_deviation.png")
    assert figures.legend_entries(fig) == LONG
    (legend,) = _legends(fig)
    assert "vqgan@tiny (board's best)" in [t.get_text() for t in legend.get_texts()]
    styles = figures.entry_styles(LONG)
    for line in (line for ax in fig.axes for line in ax.get_lines()):
        style = styles[line.get_label()]
        assert (to_hex(line.get_color()), line.get_marker(), line.get_linestyle()) == (
            to_hex(style["color"]), style["marker"], matplotlib.lines.Line2D([], [], ls=style["linestyle"])
            .get_linestyle())
        assert line.get_linewidth() == (3.0 if line.get_label() == "model@v2" else 1.5)


def test_legend_entries_lists_only_what_was_drawn_in_the_order_given(tmp_path):
    order = ["zeta@9", "input@1", "absent@1", "model@v1"]
    fig = figures.z_deviation_figure(_per_case_table(["input@1", "model@v1", "zeta@9"]), order, ["pixel_mae"])
    assert figures.legend_entries(fig) == ["zeta@9", "input@1", "model@v1"]
    _check_fits(fig, tmp_path / "z.png")


def test_tradeoff_figure_fits_with_its_legend_beside_it(tmp_path):
    points = pd.DataFrame({"entry": LONG, "pixel_mae": np.arange(8.0), "feature_mae": np.arange(8.0)[::-1]})
    fig = figures.tradeoff_figure(points)
    _check_fits(fig, tmp_path / "tradeoff.png")
    assert figures.legend_entries(fig) == LONG


@pytest.mark.parametrize("n", [3, 12])
def test_rank_blobs_keep_every_blob_and_label_inside(tmp_path, n):
    order = [f"adipocyte-patchgan-tiny-{i}@committed" for i in range(n)]
    # the first and last entries always take ranks 1 and n: full-size blobs in the top-left and bottom-right corners
    samples = pd.DataFrame([{"entry": e, "rank": r} for i, e in enumerate(order)
                            for r in ([i + 1] * 40 if i in (0, n - 1) else [i + 1, i + 2] * 20)])
    fig = figures.rank_blobs_figure(samples, order, {e: i + 1 for i, e in enumerate(order)})
    height = fig.get_figheight()
    _check_fits(fig, tmp_path / "blobs.png")
    assert figures.legend_entries(fig) == order
    region = _saved_region(fig, tmp_path / "blobs.png")
    ax = fig.axes[0]
    renderer = _renderer(fig)
    axes_box = ax.get_window_extent(renderer)
    corners = set()
    for coll in ax.collections:
        if coll.get_label() not in order:
            continue
        radius = np.sqrt(coll.get_sizes()) / 2 * fig.dpi / 72  # marker area is in points^2
        for (x, y), r in zip(coll.get_offsets(), np.broadcast_to(radius, len(coll.get_offsets())), strict=True):
            cx, cy = ax.transData.transform((x, y))
            blob = matplotlib.transforms.Bbox.from_extents(cx - r, cy - r, cx + r, cy + r)
            _inside(blob, region, f"the blob of {coll.get_label()} at rank {y}")
            assert not coll.get_clip_on() or axes_box.contains(blob.x0, blob.y0) and axes_box.contains(blob.x1,
                                                                                                          blob.y1)
            corners.add((int(x), int(y)))
    assert {(0, 1), (n - 1, n)} <= corners
    if n == 12:
        small = figures.rank_blobs_figure(samples[samples["entry"].isin(order[:3])], order[:3],
                                          {e: i + 1 for i, e in enumerate(order[:3])})
        assert height > small.get_figheight()  # the figure grows with the entries
        matplotlib.pyplot.close(small)


def test_the_demo_plot_uses_the_site_styles_and_fits(tmp_path):
    from vsbench.harness.plots import plot_z_deviation, z_deviation_figure

    tidy = pd.DataFrame({"organelle": ["nucleus"] * 4 + ["actin"] * 4, "metric": ["PCC", "PCC", "SSIM", "SSIM"] * 2,
                         "z_deviation": [0, 1, 0, 1] * 2, "value": [0.5, 0.4, 0.3, 0.2] * 2})
    tables = {label: tidy.assign(value=tidy["value"] + i) for i, label in enumerate(LONG)}
    fig = z_deviation_figure(tables)
    styles = figures.entry_styles(LONG)
    for line in (line for ax in fig.axes for line in ax.get_lines()):
        assert to_hex(line.get_color()) == to_hex(styles[line.get_label()]["color"])
        assert line.get_marker() == styles[line.get_label()]["marker"]
    _check_fits(fig, tmp_path / "fig.png")
    assert figures.legend_entries(fig) == LONG
    saved = plot_z_deviation(tables, tmp_path / "demo" / "z_deviation.png")
    assert Image.open(saved).size == Image.open(tmp_path / "fig.png").size  # saved the same way: nothing clipped


# --- image and difference panels --------------------------------------------------------------------------------

def _ring(png: np.ndarray, width: int = 3) -> np.ndarray:
    """The pixels of the outermost ``width`` (the frame's, ``figures.FRAME_PX``) rows and columns."""
    mask = np.zeros(png.shape[:2], dtype=bool)
    mask[:width] = mask[-width:] = mask[:, :width] = mask[:, -width:] = True
    return png[mask]


def _frame_share(path: Path) -> float:
    png = np.asarray(Image.open(path).convert("RGB"))
    return float(np.all(_ring(png) == figures.FRAME_COLOUR, axis=1).mean())


@pytest.mark.parametrize("image", [np.zeros((64, 64)), np.full((300, 200), 7.0), np.full((40, 40), np.nan)])
def test_a_constant_image_is_framed_mid_grey_and_an_all_nan_one_in_the_nan_colour(tmp_path, image):
    info = figures.image_panel(image, tmp_path / "c.png")
    finite = np.isfinite(image).any()
    assert info["constant"] and info["value"] == (float(image.flat[0]) if finite else None)
    png = np.asarray(Image.open(tmp_path / "c.png").convert("RGB"))
    assert _frame_share(tmp_path / "c.png") > 0.5  # a visible frame all round
    h, w = png.shape[:2]
    assert tuple(png[h // 2, w // 2]) == ((128, 128, 128) if finite else figures.NAN_COLOUR)


def test_an_image_panel_scales_by_percentiles_or_a_shared_scale(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.normal(100, 10, (256, 256))
    info = figures.image_panel(image, tmp_path / "a.png")
    assert not info["constant"] and info["value"] is None
    assert np.allclose([info["lo"], info["hi"]], np.percentile(image, [1, 99.8]))
    assert _frame_share(tmp_path / "a.png") < 0.05
    shared = figures.image_panel(image, tmp_path / "b.png", lo=0.0, hi=200.0)
    assert (shared["lo"], shared["hi"]) == (0.0, 200.0)
    grey = np.asarray(Image.open(tmp_path / "b.png").convert("L"), dtype=float)
    assert abs(grey.mean() - 127.5) < 3  # mean 100 sits mid-scale between 0 and 200


def test_nan_pixels_are_visible(tmp_path):
    image = np.tile(np.linspace(0, 1, 200), (200, 1))
    image[50:100, 50:100] = np.nan
    assert not figures.image_panel(image, tmp_path / "n.png")["constant"]
    png = np.asarray(Image.open(tmp_path / "n.png").convert("RGB"))
    assert tuple(png[75, 75]) == figures.NAN_COLOUR
    assert tuple(png[150, 150]) != figures.NAN_COLOUR


def test_panels_are_small(tmp_path):
    figures.image_panel(np.random.default_rng(1).random((1024, 600)), tmp_path / "big.png")
    assert max(Image.open(tmp_path / "big.png").size) == figures.PANEL_MAX_PX
    figures.image_panel(np.random.default_rng(1).random((300, 200)), tmp_path / "native.png")
    assert Image.open(tmp_path / "native.png").size == (200, 300)


def test_a_difference_panel_is_symmetric_about_zero(tmp_path):
    diff = np.tile(np.linspace(-3.0, 3.0, 256), (256, 1))
    diff[:, 200] = 50.0  # an outlier column (0.4 % of pixels) does not set the limit, nor shift zero off white
    info = figures.difference_panel(diff, tmp_path / "d.png")
    assert not info["constant"]
    assert info["limit"] == pytest.approx(np.percentile(np.abs(diff), figures.DIFFERENCE_PERCENTILE))
    assert info["limit"] < 3.1
    png = np.asarray(Image.open(tmp_path / "d.png").convert("RGB")).astype(int)
    cmap = matplotlib.colormaps[figures.DIFFERENCE_CMAP]
    ends = [np.round(255 * np.asarray(cmap(v)[:3])) for v in (0.0, 0.5, 1.0)]
    limit = info["limit"]
    for value, colour in ((-limit, ends[0]), (0.0, ends[1]), (limit, ends[2]), (50.0, ends[2])):
        column = int(np.argmin(np.abs(diff[0] - value)))
        assert np.abs(png[128, column] - colour).max() <= 8, value
    # +x and -x sit symmetrically about the colormap's centre
    for value in (0.5, -0.5, 1.5, -1.5):
        column = int(np.argmin(np.abs(diff[0] - value)))
        expected = np.round(255 * np.asarray(cmap(0.5 + 0.5 * diff[0, column] / limit)[:3]))
        assert np.abs(png[128, column] - expected).max() <= 8, value
    assert _frame_share(tmp_path / "d.png") < 0.05


def test_a_zero_difference_is_framed(tmp_path):
    info = figures.difference_panel(np.zeros((64, 64)), tmp_path / "z.png")
    assert info == {"limit": 0.0, "constant": True}
    assert _frame_share(tmp_path / "z.png") > 0.5


def test_nan_pixels_of_a_difference_are_visible(tmp_path):
    diff = np.tile(np.linspace(-1.0, 1.0, 200), (200, 1))
    diff[20:60, 20:60] = np.nan
    assert not figures.difference_panel(diff, tmp_path / "d.png")["constant"]
    png = np.asarray(Image.open(tmp_path / "d.png").convert("RGB"))
    assert tuple(png[40, 40]) == figures.DIFF_NAN_COLOUR and tuple(png[150, 150]) != figures.DIFF_NAN_COLOUR
