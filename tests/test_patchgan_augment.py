"""The Patch-GAN training augmentation (adipocyte.md §3.5): geometry, ranges, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vsbench.algorithms.patchgan.augment import PAPER, Augmentation, augment_batch, random_crop, sample_transform

NONE = Augmentation(flip=False, rotation=False, scale=(1.0, 1.0), shear=(0.0, 0.0), elastic_alpha=(0.0, 0.0))


def _crops(b: int = 2, c: int = 3, s: int = 40, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).uniform(0, 1000, (b, c, s, s)).astype(np.float32))


def test_no_transform_is_the_exact_centre_crop():
    crops = _crops(s=41)
    out = augment_batch(crops, 21, np.random.default_rng(0), NONE)
    torch.testing.assert_close(out, crops[:, :, 10:31, 10:31], rtol=0, atol=1e-3)


def test_flip_alone_mirrors_the_centre_crop():
    crops = _crops(b=1, s=40)
    flip = Augmentation(flip=True, rotation=False, scale=(1.0, 1.0), shear=(0.0, 0.0), elastic_alpha=(0.0, 0.0))
    outs = [augment_batch(crops, 20, np.random.default_rng(seed), flip) for seed in range(8)]
    centre = crops[:, :, 10:30, 10:30]
    flipped = [torch.allclose(o, centre.flip(-1), atol=0.01) for o in outs]
    kept = [torch.allclose(o, centre, atol=0.01) for o in outs]
    assert all(f != k for f, k in zip(flipped, kept, strict=True)) and any(flipped) and any(kept)


@pytest.mark.parametrize("scale", [0.95, 1.05])
def test_rotation_and_scale_map_distances_by_one_over_the_scale(scale):
    aug = Augmentation(flip=False, rotation=True, scale=(scale, scale), shear=(0.0, 0.0), elastic_alpha=(0.0, 0.0))
    src = sample_transform(9, np.random.default_rng(3), aug)
    u = np.stack(np.meshgrid(np.arange(9) - 4.0, np.arange(9) - 4.0), axis=-1)
    np.testing.assert_allclose(np.linalg.norm(src, axis=-1), np.linalg.norm(u, axis=-1) / scale, rtol=1e-12)
    assert not np.allclose(src, u / scale)  # rotated by a random angle


def test_paper_ranges_are_the_references():
    # §3.5: rotation U(0, 2π), scale U(0.95, 1.05), shear U(-0.025, 0.025), elastic α ~ U(0, 80), σ = 7
    assert PAPER == Augmentation(True, True, (0.95, 1.05), (-0.025, 0.025), (0.0, 80.0), 7.0)
    no_elastic = Augmentation(elastic_alpha=(0.0, 0.0))
    u = np.stack(np.meshgrid(np.arange(64) - 31.5, np.arange(64) - 31.5), axis=-1).reshape(-1, 2)
    for seed in range(20):
        src = sample_transform(64, np.random.default_rng(seed), no_elastic).reshape(-1, 2)
        a, *_ = np.linalg.lstsq(u, src, rcond=None)  # src = u @ a: the inverse linear map
        sv = np.linalg.svd(a, compute_uv=False)
        assert 1 / 1.05 / 1.03 < sv.min() <= sv.max() < 1 / 0.95 * 1.03  # scale, widened by the shear


def test_elastic_displacement_is_smooth_and_bounded():
    elastic = Augmentation(flip=False, rotation=False, scale=(1.0, 1.0), shear=(0.0, 0.0), elastic_alpha=(80.0, 80.0))
    src = sample_transform(128, np.random.default_rng(0), elastic)
    u = np.stack(np.meshgrid(np.arange(128) - 63.5, np.arange(128) - 63.5), axis=-1)
    d = src - u
    assert 0.3 < np.abs(d).mean() < 5  # α 80 on noise smoothed with σ 7: a couple of pixels
    for axis in (0, 1):  # smooth: unsmoothed noise of amplitude 80 would jump by up to 160 px between neighbours
        step = np.abs(np.diff(d, axis=axis))
        assert step.max() < 1.0 and step.mean() < 0.2


def test_channels_move_together_and_the_rng_decides():
    crops = _crops(b=3, c=2, s=60)
    crops[:, 1] = 2 * crops[:, 0] + 5
    out = augment_batch(crops, 32, np.random.default_rng(7))
    assert out.shape == (3, 2, 32, 32)
    torch.testing.assert_close(out[:, 1], 2 * out[:, 0] + 5, rtol=1e-5, atol=1e-2)  # bilinear is linear
    torch.testing.assert_close(augment_batch(crops, 32, np.random.default_rng(7)), out, rtol=0, atol=0)
    assert not torch.equal(augment_batch(crops, 32, np.random.default_rng(8)), out)
    assert not torch.equal(out[0], out[1])  # each crop its own transform


def test_intensities_stay_in_range():
    crops = _crops(b=4, s=182)
    out = augment_batch(crops, 128, np.random.default_rng(1))
    assert out.min() >= crops.min() - 1e-3 and out.max() <= crops.max() + 1e-3


def test_random_crop_pads_small_images_and_rejects_bad_crops():
    stack = np.arange(2 * 10 * 12, dtype=np.float32).reshape(2, 10, 12)
    assert random_crop(stack, 8, np.random.default_rng(0)).shape == (2, 8, 8)
    assert random_crop(stack, 16, np.random.default_rng(0)).shape == (2, 16, 16)
    with pytest.raises(ValueError, match="at least 32"):
        augment_batch(torch.zeros(1, 1, 20, 20), 32, np.random.default_rng(0))
    assert math.isclose(float(random_crop(stack, 10, np.random.default_rng(0))[0].min()) % 1, 0)
