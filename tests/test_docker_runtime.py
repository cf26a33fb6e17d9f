"""The sandboxed Docker runtime: options of every run, users, statuses, batch vs one run per case, the CLI.

The attacks of untrusted images are in ``test_sandbox.py``; the packaged solutions in ``test_images.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vsbench.harness.cli import main
from vsbench.harness.contract import LABEL_BATCH, LABEL_CONTRACT_VERSION, LABEL_TASK, SUCCEEDED, TIMED_OUT
from vsbench.harness.docker_runtime import (
    FALLBACK_USER,
    RUN_LABEL,
    ImageError,
    Limits,
    container_options,
    parse_bytes,
    run_image,
)
from vsbench.harness.predict import prediction_path
from vsbench.harness.split import Split

from container_images import build_image
from docker_support import labelled_image
from splitfactory import DEFAULT_FIELDS, make_split

SCRIPTED = Path(__file__).resolve().parent / "images" / "scripted"
FAST = Limits(time_s=30, memory_bytes=256 << 20, pids=64)


def test_every_run_is_contained_by_its_options(tmp_path):
    limits = Limits(time_s=10, memory_bytes=512 << 20, cpus=1.5, pids=32, tmp_bytes=64 << 20)
    opts = container_options("sha256:abc", tmp_path / "in", tmp_path / "out", limits, FALLBACK_USER, 1 << 20, "r1")
    assert opts["network_mode"] == "none" and opts["read_only"] is True
    assert opts["cap_drop"] == ["ALL"] and opts["security_opt"] == ["no-new-privileges"]
    assert opts["volumes"] == {str(tmp_path / "in"): {"bind": "/input", "mode": "ro"},
                               str(tmp_path / "out"): {"bind": "/output", "mode": "rw"}}
    assert set(opts["tmpfs"]) == {"/tmp"} and f"size={64 << 20}" in opts["tmpfs"]["/tmp"]
    assert opts["mem_limit"] == opts["memswap_limit"] == 512 << 20  # no swap
    assert opts["pids_limit"] == 32 and opts["nano_cpus"] == 1_500_000_000 and opts["user"] == FALLBACK_USER
    assert {u["Name"]: u["Hard"] for u in opts["ulimits"]}["fsize"] == 64 << 20  # max(output cap, /tmp size)
    small_tmp = container_options("x", tmp_path, tmp_path, Limits(tmp_bytes=1 << 20), FALLBACK_USER, 8 << 20, "r")
    assert {u["Name"]: u["Hard"] for u in small_tmp["ulimits"]}["fsize"] == 8 << 20
    assert opts["labels"] == {RUN_LABEL: "r1"} and "device_requests" not in opts
    gpu = container_options("x", tmp_path, tmp_path, Limits(gpus=1), FALLBACK_USER, 1, "r")["device_requests"]
    assert gpu[0]["Count"] == 1 and gpu[0]["Capabilities"] == [["gpu"]]


def test_sizes_and_limits_are_checked():
    assert parse_bytes("512m") == 512 << 20 and parse_bytes("4g") == 4 << 30 and parse_bytes("2GiB") == 2 << 30
    assert parse_bytes("1048576") == 1 << 20
    for bad in ("lots", "-1g", "4x"):
        with pytest.raises(ValueError, match="not a size"):
            parse_bytes(bad)
    with pytest.raises(ValueError, match="time_s"):
        Limits(time_s=0)
    with pytest.raises(ValueError, match="gpus"):
        Limits(gpus=-2)


@pytest.fixture(scope="module")
def split(tmp_path_factory) -> Split:
    return Split(make_split(tmp_path_factory.mktemp("rt") / "split", seed=11, fields=DEFAULT_FIELDS[:2]))


def _image(client, base_image, mode="copy", run_as="65532:65532", labels=None) -> str:
    tag = build_image(client, f"scripted-{mode}-{run_as.replace(':', '-')}", SCRIPTED,
                      buildargs={"MODE": mode, "RUN_AS": run_as}, base_image=base_image)
    if labels:  # the same image, declared a vsbench image: a child image with labels only
        return labelled_image(client, tag, labels)
    return tag


def _uid_line(case: dict) -> str:
    return Path(case["stdout"]).read_text().splitlines()[0]


@pytest.mark.docker
def test_grand_challenge_mode_runs_once_per_case_and_scores(docker_client, base_image, split, tmp_path):
    image = _image(docker_client, base_image)
    record = run_image(image, split, tmp_path / "pred", limits=FAST, client=docker_client)
    cases = [c.name for c in split.cases()]
    assert record["contract"] == "grand-challenge" and record["batch"] is False and record["sandboxed"] is True
    assert [c["case"] for c in record["cases"]] == cases and len(record["runs"]) == len(cases)
    assert {c["status"] for c in record["cases"]} == {SUCCEEDED}
    assert {c["image_digest"] for c in record["cases"]} == {docker_client.images.get(image).id}
    assert len({c["stdout"] for c in record["cases"]}) == len(cases)  # one log per run
    assert all(prediction_path(tmp_path / "pred", "actin", c).is_file() for c in cases)
    assert json.loads((tmp_path / "pred" / "run.json").read_text()) == record
    assert not docker_client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={record['run_id']}"})


@pytest.mark.docker
def test_root_and_names_that_resolve_to_root_run_as_nonroot(docker_client, base_image, split, tmp_path):
    one = [split.cases()[0].name]
    for run_as, expected in (("root", "UID=65532 GID=65532"), ("app", "UID=65532 GID=65532"),
                             ("worker", "UID=4242 GID=4242"), ("0:0", "UID=65532 GID=65532")):
        image = _image(docker_client, base_image, run_as=run_as)
        record = run_image(image, split, tmp_path / run_as, limits=FAST, cases=one, client=docker_client)
        assert record["cases"][0]["status"] == SUCCEEDED, record["cases"][0]
        assert _uid_line(record["cases"][0]).startswith(expected), run_as


@pytest.mark.docker
def test_batch_run_keeps_the_cases_written_before_a_timeout(docker_client, base_image, split, tmp_path):
    labels = {LABEL_TASK: "lmc", LABEL_CONTRACT_VERSION: "1", LABEL_BATCH: "true"}
    image = _image(docker_client, base_image, mode="first-then-hang", labels=labels)
    record = run_image(image, split, tmp_path / "pred", limits=Limits(time_s=4, memory_bytes=256 << 20),
                       client=docker_client)
    assert record["contract"] == "vsbench" and record["batch"] is True and len(record["runs"]) == 1
    first, *rest = record["cases"]
    assert first["status"] == SUCCEEDED and first["case"] == sorted(c.name for c in split.cases())[0]
    assert {c["status"] for c in rest} == {TIMED_OUT}
    assert all("time limit of 4 s" in c["reason"] for c in rest)
    assert record["runs"][0]["durations"]["run"] >= 4


@pytest.mark.docker
def test_a_failing_image_reports_exit_code_and_stderr(docker_client, base_image, split, tmp_path):
    image = _image(docker_client, base_image, mode="fail")
    record = run_image(image, split, tmp_path / "pred", contract="vsbench", limits=FAST, client=docker_client)
    assert {c["status"] for c in record["cases"]} == {"failed"}
    assert record["cases"][0]["reason"] == "exit code 3: ValueError: the model exploded"
    assert record["cases"][0]["exit_code"] == 3
    assert "exploded" in Path(record["cases"][0]["stderr"]).read_text()
    assert "exploded" not in Path(record["cases"][0]["stdout"]).read_text()  # kept apart


@pytest.mark.docker
def test_images_labelled_for_another_task_or_absent_are_refused(docker_client, base_image, split, tmp_path):
    image = _image(docker_client, base_image, labels={LABEL_TASK: "adipocyte"})
    with pytest.raises(ImageError, match="labelled for the adipocyte task"):
        run_image(image, split, tmp_path / "a", client=docker_client)
    with pytest.raises(ImageError, match="not in the engine"):
        run_image("vsbench-test/does-not-exist:0", split, tmp_path / "b", client=docker_client)


@pytest.mark.docker
def test_a_gpu_request_the_engine_cannot_meet_fails_each_case_cleanly(docker_client, base_image, split, tmp_path):
    if any("nvidia" in r for r in (docker_client.info().get("Runtimes") or {})):
        pytest.skip("this engine has the NVIDIA runtime")
    image = _image(docker_client, base_image)
    record = run_image(image, split, tmp_path / "pred", limits=Limits(time_s=20, gpus=1), client=docker_client)
    assert {c["status"] for c in record["cases"]} == {"failed"}
    assert all(c["reason"].startswith("the engine could not run the container") for c in record["cases"])


@pytest.mark.docker
def test_cli_run_exit_codes_summary_and_local_runtime(docker_client, base_image, split, tmp_path, capsys):
    image = _image(docker_client, base_image)
    assert main(["--quiet", "containers", "run", image, "--split", str(split.root), "--predictions",
                 str(tmp_path / "ok"), "--time-limit", "30", "--memory", "256m"]) == 0
    out = capsys.readouterr().out
    assert f"{len(split.cases())} cases: {len(split.cases())} succeeded" in out and "sandboxed" in out
    hang = _image(docker_client, base_image, mode="first-then-hang")
    assert main(["--quiet", "containers", "run", hang, "--split", str(split.root), "--predictions",
                 str(tmp_path / "bad"), "--time-limit", "2", "--contract", "vsbench"]) == 1
    captured = capsys.readouterr()
    assert "timed_out" in captured.out and "killed at the time limit of 2 s" in captured.err
    assert main(["--quiet", "containers", "run", "input", "--runtime", "local", "--split", str(split.root),
                 "--predictions", str(tmp_path / "local")]) == 0
    record = json.loads((tmp_path / "local" / "run.json").read_text())
    assert record["sandboxed"] is False and "NOT sandboxed" in capsys.readouterr().out
