"""On-the-fly augmentation of Patch-GAN training crops, as the Soft Matter Lab training notebooks do it.

``shared/reference/adipocyte.md`` §3.5: a random 724 x 724 crop (512·√2, so a rotation leaves no empty
corner in the centre) is loaded and reused for several updates; every update it is flipped left-right with
probability ½, transformed by a random affine map (rotation U(0, 2π), scale U(0.95, 1.05), shear
U(-0.025, 0.025)), deformed elastically (α ~ U(0, 80), σ = 7) and centre-cropped to 512 x 512.

All of this is one resampling here: for every output pixel of the centre crop, its source position in the
loaded crop is ``centre + A·u + e(u)``, with ``u`` the pixel's offset from the output centre, ``A`` the inverse
affine map and ``e`` the elastic displacement (Simard et al. 2003: uniform noise in [-1, 1] per pixel and axis,
Gaussian-smoothed with σ, times α). The sample is read by bilinear interpolation (``torch.grid_sample``),
reflecting at the border (reached only by the largest scale and shear at 45°). Inputs and targets are stacked
on the channel axis and move together. Intensities are not changed (the targets stay raw 16-bit values).

Parameters come from a ``numpy.random.Generator``: the same generator state gives the same output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.ndimage import gaussian_filter
from torch.nn import functional as F

__all__ = ["Augmentation", "PAPER", "random_crop", "sample_transform", "augment_batch"]


@dataclass(frozen=True)
class Augmentation:
    """Ranges of the random transform (defaults: the reference's, §3.5)."""

    flip: bool = True  # left-right, probability 1/2
    rotation: bool = True  # U(0, 2π)
    scale: tuple[float, float] = (0.95, 1.05)
    shear: tuple[float, float] = (-0.025, 0.025)
    elastic_alpha: tuple[float, float] = (0.0, 80.0)  # displacement amplitude, px
    elastic_sigma: float = 7.0  # smoothing of the displacement field, px


PAPER = Augmentation()


def random_crop(stack: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``size`` x ``size`` window of a ``(C, H, W)`` stack (reflect-padded first where H or W < size)."""
    h, w = stack.shape[1:]
    if h < size or w < size:
        ph, pw = max(0, size - h), max(0, size - w)
        stack = np.pad(stack, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2)), mode="reflect")
        h, w = stack.shape[1:]
    r, c = int(rng.integers(h - size + 1)), int(rng.integers(w - size + 1))
    return stack[:, r:r + size, c:c + size]


def sample_transform(out: int, rng: np.random.Generator, aug: Augmentation = PAPER) -> np.ndarray:
    """Source offsets ``(out, out, 2)`` (x, y in px, relative to the source centre) of every output pixel."""
    flip = aug.flip and rng.uniform() < 0.5
    theta = rng.uniform(0.0, 2 * math.pi) if aug.rotation else 0.0
    scale = rng.uniform(*aug.scale)
    shear = rng.uniform(*aug.shear)
    alpha = rng.uniform(*aug.elastic_alpha)
    # forward map: scale, then shear, then rotate; the sampler needs its inverse
    cos, sin = math.cos(theta), math.sin(theta)
    forward = np.array([[cos, -sin], [sin, cos]]) @ np.array([[1.0, shear], [0.0, 1.0]]) * scale
    inverse = np.linalg.inv(forward)
    coords = np.arange(out, dtype=np.float64) - (out - 1) / 2
    ux, uy = np.meshgrid(coords, coords)
    u = np.stack([ux, uy], axis=-1)  # (out, out, 2): x, y
    src = u @ inverse.T
    if flip:
        src[..., 0] = -src[..., 0]
    if alpha > 0:
        noise = rng.uniform(-1.0, 1.0, (2, out, out))
        field = np.stack([gaussian_filter(n, aug.elastic_sigma) for n in noise], axis=-1)
        src = src + alpha * field
    return src


def augment_batch(crops: torch.Tensor, out: int, rng: np.random.Generator, aug: Augmentation = PAPER
                  ) -> torch.Tensor:
    """Augment each ``(C, S, S)`` crop of ``crops`` (``B x C x S x S``) with its own random transform and return
    the ``B x C x out x out`` centre crops."""
    b, _, s, s2 = crops.shape
    if s != s2 or out > s:
        raise ValueError(f"augment: crops must be square and at least {out} px, got {s}x{s2}")
    half = (s - 1) / 2
    grids = np.stack([sample_transform(out, rng, aug) for _ in range(b)]) / half  # align_corners=True units
    grid = torch.from_numpy(grids.astype(np.float32))
    return F.grid_sample(crops, grid, mode="bilinear", padding_mode="reflection", align_corners=True)
