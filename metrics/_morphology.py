"""Grayscale reconstruction by dilation with a 4-connected (disk(1)) footprint, in numba.

skimage's ``reconstruction`` sorts every pixel value (O(N log N), about 9 s on a 2154 x 2554 float image
here); CellProfiler's "Enhance dark holes" calls it once per hole radius, which made it half the time
of the adipocyte pipeline. This is Vincent's hybrid algorithm (L. Vincent, "Morphological grayscale
reconstruction in image analysis: applications and efficient algorithms", IEEE Trans. Image Process.
2(2), 1993, §V.C): a raster and an anti-raster scan, then FIFO propagation. Reconstruction is defined
uniquely and only copies values, so the result equals skimage's exactly (tested).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(nogil=True, cache=True)
def _reconstruct(j_img: np.ndarray, mask: np.ndarray) -> None:  # pragma: no cover - compiled
    h, w = j_img.shape
    # raster scan: causal neighbours above and left
    for i in range(h):
        for k in range(w):
            v = j_img[i, k]
            if i > 0 and j_img[i - 1, k] > v:
                v = j_img[i - 1, k]
            if k > 0 and j_img[i, k - 1] > v:
                v = j_img[i, k - 1]
            j_img[i, k] = min(v, mask[i, k])
    n = h * w
    queue = np.empty(n, np.int64)
    queued = np.zeros(n, np.bool_)
    head = 0
    size = 0
    # anti-raster scan: neighbours below and right; queue pixels that can still raise a neighbour
    for i in range(h - 1, -1, -1):
        for k in range(w - 1, -1, -1):
            v = j_img[i, k]
            if i < h - 1 and j_img[i + 1, k] > v:
                v = j_img[i + 1, k]
            if k < w - 1 and j_img[i, k + 1] > v:
                v = j_img[i, k + 1]
            v = min(v, mask[i, k])
            j_img[i, k] = v
            push = False
            if i < h - 1 and j_img[i + 1, k] < v and j_img[i + 1, k] < mask[i + 1, k]:
                push = True
            if k < w - 1 and j_img[i, k + 1] < v and j_img[i, k + 1] < mask[i, k + 1]:
                push = True
            if push:
                p = i * w + k
                queue[(head + size) % n] = p
                queued[p] = True
                size += 1
    # propagation
    while size > 0:
        p = queue[head]
        head = (head + 1) % n
        size -= 1
        queued[p] = False
        i = p // w
        k = p - i * w
        v = j_img[i, k]
        for d in range(4):
            ii, kk = i, k
            if d == 0:
                ii = i - 1
            elif d == 1:
                ii = i + 1
            elif d == 2:
                kk = k - 1
            else:
                kk = k + 1
            if ii < 0 or ii >= h or kk < 0 or kk >= w:
                continue
            if j_img[ii, kk] < v and j_img[ii, kk] != mask[ii, kk]:
                j_img[ii, kk] = min(v, mask[ii, kk])
                q = ii * w + kk
                if not queued[q]:
                    queue[(head + size) % n] = q
                    queued[q] = True
                    size += 1


def reconstruction_dilation_cross(seed: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``skimage.morphology.reconstruction(seed, mask, "dilation", footprint=disk(1))`` for 2-D arrays
    with ``seed <= mask`` (as skimage requires), float64 out."""
    seed = np.asarray(seed, np.float64)
    mask = np.ascontiguousarray(mask, np.float64)
    if seed.shape != mask.shape or seed.ndim != 2:
        raise ValueError(f"seed {seed.shape} and mask {mask.shape} must be 2-D arrays of one shape")
    if np.any(seed > mask):
        raise ValueError("intensity of seed image must be less than that of the mask image for dilation")
    out = np.array(seed, np.float64, order="C", copy=True)
    if out.size:
        _reconstruct(out, mask)
    return out
