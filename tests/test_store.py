"""The results store (``vsbench.harness.store``) on SQLite and PostgreSQL: migrations, upserts, atomic
replacement, two writing processes, and metrics.json flattening on real evaluations.

PostgreSQL tests are marked ``postgres`` and use ``$VSBENCH_TEST_POSTGRES_URL`` (default the server
``containers/postgres.sh`` starts); they skip when it does not answer, unless ``VSBENCH_REQUIRE_POSTGRES=1``.
Each test gets a fresh schema there (``search_path`` in the URL), a fresh file on SQLite.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
import multiprocessing
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from vsbench.harness.evaluate import evaluate_lmc
from vsbench.harness.split import Split
from vsbench.harness.store import (
    HEAD_REVISION,
    VERSION_TABLE,
    ResultStore,
    StoreError,
    flatten_metrics,
    score_from_metrics,
    upgrade,
)

from splitfactory import make_predictions, make_split

UTC = dt.timezone.utc


def _sql(url: str, query: str, **params):
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(query), params)
            return result.all() if result.returns_rows else None
    finally:
        engine.dispose()


def _count(url: str, table: str) -> int:
    return _sql(url, f"SELECT count(*) FROM {table}")[0][0]


def _key(name: str) -> str:
    import hashlib

    return hashlib.sha256(name.encode()).hexdigest()


def _run(name: str = "r1", **extra) -> dict:
    return {
        "run_key": _key(name), "benchmark": "lmc", "submission": "filterbank", "submission_version": "1.0",
        "submission_kind": "image", "image_ref": "sub:latest", "image_digest": "sha256:" + "a" * 64,
        "checkpoint_hash": None, "split_name": "test", "split_path": "/data/lmc/test", "split_hash": _key("split"),
        "inputs_hash": _key("inputs"), "runtime": "docker", "sandboxed": True, "contract": "grand-challenge",
        "batch": False, "limits": {"time_limit": 600.0, "memory_bytes": 8 << 30, "gpus": None}, "seed": 2**40 + 7,
        "hardware": {"cpu": "Test CPU", "cores": 2, "memory_bytes": 16 << 30, "gpu": None},
        "vsbench_version": "0.1.0", "status": "running", "started_at": dt.datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
        "predictions_path": "/pred", "run_record_path": "/pred/run.json", "logs_path": "/pred/logs", **extra,
    }


def _cases(n: int = 3, failing: int = 1) -> list[dict]:
    return [{"case": f"case-{i:03d}.ome.tiff", "status": "failed" if i < failing else "succeeded",
             "reason": "exit code 1: boom" if i < failing else None, "exit_code": 1 if i < failing else 0,
             "durations": {"start": 0.5, "run": 1.25 + i}, "stdout": f"/logs/{i}.out", "stderr": f"/logs/{i}.err",
             "image_digest": "sha256:" + "a" * 64} for i in range(n)]


def _score(name: str = "s1", run: str = "r1", n_values: int = 4) -> dict:
    return {"score_key": _key(name), "run_key": _key(run), "evaluator": "vsbench.metrics.lmc",
            "evaluator_version": "0.1.0", "metrics": ["MAE", "SSIM"], "metrics_path": "/m/metrics.json",
            "aggregates": {"nucleus": {"MAE": 0.5, "SSIM": None}}, "n_errors": 0,
            "values": [{"scope": "organelle", "key": f"o{i}", "metric": "MAE", "value": i / 7}
                       for i in range(n_values)]}


# ------------------------------------------------------------------------------------------ schema


def test_opening_an_empty_database_upgrades_it_to_head(db_url):
    with ResultStore(db_url) as store:
        assert store.schema_revision == HEAD_REVISION == "0002"
        assert store.url == db_url
        assert store.get_run(_key("nothing")) is None and store.list_runs() == []
    tables = set(sa.inspect(sa.create_engine(db_url)).get_table_names())
    assert {"runs", "case_results", "scores", "metric_values", VERSION_TABLE} <= tables
    assert _sql(db_url, f"SELECT version_num FROM {VERSION_TABLE}") == [("0002",)]
    # opening again changes nothing
    with ResultStore(db_url) as store:
        assert store.schema_revision == "0002"
    assert _count(db_url, VERSION_TABLE) == 1


def test_upgrade_0001_to_0002_keeps_the_data(db_url):
    assert upgrade(db_url, "0001") == "0001"
    engine = sa.create_engine(db_url)
    created = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    with engine.begin() as conn:
        meta = sa.MetaData()
        runs, cases, scores, values = (sa.Table(t, meta, autoload_with=conn)
                                       for t in ("runs", "case_results", "scores", "metric_values"))
        assert "provenance" not in scores.c
        conn.execute(runs.insert(), [{"run_key": _key("old"), "benchmark": "lmc", "submission": "old-sub",
                                      "status": "complete", "limits": {"memory_bytes": 1 << 30}, "seed": 3,
                                      "sandboxed": True, "n_cases": 1, "created_at": created,
                                      "updated_at": created}])
        conn.execute(cases.insert(), [{"run_key": _key("old"), "case": "c1", "status": "succeeded",
                                       "durations": {"run": 2.5}}])
        conn.execute(scores.insert(), [{"score_key": _key("old-score"), "run_key": _key("old"), "evaluator": "e",
                                        "metrics": ["MAE"], "aggregates": {"nucleus": {"MAE": 0.25}},
                                        "n_errors": 0, "created_at": created}])
        conn.execute(values.insert(), [{"score_key": _key("old-score"), "scope": "organelle", "key": "nucleus",
                                        "metric": "MAE", "value": 0.25}])
    engine.dispose()

    with ResultStore(db_url) as store:
        assert store.schema_revision == "0002"
        run = store.get_run(_key("old"))
        assert run["submission"] == "old-sub" and run["limits"] == {"memory_bytes": 1 << 30} and run["seed"] == 3
        assert run["sandboxed"] is True and run["created_at"] == created and run["updated_at"] == created
        assert run["cases"] == [{"case": "c1", "status": "succeeded", "reason": None, "exit_code": None,
                                 "durations": {"run": 2.5}, "stdout": None, "stderr": None, "image_digest": None}]
        assert run["score_keys"] == [_key("old-score")]
        score = store.get_score(_key("old-score"))
        assert score["aggregates"] == {"nucleus": {"MAE": 0.25}} and score["metrics"] == ["MAE"]
        assert score["provenance"] is None and score["updated_at"] == created  # backfilled from created_at
        assert store.metric_values(_key("old-score")) == [{"scope": "organelle", "key": "nucleus", "metric": "MAE",
                                                           "value": 0.25}]
        store.upsert_score({"score_key": _key("old-score"), "run_key": _key("old"), "provenance": {"x": 1}})
        assert store.get_score(_key("old-score"))["provenance"] == {"x": 1}
    indexes = {i["name"] for i in sa.inspect(sa.create_engine(db_url)).get_indexes("runs")}
    assert "ix_runs_benchmark_submission_created" in indexes
    with pytest.raises(StoreError, match="at schema revision 0002, past 0001; vsbench does not downgrade"):
        upgrade(db_url, "0001")
    with pytest.raises(ValueError, match="no schema revision '0007' \\(known: 0001, 0002\\)"):
        upgrade(db_url, "0007")


def test_the_tables_in_store_py_are_the_migrated_schema(db_url):
    """store.py's table definitions and migrations/versions agree (what Alembic autogenerate would see)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from vsbench.harness.store import metadata

    ResultStore(db_url).close()
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "version_table": VERSION_TABLE})
        diff = compare_metadata(context, metadata)
    engine.dispose()
    assert [d for d in diff if not (isinstance(d, tuple) and d[0] == "remove_table" and d[1].name == VERSION_TABLE)
            ] == []


def test_a_newer_schema_is_refused(db_url):
    ResultStore(db_url).close()
    _sql(db_url, f"UPDATE {VERSION_TABLE} SET version_num = '0099'")
    with pytest.raises(StoreError, match=r"schema revision 0099 is newer than this vsbench knows \(its newest is "
                                         r"0002\)") as info:
        ResultStore(db_url)
    assert "\n" not in str(info.value)
    assert "vsbench:vsbench@" not in str(info.value)  # no password in messages


def test_default_url_workspace_and_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("VSBENCH_DB_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    with ResultStore() as store:
        assert store.url == f"sqlite:///{tmp_path / '.vsbench' / 'results.db'}"
    assert (tmp_path / ".vsbench" / "results.db").is_file()
    with ResultStore(workspace=tmp_path / "a" / "b") as store:
        assert store.url == f"sqlite:///{tmp_path / 'a' / 'b' / 'results.db'}"
    monkeypatch.setenv("VSBENCH_DB_URL", f"sqlite:///{tmp_path / 'env.db'}")
    with ResultStore() as store:
        assert store.url.endswith("env.db")
    with pytest.raises(StoreError, match="unsupported database 'mysql'"):
        ResultStore("mysql://u@h/db")


# ----------------------------------------------------------------------------------------- upserts


def test_a_run_and_its_cases_are_stored_in_one_transaction(db_url):
    """upsert_run(run, cases=...) writes both or neither: a process killed between two writes could leave a
    finished run without its cases, which a rerun took as stored."""
    with ResultStore(db_url) as store:
        store.upsert_run(_run(), cases=_cases(3))
        run = store.get_run(_key("r1"))
        assert len(run["cases"]) == 3 and (run["n_cases"], run["n_succeeded"], run["n_failed"]) == (3, 2, 1)
        # the cases fail inside the transaction (the same case twice): the run's new status is not kept either
        twice = _cases(2) + _cases(1)
        with pytest.raises(StoreError):
            store.upsert_run({**_run(), "status": "complete"}, cases=twice)
        run = store.get_run(_key("r1"))
        assert run["status"] == "running" and len(run["cases"]) == 3
        with pytest.raises(StoreError):
            store.upsert_run(_run("r2", status="complete"), cases=twice)
        assert store.get_run(_key("r2")) is None


def test_upserts_are_idempotent(db_url):
    with ResultStore(db_url) as store:
        for _ in range(2):
            store.upsert_run(_run())
            store.replace_cases(_key("r1"), _cases(3))
            store.upsert_score(_score())
        assert (_count(db_url, "runs"), _count(db_url, "case_results"), _count(db_url, "scores"),
                _count(db_url, "metric_values")) == (1, 3, 1, 4)
        run = store.get_run(_key("r1"))
        first = run["created_at"]
        assert run["status"] == "running" and (run["n_cases"], run["n_succeeded"], run["n_failed"]) == (3, 2, 1)
        assert run["seed"] == 2**40 + 7 and run["limits"]["memory_bytes"] == 8 << 30

        # a partial update changes what it names and keeps the rest, and the creation time
        finished = dt.datetime(2024, 5, 1, 12, 10, tzinfo=UTC)
        store.upsert_run({"run_key": _key("r1"), "status": "complete", "finished_at": finished, "duration_s": 600.0})
        run = store.get_run(_key("r1"))
        assert run["status"] == "complete" and run["finished_at"] == finished and run["submission"] == "filterbank"
        assert run["created_at"] == first and run["updated_at"] >= first and len(run["cases"]) == 3
        # a full upsert without status keeps the status
        store.upsert_run({k: v for k, v in _run().items() if k != "status"})
        assert store.get_run(_key("r1"))["status"] == "complete"
        assert _count(db_url, "runs") == 1

        # fewer values replace the old ones; a score update without values keeps them
        store.upsert_score(_score(n_values=2))
        assert len(store.metric_values(_key("s1"))) == 2
        store.upsert_score({"score_key": _key("s1"), "run_key": _key("r1"), "n_errors": 5})
        assert store.get_score(_key("s1"))["n_errors"] == 5 and len(store.metric_values(_key("s1"))) == 2


def test_list_runs_newest_first_with_their_scores(db_url):
    with ResultStore(db_url) as store:
        store.upsert_run(_run("a"))
        store.upsert_run(_run("b", submission="other"))
        store.upsert_run(_run("c", benchmark="adipocyte"))
        store.upsert_score(_score("sa1", run="a"))
        store.upsert_score(_score("sa2", run="a"))
        assert [r["run_key"] for r in store.list_runs()] == [_key("c"), _key("b"), _key("a")]
        lmc = store.list_runs(benchmark="lmc")
        assert [r["run_key"] for r in lmc] == [_key("b"), _key("a")]
        assert lmc[1]["score_keys"] == [_key("sa1"), _key("sa2")] and lmc[0]["score_keys"] == []
        assert [r["run_key"] for r in store.list_runs("lmc", "filterbank")] == [_key("a")]
        assert "cases" not in lmc[0]
        assert store.get_run(_key("a"))["score_keys"] == [_key("sa1"), _key("sa2")]


def test_replace_cases_is_atomic(db_url):
    with ResultStore(db_url) as store:
        store.upsert_run(_run())
        store.replace_cases(_key("r1"), _cases(3))
        before = store.get_run(_key("r1"))
        # the database refuses the second row (same case twice) after the old rows were deleted: rolled back
        good = _cases(5, failing=0)
        with pytest.raises(StoreError, match=f"replace_cases {_key('r1')}: .*(UNIQUE|duplicate key)") as info:
            store.replace_cases(_key("r1"), good + [good[0]])
        assert "\n" not in str(info.value)
        assert store.get_run(_key("r1")) == before
        # refused before the database is touched
        with pytest.raises(ValueError, match=r"case 1: status: 'exploded' is not one of succeeded, failed"):
            store.replace_cases(_key("r1"), [good[0], {**good[1], "status": "exploded"}])
        assert store.get_run(_key("r1")) == before
        with pytest.raises(StoreError, match="replace_cases: no run .* \\(upsert_run first\\)"):
            store.replace_cases(_key("nope"), good)
        store.replace_cases(_key("r1"), [])
        assert store.get_run(_key("r1"))["cases"] == [] and store.get_run(_key("r1"))["n_cases"] == 0


def test_score_values_are_replaced_atomically(db_url):
    with ResultStore(db_url) as store:
        store.upsert_run(_run())
        store.upsert_score(_score())
        before, values = store.get_score(_key("s1")), store.metric_values(_key("s1"))
        bad = _score(n_values=3)
        bad["values"].append(dict(bad["values"][0]))
        bad["evaluator_version"] = "9.9"
        with pytest.raises(StoreError, match="upsert_score"):
            store.upsert_score(bad)
        assert store.get_score(_key("s1")) == before and store.metric_values(_key("s1")) == values
        with pytest.raises(StoreError, match=f"upsert_score {_key('s2')}: no run {_key('zz')}"):
            store.upsert_score(_score("s2", run="zz"))


def test_bad_input_is_one_line_naming_the_field(db_url):
    with ResultStore(db_url) as store:
        cases = [
            ({**_run(), "colour": "red"}, "unknown field 'colour'"),
            ({**_run(), "runtime": "podman"}, "runtime: 'podman' is not one of docker, local"),
            ({**_run(), "started_at": dt.datetime(2024, 1, 1)}, "started_at: 2024-01-01T00:00:00 has no time zone"),
            ({**_run(), "limits": {"x": object()}}, r"limits.x: object is not JSON"),
            ({**_run(), "seed": 1.5}, "seed: expected an integer"),
            ({**_run(), "created_at": "2024-01-01T00:00:00Z"}, "created_at is set by the store"),
            ({"benchmark": "lmc"}, "run_key missing"),
        ]
        for run, message in cases:
            with pytest.raises(ValueError, match=message) as info:
                store.upsert_run(run)
            assert "\n" not in str(info.value)
        with pytest.raises(StoreError, match="no such run, and a new run needs benchmark and submission"):
            store.upsert_run({"run_key": _key("new"), "status": "complete"})
        assert store.list_runs() == []


def test_json_nan_and_time_round_trip(db_url):
    when = dt.datetime(2024, 5, 1, 14, 30, 15, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    run = _run(limits={"time_limit": float("nan"), "cpus": np.float32(1.5), "pids": np.int64(256),
                       "shape": (3, 4), "nested": [{"inf": float("inf"), "ok": 1e-300}], "none": None},
               hardware={"cpu": "x", "cores": np.int32(2), "gpu": None, "unicode": "µm ✓"},
               started_at=when, finished_at="2024-05-01T12:40:00Z", duration_s=float("nan"),
               sandboxed=np.bool_(False), seed=None)
    with ResultStore(db_url) as store:
        store.upsert_run(run)
        got = store.get_run(run["run_key"])
        assert got["limits"] == {"time_limit": None, "cpus": 1.5, "pids": 256, "shape": [3, 4],
                                 "nested": [{"inf": None, "ok": 1e-300}], "none": None}
        assert got["hardware"] == {"cpu": "x", "cores": 2, "gpu": None, "unicode": "µm ✓"}
        assert got["started_at"] == when and got["started_at"].tzinfo == UTC
        assert got["finished_at"] == dt.datetime(2024, 5, 1, 12, 40, tzinfo=UTC)
        assert got["duration_s"] is None and got["sandboxed"] is False and got["seed"] is None
        store.upsert_score({**_score(), "aggregates": {"a": float("nan"), "b": [np.float64(0.1)]},
                            "values": [{"scope": "s", "key": "k", "metric": "nan", "value": float("nan")},
                                       {"scope": "s", "key": "k", "metric": "inf", "value": float("inf")},
                                       {"scope": "s", "key": "k", "metric": "none", "value": None},
                                       {"scope": "s", "key": "k", "metric": "tiny", "value": np.float64(5e-324)},
                                       {"scope": "s", "key": "k", "metric": "third", "value": 1 / 3}]})
        assert store.get_score(_key("s1"))["aggregates"] == {"a": None, "b": [0.1]}
        values = {v["metric"]: v["value"] for v in store.metric_values(_key("s1"))}
        assert values["nan"] is None and values["none"] is None and values["inf"] == math.inf
        assert values["tiny"] == 5e-324 and values["third"] == 1 / 3  # exact: double precision both ways


# ------------------------------------------------------------------------------------- concurrency

N_RUNS, N_CASES, N_VALUES = 12, 4, 6


def _writer(url: str, barrier, worker: int) -> None:
    barrier.wait(timeout=60)  # both open the (empty) store at once: the migration is raced too
    with ResultStore(url) as store:
        for round_ in range(2):
            for i in range(N_RUNS):
                name = f"run-{i}"
                store.upsert_run(_run(name, status="complete", duration_s=float(worker + round_)))
                store.replace_cases(_key(name), _cases(N_CASES, failing=worker))
                store.upsert_score(_score(f"score-{i}", run=name, n_values=N_VALUES))


def test_two_processes_upserting_the_same_keys(db_url):
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_writer, args=(db_url, barrier, w)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0, 0]
    assert _count(db_url, "runs") == N_RUNS
    assert _count(db_url, "case_results") == N_RUNS * N_CASES
    assert _count(db_url, "scores") == N_RUNS
    assert _count(db_url, "metric_values") == N_RUNS * N_VALUES
    assert _count(db_url, VERSION_TABLE) == 1
    with ResultStore(db_url) as store:
        for run in store.list_runs():
            assert run["n_cases"] == N_CASES and run["n_failed"] in (0, 1)
            assert len(store.get_run(run["run_key"])["cases"]) == N_CASES


# ------------------------------------------------------------------------------------- metrics.json


@pytest.fixture(scope="module")
def lmc_metrics(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("lmc")
    split = make_split(root / "split")
    predictions = make_predictions(split, root / "pred")
    metrics = evaluate_lmc(Split(split), predictions, workers=1, progress=False)
    return json.loads(json.dumps(metrics, allow_nan=False))  # exactly what metrics.json holds


def _leaf_count(tree, depth: int) -> int:
    if depth == 0:
        return 1
    return sum(_leaf_count(v, depth - 1) for v in tree.values()) if isinstance(tree, dict) else 0


def test_flatten_lmc_metrics(lmc_metrics):
    rows = flatten_metrics(lmc_metrics)
    index = {(r["scope"], r["key"], r["metric"]): r["value"] for r in rows}
    assert len(index) == len(rows)
    agg = lmc_metrics["aggregates"]
    for organelle, values in agg.items():
        for metric, value in values.items():
            assert index[("organelle", organelle, metric)] == value
    for organelle, by_d in lmc_metrics["z_deviation"].items():
        for d, values in by_d.items():
            for metric, value in values.items():
                assert index[(f"z_deviation:{d}", organelle, metric)] == value
    assert index[("modality:BF", "nucleus", "MAE")] == lmc_metrics["transmitted_light"]["BF"]["nucleus"]["MAE"]
    assert len(rows) == (_leaf_count(agg, 2) + _leaf_count(lmc_metrics["z_deviation"], 3)
                         + _leaf_count(lmc_metrics["transmitted_light"], 3))
    assert {"organelle", "z_deviation:0", "z_deviation:2", "modality:DIC"} <= {r["scope"] for r in rows}
    # a NaN mean (the organisers' SSIM of constant images) is a None value
    broken = copy.deepcopy(lmc_metrics)
    broken["aggregates"]["nucleus"]["SSIM"] = float("nan")
    assert {(r["scope"], r["key"], r["metric"]): r["value"] for r in flatten_metrics(broken)}[
        ("organelle", "nucleus", "SSIM")] is None
    with pytest.raises(ValueError, match="not a vsbench metrics.json"):
        flatten_metrics({"results": []})


def test_lmc_score_round_trips_through_the_store(db_url, lmc_metrics):
    score = score_from_metrics(lmc_metrics, score_key=_key("lmc-score"), run_key=_key("r1"),
                               metrics_path=Path("/m/metrics.json"))
    assert score["metrics"] == sorted(["MAE", "PCC", "SSIM", "E_dist", "C_dist"])
    assert score["n_errors"] == lmc_metrics["provenance"]["n_errors"]
    with ResultStore(db_url) as store:
        store.upsert_run(_run(split_hash=lmc_metrics["provenance"]["split_hash"]))
        store.upsert_score(score)
        got = store.get_score(_key("lmc-score"))
        assert got["aggregates"] == lmc_metrics["aggregates"] and got["provenance"] == lmc_metrics["provenance"]
        assert got["evaluator"] == lmc_metrics["provenance"]["evaluator"] and got["metrics_path"] == "/m/metrics.json"
        stored = store.metric_values(_key("lmc-score"))
        assert sorted(stored, key=lambda r: (r["scope"], r["key"], r["metric"])) == sorted(
            score["values"], key=lambda r: (r["scope"], r["key"], r["metric"]))


@pytest.mark.slow
def test_flatten_adipocyte_metrics(tmp_path_factory):
    import tifffile
    from scipy import ndimage

    from vsbench.harness.adipocyte_split import CHANNELS, adipocyte_sets
    from vsbench.harness.evaluate_adipocyte import evaluate_adipocyte, prediction_path
    from vsbench.harness.synth_adipocyte import synthesize_adipocyte

    root = tmp_path_factory.mktemp("adipo")
    split = Split(synthesize_adipocyte(root / "s", "20x", sets=2, size=(384, 384), seed=3))
    for s in adipocyte_sets(split):
        for ch in CHANNELS:
            target = tifffile.imread(s.target_path(split, ch)).astype(np.float64)
            path = prediction_path(root / "p", ch, s.targets[ch])
            path.parent.mkdir(parents=True, exist_ok=True)
            tifffile.imwrite(path, np.clip(ndimage.gaussian_filter(target, 2) * 0.9, 0, 65535).astype(np.uint16))
    metrics = evaluate_adipocyte([(split, root / "p")], workers=2, progress=False, cache_dir=None)
    metrics = json.loads(json.dumps(metrics, allow_nan=False))
    rows = flatten_metrics(metrics)
    index = {(r["scope"], r["key"], r["metric"]): r["value"] for r in rows}
    assert len(index) == len(rows)
    total, mag = metrics["aggregates"]["total"], metrics["aggregates"]["per_magnification"]["20x"]
    for m in ("pixel_mae", "feature_mae", "mae"):
        assert index[("overall", "total", m)] == total[m]
        assert index[("magnification", "20x", m)] == mag[m]
    assert index[("overall", "total", "n_sets")] == 2
    for ch, value in mag["pixel_per_channel"].items():
        assert index[("channel", f"20x/{ch}", "pixel_mae")] == value
    for ch, values in metrics["aggregates"]["generic"]["20x"].items():
        for m, value in values.items():
            assert index[("channel", f"20x/{ch}", m)] == value
    for feature, value in mag["per_feature"].items():
        assert index[("feature", f"20x/{feature}", "feature_mae")] == value
    for d, part in metrics["z_deviation"]["20x"].items():
        assert index[(f"z_deviation:{d}", "20x", "mae")] == part["mae"]
        assert index[(f"z_deviation:{d}", "20x/nuclei", "pixel_mae")] == part["pixel_per_channel"]["nuclei"]
    score = score_from_metrics(metrics, score_key=_key("a"), run_key=_key("r"))
    assert score["aggregates"]["total"] == {m: total[m] for m in ("pixel_mae", "feature_mae", "mae", "n_sets")}
    assert score["metrics"][:3] == ["pixel_mae", "feature_mae", "mae"] and score["n_errors"] == 0
    with ResultStore(f"sqlite:///{root / 'r.db'}") as store:
        store.upsert_run(_run("r", benchmark="adipocyte"))
        store.upsert_score(score)
        assert len(store.metric_values(_key("a"))) == len(rows)
