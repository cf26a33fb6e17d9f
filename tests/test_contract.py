"""The container contract without Docker: staging a split's inputs, ingesting outputs safely, the file form of
``vsbench predict`` and the local runtime's run.json."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import tifffile

from vsbench.algorithms.base import ORGANELLES
from vsbench.harness.adipocyte_split import CHANNELS, adipocyte_sets, target_name
from vsbench.harness.cli import main
from vsbench.harness.contract import (
    INPUT_SOCKETS,
    INVALID_OUTPUT,
    LABEL_BATCH,
    LABEL_TASK,
    OUTPUT_SOCKETS,
    SUCCEEDED,
    CaseResult,
    ContractError,
    check_relative_name,
    ingest_outputs,
    stage_inputs,
    task_of_labels,
)
from vsbench.harness.local_runtime import predict_folder, run_local
from vsbench.harness.omeio import read_plane, write_plane
from vsbench.harness.predict import prediction_path
from vsbench.harness.predict_adipocyte import prediction_path as adipocyte_prediction_path
from vsbench.harness.split import Split, sha256_file
from vsbench.harness.synth_adipocyte import synthesize_adipocyte

from splitfactory import make_split

LMC_IN = INPUT_SOCKETS["lmc"]


@pytest.fixture()
def lmc(tmp_path) -> Split:
    return Split(make_split(tmp_path / "split", seed=5))


@pytest.fixture(scope="module")
def adipocyte(tmp_path_factory) -> Split:
    return Split(synthesize_adipocyte(tmp_path_factory.mktemp("a") / "s", "20x", sets=2, size=(64, 64), seed=0))


def _walk(root: Path) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        found += [Path(dirpath) / n for n in dirnames + filenames]
    return found


def _assert_no_ground_truth(split: Split, staged_dir: Path) -> None:
    """Nothing under ``staged_dir`` is, links to, or names a ground-truth file."""
    gt_files = [p for p in split.ground_truth_dir.iterdir() if p.is_file()]
    assert gt_files
    gt_digests = {sha256_file(p) for p in gt_files}
    gt_inodes = {(os.stat(p).st_dev, os.stat(p).st_ino) for p in gt_files}
    text = "\n".join(p.read_text(errors="replace") for p in staged_dir.glob("*.json"))
    for path in _walk(staged_dir):
        st = os.lstat(path)
        assert not path.is_symlink()
        if path.is_file():
            assert st.st_nlink == 1 and (st.st_dev, st.st_ino) not in gt_inodes
            assert sha256_file(path) not in gt_digests
            assert st.st_mode & 0o222 == 0 or path.suffix == ".json"  # staged images are read-only
    names = {p.name for p in _walk(staged_dir)}
    for gt in gt_files:
        assert gt.name not in names and gt.name not in text
    assert "ground_truth" not in text and str(split.root) not in text


def _write_lmc_outputs(out: Path, staged, dtype=np.float32) -> None:
    """OME-TIFF planes, or plain TIFFs for pixel types OME-TIFF writing here does not take."""
    rng = np.random.default_rng(0)
    for case in staged:
        for socket in OUTPUT_SOCKETS["lmc"].values():
            image, path = (rng.random(case.shape) * 100).astype(dtype), out / "images" / socket / case.file_name
            if np.dtype(dtype) in (np.float16, np.int64, np.int8):
                path.parent.mkdir(parents=True, exist_ok=True)
                tifffile.imwrite(path, image, ome=False)
            else:
                write_plane(path, image)


# --- staging ----------------------------------------------------------------------------------------------


def test_stage_lmc_layout_inputs_json_and_no_ground_truth(lmc, tmp_path):
    staged = stage_inputs(lmc, tmp_path / "in")
    names = [c.name for c in lmc.cases()]
    assert [c.case for c in staged] == names and [c.file_name for c in staged] == names
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == ["images", "inputs.json"]
    assert sorted(p.name for p in (tmp_path / "in" / "images").iterdir()) == [LMC_IN]
    socket_dir = tmp_path / "in" / "images" / LMC_IN
    assert sorted(p.name for p in socket_dir.iterdir()) == sorted(names)
    for case in staged:  # byte for byte the split's input, shape and pixel size recorded
        assert sha256_file(socket_dir / case.file_name) == sha256_file(lmc.inputs_dir / case.case)
        assert case.shape == (48, 40) and case.physical_size == (0.1, 0.1)
        assert case.predictions == {o: case.case for o in ORGANELLES}
    entries = json.loads((tmp_path / "in" / "inputs.json").read_text())
    assert [e["image"]["name"] for e in entries] == names
    assert {e["interface"]["slug"] for e in entries} == {LMC_IN}
    assert entries[0]["interface"]["relative_path"] == f"images/{LMC_IN}"
    assert set(entries[0]) == {"pk", "interface", "image", "file", "value"}
    _assert_no_ground_truth(lmc, tmp_path / "in")


def test_stage_adipocyte_z_stacks_and_magnification(adipocyte, tmp_path):
    staged = stage_inputs(adipocyte, tmp_path / "in")
    sets = adipocyte_sets(adipocyte)
    assert [c.case for c in staged] == [s.key for s in sets]
    for case, aset in zip(staged, sets, strict=True):
        assert case.file_name == f"{aset.key}.tif" and case.shape == (64, 64)
        stack = tifffile.imread(tmp_path / "in" / "images" / "brightfield-z-stack-tiff" / case.file_name)
        expected = np.stack([tifffile.imread(p) for p in aset.input_paths(adipocyte)])
        assert stack.dtype == np.uint16 and np.array_equal(stack, expected)
        assert case.predictions == {c: target_name(aset.well, aset.site, c) for c in CHANNELS}
    assert json.loads((tmp_path / "in" / "magnification.json").read_text()) == "20x"
    entries = json.loads((tmp_path / "in" / "inputs.json").read_text())
    assert [e["value"] for e in entries if e["interface"]["slug"] == "magnification"] == ["20x"]
    _assert_no_ground_truth(adipocyte, tmp_path / "in")


def test_stage_refuses_unknown_cases_and_unsafe_folders(lmc, tmp_path):
    one = lmc.cases()[0].name
    assert [c.case for c in stage_inputs(lmc, tmp_path / "one", [one])] == [one]
    with pytest.raises(ContractError, match="not a case"):
        stage_inputs(lmc, tmp_path / "x", ["image_99_BF_z0.ome.tiff"])
    with pytest.raises(ContractError, match="must be empty"):
        stage_inputs(lmc, tmp_path / "one")
    with pytest.raises(ContractError, match="outside the split"):
        stage_inputs(lmc, lmc.root / "staged")
    os.symlink(lmc.ground_truth_dir / "image_0_Nucleus.ome.tiff", lmc.inputs_dir / "image_7_BF_z0.ome.tiff")
    with pytest.raises(ContractError, match="not a regular file"):
        stage_inputs(lmc, tmp_path / "linked")


# --- ingestion --------------------------------------------------------------------------------------------


def test_ingest_good_lmc_outputs(lmc, tmp_path):
    staged = stage_inputs(lmc, tmp_path / "in")
    _write_lmc_outputs(tmp_path / "out", staged[:3], dtype=np.float16)  # any numeric type, plain TIFF too
    _write_lmc_outputs(tmp_path / "out", staged[3:5], dtype=np.int64)
    _write_lmc_outputs(tmp_path / "out", staged[5:], dtype=np.uint8)
    results = ingest_outputs(tmp_path / "out", staged, tmp_path / "pred", "lmc")
    assert [r.status for r in results] == [SUCCEEDED] * len(staged)
    assert all(r.reason is None and r.durations["ingest"] >= 0 for r in results)
    for case in staged:
        for organelle in ORGANELLES:
            image, meta = read_plane(prediction_path(tmp_path / "pred", organelle, case.case))
            assert image.shape == case.shape and meta.physical_size_x == 0.1 and meta.channel == organelle


def test_ingest_good_adipocyte_outputs(adipocyte, tmp_path):
    staged = stage_inputs(adipocyte, tmp_path / "in")
    for case in staged:
        for socket in OUTPUT_SOCKETS["adipocyte"].values():
            path = tmp_path / "out" / "images" / socket / case.file_name
            path.parent.mkdir(parents=True, exist_ok=True)
            tifffile.imwrite(path, np.full(case.shape, 1234, np.uint16))
    results = ingest_outputs(tmp_path / "out", staged, tmp_path / "pred", "adipocyte")
    assert [r.status for r in results] == [SUCCEEDED, SUCCEEDED]
    for aset in adipocyte_sets(adipocyte):
        for channel in CHANNELS:
            image = tifffile.imread(adipocyte_prediction_path(tmp_path / "pred", channel, aset))
            assert image.dtype == np.uint16 and image.shape == (64, 64) and (image == 1234).all()


def _nan(path: Path, shape) -> None:
    image = np.ones(shape, np.float32)
    image[3, 4] = np.nan
    write_plane(path, image)


def _wrong_shape(path: Path, shape) -> None:
    write_plane(path, np.ones((shape[0] + 1, shape[1]), np.float32))


def _garbage(path: Path, shape) -> None:
    path.write_bytes(b"II*\x00" + bytes(range(256)) * 2)


def _oversize(path: Path, shape) -> None:
    path.write_bytes(b"\0" * (8 * (shape[0] + 256) * (shape[1] + 256) + (1 << 20) + 1))


def _symlink_to_truth(split: Split):
    def make(path: Path, shape) -> None:
        path.unlink()
        os.symlink(split.ground_truth_dir / "image_0_Nucleus.ome.tiff", path)
    return make


def _missing(path: Path, shape) -> None:
    path.unlink()


def _fifo(path: Path, shape) -> None:
    path.unlink()
    os.mkfifo(path)


def _hard_link(path: Path, shape) -> None:
    os.link(path, path.parents[3] / "hard-link")  # outside the output folder


@pytest.mark.parametrize(("spoil", "reason"), [
    ("symlink", "is a symbolic link, not a regular file"),
    ("missing", "missing images/nucleus-fluorescence-ome-tiff/"),
    ("shape", "expected one plane of the input's (48, 40)"),
    ("nan", "non-finite values"),
    ("garbage", "not a readable TIFF"),
    ("oversize", "over the limit of"),
    ("fifo", "is a fifo, not a regular file"),
    ("hardlink", "is a hard link (2 links)"),
])
def test_a_bad_output_invalidates_its_case_only(lmc, tmp_path, spoil, reason):
    staged = stage_inputs(lmc, tmp_path / "in")
    out, pred = tmp_path / "out", tmp_path / "pred"
    _write_lmc_outputs(out, staged)
    bad = staged[2]
    path = out / "images" / "nucleus-fluorescence-ome-tiff" / bad.file_name
    spoilers = {"symlink": _symlink_to_truth(lmc), "missing": _missing, "shape": _wrong_shape, "nan": _nan,
                "garbage": _garbage, "oversize": _oversize, "fifo": _fifo, "hardlink": _hard_link}
    spoilers[spoil](path, bad.shape)
    write_plane(prediction_path(pred, "actin", bad.case), np.ones(bad.shape, np.float32))  # a stale prediction
    results = ingest_outputs(out, staged, pred, "lmc")
    statuses = {r.case: r for r in results}
    assert statuses[bad.case].status == INVALID_OUTPUT
    assert reason in statuses[bad.case].reason and "\n" not in statuses[bad.case].reason
    assert [r.status for r in results if r.case != bad.case] == [SUCCEEDED] * (len(staged) - 1)
    assert not any(prediction_path(pred, o, bad.case).exists() for o in ORGANELLES)  # nothing left to score
    assert all(prediction_path(pred, "nucleus", c.case).is_file() for c in staged if c is not bad)
    if spoil == "symlink":
        assert os.path.islink(path)  # not followed, not copied: the ground truth never reaches the predictions
        gt = sha256_file(lmc.ground_truth_dir / "image_0_Nucleus.ome.tiff")
        assert gt not in {sha256_file(p) for p in pred.rglob("*.tiff")}


@pytest.mark.parametrize(("name", "reason"), [
    ("images/nucleus-fluorescence-ome-tiff/..{file}", "contains '..'"),
    ("images/nucleus-fluorescence-ome-tiff/{file}.extra.tiff", "unexpected file"),
    ("images/extra-socket/{file}", "unexpected file 'images/extra-socket/"),
    ("images/nucleus-fluorescence-ome-tiff/link-{file}", "unexpected symbolic link"),
])
def test_unexpected_entries_invalidate_the_case_they_name(lmc, tmp_path, name, reason):
    staged = stage_inputs(lmc, tmp_path / "in")
    out = tmp_path / "out"
    _write_lmc_outputs(out, staged)
    bad = staged[1]
    extra = out / name.format(file=bad.file_name)
    extra.parent.mkdir(parents=True, exist_ok=True)
    if "link-" in name:
        os.symlink("/etc/passwd", extra)
    else:
        extra.write_bytes(b"x")
    results = {r.case: r for r in ingest_outputs(out, staged, tmp_path / "pred", "lmc")}
    assert results[bad.case].status == INVALID_OUTPUT and reason in results[bad.case].reason
    assert all(r.status == SUCCEEDED for c, r in results.items() if c != bad.case)


def test_run_wide_problems_invalidate_every_case_and_strays_are_noted(lmc, tmp_path):
    staged = stage_inputs(lmc, tmp_path / "in")
    out = tmp_path / "out"
    _write_lmc_outputs(out, staged)
    too_small = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) - 1
    results = ingest_outputs(out, staged, tmp_path / "p1", "lmc", max_bytes=too_small)
    assert {r.status for r in results} == {INVALID_OUTPUT} and "over the limit" in results[0].reason
    (out / "notes.txt").write_text("stray")  # names no case: never read, reported, the cases still score
    os.symlink("/etc/passwd", out / "escape.tiff")
    notes: list[str] = []
    results = ingest_outputs(out, staged, tmp_path / "p2", "lmc", notes=notes)
    assert {r.status for r in results} == {SUCCEEDED}
    assert notes == ["ignored: unexpected symbolic link 'escape.tiff'", "ignored: unexpected file 'notes.txt'"]
    (out / "escape.tiff").unlink()
    (out / "notes.txt").unlink()
    socket = out / "images" / "tubulin-fluorescence-ome-tiff"
    os.rename(socket, tmp_path / "elsewhere")
    os.symlink(tmp_path / "elsewhere", socket)  # a socket folder that is a link: never followed
    results = ingest_outputs(out, staged, tmp_path / "p3", "lmc")
    assert {r.status for r in results} == {INVALID_OUTPUT} and "symbolic link" in results[0].reason
    results = ingest_outputs(tmp_path / "nothing", staged, tmp_path / "p4", "lmc")
    assert {r.reason for r in results} == {"no output folder"}


def test_adipocyte_outputs_must_be_uint16(adipocyte, tmp_path):
    staged = stage_inputs(adipocyte, tmp_path / "in")
    for case in staged:
        for socket in OUTPUT_SOCKETS["adipocyte"].values():
            path = tmp_path / "out" / "images" / socket / case.file_name
            path.parent.mkdir(parents=True, exist_ok=True)
            dtype = np.float32 if case is staged[0] and "lipids" in socket else np.uint16
            tifffile.imwrite(path, np.full(case.shape, 100, dtype))
    results = ingest_outputs(tmp_path / "out", staged, tmp_path / "pred", "adipocyte")
    assert results[0].status == INVALID_OUTPUT and "must be uint16" in results[0].reason
    assert results[1].status == SUCCEEDED


def test_names_labels_and_statuses():
    assert check_relative_name("images/a/b.tiff") is None
    for bad in ("/etc/passwd", "../x", "images/../../x", "images/.hidden", "a\\b", "a\nb", ""):
        assert check_relative_name(bad) is not None
    assert task_of_labels({}) is None and task_of_labels({"maintainer": "x"}) is None
    assert task_of_labels({LABEL_TASK: "lmc", LABEL_BATCH: "true"}) == ("lmc", True)
    assert task_of_labels({LABEL_TASK: "adipocyte"}) == ("adipocyte", False)
    with pytest.raises(ContractError, match="org.vsbench.task"):
        task_of_labels({LABEL_BATCH: "true"})
    with pytest.raises(ValueError, match="status"):
        CaseResult("c", "ok")
    assert set(CaseResult("c", "timed_out", "time limit", 137).to_dict()) == {
        "case", "status", "reason", "exit_code", "durations", "stdout", "stderr", "image_digest"}


# --- the file form of predict, and the local runtime -----------------------------------------------------


def test_file_form_cli_round_trip_lmc_scores(lmc, tmp_path):
    staged = stage_inputs(lmc, tmp_path / "in")
    assert main(["--quiet", "predict", "input", "--input", str(tmp_path / "in"), "--output",
                 str(tmp_path / "out")]) == 0
    for case in staged:  # the output folder is exactly the contract's
        for socket in OUTPUT_SOCKETS["lmc"].values():
            assert read_plane(tmp_path / "out" / "images" / socket / case.file_name)[0].shape == case.shape
    results = ingest_outputs(tmp_path / "out", staged, tmp_path / "pred", "lmc")
    assert {r.status for r in results} == {SUCCEEDED}
    assert main(["--quiet", "evaluate", "--split", str(lmc.root), "--predictions", str(tmp_path / "pred"),
                 "--out", str(tmp_path / "m.json")]) == 0
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["provenance"]["n_cases"] == len(staged) and not metrics["errors"]


def test_file_form_reads_the_socket_folder_without_inputs_json(lmc, tmp_path):
    stage_inputs(lmc, tmp_path / "in")
    os.chmod(tmp_path / "in" / "inputs.json", 0o644)
    (tmp_path / "in" / "inputs.json").unlink()
    assert main(["--quiet", "predict", "inverted", "--input", str(tmp_path / "in"), "--output",
                 str(tmp_path / "out")]) == 0
    assert len(list((tmp_path / "out" / "images" / "actin-fluorescence-ome-tiff").iterdir())) == 7


def test_predict_modes_cannot_be_mixed(lmc, tmp_path, capsys):
    cases = [
        (["input", "--input", "a", "--output", "b", "--split", str(lmc.root)], "not both"),
        (["input", "--input", "a"], "needs both --input DIR and --output DIR"),
        (["--input", "a", "--output", "b"], "name the solution"),
        (["input", "--algorithm", "input", "--split", "s", "--out", "o"], "SOLUTION or --algorithm, not both"),
        (["input"], "give --split SPLIT and --out OUT"),
        (["input", "--input", "a", "--output", "b", "--overwrite"], "--overwrite is for --split mode"),
        (["input", "--input", str(tmp_path), "--output", str(tmp_path / "o")], "not a contract input folder"),
    ]
    for argv, message in cases:
        assert main(["--quiet", "predict", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, (argv, err)
    stage_inputs(lmc, tmp_path / "in")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    assert main(["predict", "input", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "full")]) == 2
    assert "must be empty" in capsys.readouterr().err
    # the split mode is unchanged, with SOLUTION as an alternative to --algorithm
    assert main(["--quiet", "predict", "input", "--split", str(lmc.root), "--out", str(tmp_path / "p")]) == 0
    assert main(["--quiet", "predict", "--split", str(lmc.root), "--algorithm", "input", "--out",
                 str(tmp_path / "q")]) == 0


@pytest.mark.parametrize("solution", ["adipocyte-train-median", "adipocyte-ridge"])
def test_file_form_cli_adipocyte_with_train(adipocyte, tmp_path, solution):
    staged = stage_inputs(adipocyte, tmp_path / "in")
    assert main(["--quiet", "predict", solution, "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"),
                 "--train", str(adipocyte.root)]) == 0
    results = ingest_outputs(tmp_path / "out", staged, tmp_path / "pred", "adipocyte")
    assert {r.status for r in results} == {SUCCEEDED}
    for aset in adipocyte_sets(adipocyte):
        for channel in CHANNELS:
            assert tifffile.imread(adipocyte_prediction_path(tmp_path / "pred", channel, aset)).dtype == np.uint16
    assert main(["--quiet", "predict", solution, "--input", str(tmp_path / "in"), "--output", str(tmp_path / "o2")]) \
        == 2  # it learns: --train (or a checkpoint) is needed


@pytest.mark.slow
def test_file_form_adipocyte_predictions_score(adipocyte, tmp_path):
    """CellProfiler needs images of at least 370 px: one 384 x 384 set, trained on the 64 x 64 split."""
    test = Split(synthesize_adipocyte(tmp_path / "big", "20x", sets=1, size=(384, 384), seed=1))
    staged = stage_inputs(test, tmp_path / "in")
    assert main(["--quiet", "predict", "adipocyte-ridge", "--input", str(tmp_path / "in"), "--output",
                 str(tmp_path / "out"), "--train", str(adipocyte.root)]) == 0
    assert {r.status for r in ingest_outputs(tmp_path / "out", staged, tmp_path / "pred", "adipocyte")} == {SUCCEEDED}
    assert main(["--quiet", "evaluate", "--task", "adipocyte", "--split", str(test.root), "--predictions",
                 str(tmp_path / "pred"), "--no-cache", "--workers", "2", "--out", str(tmp_path / "m.json")]) == 0
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["complete"] and metrics["aggregates"]["per_magnification"]["20x"]["n_sets"] == 1


class _FailsOnZ5:
    """A real predictor (the input itself) that raises on one case."""

    name = "fails-on-z5"

    def predict(self, case):
        if "_z5" in case.name:
            raise RuntimeError("cannot handle z5\nsecond line")
        return {o: case.image for o in ORGANELLES}


def test_local_runtime_run_json(lmc, tmp_path):
    record = run_local(_FailsOnZ5(), lmc, tmp_path / "pred")
    assert record["sandboxed"] is False and record["runtime"] == "local"
    on_disk = json.loads((tmp_path / "pred" / "run.json").read_text())
    assert on_disk == record
    assert record["algorithm"] == "fails-on-z5" and record["task"] == "lmc"
    assert record["inputs_hash"] == lmc.manifest["inputs_hash"] and record["contract_version"] == "1"
    by_case = {c["case"]: c for c in record["cases"]}
    assert list(by_case) == [c.name for c in lmc.cases()]
    failed = by_case["image_0_BF_z5.ome.tiff"]
    assert failed["status"] == "failed" and failed["reason"] == "cannot handle z5" and failed["exit_code"] is None
    assert record["summary"] == {"succeeded": 6, "failed": 1, "timed_out": 0, "oom": 0, "invalid_output": 0}
    assert all(set(c["durations"]) == {"predict", "ingest"} for c in record["cases"])
    assert not any(prediction_path(tmp_path / "pred", o, "image_0_BF_z5.ome.tiff").exists() for o in ORGANELLES)
    with pytest.raises(ValueError, match="must be empty"):
        run_local("input", lmc, tmp_path / "pred")
    record = run_local("input", lmc, tmp_path / "pred", overwrite=True, cases=["image_1_PC_z4.ome.tiff"])
    assert [c["case"] for c in record["cases"]] == ["image_1_PC_z4.ome.tiff"]
    with pytest.raises(ValueError, match="adipocyte algorithm"):
        run_local("adipocyte-ridge", lmc, tmp_path / "other")


def test_local_runtime_adipocyte_scores_layout(adipocyte, tmp_path):
    record = run_local("adipocyte-ridge", adipocyte, tmp_path / "pred", train=adipocyte)
    assert record["summary"]["succeeded"] == 2 and record["algorithm"] == "adipocyte-ridge"
    files = sorted(p.relative_to(tmp_path / "pred").as_posix() for p in (tmp_path / "pred").rglob("*") if p.is_file())
    expected = sorted(adipocyte_prediction_path(Path("."), c, s).as_posix()
                      for s in adipocyte_sets(adipocyte) for c in CHANNELS)
    assert files == sorted(["run.json", *expected])


def test_predict_folder_records_failures_per_case(lmc, tmp_path):
    stage_inputs(lmc, tmp_path / "in")
    results = predict_folder(_FailsOnZ5(), tmp_path / "in", tmp_path / "out")
    assert [r.status for r in results].count("failed") == 1
    leftover = list((tmp_path / "out").rglob("image_0_BF_z5.ome.tiff"))
    assert leftover == []
