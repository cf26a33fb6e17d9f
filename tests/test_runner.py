"""``vsbench run``: stored with provenance, idempotent, resumable after SIGKILL, re-scoring, retrying failures."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from vsbench.harness.benchmark import load_benchmark
from vsbench.harness.runner import run_benchmark
from vsbench.harness.store import ResultStore

from splitfactory import make_split

SOLUTIONS = ("input", "inverted", "blurred")


def _write_bench(root: Path, split: Path, extra_submissions=(), metrics=None, name="bench.yaml") -> Path:
    doc = {"name": "runner-test", "task": "lmc", "workspace": "ws",
           "splits": [{"name": "test", "path": str(split)}],
           "submissions": [{"name": s, "version": "1", "solution": s} for s in SOLUTIONS] + list(extra_submissions),
           "limits": {"time_s": 30, "memory": "256m"}}
    if metrics:
        doc["metrics"] = metrics
    path = root / name
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture(scope="module")
def split(tmp_path_factory) -> Path:
    return make_split(tmp_path_factory.mktemp("runner") / "split", seed=21)


def _snapshot(store: ResultStore) -> dict:
    """What must not depend on how the work was done: run keys, per-case statuses and reasons, metric values."""
    out = {}
    for run in store.list_runs():
        full = store.get_run(run["run_key"])
        cases = sorted((c["case"], c["status"], c["reason"]) for c in full["cases"])
        scores = {}
        for key in full.get("score_keys", []):
            scores[key] = sorted((v["scope"], v["key"], v["metric"], v["value"]) for v in store.metric_values(key))
        out[run["run_key"]] = {"status": full["status"], "cases": cases, "predictions_hash": full["predictions_hash"],
                               "scores": scores}
    return out


def test_a_run_stores_every_result_with_provenance_and_a_rerun_does_nothing(split, tmp_path, db_url):
    bench = load_benchmark(_write_bench(tmp_path, split))
    with ResultStore(db_url) as store:  # SQLite, and PostgreSQL (marked postgres)
        first = run_benchmark(bench, store, progress=False, log=lambda m: None)
        assert (first.inferred, first.scored, first.errors) == (3, 3, [])
        runs = store.list_runs()
        assert sorted(r["submission"] for r in runs) == sorted(SOLUTIONS)
        run = store.get_run(runs[0]["run_key"])
        for key in ("split_hash", "inputs_hash", "vsbench_version", "predictions_hash", "checkpoint_hash",
                    "started_at", "finished_at", "run_record_path"):
            assert key in run, key
        assert run["split_hash"] == json.loads((split / "manifest.json").read_text())["split_hash"]
        assert run["runtime"] == "local" and run["sandboxed"] is False and run["seed"] == 0
        assert run["hardware"]["cores"] and run["hardware"]["cpu"] is not None
        assert run["n_cases"] == run["n_succeeded"] == len(run["cases"]) == 7
        assert all(c["status"] == "succeeded" for c in run["cases"])
        assert Path(run["predictions_path"]).name == run["run_key"]
        before = _snapshot(store)
        score_rows = {k: len(store.metric_values(k)) for r in before.values() for k in r["scores"]}
        assert all(n > 0 for n in score_rows.values())

        again = run_benchmark(bench, store, progress=False, log=lambda m: None)
        assert (again.inferred, again.scored, again.reused_runs, again.reused_scores) == (0, 0, 3, 3)
        assert _snapshot(store) == before
        assert {k: len(store.metric_values(k)) for k in score_rows} == score_rows


def test_a_run_stored_without_its_cases_is_stored_whole_again(split, tmp_path):
    """A finished run whose cases are missing from the store (an older vsbench wrote the run row and its cases in
    two transactions, and a SIGKILL fell in between) is re-stored from its run.json by the next run."""
    import sqlalchemy as sa

    bench = load_benchmark(_write_bench(tmp_path, split))
    with ResultStore(workspace=bench.workspace) as store:
        run_benchmark(bench, store, progress=False, log=lambda m: None)
        before = _snapshot(store)
    engine = sa.create_engine(f"sqlite:///{bench.workspace / 'results.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM case_results"))
    engine.dispose()
    with ResultStore(workspace=bench.workspace) as store:
        assert all(r["cases"] == [] for r in _snapshot(store).values())
        again = run_benchmark(bench, store, progress=False, log=lambda m: None)
        assert (again.inferred, again.reused_runs) == (0, 3)
        assert _snapshot(store) == before


def test_changing_only_the_metric_set_rescores_without_inference(split, tmp_path):
    bench = load_benchmark(_write_bench(tmp_path, split))
    with ResultStore(workspace=bench.workspace) as store:
        run_benchmark(bench, store, progress=False, log=lambda m: None)
        narrower = load_benchmark(_write_bench(tmp_path, split, metrics=["PCC"], name="b2.yaml"))
        outcome = run_benchmark(narrower, store, progress=False, log=lambda m: None)
        assert (outcome.inferred, outcome.scored, outcome.reused_runs) == (0, 3, 3)
        for run in store.list_runs():
            keys = store.get_run(run["run_key"])["score_keys"]
            assert len(keys) == 2
            metrics = {frozenset(v["metric"] for v in store.metric_values(k)) for k in keys}
            assert frozenset({"PCC"}) in metrics and any(len(m) == 5 for m in metrics)


def _vsbench(*args: str) -> list[str]:
    return [sys.executable, "-m", "vsbench.harness.cli", "--quiet", *args]


@pytest.mark.slow
def test_sigkill_at_random_points_then_rerun_gives_the_uninterrupted_results(split, tmp_path):
    for folder in ("ref", "killed"):
        (tmp_path / folder).mkdir()
    reference = _write_bench(tmp_path / "ref", split)
    t0 = time.perf_counter()
    subprocess.run(_vsbench("run", str(reference)), check=True, capture_output=True)
    duration = time.perf_counter() - t0

    killed_bench = _write_bench(tmp_path / "killed", split)
    rng = random.Random(7)
    kills = 0
    for _attempt in range(4):  # killed at random points of a run (or of a resumed run)
        proc = subprocess.Popen(_vsbench("run", str(killed_bench)), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, start_new_session=True)
        try:
            proc.wait(timeout=rng.uniform(0.5, duration))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the run and any Dask worker it started
            proc.wait()
            kills += 1
            continue
        assert proc.returncode == 0, proc.stderr.read().decode()[-500:]
        break
    final = subprocess.run(_vsbench("run", str(killed_bench)), capture_output=True, text=True)
    assert final.returncode == 0, final.stderr[-500:]
    assert kills >= 1  # it was interrupted at least once
    with ResultStore(workspace=tmp_path / "ref" / "ws") as ref, \
            ResultStore(workspace=tmp_path / "killed" / "ws") as got:
        assert _snapshot(got) == _snapshot(ref)
        assert len(got.list_runs()) == len(SOLUTIONS)  # no duplicated run
    leftovers = [p.name for p in (tmp_path / "killed" / "ws" / "predictions").iterdir() if ".partial-" in p.name]
    assert len(leftovers) <= kills  # partial folders of killed attempts are never reused as results


@pytest.mark.docker
def test_images_and_archives_run_sandboxed_and_retry_failed_reruns_only_the_failed_cases(
        split, tmp_path, docker_client, base_image):
    import gzip

    from vsbench.harness.contract import LABEL_BATCH, LABEL_CONTRACT_VERSION, LABEL_TASK

    from container_images import build_image
    from docker_support import labelled_image

    scripted = Path(__file__).resolve().parent / "images" / "scripted"
    copy = build_image(docker_client, "scripted-copy-65532-65532", scripted,
                       buildargs={"MODE": "copy", "RUN_AS": "65532:65532"}, base_image=base_image)
    hang = labelled_image(docker_client, build_image(
        docker_client, "scripted-first-then-hang-65532-65532", scripted,
        buildargs={"MODE": "first-then-hang", "RUN_AS": "65532:65532"}, base_image=base_image),
        {LABEL_TASK: "lmc", LABEL_CONTRACT_VERSION: "1", LABEL_BATCH: "true"})
    archive = tmp_path / "copy.tar.gz"
    with gzip.open(archive, "wb") as fh:  # as a participant uploads it: docker save | gzip
        for chunk in docker_client.images.get(copy).save(named=False):
            fh.write(chunk)
    digest = docker_client.images.get(copy).id
    bench_path = tmp_path / "bench.yaml"
    bench_path.write_text(yaml.safe_dump({
        "name": "docker-runs", "task": "lmc", "workspace": "ws", "splits": [{"name": "test", "path": str(split)}],
        "submissions": [{"name": "img", "version": "1", "image": copy},
                        {"name": "arc", "version": "1", "archive": str(archive), "digest": digest},
                        {"name": "hang", "version": "1", "image": hang}],
        "limits": {"time_s": 4, "memory": "256m"}, "metrics": ["PCC"]}))
    bench = load_benchmark(bench_path)
    with ResultStore(workspace=bench.workspace) as store:
        outcome = run_benchmark(bench, store, progress=False, log=lambda m: None)
        assert outcome.errors == [] and outcome.inferred == 3
        runs = {r["submission"]: store.get_run(r["run_key"]) for r in store.list_runs()}
        for name in ("img", "arc"):
            assert runs[name]["sandboxed"] is True and runs[name]["image_digest"] == digest
            assert runs[name]["n_succeeded"] == runs[name]["n_cases"] == 7
        assert runs["img"]["predictions_hash"] == runs["arc"]["predictions_hash"]
        statuses = [c["status"] for c in runs["hang"]["cases"]]
        assert statuses.count("succeeded") == 1 and statuses.count("timed_out") == 6
        failed_before = sorted(c["case"] for c in runs["hang"]["cases"] if c["status"] != "succeeded")

        bad = bench.model_copy(update={"submissions": [bench.submissions[1].model_copy(
            update={"digest": "sha256:" + "0" * 64})]})
        assert "not the declared digest" in run_benchmark(bad, store, progress=False, log=lambda m: None).errors[0]

        retried = run_benchmark(bench, store, retry_failed=True, progress=False, log=lambda m: None)
        assert retried.inferred == 1 and retried.reused_runs == 2  # only the run with failed cases
        hang_run = store.get_run(runs["hang"]["run_key"])
        record = json.loads(Path(hang_run["run_record_path"]).read_text())
        assert record["retries"][0]["cases"] == failed_before  # those cases only, in one batch
        after = [c["status"] for c in hang_run["cases"]]
        assert len(after) == 7 and after.count("succeeded") == 2  # the retried batch got one more case done
        assert hang_run["n_succeeded"] == 2


def test_gpu_runs_carry_a_gpu_resource_and_run_on_a_local_cluster(split, tmp_path):
    """limits.gpus: inference tasks ask Dask for a GPU resource; the local cluster advertises one (no hang)."""
    from vsbench.harness import runner

    path = _write_bench(tmp_path, split)
    doc = yaml.safe_load(path.read_text())
    doc["limits"]["gpus"] = 1
    doc["submissions"] = doc["submissions"][:1]
    path.write_text(yaml.safe_dump(doc))
    bench = load_benchmark(path)
    assert runner._resources(bench) == {"GPU": 1}
    with ResultStore(workspace=bench.workspace) as store:
        outcome = run_benchmark(bench, store, progress=False, log=lambda m: None)
        assert outcome.errors == [] and outcome.inferred == 1
