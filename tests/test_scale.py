"""Dask scale-out (:mod:`vsbench.harness.scale`): the same metrics.json as the in-process evaluation,
errors carried the same way, a scheduler that does not answer, and resources (GPU tasks go only to
GPU workers)."""

from __future__ import annotations

import json
import socket
import time

import numpy as np
import pytest

pytest.importorskip("distributed")

from distributed import Client, Scheduler, SpecCluster, Worker, get_worker  # noqa: E402

from vsbench.harness.evaluate import evaluate_lmc, write_metrics  # noqa: E402
from vsbench.harness.omeio import write_plane  # noqa: E402
from vsbench.harness.predict import prediction_path  # noqa: E402
from vsbench.harness.scale import (  # noqa: E402
    SchedulerUnreachable,
    dask_client,
    evaluate_lmc_dask,
    run_tasks,
)
from vsbench.harness.split import Split  # noqa: E402

from splitfactory import make_predictions, make_split  # noqa: E402


@pytest.fixture(scope="module")
def client():
    """Two worker processes, one thread each (the LocalCluster of ``vsbench ... --dask``)."""
    with dask_client(workers=2, threads_per_worker=1) as c:
        yield c


@pytest.fixture()
def scored(tmp_path):
    split = make_split(tmp_path / "split")
    preds = make_predictions(split, tmp_path / "pred")
    return split, preds


def _json_without_time(metrics: dict, path) -> dict:
    """metrics.json as written (and read back), without ``created_utc``."""
    write_metrics(metrics, path)
    data = json.loads(path.read_text())
    del data["provenance"]["created_utc"]
    return data


def test_local_client_has_the_workers_asked_for(client):
    assert sorted(client.nthreads().values()) == [1, 1]
    info = client.scheduler_info(n_workers=-1)["workers"]
    assert all(w.get("resources", {}) == {} for w in info.values())  # no GPU resource unless asked


@pytest.mark.parametrize("chunk_size", [None, 1, 3, 100])
def test_dask_metrics_identical_to_in_process(client, scored, tmp_path, chunk_size):
    split, preds = scored
    local = evaluate_lmc(Split(split), preds, progress=False)
    dask = evaluate_lmc_dask(Split(split), preds, client, chunk_size=chunk_size, progress=False)
    assert _json_without_time(dask, tmp_path / "dask.json") == _json_without_time(local, tmp_path / "local.json")
    assert dask["provenance"]["n_cases"] == 7 and dask["errors"] == []


def test_dask_accepts_a_split_path(client, scored, tmp_path):
    split, preds = scored
    dask = evaluate_lmc_dask(split, preds, client, progress=False)
    local = evaluate_lmc(Split(split), preds, progress=False)
    assert _json_without_time(dask, tmp_path / "d.json") == _json_without_time(local, tmp_path / "l.json")


def test_dask_carries_errors_like_in_process(client, scored, tmp_path):
    split, preds = scored
    prediction_path(preds, "nucleus", "image_0_BF_z3.ome.tiff").unlink()  # missing
    prediction_path(preds, "mitochondria", "image_0_BF_z5.ome.tiff").write_bytes(b"not a tiff")  # corrupt
    write_plane(prediction_path(preds, "tubulin", "image_1_PC_z4.ome.tiff"), np.ones((10, 12), np.float32))  # shape
    nan = np.full((48, 40), np.nan, np.float32)
    write_plane(prediction_path(preds, "actin", "image_2_DIC_z2.ome.tiff"), nan)  # non-finite
    local = evaluate_lmc(Split(split), preds, progress=False)
    dask = evaluate_lmc_dask(Split(split), preds, client, chunk_size=2, progress=False)
    assert len(local["errors"]) == 4
    assert dask["errors"] == local["errors"]
    assert _json_without_time(dask, tmp_path / "dask.json") == _json_without_time(local, tmp_path / "local.json")


def test_dask_checks_inputs_before_submitting(client, scored, tmp_path):
    split, _ = scored
    with pytest.raises(ValueError, match="prediction folder not found"):
        evaluate_lmc_dask(Split(split), tmp_path / "nowhere", client, progress=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_scheduler_is_a_one_line_error():
    address = f"tcp://127.0.0.1:{_free_port()}"
    started = time.monotonic()
    with pytest.raises(SchedulerUnreachable) as info:
        dask_client(address, timeout=1)
    assert time.monotonic() - started < 30
    message = str(info.value)
    assert "\n" not in message and address in message and "did not answer within 1 s" in message


def _worker_name(item):
    return item, get_worker().name


def _fails_on_three(item):
    if item == 3:
        raise RuntimeError("item 3 failed")
    return item * 10


@pytest.fixture(scope="module")
def mixed_cluster():
    """A CPU worker and a GPU worker (``--resources GPU=1``), in this process (fast to start)."""
    workers = {"cpu": {"cls": Worker, "options": {"nthreads": 1}},
               "gpu": {"cls": Worker, "options": {"nthreads": 1, "resources": {"GPU": 1}}}}
    scheduler = {"cls": Scheduler, "options": {"dashboard": False, "dashboard_address": ":0"}}
    with SpecCluster(workers=workers, scheduler=scheduler) as cluster, Client(cluster) as c:
        c.wait_for_workers(2)
        yield c


def test_gpu_tasks_run_only_on_gpu_workers(mixed_cluster):
    out = run_tasks(mixed_cluster, _worker_name, range(8), resources={"GPU": 1}, progress=False)
    assert [item for item, _ in out] == list(range(8))  # results in item order
    assert {name for _, name in out} == {"gpu"}


def test_untagged_tasks_may_run_anywhere(mixed_cluster):
    out = run_tasks(mixed_cluster, _worker_name, range(4), progress=False)
    assert [item for item, _ in out] == list(range(4))
    assert {name for _, name in out} <= {"cpu", "gpu"}


def test_gpu_tasks_without_gpu_workers_fail_at_once(client):
    with pytest.raises(ValueError, match="no worker of the Dask cluster offers GPU=1.*--resources GPU=1"):
        run_tasks(client, _worker_name, range(2), resources={"GPU": 1}, progress=False)


def test_local_cluster_resources_passed_through():
    with dask_client(workers=1, resources={"GPU": 1}) as c:
        info = c.scheduler_info(n_workers=-1)["workers"]
        assert [w["resources"] for w in info.values()] == [{"GPU": 1}]
        out = run_tasks(c, _worker_name, range(2), resources={"GPU": 1}, progress=False)
        assert [item for item, _ in out] == [0, 1]


def test_run_tasks_failures(mixed_cluster):
    out = run_tasks(mixed_cluster, _fails_on_three, range(5), return_exceptions=True, progress=False)
    assert out[:3] == [0, 10, 20] and out[4] == 40
    assert isinstance(out[3], RuntimeError) and "item 3 failed" in str(out[3])
    with pytest.raises(RuntimeError, match="item 3 failed"):
        run_tasks(mixed_cluster, _fails_on_three, range(5), progress=False)
    assert run_tasks(mixed_cluster, _fails_on_three, [], progress=False) == []


def _scaled(item, factor=1):
    return item * factor


def test_run_tasks_passes_keyword_arguments(mixed_cluster):
    assert run_tasks(mixed_cluster, _scaled, [7, 9], fn_kwargs={"factor": 3}, progress=False) == [21, 27]


@pytest.mark.slow
def test_adipocyte_dask_identical_to_in_process(client, tmp_path):
    """One task per image set (CellProfiler on ground truth and prediction); a missing prediction is an error
    in both."""
    import tifffile
    from scipy import ndimage

    from vsbench.harness.adipocyte_split import CHANNELS, adipocyte_sets
    from vsbench.harness.evaluate_adipocyte import evaluate_adipocyte
    from vsbench.harness.evaluate_adipocyte import prediction_path as adipocyte_prediction_path
    from vsbench.harness.scale import evaluate_adipocyte_dask
    from vsbench.harness.synth_adipocyte import synthesize_adipocyte

    split = Split(synthesize_adipocyte(tmp_path / "s20", "20x", sets=3, size=(384, 384), seed=3))
    preds = tmp_path / "pred"
    for s in adipocyte_sets(split):
        for ch in CHANNELS:
            target = tifffile.imread(s.target_path(split, ch)).astype(np.float64)
            path = adipocyte_prediction_path(preds, ch, s.targets[ch])
            path.parent.mkdir(parents=True, exist_ok=True)
            tifffile.imwrite(path, np.clip(ndimage.gaussian_filter(target, 2.0) * 0.9, 0, 65535).astype(np.uint16))
    first = adipocyte_sets(split)[0]
    adipocyte_prediction_path(preds, "lipids", first.targets["lipids"]).unlink()

    local = evaluate_adipocyte([(split, preds)], workers=2, progress=False, cache_dir=None)
    dask = evaluate_adipocyte_dask([(split, preds)], client, progress=False, cache_dir=None)
    assert len(local["errors"]) == 1 and dask["errors"] == local["errors"]
    for m in (local, dask):
        for key in ("created_utc", "seconds"):
            del m["provenance"][key]
    assert dask["provenance"]["workers"] == 2
    assert json.dumps(dask, allow_nan=False) == json.dumps(local, allow_nan=False)
