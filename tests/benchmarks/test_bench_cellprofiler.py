"""Seconds per image set of the organisers' CellProfiler pipeline at the real size (2154 x 2554, 20x).

One synthetic 20x image set at the challenge's image size (about 35 s to synthesize), measured once
through :func:`vsbench.metrics.cp_adipocyte.adipocyte_features` on one core. Nothing asserts on time;
the figure is in the benchmark table and ``extra_info`` (the README quotes it). The evaluation runs
image sets in parallel processes, so throughput scales with cores. That is the size of ``make bench``
(``VSBENCH_BENCH=full``); the smoke size of ``make test`` (``sizes.py``) runs the same pipeline and checks on a
538 x 638 set (a quarter of each side), with the object counts' floors scaled to its area.
Run: ``VSBENCH_BENCH=full pytest tests/benchmarks/test_bench_cellprofiler.py -q``.
"""

from __future__ import annotations

import pytest
import tifffile
from threadpoolctl import threadpool_limits

from vsbench.harness.adipocyte_split import CHANNELS, adipocyte_sets
from vsbench.harness.split import Split
from vsbench.harness.synth_adipocyte import synthesize_adipocyte
from vsbench.metrics.adipocyte import ADIPOCYTE_FEATURES
from vsbench.metrics.cp_adipocyte import adipocyte_features

from sizes import pick

SHAPE = pick((2154, 2554), (538, 638))  # adipocyte.md §2.2; smoke: a quarter of each side
# floors of the object counts away from the edges, in proportion to the area (found: 229 nuclei and 4401 droplets at
# the full size, 6 and 193 at the smoke size, where more of the nuclei touch an edge)
MIN_NUCLEI, MIN_LIPIDS = pick((50, 500), (3, 30))


@pytest.fixture(scope="module")
def image_set(tmp_path_factory):
    split = Split(synthesize_adipocyte(tmp_path_factory.mktemp("full") / "s", "20x", sets=1, size=SHAPE, seed=11))
    aset = adipocyte_sets(split)[0]
    return [tifffile.imread(aset.target_path(split, ch)) for ch in CHANNELS]


@pytest.mark.slow
def test_seconds_per_image_set_20x(benchmark, image_set):
    with threadpool_limits(1):
        result = benchmark.pedantic(adipocyte_features, args=(*image_set, "20x"), rounds=1, iterations=1)
    benchmark.extra_info["image_shape"] = list(SHAPE)
    benchmark.extra_info["counts"] = {k: v for k, v in result.features.items() if k.startswith("Count_")}
    assert list(result.features) == list(ADIPOCYTE_FEATURES)
    assert result.features["Count_nuclei_no_edge"] > MIN_NUCLEI
    assert result.features["Count_Lipids_no_edge"] > MIN_LIPIDS
