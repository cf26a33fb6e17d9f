"""Brightfield -> fluorescence alignment of the adipocyte data: measure, model and correct the misalignment.

Reimplements the pre-processing step of the Soft Matter Lab solution (seed report §2 "Image alignment",
Table 1; ``adipocyte.md`` §3.4) from its description:

1. **Measure.** The brightfield is cross-correlated with the lipid-droplet image through the FFT
   (Wiener-Khinchin), ``C = F^-1(F(I_BF) conj(F(I_L)))``, on square patches; a 2-D Gaussian fitted to the
   correlation peak gives a sub-pixel displacement per patch, and the median over the patches is the
   offset of the image (:func:`estimate_offset`).
2. **Model.** The sites of a well lie on a circle, ``phi = 2 pi (site - 1) / N_sites``, and per magnification
   ``dx = Ax sin phi + Bx cos phi + Cx``, ``dy = Ay sin phi + By cos phi + Cy`` (:func:`fit_site_model`).
   The brightfield is also very slightly magnified against the fluorescence (0.12 % at 20x): the patch
   offsets grow linearly with the distance from the image centre, ``(M - 1)(p - c)``, which gives the
   scale ``M`` (:func:`fit_scale`).
3. **Iterate.** Apply the current affine to the brightfield, measure the residual, update, until the
   residual affine is the identity to within ``tolerance`` pixels (:func:`estimate_alignment`).
4. **Correct.** :func:`apply_alignment` resamples the brightfield with ``scipy.ndimage.affine_transform``.

Convention (the one of :mod:`vsbench.harness.synth_adipocyte`; the signs and angle convention of the SML
code are unverified, ``adipocyte.md`` §3.4, so this module states its own). Pixels, x = column, y = row,
``c = ((W - 1) / 2, (H - 1) / 2)`` the image centre. ``(dx, dy, M)`` means: the feature at brightfield pixel
``p`` appears in the fluorescence images at ``c + M (p - c) + (dx, dy)``; (dx, dy) is the displacement of the
fluorescence against the brightfield. :func:`apply_alignment` moves the brightfield by that map, so that the
aligned brightfield ``A`` satisfies ``A(x) = BF(c + (x - c - (dx, dy)) / M)`` and lines up pixel for pixel
with the fluorescence. The fluorescence is never resampled.

What is correlated. Lipid droplets are transparent spheres of high refractive index: in an in-focus
brightfield plane they are nearly invisible phase objects, and out of focus they show as bright or dark
lensing rings, not as the filled disks of the Bodipy image, so the correlation peak of a single plane can be
weak, of either sign, or biased. The default registration image is therefore the axial derivative
``Z(f+1) - Z(f-1)`` around the in-focus plane ``f = Z(4 - z_shift)`` (the transport-of-intensity signal,
proportional to the Laplacian of the phase, which peaks inside each droplet); a single plane (the seed's
``z = 1``, or the in-focus one) can be chosen instead. The sign of the correlation is detected per image
(the peak is the extremum of larger magnitude within ``max_shift``).

Accuracy on the synthetic data (:func:`estimate_split`, 256-px patches, error of (dx, dy) against the truth
in the manifest). 20x, 6 sets of 768 x 768: axial derivative <= 0.02 px per axis, M 0.99877 (true 0.9988);
the in-focus plane alone <= 0.11 px, Z07 <= 0.15 px (on 512 x 512 sets the in-focus plane loses a set). 40x,
8 sets of 1024 x 1024: <= 0.15 px, M 0.99958 (true 0.99958). 60x, 12 sets of 1024 x 1024: <= 0.22 px, RMS
0.09 px, M 0.99952 (true 0.99975): at 60x the droplets are 10-110 px wide and show as rings, and a 1024-px
field (111 µm) holds few of them. A 512 x 512 field at 40x/60x (83/55 µm) is too small: some sets have no
droplet away from the borders and come out unmeasured (NaN), the others within about 0.3 px.

The defaults per magnification, :data:`TABLE1`, are the notebook values of ``adipocyte.md`` §3.4 (= the
seed's Table 1 up to its typos), as used by the synthetic generator, in this module's convention.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import fft as sfft
from scipy import ndimage

from vsbench.harness.synth_adipocyte import MISALIGNMENT, SITES

DEFAULT_PATCH = 512  # patch side for one image (the SML notebook; the report says 256)
SPLIT_PATCH = 256  # patch side for a split: more patches resolve the scale (the report's 256 x 256)
MAX_SHIFT_PX = 16  # the correlation peak is searched within this displacement
TOLERANCE_PX = 0.02  # the iteration stops when the residual affine moves no pixel by more than this
MAX_ITERATIONS = 6
MIN_PATCHES = 3  # an image needs this many agreeing patches (or all it has) to count as measured
OUTLIER_FLOOR_PX = 0.25  # patch offsets further than max(this, 3 robust sd) from the fit are dropped
N_SITES = dict(SITES)  # sites per well and magnification (20x: 6, 40x: 8, 60x: 12)
TABLE1: dict[str, dict[str, float]] = copy.deepcopy(MISALIGNMENT)  # {mag: {M, Ax, Bx, Cx, Ay, By, Cy}}
PARAMS = ("Ax", "Bx", "Cx", "Ay", "By", "Cy")


# ------------------------------------------------------------------------------------------------------
# measuring: cross-correlation on patches


@dataclass
class PatchOffsets:
    """The per-patch measurement of one image pair.

    ``centres`` (n, 2): patch centres (x, y) in pixels; ``offsets`` (n, 2): (dx, dy) of the fluorescence
    against the brightfield at that patch; ``peaks`` (n,): normalised correlation at the peak (after the
    sign); ``valid`` (n,): the peak is inside the search window and the patch is not flat. ``sign``: +1 if
    the images correlate, -1 if they anti-correlate. ``shape``: (H, W) of the image.
    """

    centres: np.ndarray
    offsets: np.ndarray
    peaks: np.ndarray
    valid: np.ndarray
    sign: int
    shape: tuple[int, int]

    @property
    def centre(self) -> np.ndarray:
        """The image centre ``c`` (x, y) = ((W - 1) / 2, (H - 1) / 2)."""
        return np.array([(self.shape[1] - 1) / 2, (self.shape[0] - 1) / 2])


@lru_cache(maxsize=8)
def _hann(h: int, w: int) -> np.ndarray:
    return np.outer(np.hanning(h), np.hanning(w))


def cross_correlation(brightfield: np.ndarray, lipids: np.ndarray) -> np.ndarray:
    """Normalised circular cross-correlation ``C(s) = sum_x BF(x + s) L(x)``, zero shift at ``(H // 2, W // 2)``.

    Both images are made zero-mean and Hann-windowed (so the image borders do not correlate); ``C`` is
    divided by the norms of the windowed images, so it lies in [-1, 1]. Seed report Eq. (1). A
    fluorescence displaced by ``d`` against the brightfield puts the peak at ``s = -d``.
    """
    a = np.asarray(brightfield, np.float64)
    b = np.asarray(lipids, np.float64)
    win = _hann(*a.shape)
    a = (a - a.mean()) * win
    b = (b - b.mean()) * win
    norm = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    if norm == 0:
        return np.zeros(a.shape)
    c = sfft.irfft2(sfft.rfft2(a) * np.conj(sfft.rfft2(b)), s=a.shape)
    return np.fft.fftshift(c) / norm


_X9, _Y9 = (v.ravel().astype(np.float64) for v in np.meshgrid([-1, 0, 1], [-1, 0, 1]))
_QUAD_PINV = np.linalg.pinv(np.stack([np.ones(9), _X9, _Y9, _X9**2, _Y9**2, _X9 * _Y9], axis=1))


def _three_point(cm: float, c0: float, cp: float) -> float:
    den = cm - 2 * c0 + cp
    return 0.0 if den >= 0 else float(np.clip(0.5 * (cm - cp) / den, -1, 1))


def gaussian_peak(values: np.ndarray) -> tuple[float, float]:
    """Sub-pixel (x, y) position, relative to the centre, of a peak sampled on a 3 x 3 neighbourhood.

    A 2-D Gaussian (elliptical, with a cross term) is fitted by least squares to the logarithm of the 9
    values, i.e. ``log C = a + b x + c y + d x^2 + e y^2 + f x y``, and its vertex returned. If a value is
    not positive (the log fit is undefined) or the fit is not a maximum, a separable 3-point fit of the
    values themselves is used. Clipped to [-1, 1].
    """
    v = np.asarray(values, np.float64)
    if v.min() > 0:
        a, b, c, d, e, f = _QUAD_PINV @ np.log(v.ravel())
        hess = np.array([[2 * d, f], [f, 2 * e]])
        if d < 0 and e < 0 and np.linalg.det(hess) > 0:
            x, y = np.linalg.solve(hess, [-b, -c])
            if abs(x) <= 1 and abs(y) <= 1:
                return float(x), float(y)
    return _three_point(v[1, 0], v[1, 1], v[1, 2]), _three_point(v[0, 1], v[1, 1], v[2, 1])


def _window(c: np.ndarray, max_shift: int) -> tuple[np.ndarray, int, int]:
    h, w = c.shape
    r = max(1, min(int(max_shift), h // 2 - 2, w // 2 - 2))
    return c[h // 2 - r:h // 2 + r + 1, w // 2 - r:w // 2 + r + 1], r, r


def correlation_sign(brightfield: np.ndarray, lipids: np.ndarray, max_shift: int = MAX_SHIFT_PX) -> int:
    """+1 if the whole images correlate (the extremum of larger magnitude within ``max_shift`` is a
    maximum), -1 if they anti-correlate."""
    win, _, _ = _window(cross_correlation(brightfield, lipids), max_shift)
    return 1 if win.max() >= -win.min() else -1


def correlation_peak(c: np.ndarray, sign: int = 1, max_shift: int = MAX_SHIFT_PX) -> tuple[float, float, float, bool]:
    """``(sx, sy, peak, inside)``: sub-pixel position of the extremum of ``sign * c`` within ``max_shift`` of
    the zero shift (Gaussian fit, :func:`gaussian_peak`), its height, and whether it lies strictly inside the
    search window (a peak on the window's edge is no peak)."""
    win, ry, rx = _window(np.asarray(c, np.float64), max_shift)
    return _window_peak(win, sign, ry, rx)


def _window_peak(win: np.ndarray, sign: int, ry: int, rx: int) -> tuple[float, float, float, bool]:
    win = sign * win
    i, j = np.unravel_index(int(np.argmax(win)), win.shape)
    inside = 0 < i < win.shape[0] - 1 and 0 < j < win.shape[1] - 1
    if not inside:
        return float(j - rx), float(i - ry), float(win[i, j]), False
    fx, fy = gaussian_peak(win[i - 1:i + 2, j - 1:j + 2])
    return float(j - rx + fx), float(i - ry + fy), float(win[i, j]), True


def _starts(n: int, p: int, stride: int) -> list[int]:
    starts = list(range(0, n - p + 1, stride))
    if starts[-1] != n - p:
        starts.append(n - p)
    return starts


def patch_offsets(brightfield: np.ndarray, lipids: np.ndarray, patch: int = DEFAULT_PATCH, *,
                  stride: int | None = None, max_shift: int = MAX_SHIFT_PX, sign: int | None = None) -> PatchOffsets:
    """Displacement of ``lipids`` against ``brightfield`` on every ``patch`` x ``patch`` patch.

    Patches step by ``stride`` (default ``patch // 2``) and cover the whole image (the last row and column
    of patches end at the border); a patch larger than the image is clipped to it (one patch). ``sign``:
    +1/-1 to force (anti-)correlation, ``None`` to detect it: the extremum of larger magnitude of the sum of
    the patches' correlations within ``max_shift``.
    """
    bf = np.asarray(brightfield, np.float64)
    ld = np.asarray(lipids, np.float64)
    if bf.ndim != 2 or bf.shape != ld.shape:
        raise ValueError(f"patch_offsets: need two 2-D images of one shape, got {bf.shape} and {ld.shape}")
    h, w = bf.shape
    p = int(min(patch, h, w))
    if p < 16:
        raise ValueError(f"patch_offsets: patches of {p} px are too small (images {h} x {w})")
    stride = max(1, int(stride) if stride else p // 2)
    centres, windows, valid = [], [], []
    ry = rx = 0
    for r0 in _starts(h, p, stride):
        for c0 in _starts(w, p, stride):
            a, b = bf[r0:r0 + p, c0:c0 + p], ld[r0:r0 + p, c0:c0 + p]
            ok = bool(a.std() > 0 and b.std() > 0)
            win, ry, rx = _window(cross_correlation(a, b), max_shift)
            centres.append((c0 + (p - 1) / 2, r0 + (p - 1) / 2))
            windows.append(win)
            valid.append(ok)
    if sign is None:  # the sign of the extremum of the summed correlation: the images' common contrast
        total = np.sum([wd for wd, ok in zip(windows, valid, strict=True) if ok] or [np.zeros((1, 1))], axis=0)
        sign = 1 if total.max() >= -total.min() else -1
    offsets, peaks = [], []
    for k, win in enumerate(windows):
        sx, sy, peak, inside = _window_peak(win, sign, ry, rx) if valid[k] else (0.0, 0.0, 0.0, False)
        offsets.append((-sx, -sy))
        peaks.append(peak)
        valid[k] = valid[k] and inside
    return PatchOffsets(np.array(centres, np.float64), np.array(offsets, np.float64), np.array(peaks, np.float64),
                        np.array(valid, bool), int(sign), (h, w))


def estimate_offset(brightfield: np.ndarray, lipids: np.ndarray, patch: int = DEFAULT_PATCH, *,
                    stride: int | None = None, max_shift: int = MAX_SHIFT_PX,
                    sign: int | None = None) -> tuple[float, float, float]:
    """``(dx, dy, quality)``: the displacement of the fluorescence against the brightfield, in pixels.

    The median over the patches of :func:`patch_offsets` (FFT cross-correlation, Gaussian peak fit; seed
    report §2). ``quality`` is the median normalised correlation at the peak (0: no common structure, 1:
    identical images up to the shift). NaN offsets and quality 0 when no patch has a peak.
    ``brightfield``: one 2-D image, e.g. :func:`registration_image` of the 7 planes.
    """
    po = patch_offsets(brightfield, lipids, patch, stride=stride, max_shift=max_shift, sign=sign)
    if not po.valid.any():
        return math.nan, math.nan, 0.0
    dx, dy = np.median(po.offsets[po.valid], axis=0)
    return float(dx), float(dy), float(np.median(po.peaks[po.valid]))


# ------------------------------------------------------------------------------------------------------
# correcting


def apply_alignment(planes: np.ndarray, dx: float, dy: float, scale: float = 1.0, *, order: int = 1,
                    mode: str = "nearest") -> np.ndarray:
    """Resample brightfield ``planes`` ((H, W) or (N, H, W)) so that they line up with the fluorescence.

    With the module convention (the feature at brightfield ``p`` is at ``c + scale (p - c) + (dx, dy)`` in
    the fluorescence), the output is ``A(x) = BF(c + (x - c - (dx, dy)) / scale)``: the brightfield moved by
    +(dx, dy) and magnified by ``scale`` about the centre ``c``. Every plane gets the same 2-D transform
    (``scipy.ndimage.affine_transform``, spline ``order`` 1 = bilinear, borders by ``mode``). uint16 and
    other integer inputs are rounded and clipped to their range; float inputs keep their dtype.
    """
    arr = np.asarray(planes)
    if arr.ndim not in (2, 3):
        raise ValueError(f"apply_alignment: need (H, W) or (N, H, W) planes, got shape {arr.shape}")
    if not scale > 0:
        raise ValueError(f"apply_alignment: scale must be positive, got {scale}")
    stack = arr[None] if arr.ndim == 2 else arr
    h, w = stack.shape[1:]
    c = np.array([(h - 1) / 2, (w - 1) / 2])  # (row, col)
    offset = c - (c + np.array([dy, dx], np.float64)) / scale
    matrix = np.eye(2) / scale
    work = np.float64 if arr.dtype == np.float64 else np.float32
    out = np.empty(stack.shape, arr.dtype)
    for k, plane in enumerate(stack):
        moved = ndimage.affine_transform(plane.astype(work, copy=False), matrix, offset=offset, order=order,
                                         mode=mode)
        if np.issubdtype(arr.dtype, np.integer):
            info = np.iinfo(arr.dtype)
            moved = np.clip(np.rint(moved), info.min, info.max)
        out[k] = moved
    return out[0] if arr.ndim == 2 else out


def registration_image(planes: np.ndarray, z_shift: int | None = None, mode: str | int = "dz") -> np.ndarray:
    """The brightfield image to correlate with the lipids, from the 7 planes (7, H, W) of an image set.

    The in-focus plane is ``Z(4 - z_shift)`` (0-based ``f = 3 - z_shift``; the middle plane when
    ``z_shift`` is None). ``mode``: ``"dz"`` (default) the axial derivative ``Z(f+1) - Z(f-1)`` (``f`` kept
    within 2..6), ``"focus"`` plane ``f``, or an int 1..7 for that plane (the seed report uses ``z = 1``).
    Returns float32 (H, W).
    """
    stack = np.asarray(planes)
    if stack.ndim != 3 or stack.shape[0] < 3:
        raise ValueError(f"registration_image: need (N >= 3, H, W) planes, got shape {stack.shape}")
    n = stack.shape[0]
    f = min(max(n // 2 - (z_shift or 0), 0), n - 1)
    if mode == "dz":
        f = min(max(f, 1), n - 2)
        return stack[f + 1].astype(np.float32) - stack[f - 1].astype(np.float32)
    if mode == "focus":
        return stack[f].astype(np.float32)
    if isinstance(mode, (int, np.integer)) and not isinstance(mode, bool) and 1 <= mode <= n:
        return stack[int(mode) - 1].astype(np.float32)
    raise ValueError(f"registration_image: mode must be 'dz', 'focus' or a plane 1..{n}, not {mode!r}")


# ------------------------------------------------------------------------------------------------------
# modelling: scale and site model


def fit_scale(measurements: Sequence[PatchOffsets], *, fit: bool = True,
              floor: float = OUTLIER_FLOOR_PX) -> tuple[float, np.ndarray, list[int]]:
    """Common scale and per-image offsets from the patch offsets of several images.

    Model: the patch at centre ``q`` of image ``k`` is displaced by ``d_k + s (q - c_k)`` (``s = M - 1``, the
    same for all images; ``c_k`` the image centre). Least squares on both axes, ``d_k`` free per image
    (the median in the first round, the mean of the kept patches after), three rounds dropping patches
    further than ``max(floor, median + 3 x 1.4826 MAD)`` (of the pooled residual lengths) from the fit. ``fit=False``
    keeps ``s = 0`` (``d_k`` = mean of the kept patches). Returns ``(s, d (n_images, 2) with NaN for an
    image without valid patch, kept patches per image)``.
    """
    keep = [m.valid.copy() for m in measurements]
    s = 0.0
    d = np.full((len(measurements), 2), np.nan)
    for rnd in range(3):
        num = den = 0.0
        for m, k in zip(measurements, keep, strict=True):
            if k.sum() < 2:
                continue
            q = m.centres[k] - m.centres[k].mean(axis=0)
            o = m.offsets[k] - m.offsets[k].mean(axis=0)
            num += float((q * o).sum())
            den += float((q * q).sum())
        s = num / den if fit and den > 0 else 0.0
        residuals = []
        for i, (m, k) in enumerate(zip(measurements, keep, strict=True)):
            if k.any():
                local = m.offsets[k] - s * (m.centres[k] - m.centre)
                d[i] = np.median(local, axis=0) if rnd == 0 else local.mean(axis=0)
                residuals.append(np.hypot(*(m.offsets - s * (m.centres - m.centre) - d[i]).T))
            else:
                d[i] = np.nan
                residuals.append(np.full(len(m.offsets), np.inf))
        pooled = np.concatenate([r[k] for r, k in zip(residuals, keep, strict=True)]) if any(
            k.any() for k in keep) else np.zeros(0)
        if pooled.size == 0:
            break
        mad = float(np.median(np.abs(pooled - np.median(pooled))))
        cut = max(floor, float(np.median(pooled)) + 3 * 1.4826 * mad)
        new = [m.valid & (r <= cut) for m, r in zip(measurements, residuals, strict=True)]
        if all(np.array_equal(a, b) for a, b in zip(new, keep, strict=True)):
            break
        keep = new
    return s, d, [int(k.sum()) for k in keep]


def site_phi(site: int, n_sites: int) -> float:
    """``phi = 2 pi (site - 1) / n_sites`` (seed report §2; site 1 at phi = 0)."""
    return 2 * math.pi * (int(site) - 1) / int(n_sites)


def site_model_offset(params: dict[str, float], site: int, n_sites: int) -> tuple[float, float]:
    """``(dx, dy)`` of the site model ``A sin phi + B cos phi + C`` per axis."""
    phi = site_phi(site, n_sites)
    sn, cs = math.sin(phi), math.cos(phi)
    return (params["Ax"] * sn + params["Bx"] * cs + params["Cx"],
            params["Ay"] * sn + params["By"] * cs + params["Cy"])


def default_alignment(magnification: str, site: int) -> tuple[float, float, float]:
    """``(dx, dy, M)`` of :data:`TABLE1` for ``site`` (1-based) at ``magnification`` (20x/40x/60x)."""
    if magnification not in TABLE1:
        raise ValueError(f"default_alignment: magnification must be one of {', '.join(TABLE1)}")
    dx, dy = site_model_offset(TABLE1[magnification], site, N_SITES[magnification])
    return dx, dy, TABLE1[magnification]["M"]


def fit_site_model(offsets: Sequence[tuple[int, int, float, float]]) -> dict[str, float]:
    """Least-squares site model ``{Ax, Bx, Cx, Ay, By, Cy}`` from ``(site, n_sites, dx, dy)`` measurements.

    ``dx = Ax sin phi + Bx cos phi + Cx`` and likewise for y, ``phi = 2 pi (site - 1) / n_sites`` (seed report
    §2). Needs at least three distinct sites (three points on the circle fix A, B, C); NaN offsets are
    ignored. :class:`ValueError` otherwise.
    """
    rows = [(site_phi(s, n), float(dx), float(dy)) for s, n, dx, dy in offsets
            if math.isfinite(float(dx)) and math.isfinite(float(dy))]
    phis = np.array([r[0] for r in rows])
    design = np.stack([np.sin(phis), np.cos(phis), np.ones(len(rows))], axis=1) if rows else np.zeros((0, 3))
    if len({round(p, 9) for p in phis}) < 3 or np.linalg.matrix_rank(design) < 3:
        raise ValueError(f"fit_site_model: need measurements at 3 or more distinct sites, got "
                         f"{len({round(p, 9) for p in phis})}")
    target = np.array([[r[1], r[2]] for r in rows])
    coef, *_ = np.linalg.lstsq(design, target, rcond=None)
    (ax, ay), (bx, by), (cx, cy) = coef
    return {"Ax": float(ax), "Bx": float(bx), "Cx": float(cx), "Ay": float(ay), "By": float(by), "Cy": float(cy)}


# ------------------------------------------------------------------------------------------------------
# iterating


@dataclass
class AlignmentFit:
    """Result of :func:`estimate_alignment`: per-image offsets ``(n, 2)`` (dx, dy), the common ``scale`` M,
    per-image ``quality`` (median correlation peak) and ``patches`` (kept patches), the ``history`` of the
    residual per iteration, and whether it ``converged``."""

    offsets: np.ndarray
    scale: float
    quality: np.ndarray
    patches: list[int]
    signs: list[int]
    history: list[dict] = field(default_factory=list)
    converged: bool = False


def estimate_alignment(pairs: Sequence[tuple[np.ndarray, np.ndarray]], patch: int = SPLIT_PATCH, *,
                       fit_scale_factor: bool = True, max_shift: int = MAX_SHIFT_PX,
                       tolerance: float = TOLERANCE_PX, max_iterations: int = MAX_ITERATIONS, order: int = 3,
                       min_patches: int = MIN_PATCHES,
                       progress: Callable[[int], None] | None = None) -> AlignmentFit:
    """Iterative affine estimate for images that share one scale: ``pairs`` of (brightfield, lipids), 2-D.

    Round 0 measures the raw pairs; each later round applies the current ``(d_k, M)`` to the brightfield
    (:func:`apply_alignment`, spline ``order`` 3 for the estimate), measures the residual ``(delta_k, s)``
    with :func:`patch_offsets` and :func:`fit_scale`, and composes: ``M <- (1 + s) M``,
    ``d_k <- (1 + s) d_k + delta_k``. It stops when no pixel moves by more than ``tolerance`` under the
    residual affine (``|delta_k|`` and ``|s|`` times the largest patch distance from the centre), or after
    ``max_iterations`` rounds (``converged`` False). An image where fewer than ``min_patches`` patches (or
    all of them, if it has fewer) agree with the fit gets NaN offsets: unmeasured rather than wrong (a
    small field at 60x can hold only a few droplets, at its borders). ``pairs`` may be a lazy sequence
    (read on access; it is read once per round). ``progress(k)`` is called after each pair.
    """
    n = len(pairs)
    if n == 0:
        raise ValueError("estimate_alignment: no image pairs")
    d = np.zeros((n, 2))
    scale = 1.0
    signs: list[int | None] = [None] * n
    history: list[dict] = []
    converged = False
    quality = np.zeros(n)
    kept: list[int] = [0] * n
    base = np.zeros((n, 2))
    for it in range(max_iterations + 1):
        meas = []
        for k in range(n):
            bf, ld = pairs[k]
            bf = np.asarray(bf, np.float64)
            if it > 0:
                bf = apply_alignment(bf, base[k, 0], base[k, 1], scale, order=order)
            m = patch_offsets(bf, ld, patch, max_shift=max_shift, sign=signs[k])
            signs[k] = m.sign
            meas.append(m)
            quality[k] = float(np.median(m.peaks[m.valid])) if m.valid.any() else 0.0
            if progress is not None:
                progress(k)
        s, delta, kept = fit_scale(meas, fit=fit_scale_factor)
        for k, m in enumerate(meas):
            if kept[k] < min(min_patches, len(m.offsets)):
                delta[k] = np.nan  # too few patches agree: unmeasured rather than wrong
        reach = max(float(np.hypot(*(m.centres - m.centre).T).max()) for m in meas)
        move = float(np.nanmax(np.hypot(*delta.T))) if np.isfinite(delta).any() else math.nan
        if it == 0:
            d = delta.copy()
            scale = 1 + s
        else:
            d = (1 + s) * base + delta
            scale *= 1 + s
        base = np.where(np.isfinite(d), d, 0.0)  # an unmeasured image is moved by the scale only
        history.append({"iteration": it, "max_offset_update_px": move, "scale_update": s,
                        "max_scale_move_px": abs(s) * reach, "scale": scale})
        if it > 0 and move <= tolerance and abs(s) * reach <= tolerance:
            converged = True
            break
    return AlignmentFit(d, float(scale), quality.copy(), list(kept), [int(x) for x in signs], history, converged)


# ------------------------------------------------------------------------------------------------------
# a split


class _SetImages(Sequence):
    """Lazy (registration image, lipid image) pairs of the image sets of a split."""

    def __init__(self, split, sets, mode):
        self.split, self.sets, self.mode = split, sets, mode

    def __len__(self) -> int:
        return len(self.sets)

    def __getitem__(self, k):
        from vsbench.harness.adipocyte_split import read_uint16_plane

        s = self.sets[k]
        paths = s.input_paths(self.split)
        n = len(paths)
        f = min(max(n // 2 - (s.z_shift or 0), 0), n - 1)
        if self.mode == "dz":
            f = min(max(f, 1), n - 2)
            wanted = {f - 1, f + 1}
        elif self.mode == "focus":
            wanted = {f}
        else:
            wanted = {int(self.mode) - 1}
        planes = np.zeros((n,) + read_uint16_plane(paths[min(wanted)]).shape, np.uint16)
        for z in wanted:
            planes[z] = read_uint16_plane(paths[z])
        reg = registration_image(planes, s.z_shift, self.mode)
        lipids = read_uint16_plane(s.target_path(self.split, "lipids")).astype(np.float32)
        return reg, lipids


def _recorded(split) -> dict[tuple[str, int], dict]:
    info = split.manifest.get("info")
    rows = info.get("image_sets") if isinstance(info, dict) else None
    out = {}
    for row in rows if isinstance(rows, list) else []:
        mis = row.get("misalignment") if isinstance(row, dict) else None
        if isinstance(mis, dict) and {"dx", "dy"} <= mis.keys():
            out[(str(row["well"]), int(row["site"]))] = mis
    return out


def estimate_split(split, patch: int = SPLIT_PATCH, *, registration: str | int = "dz", fit_scale_factor: bool = True,
                   max_shift: int = MAX_SHIFT_PX, tolerance: float = TOLERANCE_PX,
                   max_iterations: int = MAX_ITERATIONS, min_patches: int = MIN_PATCHES,
                   progress: bool = False) -> dict:
    """Measure and model the misalignment of every image set of an adipocyte split (with ground truth).

    Returns a JSON-ready dict: ``magnification``, ``n_sites``, the settings, ``sets`` (per set: key, well,
    site, phi, measured dx/dy, quality, patches, the fitted site model's dx/dy and the residual, the
    :data:`TABLE1` default dx/dy, and ``recorded_dx/dy`` when the manifest records the truth, as the
    synthetic generator does), ``sites`` (per site: the mean and sd of the measurements over the wells, the
    model and the default), ``model`` (``{Ax, Bx, Cx, Ay, By, Cy, M}``; the A/B/C entries are None with
    fewer than 3 distinct sites), ``defaults`` (:data:`TABLE1` row), ``history`` and ``converged`` of the
    iteration (:func:`estimate_alignment`). A set too few of whose patches agree has NaN dx/dy (``null`` in
    :func:`result_json`) and is left out of the site model. The registration image is read from the 7
    planes by :func:`registration_image` (in-focus plane from the manifest's ``z_shift``, else Z04).
    Cost: about 1.5 s per 2154 x 2554 set and round on 2 CPU cores (usually 3 rounds); memory: one set.
    """
    from vsbench.harness.adipocyte_split import adipocyte_sets
    from vsbench.harness.split import Split

    split = split if isinstance(split, Split) else Split(Path(split))
    sets = [s for s in adipocyte_sets(split) if "lipids" in s.targets]
    if not sets:
        raise ValueError(f"{split.root}: no image set with a lipid ground truth (ground_truth/ ...C02.tif)")
    mag = sets[0].magnification
    n_sites = N_SITES[mag]
    bar = None
    if progress:
        import sys

        from tqdm import tqdm

        bar = tqdm(total=len(sets) * (max_iterations + 1), desc="align", unit="set", file=sys.stderr)
    fit = estimate_alignment(_SetImages(split, sets, registration), patch, fit_scale_factor=fit_scale_factor,
                             max_shift=max_shift, tolerance=tolerance, max_iterations=max_iterations,
                             min_patches=min_patches, progress=(lambda _k: bar.update()) if bar is not None else None)
    if bar is not None:
        bar.total = bar.n  # it stopped early when it converged
        bar.refresh()
        bar.close()
    measured = [(s.site, n_sites, float(fit.offsets[k, 0]), float(fit.offsets[k, 1])) for k, s in enumerate(sets)]
    try:
        params: dict[str, float | None] = dict(fit_site_model(measured))
    except ValueError:
        params = dict.fromkeys(PARAMS)
    params["M"] = fit.scale
    recorded = _recorded(split)
    rows = []
    for k, s in enumerate(sets):
        dx, dy = measured[k][2], measured[k][3]
        ddx, ddy, _ = default_alignment(mag, s.site)
        row = {"key": s.key, "well": s.well, "site": s.site, "phi": site_phi(s.site, n_sites), "dx": dx, "dy": dy,
               "quality": float(fit.quality[k]), "patches": fit.patches[k], "sign": fit.signs[k],
               "default_dx": ddx, "default_dy": ddy}
        if params["Ax"] is not None:
            mdx, mdy = site_model_offset(params, s.site, n_sites)  # type: ignore[arg-type]
            row.update(model_dx=mdx, model_dy=mdy, residual_dx=dx - mdx, residual_dy=dy - mdy)
        if (s.well, s.site) in recorded:
            rec = recorded[(s.well, s.site)]
            row.update(recorded_dx=float(rec["dx"]), recorded_dy=float(rec["dy"]))
        rows.append(row)
    sites = []
    for site in sorted({r["site"] for r in rows}):
        group = [r for r in rows if r["site"] == site and math.isfinite(r["dx"])]
        ddx, ddy, _ = default_alignment(mag, site)
        entry = {"site": site, "phi": site_phi(site, n_sites), "n_sets": len(group),
                 "dx": float(np.mean([r["dx"] for r in group])) if group else math.nan,
                 "dy": float(np.mean([r["dy"] for r in group])) if group else math.nan,
                 "sd_dx": float(np.std([r["dx"] for r in group])) if group else math.nan,
                 "sd_dy": float(np.std([r["dy"] for r in group])) if group else math.nan,
                 "default_dx": ddx, "default_dy": ddy}
        if params["Ax"] is not None:
            entry["model_dx"], entry["model_dy"] = site_model_offset(params, site, n_sites)  # type: ignore[arg-type]
        sites.append(entry)
    return {
        "split": str(split.root), "magnification": mag, "n_sites": n_sites, "n_sets": len(sets),
        "registration": registration, "patch": patch, "convention": "fluorescence(c + M (p - c) + (dx, dy)) shows "
        "brightfield(p); c = image centre, pixels, x = column, y = row",
        "sets": rows, "sites": sites, "model": params, "defaults": dict(TABLE1[mag]),
        "history": fit.history, "converged": fit.converged,
    }


def result_json(result: dict) -> str:
    """:func:`estimate_split`'s result as strict JSON (NaN and infinities become null)."""

    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v

    return json.dumps(clean(result), indent=2, allow_nan=False)


def _f(v, fmt: str = "+.3f") -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, fmt)


def alignment_table_text(result: dict) -> str:
    """The tables of :func:`estimate_split`: per site, per set, and the fitted parameters next to Table 1."""
    lines = [f"alignment of {result['split']} ({result['magnification']}, {result['n_sets']} image sets, "
             f"registration {result['registration']}, {result['patch']} px patches)",
             "convention: " + result["convention"], "",
             "per site (mean over wells; model = fitted site model; table1 = seed report Table 1)",
             f"{'site':>4} {'phi':>6} {'sets':>4} {'dx':>7} {'dy':>7} {'sd_dx':>6} {'sd_dy':>6} "
             f"{'model_dx':>8} {'model_dy':>8} {'table1_dx':>9} {'table1_dy':>9}"]
    for e in result["sites"]:
        lines.append(f"{e['site']:>4} {math.degrees(e['phi']):>6.1f} {e['n_sets']:>4} {_f(e['dx']):>7} "
                     f"{_f(e['dy']):>7} {_f(e['sd_dx'], '.3f'):>6} {_f(e['sd_dy'], '.3f'):>6} "
                     f"{_f(e.get('model_dx')):>8} {_f(e.get('model_dy')):>8} {_f(e['default_dx']):>9} "
                     f"{_f(e['default_dy']):>9}")
    has_rec = any("recorded_dx" in r for r in result["sets"])
    lines += ["", "per image set" + (" (recorded = the truth in the manifest)" if has_rec else ""),
              f"{'set':<9} {'dx':>7} {'dy':>7} {'quality':>7} {'patches':>7} {'res_dx':>7} {'res_dy':>7}"
              + (f" {'rec_dx':>7} {'rec_dy':>7} {'err':>6}" if has_rec else "")]
    for r in result["sets"]:
        line = (f"{r['key']:<9} {_f(r['dx']):>7} {_f(r['dy']):>7} {_f(r['quality'], '.3f'):>7} {r['patches']:>7} "
                f"{_f(r.get('residual_dx')):>7} {_f(r.get('residual_dy')):>7}")
        if has_rec and "recorded_dx" in r:
            err = math.hypot(r["dx"] - r["recorded_dx"], r["dy"] - r["recorded_dy"])
            line += f" {_f(r['recorded_dx']):>7} {_f(r['recorded_dy']):>7} {_f(err, '.3f'):>6}"
        lines.append(line)
    model, table = result["model"], result["defaults"]
    lines += ["", "parameters (pixels; M = brightfield-to-fluorescence scale)",
              f"{'':<8} " + " ".join(f"{k:>8}" for k in ("M",) + PARAMS),
              f"{'fitted':<8} {_f(model['M'], '.5f'):>8} " + " ".join(f"{_f(model[k]):>8}" for k in PARAMS),
              f"{'table1':<8} {_f(table['M'], '.5f'):>8} " + " ".join(f"{_f(table[k]):>8}" for k in PARAMS)]
    last = result["history"][-1]
    lines.append(f"iterations: {len(result['history']) - 1}, last residual: offsets "
                 f"{_f(last['max_offset_update_px'], '.4f')} px, scale {_f(last['max_scale_move_px'], '.4f')} px "
                 f"({'converged' if result['converged'] else 'NOT converged'})")
    return "\n".join(lines)
