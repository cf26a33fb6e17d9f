"""The Light My Cells (ISBI 2024) image metrics, exactly as the organisers defined them.

Definitions (``shared/reference/lmc.md`` §1.1-1.2, read from the organisers' evaluation script):

* Both images are normalised on their own with the 2 / 99.8 percentiles,
  ``(x - p2) / (p99.8 - p2)`` in float64, **not clipped**; an image whose two percentiles are
  equal ("may be empty") is left as it is.
* ``MAE``: mean of ``|gt - pred|`` over all pixels (sklearn ``mean_absolute_error``).
* ``PCC``: Pearson's r of the flattened images (scipy ``pearsonr``); NaN (a constant image) -> 0.
* ``SSIM``: scikit-image's defaults: uniform 7x7 window, K1 = 0.01, K2 = 0.03, sample
  covariance, ``data_range = max(range(pred), range(gt))`` of the normalised images, the map
  cropped by 3 pixels on each border and averaged.
* ``E_dist``: ``sqrt(sum (gt - pred)^2)``, not divided by the pixel count.
* ``C_dist``: ``|1 - <g, p> / (|g| |p|)|`` clipped to [0, 2] as sklearn does; a zero image has
  cosine similarity 0.

Nucleus and mitochondria are scored with all five, actin and tubulin with PCC and SSIM only.

Every function takes the raw ground truth and prediction (2-D, any real dtype) and returns a
float. :func:`image_metrics` computes several at once in one fused pass, which is what the
evaluator uses: a 2048x2048 uint16 pair takes tens of milliseconds instead of seconds.

Known, deliberate differences from the organisers' composition (all tested in
``tests/test_metrics_lmc.py``):

* sklearn's Euclidean distance expands ``|g|^2 - 2<g,p> + |p|^2`` and so returns ~1e-5 instead of
  0 for identical images; we return ``sqrt(sum (g-p)^2)``, the definition.
* A float32 image whose two percentiles are equal stays float32 in their code, and skimage / sklearn
  then compute in float32 (1e-7 relative); we always compute in float64.
* Values below ~1e-154 underflow when squared; no microscope image has them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vsbench.metrics import _kernels, metric

PMIN = 2.0  # lmc.md §1.1: percentile_normalization(image, pmin=2, pmax=99.8)
PMAX = 99.8
K1 = 0.01  # skimage structural_similarity defaults (lmc.md §1.2)
K2 = 0.03

ORGANELLES = ("nucleus", "mitochondria", "tubulin", "actin")
ALL_METRICS = ("MAE", "PCC", "SSIM", "E_dist", "C_dist")
ORGANELLE_METRICS: dict[str, tuple[str, ...]] = {
    # lmc.md §1.2 metrics_methods
    "nucleus": ALL_METRICS,
    "mitochondria": ALL_METRICS,
    "tubulin": ("PCC", "SSIM"),
    "actin": ("PCC", "SSIM"),
}


class MetricInputError(ValueError):
    """The pair of images cannot be scored (shape, dtype, non-finite values, too small)."""


@dataclass(frozen=True)
class _Stats:
    low: float  # 2nd percentile
    high: float  # 99.8th percentile
    vmin: float
    vmax: float
    mean: float  # approximate mean, used only as a shift for the centred sums
    raw_range: float  # max - min taken in the image's own dtype, as numpy does on an unnormalised image

    @property
    def normalised(self) -> bool:
        return self.low != self.high

    @property
    def offset(self) -> float:
        return self.low if self.normalised else 0.0

    @property
    def scale(self) -> float:
        return self.high - self.low if self.normalised else 1.0

    def norm(self, value: float) -> float:
        return (value - self.offset) / self.scale

    @property
    def data_range(self) -> float:
        """``image.max() - image.min()`` of the image as the organisers scored it."""
        if not self.normalised:
            return self.raw_range
        # max - min of the normalised values; the scale can be negative when numpy's int16
        # percentile arithmetic wraps around, and then the normalised maximum is norm(vmin)
        a, b = self.norm(self.vmax), self.norm(self.vmin)
        return max(a, b) - min(a, b)


def _lerp(a, b, t: float, diff) -> float:
    # numpy's _lerp (method "linear"): a + d*t, or b - d*(1-t) when t >= 0.5, where d = b - a is
    # taken in the input dtype. Reproducing it keeps the percentiles bit-identical to np.percentile.
    return float(b - diff * (1.0 - t)) if t >= 0.5 else float(a + diff * t)


def _virtual_indices(n: int) -> list[tuple[int, int, float]]:
    out = []
    for q in (PMIN, PMAX):
        vi = (n - 1) * np.true_divide(q, 100)
        prev = int(math.floor(vi))
        nxt = min(prev + 1, n - 1)
        out.append((prev, nxt, float(vi - prev)))
    return out


def _stats(img: np.ndarray, role: str = "image") -> _Stats:
    flat = img.ravel()
    n = flat.size
    if img.dtype in (np.uint8, np.uint16):
        nbins = 256 if img.dtype == np.uint8 else 65536
        counts, total, vmin, vmax = _kernels.intensity_stats_u16(np.ascontiguousarray(flat), nbins)
        vmin, vmax = img.dtype.type(vmin), img.dtype.type(vmax)
        cum = np.cumsum(counts)

        def order_stat(k: int):
            return img.dtype.type(np.searchsorted(cum, k, side="right"))

        mean = total / n
    else:
        part = flat.copy()
        kth = sorted({0, n - 1, *(i for pn in _virtual_indices(n) for i in pn[:2])})
        part.partition(kth)
        vmin, vmax = part[0], part[-1]
        if not (np.isfinite(vmin) and np.isfinite(vmax)):
            raise MetricInputError(f"{role} contains NaN or infinite values")

        def order_stat(k: int):
            return part[k]

        mean = float(np.mean(img, dtype=np.float64))
    pcts = []
    for prev, nxt, t in _virtual_indices(n):
        a, b = order_stat(prev), order_stat(nxt)
        pcts.append(_lerp(a, b, t, np.subtract(b, a)))
    raw_range = float(np.subtract(vmax, vmin))
    return _Stats(pcts[0], pcts[1], float(vmin), float(vmax), float(mean), raw_range)


def _check_pair(gt: np.ndarray, pred: np.ndarray, need_ssim: bool) -> tuple[np.ndarray, np.ndarray]:
    gt = np.asarray(gt)
    pred = np.asarray(pred)
    if gt.shape != pred.shape:
        raise MetricInputError(f"shape mismatch: ground truth {gt.shape} vs prediction {pred.shape}")
    if gt.ndim != 2:
        raise MetricInputError(f"expected 2-D images, got {gt.ndim}-D")
    for name, arr in (("ground truth", gt), ("prediction", pred)):
        if arr.dtype.kind not in "uif":
            raise MetricInputError(f"{name} has unsupported dtype {arr.dtype}")
    if gt.size < 2:
        raise MetricInputError("images need at least two pixels")
    if need_ssim and min(gt.shape) < _kernels.WIN:
        raise MetricInputError(f"images of shape {gt.shape} are smaller than the 7x7 SSIM window")
    return gt, pred


def percentile_normalization(image: np.ndarray, pmin: float = PMIN, pmax: float = PMAX) -> np.ndarray:
    """The organisers' normalisation: ``(x - p_min) / (p_max - p_min)``, not clipped.

    Returns the image unchanged (same dtype) when the two percentiles are equal.
    """
    image = np.asarray(image)
    low = np.percentile(image, pmin, keepdims=True)
    high = np.percentile(image, pmax, keepdims=True)
    if low == high:
        return image
    return (image - low) / (high - low)


def image_metrics(gt: np.ndarray, pred: np.ndarray, metrics=ALL_METRICS) -> dict[str, float]:
    """Several LMC metrics of one (ground truth, prediction) pair in one fused pass.

    ``metrics`` is any subset of ``ALL_METRICS``; see the module docstring for the definitions.
    Raises :class:`MetricInputError` on a pair that cannot be scored.
    """
    unknown = set(metrics) - set(ALL_METRICS)
    if unknown:
        raise ValueError(f"unknown metric(s) {sorted(unknown)}; known: {ALL_METRICS}")
    need_ssim = "SSIM" in metrics
    gt, pred = _check_pair(gt, pred, need_ssim)
    sg, sp = _stats(gt, "ground truth"), _stats(pred, "prediction")
    data_range = np.float64(max(sp.data_range, sg.data_range))
    with np.errstate(over="ignore"):
        c1 = float(np.square(K1 * data_range))
        c2 = float(np.square(K2 * data_range))
    sums, ssim_sum, ssim_count = _kernels.fused_pair_sums(
        gt, pred, sg.offset, sg.scale, sp.offset, sp.scale,
        sg.norm(sg.mean), sp.norm(sp.mean), c1, c2, need_ssim,
    )
    s_abs, s_d2, s_gg, s_pp, s_gp, s_gc, s_pc, s_gcgc, s_pcpc, s_gcpc = sums
    n = gt.size
    out: dict[str, float] = {}
    for name in metrics:
        if name == "MAE":
            out[name] = s_abs / n
        elif name == "E_dist":
            out[name] = math.sqrt(s_d2)
        elif name == "C_dist":
            out[name] = abs(min(max(1.0 - s_gp / (_norm(s_gg) * _norm(s_pp)), 0.0), 2.0))
        elif name == "PCC":
            out[name] = _pearson(n, s_gc, s_pc, s_gcgc, s_pcpc, s_gcpc, sg, sp)
        elif name == "SSIM":
            out[name] = ssim_sum / ssim_count if data_range != 0 else _ssim_with_zero_data_range(gt, pred)
    return out


def _ssim_with_zero_data_range(gt: np.ndarray, pred: np.ndarray) -> float:
    """data_range 0 (both images constant, or an unnormalised int16 range that wraps to <= 0) makes
    C1 = C2 = 0: skimage's value is then NaN, or a ratio of its filters' rounding residues, depending
    on the pixels and dtypes. Only skimage itself reproduces that, and the case is rare (an empty
    ground truth), so ask it, with the images exactly as the organisers passed them."""
    import warnings

    from skimage.metrics import structural_similarity

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return float(structural_similarity(percentile_normalization(gt), percentile_normalization(pred),
                                           data_range=0))


def _norm(sum_of_squares: float) -> float:
    # sklearn normalize() divides by 1 instead of a norm below 10 eps (_handle_zeros_in_scale)
    norm = math.sqrt(sum_of_squares)
    return 1.0 if norm < 10 * np.finfo(np.float64).eps else norm


def _pearson(n, s_gc, s_pc, s_gcgc, s_pcpc, s_gcpc, sg: _Stats, sp: _Stats) -> float:
    if sg.vmin == sg.vmax or sp.vmin == sp.vmax:
        return 0.0  # scipy: constant input -> NaN; the organisers replace NaN by 0
    sxx = s_gcgc - s_gc * s_gc / n
    syy = s_pcpc - s_pc * s_pc / n
    sxy = s_gcpc - s_gc * s_pc / n
    if sxx <= 0.0 or syy <= 0.0:
        return 0.0
    r = sxy / (math.sqrt(sxx) * math.sqrt(syy))
    return max(min(r, 1.0), -1.0)


def organelle_metrics(organelle: str, gt: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """The metrics the organisers computed for ``organelle`` (``ORGANELLE_METRICS``)."""
    try:
        wanted = ORGANELLE_METRICS[organelle.lower()]
    except KeyError:
        raise ValueError(f"unknown organelle {organelle!r}; known: {ORGANELLES}") from None
    return image_metrics(gt, pred, wanted)


@metric("MAE", higher_is_better=False)
def mean_absolute_error(gt: np.ndarray, pred: np.ndarray) -> float:
    """MAE of the percentile-normalised images: ``mean |g - p|`` (sklearn's definition)."""
    return image_metrics(gt, pred, ("MAE",))["MAE"]


@metric("PCC", higher_is_better=True)
def pearson_correlation(gt: np.ndarray, pred: np.ndarray) -> float:
    """Pearson's r of the normalised, flattened images (scipy ``pearsonr``); 0 if undefined."""
    return image_metrics(gt, pred, ("PCC",))["PCC"]


@metric("SSIM", higher_is_better=True)
def structural_similarity(gt: np.ndarray, pred: np.ndarray) -> float:
    """SSIM with scikit-image's defaults on the normalised images (Wang et al. 2004, IEEE TIP 13:600).

    Uniform 7x7 window, K1 = 0.01, K2 = 0.03, sample covariance (N-1), ``data_range`` = the
    larger range of the two normalised images, mean over the map cropped by 3 pixels.
    """
    return image_metrics(gt, pred, ("SSIM",))["SSIM"]


@metric("E_dist", higher_is_better=False, titles={"E_dist": "E dist"})
def euclidean_distance(gt: np.ndarray, pred: np.ndarray) -> float:
    """``sqrt(sum (g - p)^2)`` of the normalised images, not divided by the pixel count."""
    return image_metrics(gt, pred, ("E_dist",))["E_dist"]


@metric("C_dist", higher_is_better=False, titles={"C_dist": "C dist"})
def cosine_distance(gt: np.ndarray, pred: np.ndarray) -> float:
    """``|1 - cos(g, p)|`` of the normalised images, clipped to [0, 2] as in sklearn."""
    return image_metrics(gt, pred, ("C_dist",))["C_dist"]
