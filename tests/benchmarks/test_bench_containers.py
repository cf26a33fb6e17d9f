"""Per-case harness overhead of the sandboxed runtime: one container run for all 32 cases (a labelled vsbench
image, batch) versus one run per case (grand-challenge style), same image, same split (4 cases of 64x64 at the
smoke size of ``make test``, both strategies still; ``sizes.py``).

The image is the grand-challenge-template LMC algorithm (``containers/gc-template-lmc/``: numpy + tifffile, a
cheap model), so what is timed is the harness: staging, container create/start/stop under the sandbox options,
the model's process start-up (python + numpy import) and ingestion. ``fast`` is the batch run, ``reference``
the run per case. Nothing asserts on time.
Run: ``VSBENCH_BENCH=full pytest tests/benchmarks/test_bench_containers.py`` (``make bench`` runs them all).
"""

from __future__ import annotations

import pytest

from vsbench.harness.contract import LABEL_BATCH, LABEL_CONTRACT_VERSION, LABEL_TASK
from vsbench.harness.docker_runtime import Limits, run_image
from vsbench.harness.split import Split

from container_images import build_gc_template
from docker_support import labelled_image
from sizes import pick
from speedup import report_speedup
from splitfactory import make_split

N_FIELDS, N_SLICES = pick((8, 4), (2, 2))
N_CASES = N_FIELDS * N_SLICES  # 32; smoke: 4
SHAPE = pick((256, 256), (64, 64))
GROUP = f"containers-{N_CASES}-cases-{SHAPE[0]}x{SHAPE[1]}"
FIELDS = [(i, ("BF", "PC", "DIC", "BF")[i % 4], ("nucleus", "actin"), [(z, 2) for z in range(N_SLICES)])
          for i in range(N_FIELDS)]
LIMITS = Limits(time_s=300, memory_bytes=1 << 30)

_MEANS: dict[str, float] = {}
_MINS: dict[str, float] = {}
_FAST: dict[str, object] = {}


@pytest.fixture(scope="module")
def split(tmp_path_factory) -> Split:
    split = Split(make_split(tmp_path_factory.mktemp("bench-containers") / "split", shape=SHAPE, seed=2,
                             fields=FIELDS))
    assert len(split.cases()) == N_CASES
    return split


@pytest.fixture(scope="module")
def images(docker_client, base_image) -> dict[str, str]:
    plain = build_gc_template(docker_client, base_image)
    batch = labelled_image(docker_client, plain, {LABEL_TASK: "lmc", LABEL_CONTRACT_VERSION: "1",
                                                  LABEL_BATCH: "true"})
    return {"plain": plain, "batch": batch}


def _run(image, split, out, client):
    record = run_image(image, split, out, limits=LIMITS, client=client, overwrite=True)
    assert record["summary"]["succeeded"] == N_CASES, record["cases"][0]
    return record


def _record(key: str, benchmark) -> None:
    if benchmark.stats is not None:
        _MEANS[key] = benchmark.stats.stats.mean
        _MINS[key] = benchmark.stats.stats.min
        if key == "fast":
            _FAST["fixture"] = benchmark


@pytest.mark.slow
@pytest.mark.docker
@pytest.mark.benchmark(group=GROUP)
def test_bench_per_case_runs(benchmark, images, split, tmp_path, docker_client):
    record = benchmark.pedantic(_run, args=(images["plain"], split, tmp_path / "p", docker_client), rounds=1,
                                iterations=1)
    assert record["contract"] == "grand-challenge" and len(record["runs"]) == N_CASES
    benchmark.extra_info["per_case_s"] = benchmark.stats.stats.mean / N_CASES if benchmark.stats else None
    _record("reference", benchmark)


@pytest.mark.slow
@pytest.mark.docker
@pytest.mark.benchmark(group=GROUP)
def test_bench_batch_run(benchmark, images, split, tmp_path, docker_client):
    record = benchmark.pedantic(_run, args=(images["batch"], split, tmp_path / "b", docker_client), rounds=1,
                                iterations=1)
    assert record["contract"] == "vsbench" and len(record["runs"]) == 1
    benchmark.extra_info["per_case_s"] = benchmark.stats.stats.mean / N_CASES if benchmark.stats else None
    _record("fast", benchmark)


@pytest.mark.slow
@pytest.mark.docker
def test_speedup_of_batch_runs(capsys):
    ratio = report_speedup(_MEANS, _MINS, _FAST, f"sandboxed runtime, {N_CASES} LMC cases {SHAPE[0]}x{SHAPE[1]}: "
                           "one run per case (reference) vs one batch run", capsys)
    assert ratio > 0  # bookkeeping sanity, not a timing requirement
