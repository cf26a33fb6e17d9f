"""Per-image CPU inference of the four paper-size VQGAN specialists on a 2048 x 2048 slice.

``fast``: :class:`~vsbench.algorithms.vqgan.predictor.VQGANSpecialists` loaded once, then ``predict`` (what
vsbench does: models loaded once per process). ``reference``: the winner's container behaviour
(``shared/reference/lmc.md`` §3.3), which loaded the four checkpoints again for every image; here a fresh
``VQGANSpecialists(checkpoint=ROOT).predict(...)`` per image. The checkpoints are paper-config trainer
checkpoints (58,088,415 parameters each, model + discriminator + empty optimisers; about 230 MB each, the
reference's were 722 MB with LPIPS and optimiser states) with their initial weights: the cost does not depend on
the values. Both give the same images. Nothing asserts on time. That is the size of ``make bench``
(``VSBENCH_BENCH=full``); the smoke size of ``make test`` (``sizes.py``) runs the same paper-size specialists (the
same parameter counts) at a model resolution of 32 instead of 256 on a 256 x 256 slice.
Run: ``VSBENCH_BENCH=full pytest tests/benchmarks/test_bench_vqgan.py``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from vsbench.algorithms.base import ORGANELLES, Case
from vsbench.algorithms.vqgan.config import count_parameters, get_config
from vsbench.algorithms.vqgan.predictor import VQGANSpecialists
from vsbench.algorithms.vqgan.train import Trainer

from sizes import pick
from speedup import report_speedup

SHAPE = pick((2048, 2048), (256, 256))
RESOLUTION = pick(256, 32)  # the models' input size (the paper's 256); the parameter counts do not depend on it
GROUP = f"vqgan-4-specialists-{SHAPE[0]}x{SHAPE[1]}-cpu" + ("" if RESOLUTION == 256 else f"-resolution-{RESOLUTION}")
PAPER_PARAMETERS = 58_088_415  # one specialist: autoencoder + discriminator (the seed's "58.1 million")

pytestmark = pytest.mark.slow  # also at the smoke size: four 230 MB checkpoints are written and loaded 8 times

_MEANS: dict[str, float] = {}
_MINS: dict[str, float] = {}
_FAST_BENCHMARK: dict[str, object] = {}
_OUTPUTS: dict[str, dict[str, np.ndarray]] = {}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("vqgan-paper")
    for organelle in ORGANELLES:
        config = dataclasses.replace(get_config("paper", organelle), resolution=RESOLUTION, size=RESOLUTION)
        trainer = Trainer(config, seed=0)
        assert count_parameters(trainer.model) + count_parameters(trainer.discriminator) == PAPER_PARAMETERS
        trainer.save(root / organelle)
    return root


@pytest.fixture(scope="module")
def case():
    rng = np.random.default_rng(0)
    return Case("bench.ome.tiff", rng.integers(200, 4000, SHAPE).astype(np.uint16), "BF")


def _record(key: str, benchmark) -> None:
    if benchmark.stats is not None:  # None under --benchmark-disable
        _MEANS[key] = benchmark.stats.stats.mean
        _MINS[key] = benchmark.stats.stats.min
        if key == "fast":
            _FAST_BENCHMARK["fixture"] = benchmark


@pytest.mark.benchmark(group=GROUP)
def test_bench_reference(benchmark, root, case):
    out = benchmark.pedantic(lambda: VQGANSpecialists(checkpoint=root, device="cpu").predict(case), rounds=1,
                             iterations=1)
    _OUTPUTS["reference"] = out
    _record("reference", benchmark)


@pytest.mark.benchmark(group=GROUP)
def test_bench_fast(benchmark, root, case):
    predictor = VQGANSpecialists(checkpoint=root, device="cpu")
    assert predictor.name == "vqgan-lmc-paper" and set(predictor.resolution.values()) == {RESOLUTION}
    out = benchmark.pedantic(predictor.predict, args=(case,), rounds=1, iterations=1)
    assert set(out) == set(ORGANELLES) and all(a.shape == SHAPE and a.dtype == np.uint16 for a in out.values())
    benchmark.extra_info.update({"image_shape": list(SHAPE), "model_resolution": RESOLUTION,
                                 "threads": predictor.threads, "torch_threads_process": torch.get_num_threads()})
    _OUTPUTS["fast"] = out
    _record("fast", benchmark)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU on this machine")
@pytest.mark.benchmark(group=GROUP + "-gpu")
def test_bench_gpu(benchmark, root, case):
    predictor = VQGANSpecialists(checkpoint=root, device="cuda")
    predictor.predict(case)  # warm-up
    out = benchmark.pedantic(predictor.predict, args=(case,), rounds=10, iterations=1)
    assert set(out) == set(ORGANELLES)


def test_speedup_of_loading_once(capsys):
    if "reference" in _OUTPUTS and "fast" in _OUTPUTS:
        for organelle in ORGANELLES:
            np.testing.assert_array_equal(_OUTPUTS["fast"][organelle], _OUTPUTS["reference"][organelle])
    ratio = report_speedup(_MEANS, _MINS, _FAST_BENCHMARK,
                           f"VQGAN, 4 paper specialists at {RESOLUTION}, one {SHAPE[0]}x{SHAPE[1]} slice, CPU: "
                           "reload per image (reference) vs loaded once", capsys)
    assert ratio > 0  # bookkeeping sanity, not a timing requirement
