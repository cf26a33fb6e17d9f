"""Image handling of the VQGAN specialists: the winner's preprocessing, training samples and inference plumbing.

From ``shared/reference/lmc.md`` §3.2-3.3 (the Light My Cells 2024 winner, ``ldm/data/bf3.py`` and
``scripts/img_gen/lmc_inference.py``):

* every channel is rescaled to uint8 with a 2 / 99.8 percentile window, clipping outside it
  (:func:`rescale_to_uint8`; the reference's ``rescale_2_98`` through ``skimage.exposure.rescale_intensity``),
  then mapped to [-1, 1] (:func:`uint8_to_unit`);
* the one transmitted-light slice is replicated to 3 channels, and so is the target organelle; an input that
  already has 3 channels (``3 x H x W``, e.g. three brightfield planes of the adipocyte task,
  :mod:`.adipocyte`) is used as it is, each channel rescaled on its own (:func:`input_to_uint8`);
* training: one random z-slice of a field per sample (the target is the field's best-focus fluorescence),
  ``RandomRotate90`` (always), horizontal flip (p ½), ``RandomResizedCrop(scale=(0.7, 0.95))`` with p ½ and
  the albumentations default aspect ratios (3/4 .. 4/3), then a resize of the whole field (or crop) to
  ``size`` x ``size`` with linear interpolation (:func:`training_pair`): the field of view is downscaled, not
  tiled;
* inference (:func:`preprocess`, :func:`postprocess`): uint8 rescale, linear resize to ``size``², 3 identical
  channels in [-1, 1]; the model's output clipped to [-1, 1], mapped to uint16 by ``(y + 1) / 2 * 65535``, the
  3 channels averaged, resized back to the input size with linear interpolation. An all-zero input is passed
  through unchanged (:func:`is_blank`), as the winner's container did.

Linear resizing is ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)`` without
antialiasing: the half-pixel-centre convention of OpenCV's ``INTER_LINEAR``, which the reference used (OpenCV
itself is not a dependency here).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn import functional as F

__all__ = [
    "PERCENTILES", "CROP_SCALE", "CROP_RATIO", "rescale_to_uint8", "window_to_uint8", "input_to_uint8",
    "uint8_to_unit", "resize", "is_blank", "preprocess", "postprocess", "random_resized_crop_box", "training_pair",
]

PERCENTILES = (2.0, 99.8)  # lmc.md §3.2 rescale_2_98 (named 2-98, computes 2 / 99.8)
CROP_SCALE = (0.7, 0.95)  # RandomResizedCrop(256, scale=(0.7, 0.95), p=0.5)
CROP_RATIO = (3 / 4, 4 / 3)  # albumentations' default aspect-ratio range
CROP_P = 0.5
FLIP_P = 0.5
UINT16_MAX = 65535


def rescale_to_uint8(image: np.ndarray, percentiles: tuple[float, float] = PERCENTILES) -> np.ndarray:
    """``image`` mapped linearly from its [p_low, p_high] percentile window to [0, 255], clipped, as uint8
    (truncated, as ``.astype(np.uint8)`` after ``rescale_intensity``). A flat window gives zeros."""
    x = np.asarray(image, dtype=np.float64)
    low, high = np.percentile(x, percentiles)
    return window_to_uint8(x, low, high)


def window_to_uint8(image: np.ndarray, low: float, high: float) -> np.ndarray:
    """``image`` mapped linearly from the window [low, high] to [0, 255], clipped, truncated to uint8 (the
    mapping of :func:`rescale_to_uint8` with a given window). A flat window gives zeros."""
    x = np.asarray(image, dtype=np.float64)
    if not high > low:
        return np.zeros(x.shape, np.uint8)
    return ((np.clip(x, low, high) - low) / (high - low) * 255.0).astype(np.uint8)  # rescale_intensity's order


def input_to_uint8(image: np.ndarray) -> np.ndarray:
    """A model input as uint8: a 2-D slice by :func:`rescale_to_uint8`, a ``3 x H x W`` stack channel by channel
    (each with its own percentile window); :class:`ValueError` for any other shape."""
    x = np.asarray(image)
    if x.ndim == 2:
        return rescale_to_uint8(x)
    if x.ndim == 3 and x.shape[0] == 3:
        return np.stack([rescale_to_uint8(c) for c in x])
    raise ValueError(f"vqgan: an input must be a 2-D slice or a 3 x H x W stack, not shape {x.shape}")


def uint8_to_unit(image: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] to float32 [-1, 1]."""
    return (np.asarray(image, dtype=np.float32) / 127.5 - 1.0).astype(np.float32)


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Linear resize of ``... x H x W`` (half-pixel centres, no antialiasing: OpenCV ``INTER_LINEAR``)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    lead = x.shape[:-2]
    y = F.interpolate(x.reshape(-1, 1, *x.shape[-2:]), size=size, mode="bilinear", align_corners=False)
    return y.reshape(*lead, *size)


def is_blank(image: np.ndarray) -> bool:
    """True for an all-zero input (``image.max() == 0``), which the winner passes through unchanged."""
    return bool(np.asarray(image).max() == 0)


def preprocess(image: np.ndarray, size: int) -> torch.Tensor:
    """A 2-D transmitted-light slice (replicated to 3 channels) or a ``3 x H x W`` stack (each channel rescaled on
    its own, :func:`input_to_uint8`) as the model's ``1 x 3 x size x size`` input in [-1, 1]."""
    u8 = torch.from_numpy(input_to_uint8(image).astype(np.float32))
    small = resize(u8, (size, size))
    x = small / 127.5 - 1.0
    return x.expand(1, 3, size, size).contiguous()


def postprocess(y: torch.Tensor, shape: tuple[int, int]) -> np.ndarray:
    """The model's ``1 x 3 x s x s`` output as a uint16 image of ``shape``: clip to [-1, 1], ``(y + 1) / 2 *
    65535`` to uint16 per channel, the channel mean, linear resize back, rounded."""
    y16 = ((y.clamp(-1.0, 1.0) + 1.0) / 2.0 * UINT16_MAX).to(torch.int32)  # .astype(uint16) truncates
    mean = y16[0].to(torch.float64).mean(dim=0)
    back = resize(mean, tuple(shape))
    return np.clip(np.rint(back.numpy()), 0, UINT16_MAX).astype(np.uint16)


def random_resized_crop_box(h: int, w: int, rng: np.random.Generator, scale: tuple[float, float] = CROP_SCALE,
                            ratio: tuple[float, float] = CROP_RATIO) -> tuple[int, int, int, int]:
    """``(top, left, height, width)`` of a random crop with area fraction in ``scale`` and aspect ratio (w / h) in
    ``ratio`` (log-uniform), as torchvision / albumentations draw it: 10 tries, then the largest centred crop of
    an allowed ratio."""
    area = h * w
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        cw, ch = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            return int(rng.integers(h - ch + 1)), int(rng.integers(w - cw + 1)), ch, cw
    in_ratio = w / h
    if in_ratio < ratio[0]:
        cw, ch = w, int(round(w / ratio[0]))
    elif in_ratio > ratio[1]:
        ch, cw = h, int(round(h * ratio[1]))
    else:
        cw, ch = w, h
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def training_pair(image_u8: np.ndarray, target_u8: np.ndarray, size: int, rng: np.random.Generator
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """One augmented training sample: the uint8 input (a 2-D slice, replicated, or a ``3 x H x W`` stack) and
    the uint8 2-D target (same H x W) as two ``3 x size x size`` tensors in [-1, 1] (rot90 k ~ U{0..3}, flip p ½,
    random resized crop p ½, linear resize; the same geometry for every channel)."""
    image_u8, target_u8 = np.asarray(image_u8), np.asarray(target_u8)
    multi = image_u8.ndim == 3 and image_u8.shape[0] == 3
    if target_u8.ndim != 2 or image_u8.shape[-2:] != target_u8.shape or not (multi or image_u8.ndim == 2):
        raise ValueError(f"vqgan: input {image_u8.shape} and target {target_u8.shape} differ in shape")
    stack = image_u8 if multi else image_u8[None]
    pair = torch.from_numpy(np.concatenate([stack, target_u8[None]]).astype(np.float32))
    pair = torch.rot90(pair, int(rng.integers(4)), dims=(1, 2))
    if rng.uniform() < FLIP_P:
        pair = pair.flip(-1)
    if rng.uniform() < CROP_P:
        top, left, ch, cw = random_resized_crop_box(pair.shape[1], pair.shape[2], rng)
        pair = pair[:, top:top + ch, left:left + cw]
    pair = resize(pair, (size, size)) / 127.5 - 1.0
    x, y = pair[:-1], pair[-1]
    return x.expand(3, size, size).contiguous(), y.expand(3, size, size).contiguous()
