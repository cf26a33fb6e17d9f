"""Speed of the fused LMC metrics against the straightforward reference composition.

One realistic 2048x2048 uint16 pair (smooth cell-like structures plus noise, fixed seed; 256x256 at the smoke
size of ``make test``, ``sizes.py``), all five metrics, on one core: numba kernels are single threaded, and BLAS
(used by the reference's sklearn distances) is limited to one thread with threadpoolctl around both timings.

Nothing here asserts on time. The values must agree (a correctness check); the speed ratio
``reference mean / fast mean`` is printed by the last test and stored in the fast benchmark's
``extra_info["speedup_vs_reference"]`` (visible in ``--benchmark-json`` / ``--benchmark-save``).
Run: ``VSBENCH_BENCH=full pytest tests/benchmarks/test_bench_lmc.py -q`` (about 15 s; ``make bench`` runs them all).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from threadpoolctl import threadpool_limits

from vsbench.metrics.lmc import ALL_METRICS, image_metrics

from lmc_reference import reference_metrics
from sizes import pick
from speedup import report_speedup

SIZE = pick(2048, 256)
SEED = 20240527

# filled by the two benchmarks, read by test_speedup_vs_reference (tests run in file order)
_MEANS: dict[str, float] = {}
_MINS: dict[str, float] = {}  # the ratio of minima is the steadier figure on a loaded machine
_FAST_BENCHMARK: dict[str, object] = {}


def _realistic_pair(size: int = SIZE, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """A ground truth with nucleus-sized blobs and fine filaments on a background, and a
    prediction that is a blurred, rescaled, differently noisy version of the same structures."""
    rng = np.random.default_rng(seed)
    seeds = np.zeros((size, size), np.float32)
    n_blobs = max(8, round(400 * (size / 2048) ** 2))  # 400 at 2048: the same density at every size
    seeds[rng.integers(0, size, n_blobs), rng.integers(0, size, n_blobs)] = 1.0
    blobs = ndimage.gaussian_filter(seeds, 14.0)
    blobs /= blobs.max()
    texture = ndimage.gaussian_filter(rng.standard_normal((size, size)).astype(np.float32), 2.5)
    texture = np.clip(texture / texture.std(), 0, None)
    structure = 0.8 * blobs + 0.2 * texture * blobs.mean() * 4
    gt = 600.0 + 9000.0 * structure + rng.normal(0.0, 120.0, (size, size))
    pred = 450.0 + 7800.0 * ndimage.gaussian_filter(structure, 1.5) + rng.normal(0.0, 60.0, (size, size))
    to_u16 = lambda a: np.clip(np.rint(a), 0, 65535).astype(np.uint16)  # noqa: E731
    return to_u16(gt), to_u16(pred)


@pytest.fixture(scope="module")
def pair():
    gt, pred = _realistic_pair()
    # warm the numba JIT (and its on-disk cache) on the same dtypes and code paths before timing
    small_gt, small_pred = gt[:64, :64].copy(), pred[:64, :64].copy()
    image_metrics(small_gt, small_pred)
    image_metrics(gt, pred)
    return gt, pred


def _check_agree(fast: dict, ref: dict) -> None:
    assert list(fast) == list(ALL_METRICS) and sorted(ref) == sorted(ALL_METRICS)
    for name in ALL_METRICS:
        np.testing.assert_allclose(fast[name], ref[name], rtol=1e-9, atol=0, err_msg=name)


@pytest.mark.benchmark(group=f"lmc-{SIZE}x{SIZE}-uint16")
def test_bench_reference(benchmark, pair):
    gt, pred = pair
    with threadpool_limits(limits=1):
        ref = benchmark.pedantic(reference_metrics, args=(gt, pred), rounds=3, iterations=1)
    _check_agree(image_metrics(gt, pred), ref)
    if benchmark.stats is not None:  # None under --benchmark-disable
        _MEANS["reference"] = benchmark.stats.stats.mean
        _MINS["reference"] = benchmark.stats.stats.min


@pytest.mark.benchmark(group=f"lmc-{SIZE}x{SIZE}-uint16")
def test_bench_fast(benchmark, pair):
    gt, pred = pair
    with threadpool_limits(limits=1):
        fast = benchmark.pedantic(image_metrics, args=(gt, pred), rounds=10, iterations=1, warmup_rounds=1)
    with threadpool_limits(limits=1):
        _check_agree(fast, reference_metrics(gt, pred))
    if benchmark.stats is not None:
        _MEANS["fast"] = benchmark.stats.stats.mean
        _MINS["fast"] = benchmark.stats.stats.min
        _FAST_BENCHMARK["fixture"] = benchmark


def test_speedup_vs_reference(capsys):
    ratio = report_speedup(_MEANS, _MINS, _FAST_BENCHMARK,
                           f"LMC metrics, {SIZE}x{SIZE} uint16, all five, one core", capsys)
    assert ratio > 0  # a sanity check on the bookkeeping, not a timing requirement
