"""Numba kernels behind :mod:`vsbench.metrics.lmc`.

Everything the Light My Cells metrics need is gathered in two passes over the pixels:

1. ``intensity_stats_u16``: a histogram of an integer image (for exact percentiles), its sum,
   minimum and maximum; float images use ``numpy.partition`` instead (see ``lmc.py``).
2. ``fused_pair_sums``: one pass over a (ground truth, prediction) pair that normalises every
   pixel on the fly, accumulates the global sums for MAE / Euclidean / cosine / Pearson, and the
   7x7 box statistics of the SSIM map from a ring buffer of the last seven normalised rows.

Sums are accumulated per row and then added up, which keeps the rounding error of a 2048x2048
image near that of numpy's pairwise summation. The SSIM window sums are recomputed for every
window (no running sums), so nothing drifts along a row or a column.
"""

from __future__ import annotations

import numpy as np
from numba import njit

WIN = 7  # scikit-image's default SSIM window (uniform 7x7), as the LMC organisers used it
NP_WIN = WIN * WIN
COV_NORM = NP_WIN / (NP_WIN - 1.0)  # sample covariance, skimage use_sample_covariance=True

# reassoc lets LLVM vectorise the reductions; no nnan/ninf: a 0/0 SSIM must stay NaN, as in skimage.
_FM = {"reassoc", "contract"}


@njit(nogil=True, cache=True)
def intensity_stats_u16(flat: np.ndarray, nbins: int):
    """Histogram, sum, min and max of a flat unsigned-integer image."""
    counts = np.zeros(nbins, dtype=np.int64)
    total = 0
    lo = nbins
    hi = -1
    for i in range(flat.size):
        v = np.int64(flat[i])
        counts[v] += 1
        total += v
    for v in range(nbins):
        if counts[v]:
            lo = v
            break
    for v in range(nbins - 1, -1, -1):
        if counts[v]:
            hi = v
            break
    return counts, total, lo, hi


@njit(nogil=True, cache=True, fastmath=_FM, error_model="numpy")
def fused_pair_sums(g, p, g_lo, g_scale, p_lo, p_scale, g_shift, p_shift, c1, c2, with_ssim):
    """Global sums of the normalised pair and the summed SSIM map.

    Each pixel is normalised as the organisers did, ``(x - lo) / scale`` in float64 (with
    ``lo = 0, scale = 1`` for an image left unnormalised). ``*_shift`` are approximate means,
    subtracted before the centred sums so that Pearson's r does not suffer from cancellation.

    Returns ``(sums, ssim_sum, ssim_count)`` where ``sums`` holds
    ``[sum|g-p|, sum (g-p)^2, sum g^2, sum p^2, sum g*p,
       sum gc, sum pc, sum gc^2, sum pc^2, sum gc*pc]`` with ``gc = g - g_shift``.
    """
    h, w = g.shape
    sums = np.zeros(10)
    ring_g = np.empty((WIN, w))
    ring_p = np.empty((WIN, w))
    col = np.empty((5, w))
    row_ssim = np.empty(max(w - WIN + 1, 1))
    ssim_sum = 0.0
    ssim_count = 0
    inv_np = 1.0 / NP_WIN
    for i in range(h):
        slot = i % WIN
        rg = ring_g[slot]
        rp = ring_p[slot]
        a_abs = 0.0
        a_d2 = 0.0
        a_gg = 0.0
        a_pp = 0.0
        a_gp = 0.0
        a_gc = 0.0
        a_pc = 0.0
        a_gcgc = 0.0
        a_pcpc = 0.0
        a_gcpc = 0.0
        for j in range(w):
            x = (np.float64(g[i, j]) - g_lo) / g_scale
            y = (np.float64(p[i, j]) - p_lo) / p_scale
            rg[j] = x
            rp[j] = y
            d = x - y
            a_abs += abs(d)
            a_d2 += d * d
            a_gg += x * x
            a_pp += y * y
            a_gp += x * y
            xc = x - g_shift
            yc = y - p_shift
            a_gc += xc
            a_pc += yc
            a_gcgc += xc * xc
            a_pcpc += yc * yc
            a_gcpc += xc * yc
        sums[0] += a_abs
        sums[1] += a_d2
        sums[2] += a_gg
        sums[3] += a_pp
        sums[4] += a_gp
        sums[5] += a_gc
        sums[6] += a_pc
        sums[7] += a_gcgc
        sums[8] += a_pcpc
        sums[9] += a_gcpc
        if not with_ssim or i < WIN - 1:
            continue
        # column sums over the seven rows i-6..i held in the ring buffer
        for j in range(w):
            sx = 0.0
            sy = 0.0
            sxx = 0.0
            syy = 0.0
            sxy = 0.0
            for k in range(WIN):
                x = ring_g[k, j]
                y = ring_p[k, j]
                sx += x
                sy += y
                sxx += x * x
                syy += y * y
                sxy += x * y
            col[0, j] = sx
            col[1, j] = sy
            col[2, j] = sxx
            col[3, j] = syy
            col[4, j] = sxy
        for j in range(w - WIN + 1):
            sx = 0.0
            sy = 0.0
            sxx = 0.0
            syy = 0.0
            sxy = 0.0
            for k in range(WIN):
                sx += col[0, j + k]
                sy += col[1, j + k]
                sxx += col[2, j + k]
                syy += col[3, j + k]
                sxy += col[4, j + k]
            ux = sx * inv_np
            uy = sy * inv_np
            vx = COV_NORM * (sxx * inv_np - ux * ux)
            vy = COV_NORM * (syy * inv_np - uy * uy)
            vxy = COV_NORM * (sxy * inv_np - ux * uy)
            a1 = 2.0 * ux * uy + c1
            a2 = 2.0 * vxy + c2
            b1 = ux * ux + uy * uy + c1
            b2 = vx + vy + c2
            row_ssim[j] = (a1 * a2) / (b1 * b2)
        acc = 0.0
        for j in range(w - WIN + 1):
            acc += row_ssim[j]
        ssim_sum += acc
        ssim_count += w - WIN + 1
    return sums, ssim_sum, ssim_count
