"""Full-size CPU inference of the Patch-GAN generator (Model 1, 7 brightfield planes -> 3 channels).

One 2154 x 2554 image set (the 20x/40x size, adipocyte.md §2.2), batch 1, padded to multiples of 32 as
the Soft Matter Lab code does for full frames (adipocyte.md §2.2, ``PadToMultiplesOf``) and cropped
back, cast to uint16. The paper-size network (breadth 32, depth 5; 8,784,073 weights) with its
initial weights: the cost does not depend on their values. The report's figure for comparison is
0.27-0.39 s per image on an A100 (adipocyte.md §3.5). Nothing asserts on time; peak memory is about
10 GB. On a machine with CUDA the same inference is also timed on the GPU (5 rounds after a warm-up).
That is the size of ``make bench`` (``VSBENCH_BENCH=full``); the smoke size of ``make test`` (``sizes.py``) runs the
same paper-size network on a 138 x 186 set, padded by the same amounts (to 160 x 192) and cropped back.
Run: ``VSBENCH_BENCH=full pytest tests/benchmarks/test_bench_patchgan.py -q``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vsbench.algorithms.patchgan.networks import PatchGANGenerator, count_parameters

from sizes import SLOW_IN_FULL, pick

SHAPE = pick((2154, 2554), (138, 186))  # smoke: 4 x 32 + 10 by 5 x 32 + 26, padded as the full size is
MULTIPLE = 32

pytestmark = SLOW_IN_FULL


def _infer(generator: torch.nn.Module, planes: np.ndarray, device: str) -> np.ndarray:
    h, w = planes.shape[-2:]
    ph, pw = -h % MULTIPLE, -w % MULTIPLE
    x = torch.from_numpy(planes.astype(np.float32))[None].to(device)
    x = F.pad(x, (0, pw, 0, ph))
    with torch.inference_mode():
        y = generator(x)[0, :, :h, :w].cpu()  # .cpu() waits for the GPU
    return np.clip(np.rint(y.numpy()), 0, 65535).astype(np.uint16)


DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]  # the GPU figure where there is one


@pytest.mark.parametrize("device", DEVICES)
def test_full_size_inference(benchmark, device):
    torch.manual_seed(0)
    generator = PatchGANGenerator().eval().to(device)
    assert count_parameters(generator) == 8_784_073
    assert [-s % MULTIPLE for s in SHAPE] == [22, 6]  # the padding of 2154 x 2554, at every size
    planes = np.random.default_rng(0).integers(1500, 4000, (7, *SHAPE), dtype=np.uint16)
    if device == "cuda":
        _infer(generator, planes, device)  # warm-up: cuDNN autotuning and allocation
    out = benchmark.pedantic(_infer, args=(generator, planes, device), rounds=1 if device == "cpu" else 5,
                             iterations=1)
    benchmark.extra_info.update({"image_shape": list(SHAPE), "device": device, "threads": torch.get_num_threads()})
    assert out.shape == (3, *SHAPE) and out.dtype == np.uint16
