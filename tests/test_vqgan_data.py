"""The VQGAN specialists' image handling (lmc.md §3.2-3.3): exact preprocessing, resizing, augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.exposure import rescale_intensity

from vsbench.algorithms.vqgan.data import (
    CROP_RATIO,
    CROP_SCALE,
    is_blank,
    postprocess,
    preprocess,
    random_resized_crop_box,
    rescale_to_uint8,
    resize,
    training_pair,
    uint8_to_unit,
)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_rescale_is_the_winners_rescale_2_98(dtype):
    rng = np.random.default_rng(0)
    image = (rng.gamma(2.0, 400.0, (67, 45))).clip(0, 60000).astype(dtype)
    p2, p998 = np.percentile(image, (2, 99.8))
    expected = rescale_intensity(image.astype(np.float64), in_range=(p2, p998), out_range=(0, 255)).astype(np.uint8)
    np.testing.assert_array_equal(rescale_to_uint8(image), expected)
    assert rescale_to_uint8(np.full((5, 5), 7, dtype)).max() == 0  # flat: zeros, no division by zero


def test_unit_range_and_blank():
    assert uint8_to_unit(np.array([0, 255], np.uint8)).tolist() == [-1.0, 1.0]
    assert is_blank(np.zeros((3, 3), np.uint16)) and not is_blank(np.eye(3))


def test_resize_is_linear_with_half_pixel_centres():
    up = resize(torch.tensor([[0.0, 4.0]]), (1, 4))
    torch.testing.assert_close(up, torch.tensor([[0.0, 1.0, 3.0, 4.0]]))  # cv2.INTER_LINEAR: a, .75a+.25b, ...
    down = resize(torch.arange(8.0).reshape(1, 8), (1, 4))
    torch.testing.assert_close(down, torch.tensor([[0.5, 2.5, 4.5, 6.5]]))  # no antialiasing: pair means
    x = torch.rand(2, 3, 5, 7)
    assert resize(x, (5, 7)) is x and resize(x, (10, 3)).shape == (2, 3, 10, 3)


def test_preprocess_and_postprocess_round_trip_an_identity_model():
    rng = np.random.default_rng(1)
    image = rng.integers(100, 4000, (96, 80)).astype(np.uint16)
    x = preprocess(image, 32)
    assert x.shape == (1, 3, 32, 32) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1 and torch.equal(x[0, 0], x[0, 2])
    out = postprocess(x, (96, 80))
    assert out.shape == (96, 80) and out.dtype == np.uint16
    small = resize(torch.from_numpy(rescale_to_uint8(image).astype(np.float32)), (32, 32))
    expected = resize(((small / 127.5) / 2 * 65535).to(torch.int32).to(torch.float64), (96, 80)).numpy()
    np.testing.assert_allclose(out, np.rint(expected), atol=2)  # float32 vs float64 rounding
    saturated = postprocess(torch.full((1, 3, 4, 4), 3.0), (4, 4))
    assert (saturated == 65535).all()  # clipped to [-1, 1] first


def test_random_resized_crop_box_respects_the_ranges():
    rng = np.random.default_rng(2)
    for _ in range(200):
        top, left, h, w = random_resized_crop_box(300, 200, rng)
        assert 0 <= top and top + h <= 300 and 0 <= left and left + w <= 200
        assert CROP_SCALE[0] - 0.02 <= h * w / 60000 <= CROP_SCALE[1] + 0.02
        assert CROP_RATIO[0] - 0.02 <= w / h <= CROP_RATIO[1] + 0.02
    assert random_resized_crop_box(10, 200, rng) == (0, 93, 10, 13)  # impossible ratio: the centred fallback


def test_training_pair_moves_input_and_target_together():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (90, 70)).astype(np.uint8)
    for seed in range(6):
        x, y = training_pair(image, image, 32, np.random.default_rng(seed))
        assert x.shape == y.shape == (3, 32, 32) and torch.equal(x, y)
        assert x.min() >= -1 and x.max() <= 1
    a = training_pair(image, 255 - image, 32, np.random.default_rng(7))
    b = training_pair(image, 255 - image, 32, np.random.default_rng(7))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    torch.testing.assert_close(a[0] + a[1], torch.zeros_like(a[0]), atol=1e-5, rtol=0)  # (x + (255 - x)) -> 0
    with pytest.raises(ValueError, match="differ in shape"):
        training_pair(image, image[:10], 32, rng)
