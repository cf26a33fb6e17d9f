"""The adipocyte predict path: container layout, run record, resume, per-set failures, task dispatch, CLI."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import tifffile

from vsbench.algorithms.adipocyte_base import (
    CHANNELS,
    AdipocyteCase,
    AdipocytePredictor,
    AdipocyteTrainable,
    check_outputs,
)
from vsbench.algorithms.adipocyte_baselines import AdipocyteTrainMedian
from vsbench.algorithms.registry import algorithm_names, algorithm_task, make_algorithm
from vsbench.harness.adipocyte_split import adipocyte_sets
from vsbench.harness.cli import main
from vsbench.harness.predict_adipocyte import (
    adipocyte_training_examples,
    fit_adipocyte_if_needed,
    load_adipocyte_case,
    output_dir,
    prediction_path,
    run_adipocyte_predictor,
)
from vsbench.harness.split import Split
from vsbench.harness.synth_adipocyte import synthesize_adipocyte

from splitfactory import make_split

SIZE = (128, 96)  # not square: catches a transposed output


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    root = tmp_path_factory.mktemp("adipocyte")
    train = synthesize_adipocyte(root / "train", sets=4, size=SIZE, seed=1)
    test = synthesize_adipocyte(root / "test", sets=4, size=SIZE, seed=2)
    return Split(train), Split(test)


@pytest.fixture(scope="module")
def median_model(splits):
    model = AdipocyteTrainMedian()
    model.fit(adipocyte_training_examples(splits[0]))
    return model


class _Scripted:
    """Predicts the train median, except for sets in ``bad``: key -> what goes wrong."""

    name = "scripted"
    task = "adipocyte"

    def __init__(self, model: AdipocyteTrainMedian, bad: dict[str, str] | None = None):
        self.model, self.bad, self.calls = model, bad or {}, []

    def predict(self, case: AdipocyteCase) -> dict[str, np.ndarray]:
        self.calls.append(case.key)
        out = self.model.predict(case)
        fault = self.bad.get(case.key)
        if fault == "raise":
            raise KeyError("boom")
        if fault == "float":
            out["lipids"] = out["lipids"].astype(np.float32)
        if fault == "nan":
            out["lipids"] = np.full(case.shape, np.nan, np.float32)
        if fault == "shape":
            out["cytoplasm"] = out["cytoplasm"].T
        if fault == "missing":
            del out["cytoplasm"]
        return out


def _files(out) -> set[str]:
    return {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}


def test_training_examples_and_cases(splits):
    train, _ = splits
    examples = list(adipocyte_training_examples(train))
    assert [e.case.key for e in examples] == ["B03_F001", "B03_F002", "B03_F003", "B03_F004"]
    for ex in examples:
        assert ex.case.planes.shape == (7, *SIZE) and ex.case.planes.dtype == np.uint16
        assert ex.case.magnification == "20x" and ex.case.shape == SIZE
        assert set(ex.targets) == set(CHANNELS)
        assert all(t.dtype == np.uint16 and t.shape == SIZE for t in ex.targets.values())
    aset = adipocyte_sets(train)[0]
    z07 = tifffile.imread(aset.input_paths(train)[6])
    np.testing.assert_array_equal(load_adipocyte_case(train, aset).planes[6], z07)
    with pytest.raises(ValueError, match=r"\(7, H, W\)"):
        AdipocyteCase("B03_F001", np.zeros((6, 4, 4), np.uint16), "20x")
    with pytest.raises(ValueError, match="uint16"):
        AdipocyteCase("B03_F001", np.zeros((7, 4, 4), np.float32), "20x")


def test_check_outputs_contract():
    good = {c: np.zeros((4, 5), np.uint16) for c in CHANNELS}
    assert set(check_outputs({**good, "extra": 1}, (4, 5))) == set(CHANNELS)
    for outputs, message in [
        ({c: good[c] for c in CHANNELS[:2]}, "no output for cytoplasm"),
        ({**good, "nuclei": np.zeros((5, 4), np.uint16)}, r"nuclei output shape \(5, 4\) != input shape \(4, 5\)"),
        ({**good, "lipids": np.zeros((4, 5), np.float32)}, "lipids output dtype float32, expected uint16"),
        ({**good, "lipids": np.full((4, 5), np.inf)}, "lipids output has non-finite values"),
        ([1, 2], "not a dict"),
    ]:
        with pytest.raises(ValueError, match=message):
            check_outputs(outputs, (4, 5))


def test_layout_dtype_and_record(splits, median_model, tmp_path):
    _, test = splits
    out = tmp_path / "pred"
    record = run_adipocyte_predictor(median_model, test, out, progress=False)
    sets = adipocyte_sets(test)
    assert [c["image"] for c in record["cases"]] == [s.key for s in sets]
    assert {c["status"] for c in record["cases"]} == {"ok"}
    # one file per channel and set, named as the set's ground truth, in <channel>-fluorescence-tiff/
    assert _files(out) == {"run.json"} | {
        f"{c}-fluorescence-tiff/{s.targets[c]}" for s in sets for c in CHANNELS
    }
    for s in sets:
        for c in CHANNELS:
            img = tifffile.imread(prediction_path(out, c, s))
            assert img.dtype == np.uint16 and img.shape == SIZE
            assert (img == np.uint16(np.rint(median_model.medians[c]))).all()
    on_disk = json.loads((out / "run.json").read_text())
    assert on_disk == record
    assert on_disk["algorithm"] == "adipocyte-train-median" and on_disk["task"] == "adipocyte"
    assert on_disk["inputs_hash"] == test.manifest["inputs_hash"] and on_disk["magnification"] == "20x"
    assert on_disk["split"] == str(test.root) and "vsbench_version" in on_disk


def test_resume_refusal_and_overwrite(splits, median_model, tmp_path):
    train, test = splits
    out = tmp_path / "pred"
    first = _Scripted(median_model)
    run_adipocyte_predictor(first, test, out, progress=False)
    assert len(first.calls) == 4
    again = _Scripted(median_model)
    run_adipocyte_predictor(again, test, out, progress=False)
    assert again.calls == []  # everything was done
    sets = adipocyte_sets(test)
    prediction_path(out, "lipids", sets[2]).unlink()  # a set with a missing file is redone
    third = _Scripted(median_model)
    record = run_adipocyte_predictor(third, test, out, progress=False)
    assert third.calls == [sets[2].key] and {c["status"] for c in record["cases"]} == {"ok"}
    with pytest.raises(ValueError, match="holds predictions of 'scripted'"):
        run_adipocyte_predictor(median_model, test, out, progress=False)
    with pytest.raises(ValueError, match="other inputs"):
        run_adipocyte_predictor(_Scripted(median_model), train, out, progress=False)
    record = run_adipocyte_predictor(median_model, test, out, overwrite=True, progress=False)
    assert record["algorithm"] == "adipocyte-train-median" and len(record["cases"]) == 4


def test_failures_are_recorded_and_leave_no_files(splits, median_model, tmp_path):
    _, test = splits
    sets = adipocyte_sets(test)
    keys = [s.key for s in sets]
    out = tmp_path / "pred"
    run_adipocyte_predictor(_Scripted(median_model), test, out, progress=False)  # every set ok first
    faults = {keys[0]: "raise", keys[1]: "float", keys[2]: "nan", keys[3]: "shape"}
    for s in sets:  # forget the ok status: every set is predicted again and fails
        prediction_path(out, "nuclei", s).unlink()
    record = run_adipocyte_predictor(_Scripted(median_model, faults), test, out, progress=False)
    reasons = {c["image"]: c.get("reason") for c in record["cases"]}
    assert {c["status"] for c in record["cases"]} == {"failed"}
    assert reasons == {
        keys[0]: "'boom'",
        keys[1]: "lipids output dtype float32, expected uint16 (raw 16-bit intensities in the target scale)",
        keys[2]: "lipids output has non-finite values (NaN or inf)",
        keys[3]: f"cytoplasm output shape {SIZE[::-1]} != input shape {SIZE}",
    }
    assert _files(out) == {"run.json"}  # the earlier, now stale predictions are gone too; no temporary files
    # one bad set among good ones: the others are written, the bad one has no file of any channel
    record = run_adipocyte_predictor(_Scripted(median_model, {keys[1]: "missing"}), test, out, progress=False)
    status = {c["image"]: c["status"] for c in record["cases"]}
    assert status == {keys[0]: "ok", keys[1]: "failed", keys[2]: "ok", keys[3]: "ok"}
    assert not any(prediction_path(out, c, sets[1]).exists() for c in CHANNELS)
    assert all(prediction_path(out, c, s).is_file() for c in CHANNELS for s in sets if s is not sets[1])
    assert len(list(output_dir(out, "nuclei").iterdir())) == 3


def test_unreadable_input_is_a_failed_set(splits, median_model, tmp_path):
    _, test = splits
    copy = tmp_path / "copy"
    shutil.copytree(test.root, copy)
    aset = adipocyte_sets(test)[1]
    (copy / "inputs" / aset.inputs[3]).write_bytes(b"not a tiff")
    record = run_adipocyte_predictor(median_model, Split(copy), tmp_path / "pred", progress=False)
    failed = [c for c in record["cases"] if c["status"] == "failed"]
    assert [c["image"] for c in failed] == [aset.key]
    assert failed[0]["reason"] == f"{aset.inputs[3]}: unreadable TIFF (TiffFileError)"


def test_task_mismatch_is_refused(splits, median_model, tmp_path):
    train, test = splits
    lmc = Split(make_split(tmp_path / "lmc", seed=3))
    with pytest.raises(ValueError, match=f"adipocyte-train-median is an adipocyte algorithm; {lmc.root} is an lmc"):
        run_adipocyte_predictor(median_model, lmc, tmp_path / "p1", progress=False)
    with pytest.raises(ValueError, match="filterbank is an lmc algorithm; .* is an adipocyte split"):
        run_adipocyte_predictor(make_algorithm("filterbank"), test, tmp_path / "p2", progress=False)
    with pytest.raises(ValueError, match="is an lmc split; 'adipocyte-train-median' needs an adipocyte"):
        fit_adipocyte_if_needed(AdipocyteTrainMedian(), lmc)
    with pytest.raises(ValueError, match="--train"):
        fit_adipocyte_if_needed(AdipocyteTrainMedian(), None)
    assert not (tmp_path / "p1").exists() and not (tmp_path / "p2").exists()
    at40x = Split(synthesize_adipocyte(tmp_path / "40x", magnification="40x", sets=1, size=(48, 40), seed=0))
    with pytest.warns(UserWarning, match="trained on 20x images .* predicts 40x images"):
        fit_adipocyte_if_needed(AdipocyteTrainMedian(), train, for_split=at40x)


def test_registry_knows_the_task():
    adipocyte = algorithm_names("adipocyte")
    assert {"adipocyte-train-median", "adipocyte-ridge"} <= set(adipocyte)
    assert not set(adipocyte) & set(algorithm_names())  # the default stays the LMC algorithms
    assert set(algorithm_names(None)) == set(algorithm_names()) | set(adipocyte)
    for name in adipocyte:
        model = make_algorithm(name)
        assert algorithm_task(name) == model.task == "adipocyte"
        assert isinstance(model, AdipocytePredictor) and isinstance(model, AdipocyteTrainable)
    assert algorithm_task("filterbank") == "lmc"
    with pytest.raises(ValueError, match="unknown algorithm 'nope'"):
        algorithm_task("nope")


def test_predict_cli(splits, tmp_path, capsys):
    train, test = splits
    out = tmp_path / "p"
    argv = ["--quiet", "predict", "--split", str(test.root), "--algorithm", "adipocyte-ridge",
            "--train", str(train.root), "--out", str(out)]
    assert main(argv) == 0
    assert f"{out}: 4 cases predicted, 0 failed" in capsys.readouterr().out
    for c in CHANNELS:
        assert sorted(p.name for p in output_dir(out, c).iterdir()) == sorted(
            s.targets[c] for s in adipocyte_sets(test))
    assert json.loads((out / "run.json").read_text())["algorithm"] == "adipocyte-ridge"
    assert main(argv) == 0  # a rerun resumes: nothing left to do
    assert main(["algorithms"]) == 0
    lines = {line.split()[0]: line.split()[1] for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert lines["adipocyte-ridge"] == "adipocyte" and lines["filterbank"] == "lmc"


def test_predict_cli_refuses_the_other_task(splits, tmp_path, capsys):
    train, test = splits
    lmc = make_split(tmp_path / "lmc", seed=3)
    out = tmp_path / "p"
    assert main(["predict", "--split", str(lmc), "--algorithm", "adipocyte-ridge", "--train", str(train.root),
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == f"vsbench: error: adipocyte-ridge is an adipocyte algorithm; {lmc} is an lmc split\n"
    assert main(["predict", "--split", str(test.root), "--algorithm", "filterbank", "--out", str(out)]) == 2
    assert f"filterbank is an lmc algorithm; {test.root} is an adipocyte split" in capsys.readouterr().err
    assert main(["predict", "--split", str(test.root), "--algorithm", "adipocyte-train-median", "--train",
                 str(lmc), "--out", str(out)]) == 2
    assert f"adipocyte-train-median is an adipocyte algorithm; {lmc} is an lmc split" in capsys.readouterr().err
    assert main(["predict", "--split", str(test.root), "--algorithm", "adipocyte-train-median",
                 "--out", str(out)]) == 2
    assert "learns from data: pass a training split (--train)" in capsys.readouterr().err
    assert not out.exists()
