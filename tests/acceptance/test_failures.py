"""The failure paths a user meets, through the installed ``vsbench`` only, in temporary folders.

- a benchmark file with mistakes: every problem on its own ``vsbench: error:`` line, exit 2, nothing run or stored;
- a submission that fails every case (an in-process solution whose training split has an unreadable file; with
  Docker, an image that exits non-zero and writes escape sequences on stderr): its reason and its log path in the
  run's summary, ``failed`` in ``results list``, its escaped stderr tail in ``results show``, listed below the
  ranked submissions by ``leaderboard show``; ``--retry-failed`` after the cause is fixed (or not);
- a run killed with SIGKILL mid-way and resumed by running the same command again: the same results as a run
  that was never interrupted.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from cli_support import VSBENCH, cli_env, vsbench

ERROR = "vsbench: error: "


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """A synthetic Light My Cells split pair (DATA/train, DATA/test), made once by the CLI."""
    root = tmp_path_factory.mktemp("failures-data")
    vsbench("data", "synth", "lmc", root / "lmc", "--fovs", "2", "--size", "64", "--seed", "0", cwd=root)
    return root / "lmc"


def _write(folder: Path, doc: dict, name: str = "bench.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(yaml.safe_dump(doc, sort_keys=False))
    return folder / name


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(ERROR)]


def _list_lines(cwd: Path) -> list[str]:
    return sorted(vsbench("results", "list", cwd=cwd).stdout.splitlines())


def _list_line(cwd: Path, entry: str) -> str:
    lines = [line for line in _list_lines(cwd) if f"  {entry}  " in line]
    assert len(lines) == 1, lines
    return lines[0]


# --- a bad benchmark file -------------------------------------------------------------------------------------------


def test_a_bad_benchmark_file_reports_every_problem_and_runs_nothing(data, tmp_path):
    (tmp_path / "ckpt").mkdir()
    bench = _write(tmp_path, {
        "name": "bad", "task": "lmc",
        "splits": [{"name": "test", "path": str(data / "test")}, {"name": "gone", "path": "data/nowhere"}],
        "submissions": [
            {"name": "ok", "version": "1", "solution": "blurred"},
            {"name": "typo", "version": "1", "solution": "blured"},
            {"name": "learner", "version": "1", "solution": "filterbank"},
            {"name": "lost-train", "version": "1", "solution": "filterbank", "train": "data/no-train"},
            {"name": "lost-ckpt", "version": "1", "solution": "vqgan-lmc-tiny", "checkpoint": "ckpt/missing"},
            {"name": "no-ckpt", "version": "1", "solution": "filterbank", "checkpoint": "ckpt",
             "train": str(data / "train")},
            {"name": "other-task", "version": "1", "solution": "adipocyte-ridge"},
            {"name": "upload", "version": "1", "archive": "uploads/team.tar.gz"},
        ]})
    proc = vsbench("run", bench.name, cwd=tmp_path, expect=2)
    errors = _errors(proc.stderr)
    assert len(errors) == len(proc.stderr.splitlines()) == 8, proc.stderr  # one line per problem, nothing else
    assert [line.removeprefix(ERROR).split(": ")[:2] for line in errors] == [
        ["bench.yaml", w] for w in ("splits[1].path", "submissions[1].solution", "submissions[2].train",
                                    "submissions[3].train", "submissions[4].checkpoint",
                                    "submissions[5].checkpoint", "submissions[6].solution",
                                    "submissions[7].archive")]
    text = "\n".join(errors)
    assert "unknown algorithm 'blured'" in text and "train:" in text and "--train" not in text
    assert "adipocyte" in errors[6] and "does not load checkpoints" in errors[5]
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert not (tmp_path / ".vsbench").exists()  # nothing run, nothing stored


def test_a_file_with_several_schema_mistakes_names_each(tmp_path):
    bench = _write(tmp_path, {"name": "bad schema", "task": "lmc", "splits": [{"name": "test", "path": "x"}],
                              "submissions": [{"name": "a", "solution": "blurred"},
                                              {"name": "b", "version": "1", "solution": "input", "colour": 1}]})
    proc = vsbench("run", bench, cwd=tmp_path, expect=2)
    errors = _errors(proc.stderr)
    assert len(errors) == len(proc.stderr.splitlines()) == 3, proc.stderr
    assert {e.removeprefix(ERROR).split(": ")[1] for e in errors} == {"name", "submissions[0].version",
                                                                      "submissions[1].colour"}


# --- a submission failing every case --------------------------------------------------------------------------------


def _broken_train(data: Path, where: Path) -> Path:
    """A copy of the training split with one input TIFF cut short (the manifest is unchanged)."""
    shutil.copytree(data / "train", where)
    victim = sorted((where / "inputs").iterdir())[0]
    victim.write_bytes(victim.read_bytes()[:100])
    return where


def _failing_bench(data: Path, folder: Path) -> Path:
    _broken_train(data, folder / "broken-train")
    return _write(folder, {
        "name": "failing", "task": "lmc", "splits": [{"name": "test", "path": str(data / "test")}],
        "submissions": [{"name": "blurred", "version": "1", "solution": "blurred"},
                        {"name": "model", "version": "2", "solution": "filterbank", "train": "broken-train"}],
        "metrics": ["PCC"]})


def _recorded_logs(run_json: Path) -> list[str]:
    record = json.loads(run_json.read_text())
    paths = [c[k] for c in record["cases"] for k in ("stdout", "stderr") if c.get(k)]
    paths += [r[k] for r in record.get("runs", []) for k in ("stdout", "stderr") if r.get(k)]
    return paths


@pytest.mark.slow
def test_a_submission_failing_every_case_is_explained_listed_and_retried(data, tmp_path):
    bench = _failing_bench(data, tmp_path)
    proc = vsbench("run", bench.name, cwd=tmp_path, expect=1)
    assert "Traceback" not in proc.stderr and "distributed.worker" not in proc.stderr, proc.stderr
    errors = _errors(proc.stderr)
    assert len(errors) == 1 and errors[0].startswith(f"{ERROR}model@2 on test: "), proc.stderr
    assert "not a readable TIFF" in errors[0]
    logs = Path(re.search(r"logs: (\S+)$", errors[0])[1])
    assert logs.exists() and ".partial-" not in str(logs)

    line = _list_line(tmp_path, "model@2")
    assert "  failed  0/12 ok" in line and "running" not in " ".join(_list_lines(tmp_path))
    key = line.split()[0]
    shown = vsbench("results", "show", key, cwd=tmp_path).stdout
    assert re.search(r": failed: .*not a readable TIFF", shown), shown
    assert "ImageReadError" in shown  # the stderr tail: the traceback's last line
    log_files = {Path(p) for p in re.findall(r"log: (\S+)", shown)}
    assert log_files and all(p.is_file() and ".partial-" not in str(p) for p in log_files)

    # a container's or solution's stderr is untrusted: control characters never reach the terminal raw
    log_file = sorted(log_files)[0]
    with open(log_file, "ab") as fh:
        fh.write(b"\x1b]0;pwned\x07\x1b[2Jcleared\x00nul\rback\n")
    shown = vsbench("results", "show", key, cwd=tmp_path).stdout
    assert "\\x1b]0;pwned\\x07\\x1b[2Jcleared\\x00nul\\rback" in shown
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", shown)

    board = vsbench("leaderboard", "show", bench.name, "--bootstrap", "0", cwd=tmp_path).stdout
    rows = board.splitlines()
    ranked = [i for i, r in enumerate(rows) if re.search(r"\bblurred\b", r)]
    failed = [i for i, r in enumerate(rows) if re.search(r"\bmodel\b", r)]
    assert len(ranked) == 1 and failed and min(failed) > max(ranked), board
    assert "failed" in rows[min(failed)] and "not a readable TIFF" in board

    # the cause fixed, --retry-failed re-runs the failed cases only; the run is then complete and scored
    shutil.rmtree(tmp_path / "broken-train")
    shutil.copytree(data / "train", tmp_path / "broken-train")
    retried = vsbench("run", bench.name, "--retry-failed", cwd=tmp_path)
    assert _errors(retried.stderr) == []
    assert "  complete  12/12 ok" in _list_line(tmp_path, "model@2")
    run = json.loads(vsbench("results", "show", key, "--json", cwd=tmp_path).stdout)
    assert run["status"] == "complete" and run["score_keys"]
    for path in _recorded_logs(Path(run["run_record_path"])) + [c["stderr"] for c in run["cases"] if c["stderr"]]:
        assert Path(path).is_file(), path
    board = vsbench("leaderboard", "show", bench.name, "--bootstrap", "0", cwd=tmp_path).stdout
    assert "failed" not in board


# --- killed and resumed ---------------------------------------------------------------------------------------------


def _runs_bench(data: Path, folder: Path) -> Path:
    return _write(folder, {
        "name": "resumable", "task": "lmc", "splits": [{"name": "test", "path": str(data / "test")}],
        "submissions": [{"name": s, "version": "1", "solution": s} for s in ("input", "blurred")],
        "metrics": ["PCC"]})


def _complete_runs(db: Path) -> int:
    if not db.is_file():
        return 0
    try:
        conn = sqlite3.connect(db, timeout=1)
        try:
            return conn.execute("SELECT count(*) FROM runs WHERE status = 'complete'").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:  # not created yet, or busy
        return 0


@pytest.mark.slow
def test_a_run_killed_mid_way_and_run_again_gives_the_uninterrupted_results(data, tmp_path):
    reference, killed = _runs_bench(data, tmp_path / "ref"), _runs_bench(data, tmp_path / "killed")
    vsbench("--quiet", "run", reference.name, cwd=reference.parent)

    proc = subprocess.Popen([str(VSBENCH), "--quiet", "run", killed.name], cwd=killed.parent, env=cli_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    try:  # killed once the first run is stored complete, with the others (or their scores) still to do
        while _complete_runs(killed.parent / ".vsbench" / "results.db") < 1 and proc.poll() is None:
            assert time.monotonic() < deadline, "the run stored nothing in 120 s"
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the run and its Dask workers
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"

    vsbench("--quiet", "run", killed.name, cwd=killed.parent)
    listed = _list_lines(killed.parent)
    assert listed == _list_lines(reference.parent) and len(listed) == 2
    assert all("  complete  12/12 ok" in line for line in listed)


# --- with Docker: an image that fails and writes escape sequences on stderr -----------------------------------------

HOSTILE_DOCKERFILE = """\
ARG BASE_IMAGE=vsbench/base:bookworm
FROM ${BASE_IMAGE}
LABEL org.vsbench.task="lmc" org.vsbench.contract-version="1" org.vsbench.batch="true"
COPY fail.py /opt/fail.py
USER 65532:65532
ENTRYPOINT ["python3", "/opt/fail.py"]
"""
HOSTILE_SCRIPT = r"""import sys
print("starting", flush=True)
sys.stderr.write("loading weights\n\x1b]0;pwned\x07\x1b[2Jmodel exploded\x00 at \x1b[31mstep 3\x1b[0m\n")
sys.exit(3)
"""
RAW_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # anything but tab and newline


@pytest.mark.docker
@pytest.mark.slow
def test_a_failing_image_is_explained_with_its_stderr_escaped_also_after_retry_failed(data, tmp_path, docker_client,
                                                                                      base_image):
    from container_images import build_image

    context = tmp_path / "hostile"
    context.mkdir()
    (context / "Dockerfile").write_text(HOSTILE_DOCKERFILE)
    (context / "fail.py").write_text(HOSTILE_SCRIPT)
    image = build_image(docker_client, "escapes-on-stderr", context, base_image=base_image)
    bench = _write(tmp_path, {
        "name": "hostile", "task": "lmc", "splits": [{"name": "test", "path": str(data / "test")}],
        "submissions": [{"name": "hostile", "version": "1", "image": image}],
        "metrics": ["PCC"], "limits": {"time_s": 60, "memory": "256m"}})

    for args in (["--quiet", "run", bench.name], ["--quiet", "run", bench.name, "--retry-failed"]):
        proc = vsbench(*args, cwd=tmp_path, expect=1)
        assert not RAW_CONTROL.search(proc.stdout + proc.stderr), proc.stderr
        [error] = _errors(proc.stderr)
        assert error.startswith(f"{ERROR}hostile@1 on test: failed, no case succeeded (12 cases): failed: exit code 3: "
                                "\\x1b]0;pwned\\x07\\x1b[2Jmodel exploded\\x00 at \\x1b[31mstep 3\\x1b[0m; logs: ")
        assert Path(error.rsplit("logs: ", 1)[1]).is_file()
        line = _list_line(tmp_path, "hostile@1")
        assert "  failed  0/12 ok" in line and "docker" in line

        shown = vsbench("results", "show", line.split()[0], cwd=tmp_path).stdout
        assert not RAW_CONTROL.search(shown)
        assert "| loading weights" in shown and "| \\x1b]0;pwned\\x07\\x1b[2Jmodel exploded\\x00 at" in shown
        logs = [Path(p) for p in re.findall(r"log: (\S+)", shown)]
        assert logs and all(p.is_file() and ".partial-" not in str(p) for p in logs)

    assert all("/logs/retry-" in str(p) for p in logs)  # the retried cases' own logs
    board = vsbench("leaderboard", "show", bench.name, "--bootstrap", "0", cwd=tmp_path, expect=2)
    assert _errors(board.stderr) == [f"{ERROR}benchmark 'hostile' has no scored runs in this database; its 1 stored "
                                     "run(s) failed or are not scored (see 'vsbench results list')"]
