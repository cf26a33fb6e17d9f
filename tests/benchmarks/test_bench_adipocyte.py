"""Speed of the pooled Adipocyte pixel MAE against the organisers' composition.

One realistic image set (3 channels of 2154x2554 uint16, the 20x/40x size; smooth cell-like
structures plus noise, fixed seed; a quarter of each side, 538x638, at the smoke size of ``make test``: still
more than one block of the blockwise sum, ``sizes.py``), :func:`vsbench.metrics.adipocyte.pixel_mae` (blockwise exact
integer differences + a uint16 histogram for the pooled median) against
``tests/adipocyte_reference.py`` (stack as float32, sklearn MAE, ``np.median``), on one core
(threadpoolctl around both timings).

Nothing here asserts on time. The values must agree (a correctness check); the speed ratio
``reference mean / fast mean`` is printed by the last test and stored in the fast benchmark's
``extra_info["speedup_vs_reference"]``.
Run: ``VSBENCH_BENCH=full pytest tests/benchmarks/test_bench_adipocyte.py -q`` (``make bench`` runs them all).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from threadpoolctl import threadpool_limits

from vsbench.metrics.adipocyte import _CHUNK, CHANNELS, pixel_mae

from adipocyte_reference import reference_pixel_mae
from sizes import pick
from speedup import report_speedup

SHAPE = pick((2154, 2554), (538, 638))
N_BLOBS = round(300 * SHAPE[0] * SHAPE[1] / (2154 * 2554))  # 300 per channel at the full size: the same density
GROUP = f"adipocyte-pixel-mae-3x{SHAPE[0]}x{SHAPE[1]}-uint16"
SEED = 20201111

_MEANS: dict[str, float] = {}
_MINS: dict[str, float] = {}
_FAST_BENCHMARK: dict[str, object] = {}


def _realistic_set(seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Target and prediction image sets of shape (3, H, W): blobs on a background per channel, the
    prediction a blurred, rescaled, differently noisy version."""
    rng = np.random.default_rng(seed)
    targ, pred = [], []
    for background, gain in ((250.0, 3000.0), (600.0, 9000.0), (600.0, 1500.0)):
        seeds = np.zeros(SHAPE, np.float32)
        seeds[rng.integers(0, SHAPE[0], N_BLOBS), rng.integers(0, SHAPE[1], N_BLOBS)] = 1.0
        blobs = ndimage.gaussian_filter(seeds, 12.0)
        blobs /= blobs.max()
        gt = background + gain * blobs + rng.normal(0.0, 40.0, SHAPE)
        pr = 0.9 * background + 0.85 * gain * ndimage.gaussian_filter(blobs, 1.5) + rng.normal(0.0, 20.0, SHAPE)
        targ.append(np.clip(np.rint(gt), 0, 65535).astype(np.uint16))
        pred.append(np.clip(np.rint(pr), 0, 65535).astype(np.uint16))
    return np.stack(targ), np.stack(pred)


@pytest.fixture(scope="module")
def image_set():
    assert SHAPE[0] * SHAPE[1] > _CHUNK  # several blocks of the blockwise sum, the last one partial, at each size
    return _realistic_set()


def _check_agree(fast: dict, ref: tuple[float, list[float]]) -> None:
    np.testing.assert_allclose(fast["pixel_mae"], ref[0], rtol=1e-6, atol=0)
    np.testing.assert_allclose([fast["per_channel"][c] for c in CHANNELS], ref[1], rtol=1e-6, atol=0)


@pytest.mark.benchmark(group=GROUP)
def test_bench_reference(benchmark, image_set):
    targ, pred = image_set
    with threadpool_limits(limits=1):
        ref = benchmark.pedantic(reference_pixel_mae, args=([targ], [pred]), rounds=3, iterations=1)
    _check_agree(pixel_mae([targ], [pred]), ref)
    if benchmark.stats is not None:  # None under --benchmark-disable
        _MEANS["reference"] = benchmark.stats.stats.mean
        _MINS["reference"] = benchmark.stats.stats.min


@pytest.mark.benchmark(group=GROUP)
def test_bench_fast(benchmark, image_set):
    targ, pred = image_set
    with threadpool_limits(limits=1):
        fast = benchmark.pedantic(pixel_mae, args=([targ], [pred]), rounds=10, iterations=1, warmup_rounds=1)
        _check_agree(fast, reference_pixel_mae([targ], [pred]))
    if benchmark.stats is not None:
        _MEANS["fast"] = benchmark.stats.stats.mean
        _MINS["fast"] = benchmark.stats.stats.min
        _FAST_BENCHMARK["fixture"] = benchmark


def test_speedup_vs_reference(capsys):
    ratio = report_speedup(_MEANS, _MINS, _FAST_BENCHMARK,
                           f"Adipocyte pixel MAE, one set 3x{SHAPE[0]}x{SHAPE[1]} uint16, one core", capsys)
    assert ratio > 0  # a sanity check on the bookkeeping, not a timing requirement
