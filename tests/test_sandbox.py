"""The sandboxed Docker runtime against hostile images, and a plain grand-challenge template image.

Every hostile image (``containers/hostile/``) is a working grand-challenge LMC algorithm on every case but one,
:data:`ATTACKED`, where it attacks the sandbox and prints ``REPORT {json}`` (and ``PROGRESS {json}`` lines
while it runs). Each test runs one image one case per run through
:func:`vsbench.harness.docker_runtime.run_image` under tight :data:`LIMITS`, and asserts that the attacked
case ended with the specific status and reason, that the attack was contained (from its report in the kept
stdout), and that the other cases succeeded and were ingested. The template image
(``containers/gc-template-lmc/``) must run unlabelled, one case per run, and be scored by ``vsbench evaluate``.

Images are built once per folder content (:mod:`container_images`); the first session builds them (the
template image in ~10 s from a wheelhouse that ``pip download`` fills once), later ones reuse them.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import math
import os
import subprocess
import time
from pathlib import Path

import pytest

from vsbench.harness.contract import FAILED, INVALID_OUTPUT, OOM, SUCCEEDED, TIMED_OUT
from vsbench.harness.docker_runtime import RUN_LABEL, Limits, run_image
from vsbench.harness.predict import RUN_RECORD, prediction_path
from vsbench.harness.split import Split, sha256_file

from container_images import ATTACKS, ImageBuildError, build_gc_template, build_hostile
from docker_support import _require
from splitfactory import ORGANELLES, make_split

pytestmark = pytest.mark.docker

# 3 cases, 2 fields of view, every organelle with ground truth in one of them
FIELDS = [
    (0, "BF", ("nucleus", "mitochondria"), [(3, 3), (5, 3)]),
    (1, "PC", ("tubulin", "actin"), [(4, 4)]),
]
CASES = ("image_0_BF_z3.ome.tiff", "image_0_BF_z5.ome.tiff", "image_1_PC_z4.ome.tiff")
ATTACKED = "image_0_BF_z5.ome.tiff"  # the middle case: a case before and one after it must still succeed
ATTACKED_STEM = ATTACKED.split(".")[0]
SANDBOX_USER = "65532:65532"  # the hostile images' USER
LIMITS = Limits(time_s=15, memory_bytes=256 << 20, cpus=1.0, pids=64, output_bytes=4 << 20, tmp_bytes=64 << 20,
                log_bytes=4 << 20)
LIMITS_BY_ATTACK = {"sleep-forever": dataclasses.replace(LIMITS, time_s=6)}
MiB = 1 << 20


# --- fixtures --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def split(tmp_path_factory) -> Split:
    split = Split(make_split(tmp_path_factory.mktemp("sandbox-split") / "split", shape=(48, 40), seed=3,
                             fields=FIELDS))
    assert [c.name for c in split.cases()] == list(CASES)
    return split


def _built(build, *args) -> str:
    try:
        return build(*args)
    except ImageBuildError as exc:
        if _require():
            pytest.fail(f"{exc}; VSBENCH_REQUIRE_DOCKER=1")
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def hostile_image(docker_client, base_image):
    """attack -> tag of its image attacking :data:`ATTACKED` (built at most once per session)."""
    tags: dict[str, str] = {}

    def get(attack: str) -> str:
        if attack not in tags:
            tags[attack] = _built(build_hostile, docker_client, attack, ATTACKED_STEM, base_image)
        return tags[attack]

    return get


class AttackRun:
    """One run of a hostile image on the split, and what it left behind."""

    def __init__(self, attack: str, root: Path, record: dict, seconds: float, image_id: str):
        self.attack, self.root, self.record, self.seconds, self.image_id = attack, root, record, seconds, image_id
        self.predictions = root / "predictions"
        self.cases = {c["case"]: c for c in record["cases"]}
        self.attacked = self.cases[ATTACKED]
        self.stdout = Path(self.attacked["stdout"]).read_text(errors="replace")
        self.stderr = Path(self.attacked["stderr"]).read_text(errors="replace")

    def lines(self, kind: str) -> list:
        return [json.loads(line[len(kind) + 1:]) for line in self.stdout.splitlines() if line.startswith(kind + " ")]

    @property
    def report(self) -> dict:
        reports = self.lines("REPORT")
        assert len(reports) == 1, f"{self.attack}: expected one REPORT line in the kept stdout:\n{self.stdout[-2000:]}"
        assert reports[0]["attack"] == self.attack and reports[0]["case"] == ATTACKED
        return reports[0]


@pytest.fixture(scope="module")
def attack_run(split, hostile_image, docker_client, tmp_path_factory):
    """attack -> :class:`AttackRun` (each image runs once per module)."""
    done: dict[str, AttackRun] = {}

    def get(attack: str) -> AttackRun:
        if attack not in done:
            tag = hostile_image(attack)
            root = tmp_path_factory.mktemp(f"run-{attack}")
            (root / "work").mkdir()
            t0 = time.perf_counter()
            record = run_image(tag, split, root / "predictions", contract="grand-challenge",
                               limits=LIMITS_BY_ATTACK.get(attack, LIMITS), client=docker_client,
                               work_dir=root / "work")
            done[attack] = AttackRun(attack, root, record, time.perf_counter() - t0, docker_client.images.get(tag).id)
        return done[attack]

    return get


# --- what every hostile run must show --------------------------------------------------------------------------


def _tree(root: Path) -> list[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        found += [str((Path(dirpath) / n).relative_to(root)) for n in dirnames + filenames]
    return sorted(found)


def _assert_common(run: AttackRun, split: Split, docker_client) -> None:
    record = run.record
    assert record["runtime"] == "docker" and record["sandboxed"] is True
    assert record["contract"] == "grand-challenge" and record["batch"] is False
    assert record["user"] == SANDBOX_USER
    assert record["image"]["id"] == run.image_id
    assert [c["case"] for c in record["cases"]] == list(CASES)
    assert sum(record["summary"].values()) == len(CASES)
    assert json.loads((run.predictions / RUN_RECORD).read_text())["cases"] == record["cases"]
    for name, case in run.cases.items():
        assert case["image_digest"] == run.image_id
        assert Path(case["stdout"]).is_file() and Path(case["stderr"]).is_file()
        if name == ATTACKED:
            continue
        # the cases around the attacked one ran normally and were ingested
        assert case["status"] == SUCCEEDED, (name, case)
        assert case["reason"] is None and case["exit_code"] == 0
        for organelle in ORGANELLES:
            assert prediction_path(run.predictions, organelle, name).is_file(), (name, organelle)
    if run.attacked["status"] != SUCCEEDED:
        for organelle in ORGANELLES:  # nothing of a refused case is ingested
            assert not prediction_path(run.predictions, organelle, ATTACKED).exists()
    # the split is untouched, no container is left behind, the work folder was cleaned up
    assert split.verify() == []
    assert docker_client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={record['run_id']}"}) == []
    assert _tree(run.root / "work") == []
    # nothing was written outside the prediction folder (its layout, run.json, logs)
    allowed = {"predictions", "work", f"predictions/{RUN_RECORD}", "predictions/logs"}
    allowed |= {f"predictions/{o}-fluorescence-ome-tiff" for o in ORGANELLES}
    for rel in _tree(run.root):
        parent = rel.rsplit("/", 1)[0]
        assert rel in allowed or parent in allowed, f"{run.attack}: unexpected {rel} after the run"
        if parent.endswith("-fluorescence-ome-tiff"):
            assert rel.rsplit("/", 1)[1] in CASES
        if parent == "predictions/logs":
            assert rel.endswith((".stdout.txt", ".stderr.txt"))


# --- per attack ------------------------------------------------------------------------------------------------


def _check_gt_search(run: AttackRun, split: Split) -> None:
    assert run.attacked["status"] == SUCCEEDED, run.attacked
    report = run.report
    assert report["files"] > 1000, "the walk did not cover the image's filesystem"
    digests = run.lines("DIGESTS")
    assert len(digests) == 1 and len(digests[0]) > 1000
    seen = set(digests[0])
    ground_truth = [p for p in split.ground_truth_dir.iterdir() if p.is_file()] + [split.root / "manifest.json"]
    assert len(ground_truth) >= 5
    for path in ground_truth:
        assert sha256_file(path)[:16] not in seen, f"{path.name} is readable in the container"
    # the only TIFF in the container is the staged copy of its own case (no other case, no target)
    assert [t["path"] for t in report["tiffs"]] == [f"/input/images/organelles-transmitted-light-ome-tiff/{ATTACKED}"]
    assert report["tiffs"][0]["sha256"] == sha256_file(split.inputs_dir / ATTACKED)
    for other in CASES:
        if other != ATTACKED:
            assert sha256_file(split.inputs_dir / other)[:16] not in seen
    assert report["content_hits"] == []
    assert not [p for p in report["named"] if "ground" in p.lower() or "/input" in p or "/output" in p]
    # no host path of the split leaks (mounts, environment, anything printed)
    for text in (str(split.root), str(split.root.resolve()), "ground_truth"):
        assert text not in run.stdout
    assert {m["mountpoint"] for m in report["mounts"]} >= {"/input", "/output", "/tmp"}
    modes = {m["mountpoint"]: m["options"].split(",") for m in report["mounts"]}
    assert "ro" in modes["/input"] and "ro" in modes["/"]


def _check_write_input(run: AttackRun, split: Split) -> None:
    assert run.attacked["status"] == SUCCEEDED, run.attacked
    results = run.report["results"]
    assert results.pop("create /tmp/scratch") == "ok"  # /tmp is the writable scratch space
    assert len(results) >= 15
    refused = {name: result for name, result in results.items() if result in ("EROFS", "EACCES", "EPERM")}
    assert refused == results, f"attempts that were not refused: {set(results) - set(refused)}"
    assert results["create /input/new.txt"] == "EROFS" and results["unlink input"] == "EROFS"
    assert results["create /etc/pwned"] == "EROFS"
    # what the container could not change it read from the staged copy: the split is untouched
    assert split.verify() == []


def _check_escape_output(run: AttackRun, split: Split) -> None:
    case = run.attacked
    assert case["status"] == INVALID_OUTPUT, case
    assert case["exit_code"] == 0
    assert any(word in case["reason"] for word in ("symbolic link", "hard link", "fifo", "zz-escape", "'images/x'")), \
        case["reason"]
    results = run.report["results"]
    # every trick was actually planted (so the verdict is about them) except the write onto the root fs
    planted = ("symlink nucleus -> /etc/passwd", "symlink mitochondria -> input", "hard link tubulin = actin",
               "symlink to /", "fifo", "write images/x/../../zz-escape.tiff")
    assert all(results[p] == "ok" for p in planted), results
    assert results["write images/x/../../../escape.tiff"] == "EROFS"
    # the harness neither hung on the FIFO nor followed the links
    assert run.seconds < 60
    for organelle in ORGANELLES:
        assert not prediction_path(run.predictions, organelle, ATTACKED).exists()
    passwd = Path("/etc/passwd").read_bytes()
    for path in run.predictions.rglob("*"):
        assert not path.is_symlink()
        assert not path.is_file() or path.read_bytes() != passwd


def _check_network(run: AttackRun, split: Split) -> None:
    assert run.attacked["status"] == SUCCEEDED, run.attacked
    report = run.report
    assert report["sys_class_net"] == ["lo"]
    assert report["if_nameindex"] == ["lo"]
    assert report["routes"] == []


def _check_fork_bomb(run: AttackRun, split: Split) -> None:
    case = run.attacked
    assert case["status"] in (FAILED, TIMED_OUT), case
    report = run.report
    assert report["capped"] is False
    assert 8 <= report["forks"] < LIMITS.pids, report  # bounded by the pids limit (init and python count too)
    assert report["last_error"] == "EAGAIN"
    if case["status"] == FAILED:
        assert case["exit_code"] == 3
        assert case["reason"].startswith("exit code 3") and "fork refused (EAGAIN)" in case["reason"], case["reason"]
    # the host still forks
    assert subprocess.run(["true"], timeout=30).returncode == 0


def _check_memory_hog(run: AttackRun, split: Split) -> None:
    case = run.attacked
    assert case["status"] == OOM, case
    assert "memory" in case["reason"] and str(LIMITS.memory_bytes >> 20) in case["reason"], case["reason"]
    assert run.lines("REPORT") == []  # it never got to its safety cap
    allocated = [p["allocated"] for p in run.lines("PROGRESS")]
    assert allocated and max(allocated) <= LIMITS.memory_bytes


def _check_sleep_forever(run: AttackRun, split: Split) -> None:
    case = run.attacked
    limits = LIMITS_BY_ATTACK["sleep-forever"]
    assert case["status"] == TIMED_OUT, case
    assert "time limit" in case["reason"] and f"{limits.time_s:g}" in case["reason"], case["reason"]
    assert run.report["sleeping"] is True
    assert limits.time_s <= case["durations"]["run"] < limits.time_s + 20
    assert run.seconds < limits.time_s + 60


def _check_huge_output(run: AttackRun, split: Split) -> None:
    case = run.attacked
    assert case["status"] in (INVALID_OUTPUT, FAILED), case
    # killed by the runtime's output watch (bytes or entries), or refused at ingestion: the reason names the limit
    assert "output" in case["reason"] and ("limit" in case["reason"] or "entries" in case["reason"]), case["reason"]
    reports = run.lines("REPORT")
    written = [p["written"] for p in run.lines("PROGRESS")] + [r["written"] for r in reports]
    assert written, run.stdout[-2000:]
    # the file size limit (the output cap, or /tmp's size if larger) stopped the growing file
    assert max(written) <= max(LIMITS.output_bytes, LIMITS.tmp_bytes)
    assert all(r["capped"] is False for r in reports)
    for r in reports:  # if it lived to report, the growth ended in "file too large" (or a full disk)
        assert r["error"] in {errno.errorcode[e] for e in (errno.EFBIG, errno.ENOSPC, errno.EDQUOT)}
    used = sum(p.stat().st_size for p in run.root.rglob("*") if p.is_file() and not p.is_symlink())
    assert used < 2 * MiB  # what remains on the host: the other cases' predictions and the logs


def _check_setuid(run: AttackRun, split: Split) -> None:
    assert run.attacked["status"] == SUCCEEDED, run.attacked
    report = run.report
    # the attack was real: setuid-root binaries and a root-only file are there
    assert report["modes"]["/usr/local/bin/suid-python"] == {"mode": "0o4755", "uid": 0}
    assert report["modes"]["/usr/local/bin/suid-id"] == {"mode": "0o4755", "uid": 0}
    assert report["modes"]["/root-only.txt"] == {"mode": "0o600", "uid": 0}
    # ... and gave nothing
    assert report["uid"] == report["euid"] == 65532
    assert report["euid_via_id"] == 65532
    assert report["via_python"] == {"euid": 65532, "egid": 65532, "read": False, "error": errno.EACCES}
    assert report["read_root_only_direct"] == "EACCES"
    assert report["setuid0"] == "EPERM"
    status = report["proc_status"]
    assert status["NoNewPrivs"] == "1"
    for caps in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(status[caps], 16) == 0, (caps, status[caps])


CHECKS = {
    "gt-search": _check_gt_search,
    "write-input": _check_write_input,
    "escape-output": _check_escape_output,
    "network": _check_network,
    "fork-bomb": _check_fork_bomb,
    "memory-hog": _check_memory_hog,
    "sleep-forever": _check_sleep_forever,
    "huge-output": _check_huge_output,
    "setuid": _check_setuid,
}
assert set(CHECKS) == set(ATTACKS)


@pytest.mark.parametrize("attack", ATTACKS)
def test_hostile_image_is_contained(attack, attack_run, split, docker_client):
    run = attack_run(attack)
    CHECKS[attack](run, split)
    _assert_common(run, split, docker_client)


# --- a plain grand-challenge template image --------------------------------------------------------------------


def test_grand_challenge_template_image_runs_and_scores(split, docker_client, base_image, tmp_path):
    from vsbench.harness.cli import main

    tag = _built(build_gc_template, docker_client, base_image)
    image = docker_client.images.get(tag)
    assert not any(k.startswith("org.vsbench.") for k in (image.attrs["Config"].get("Labels") or {}))
    predictions = tmp_path / "predictions"
    record = run_image(tag, split, predictions, contract="auto", client=docker_client, work_dir=tmp_path,
                       limits=Limits(time_s=120, memory_bytes=1 << 30, pids=64))
    # no labels: a grand-challenge algorithm, one run per case, as its own (non-root) user
    assert record["contract"] == "grand-challenge" and record["batch"] is False
    assert len(record["runs"]) == len(CASES)
    uid = record["user"].split(":")[0]
    assert uid.isdigit() and int(uid) != 0 and record["user"] != SANDBOX_USER  # the image's "user"
    assert record["summary"][SUCCEEDED] == len(CASES), record["cases"]
    for case in record["cases"]:
        assert case["status"] == SUCCEEDED and case["exit_code"] == 0
        assert f"{case['case']}: wrote nucleus, mitochondria, tubulin, actin" in Path(case["stdout"]).read_text()
    out = tmp_path / "metrics.json"
    assert main(["--quiet", "evaluate", "--task", "lmc", "--split", str(split.root), "--predictions",
                 str(predictions), "--out", str(out)]) == 0
    metrics = json.loads(out.read_text())
    assert metrics["provenance"]["n_cases"] == len(CASES) and metrics["errors"] == []
    for organelle in ORGANELLES:
        assert math.isfinite(metrics["aggregates"][organelle]["PCC"])
        assert math.isfinite(metrics["aggregates"][organelle]["SSIM"])
    # non-trivial: the predictions differ between organelles
    a = prediction_path(predictions, "nucleus", CASES[0]).read_bytes()
    b = prediction_path(predictions, "mitochondria", CASES[0]).read_bytes()
    assert a != b
