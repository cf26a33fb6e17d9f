"""Failed runs of ``vsbench run``: logs kept at the run's final path, statuses that are final, failures explained,
benchmark files checked whole before anything runs, untrusted log text shown escaped."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from vsbench.harness.benchmark import BenchmarkError, check_benchmark, load_benchmark
from vsbench.harness.local_runtime import run_local
from vsbench.harness.logs import escape_control, log_tail, run_reason
from vsbench.harness.runner import run_benchmark
from vsbench.harness.store import ResultStore
from vsbench.leaderboard.data import board_entries, unranked_runs

from splitfactory import make_split


@pytest.fixture(scope="module")
def split(tmp_path_factory) -> Path:
    return make_split(tmp_path_factory.mktemp("failures") / "split", seed=5)


def _bench(folder: Path, split: Path, submissions: list[dict], **extra) -> Path:
    path = folder / "bench.yaml"
    path.write_text(yaml.safe_dump({"name": "failures", "task": "lmc", "workspace": "ws",
                                    "splits": [{"name": "test", "path": str(split)}], "submissions": submissions,
                                    "metrics": ["PCC"], "limits": {"time_s": 30, "memory": "256m"}, **extra}))
    return path


def _logs_of(record: dict) -> list[str]:
    entries = [*record["cases"], *record.get("runs", [])]
    entries += [r for retry in record.get("retries", []) for r in retry.get("runs", [])]
    return [e[k] for e in entries for k in ("stdout", "stderr") if e.get(k)]


def _assert_logs_true(store: ResultStore, run_key: str) -> list[str]:
    """Every log path the run's run.json and the database record exists, outside any partial folder."""
    run = store.get_run(run_key)
    record = json.loads(Path(run["run_record_path"]).read_text())
    paths = _logs_of(record) + [c[k] for c in run["cases"] for k in ("stdout", "stderr") if c.get(k)]
    assert paths
    for path in paths:
        assert Path(path).is_file() and ".partial-" not in path, path
        assert Path(path).is_relative_to(run["predictions_path"]), path
    return paths


# --- untrusted text -------------------------------------------------------------------------------------------------


def test_control_characters_are_shown_escaped():
    assert escape_control("a\x1b[2Jb\x00c\rd\te\x07\x7f\x9b\u202eok") == \
        "a\\x1b[2Jb\\x00c\\rd\\te\\x07\\x7f\\x9b\\u202eok"
    assert escape_control("plain text: naïve, 日本") == "plain text: naïve, 日本"
    assert escape_control(None) == ""


def test_a_log_tail_is_its_last_lines_escaped(tmp_path):
    log = tmp_path / "x.stderr.txt"
    log.write_bytes(b"".join(f"line {i}\n".encode() for i in range(20)) + b"\n\x1b]0;title\x07bad \xff byte\n")
    assert log_tail(log, 3) == ["line 18", "line 19", "\\x1b]0;title\\x07bad \\xff byte"]
    assert log_tail(tmp_path / "missing.txt") == [] and log_tail(None) == []


def test_a_run_reason_is_the_most_common_one():
    cases = [{"status": "succeeded"}, {"status": "failed", "reason": "boom"}, {"status": "failed", "reason": "boom"},
             {"status": "timed_out", "reason": "killed"}]
    assert run_reason(cases) == "failed: boom (and 1 other reason)"
    assert run_reason(cases[:1]) is None


# --- the local runtime keeps the tracebacks of the cases that raised ------------------------------------------------


class _Exploding:
    name = "exploding"

    def predict(self, case):
        raise ValueError(f"\x1b[31mexploded on {case.name}\x1b[0m\nsecond line")


def test_the_local_runtime_keeps_each_failed_cases_traceback(split, tmp_path):
    record = run_local(_Exploding(), split, tmp_path / "pred")
    assert {c["status"] for c in record["cases"]} == {"failed"}
    logs = {c["stderr"] for c in record["cases"]}
    assert len(logs) == 1
    log = Path(logs.pop())
    assert log.is_file() and log.parent == tmp_path / "pred" / "logs"
    text = log.read_text()
    assert text.count("Traceback") == len(record["cases"]) and "in predict" in text
    assert record["cases"][0]["reason"].startswith("\x1b[31mexploded on")  # stored raw, one line
    assert "second line" not in record["cases"][0]["reason"]


# --- the benchmark file is checked whole -----------------------------------------------------------------------------


def test_every_problem_of_a_benchmark_file_is_found_before_anything_runs(split, tmp_path):
    bench = load_benchmark(_bench(tmp_path, split, [
        {"name": "a", "version": "1", "solution": "nope"},
        {"name": "b", "version": "1", "solution": "filterbank"},
        {"name": "c", "version": "1", "solution": "tiny-unet", "train": "no/such/split"},
        {"name": "d", "version": "1", "solution": "input", "checkpoint": "no/ckpt"},
        {"name": "e", "version": "1", "archive": "no.tar"},
        {"name": "f", "version": "1", "solution": "blurred"}]))
    with pytest.raises(BenchmarkError) as info:
        check_benchmark(bench)
    fields = [p.split(": ")[1] for p in info.value.problems]
    assert fields == ["submissions[0].solution", "submissions[1].train", "submissions[2].train",
                      "submissions[3].checkpoint", "submissions[4].archive"]
    assert all(p.startswith(f"{bench.source}: ") for p in info.value.problems)
    assert "train: PATH" in info.value.problems[1] and "--train" not in str(info.value)
    with ResultStore(workspace=tmp_path / "elsewhere") as store:
        with pytest.raises(BenchmarkError):
            run_benchmark(bench, store, progress=False, log=lambda m: None)
        assert store.list_runs() == []
    assert not (tmp_path / "ws").exists()


def test_a_training_split_of_another_task_and_a_split_that_is_not_one_are_problems(split, tmp_path):
    other = tmp_path / "adipocyte-ish"
    shutil.copytree(split, other)
    manifest = json.loads((other / "manifest.json").read_text())
    (other / "manifest.json").write_text(json.dumps({**manifest, "task": "adipocyte"}))
    bench = load_benchmark(_bench(tmp_path, split, [
        {"name": "a", "version": "1", "solution": "filterbank", "train": str(other)}]))
    bench = bench.model_copy(update={"splits": [*bench.splits, bench.splits[0].model_copy(
        update={"name": "more", "path": tmp_path})]})
    with pytest.raises(BenchmarkError) as info:
        check_benchmark(bench)
    assert [p.split(": ")[1] for p in info.value.problems] == ["splits[1].path", "submissions[0].train"]
    assert "adipocyte split" in info.value.problems[1]


# --- a run whose runtime raised: failed, explained, its logs kept -----------------------------------------------------


def _break(train: Path) -> None:
    victim = sorted((train / "inputs").iterdir())[0]
    victim.write_bytes(victim.read_bytes()[:64])


@pytest.mark.slow
def test_a_run_whose_runtime_raised_is_failed_explained_and_listed_below_the_board(split, tmp_path):
    train = tmp_path / "train"
    shutil.copytree(split, train)
    _break(train)
    bench = load_benchmark(_bench(tmp_path, split, [{"name": "ok", "version": "1", "solution": "blurred"},
                                                    {"name": "model", "version": "2", "solution": "filterbank",
                                                     "train": "train"}]))
    with ResultStore(workspace=bench.workspace) as store:
        outcome = run_benchmark(bench, store, progress=False, log=lambda m: None)
        assert outcome.errors == [] and outcome.scored == 1  # the failed run is not scored
        runs = {r["submission"]: r for r in store.list_runs()}
        assert runs["ok"]["status"] == "complete" and runs["model"]["status"] == "failed"
        failed = store.get_run(runs["model"]["run_key"])
        assert failed["n_succeeded"] == 0 and failed["n_cases"] == len(failed["cases"]) == 7
        [reason] = {c["reason"] for c in failed["cases"]}
        assert reason.startswith(f"{sorted((train / 'inputs').iterdir())[0].name}: not a readable TIFF")
        logs = _assert_logs_true(store, failed["run_key"])
        assert "ImageReadError" in Path(logs[0]).read_text()
        [failure] = outcome.failures
        assert failure["message"].startswith("model@2 on test: failed, no case succeeded (7 cases): failed: ")
        assert failure["logs"] == logs[0] and failure["status"] == "failed"

        entries = board_entries(store, "failures")
        assert [e.submission for e in entries] == ["ok"]
        [below] = unranked_runs(store, "failures", entries)
        assert (below["submission"], below["version"], below["status"]) == ("model", "2", "failed")
        assert "not a readable TIFF" in below["reason"]

        # retried while the cause is still there: still failed, every recorded log path still true
        again = run_benchmark(bench, store, retry_failed=True, progress=False, log=lambda m: None)
        assert again.inferred == 1 and len(again.failures) == 1
        assert store.get_run(failed["run_key"])["status"] == "failed"
        retried_logs = _assert_logs_true(store, failed["run_key"])
        assert all("/logs/retry-" in p for p in retried_logs)
        record = json.loads(Path(failed["run_record_path"]).read_text())
        assert record["retries"][0]["error"] and record["error"]

        # a run.json written before logs were relocated (its paths in the partial folder) is repaired on reuse
        final = Path(failed["predictions_path"])
        for case in record["cases"]:
            case["stderr"] = case["stderr"].replace(str(final), f"{final}.partial-0123abcd")
        Path(failed["run_record_path"]).write_text(json.dumps(record))
        run_benchmark(bench, store, progress=False, log=lambda m: None)
        assert _assert_logs_true(store, failed["run_key"]) == retried_logs
    assert not [p for p in (bench.workspace / "predictions").iterdir() if ".partial-" in p.name]


# --- the Docker runtime: logs at the final path, also after --retry-failed -------------------------------------------


@pytest.mark.docker
def test_container_logs_are_kept_at_the_runs_final_path_also_after_retry_failed(
        split, tmp_path, docker_client, base_image):
    from vsbench.harness.contract import LABEL_BATCH, LABEL_CONTRACT_VERSION, LABEL_TASK

    from container_images import build_image
    from docker_support import labelled_image

    scripted = Path(__file__).resolve().parent / "images" / "scripted"
    fail = labelled_image(docker_client, build_image(
        docker_client, "scripted-fail-65532-65532", scripted, buildargs={"MODE": "fail", "RUN_AS": "65532:65532"},
        base_image=base_image), {LABEL_TASK: "lmc", LABEL_CONTRACT_VERSION: "1", LABEL_BATCH: "true"})
    bench = load_benchmark(_bench(tmp_path, split, [{"name": "broken", "version": "1", "image": fail}]))
    with ResultStore(workspace=bench.workspace) as store:
        outcome = run_benchmark(bench, store, progress=False, log=lambda m: None)
        [run] = store.list_runs()
        logs = _assert_logs_true(store, run["run_key"])
        assert run["status"] == "failed" and outcome.errors == []
        stderr = {p for p in logs if p.endswith(".stderr.txt")}
        assert "ValueError: the model exploded" in Path(stderr.pop()).read_text()
        [failure] = outcome.failures
        assert "exit code 3" in failure["reason"] and Path(failure["logs"]).is_file()

        run_benchmark(bench, store, retry_failed=True, progress=False, log=lambda m: None)
        assert store.get_run(run["run_key"])["status"] == "failed"
        assert all("/logs/retry-" in p for p in _assert_logs_true(store, run["run_key"])
                   if p in {c["stderr"] for c in store.get_run(run["run_key"])["cases"]})


# --- interrupted: no run is left 'running' ---------------------------------------------------------------------------


@pytest.mark.slow
def test_an_interrupted_run_leaves_no_run_running_and_the_next_run_does_it(split, tmp_path):
    import signal
    import sqlite3
    import subprocess
    import time

    from cli_support import VSBENCH, cli_env, vsbench

    bench = _bench(tmp_path, split, [{"name": "input", "version": "1", "solution": "input"}])
    db = tmp_path / "ws" / "results.db"

    def statuses() -> list[str]:
        try:
            conn = sqlite3.connect(db, timeout=1)
            try:
                return [r[0] for r in conn.execute("SELECT status FROM runs")]
            finally:
                conn.close()
        except sqlite3.Error:
            return []

    proc = subprocess.Popen([str(VSBENCH), "--quiet", "run", bench.name], cwd=tmp_path, env=cli_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while "running" not in statuses() and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)  # Ctrl-C while the run is under way
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "vsbench: interrupted" in err, err
    assert statuses() == ["failed"]
    shown = vsbench("results", "show", "", "--workspace", "ws", cwd=tmp_path).stdout
    assert "failed: interrupted: KeyboardInterrupt" in shown

    vsbench("--quiet", "run", bench.name, cwd=tmp_path)
    assert statuses() == ["complete"]
