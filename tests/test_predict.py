"""The predict interface, the baselines and the in-process runner (resume, per-case failures)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vsbench.algorithms.base import ORGANELLES, Case, Predictor, Trainable
from vsbench.algorithms.registry import algorithm_names, make_algorithm
from vsbench.harness.cli import main
from vsbench.harness.omeio import read_plane
from vsbench.harness.predict import fit_if_needed, prediction_path, run_predictor, training_examples
from vsbench.harness.split import Split

from splitfactory import make_split


@pytest.fixture()
def splits(tmp_path):
    return Split(make_split(tmp_path / "train", seed=3)), Split(make_split(tmp_path / "test", seed=4))


@pytest.mark.parametrize("name", algorithm_names())
def test_baselines_follow_the_interface(splits, name):
    train, test = splits
    predictor = make_algorithm(name)
    assert isinstance(predictor, Predictor)
    if hasattr(predictor, "steps"):  # the deep models: the interface, not the training budget, is tested here
        predictor.steps = 2
    fit_if_needed(predictor, train)
    img = np.random.default_rng(0).integers(0, 60000, (33, 29)).astype(np.uint16)
    out = predictor.predict(Case("image_9_PC_z1.ome.tiff", img, "PC", 0.1))
    assert set(out) == set(ORGANELLES)
    for arr in out.values():
        assert arr.shape == img.shape and np.isfinite(arr).all()


def test_learning_baselines_need_training_data(splits):
    with pytest.raises(ValueError, match="--train"):
        fit_if_needed(make_algorithm("filterbank"), None)
    assert isinstance(make_algorithm("train-mean"), Trainable)
    assert not isinstance(make_algorithm("input"), Trainable)
    with pytest.raises(ValueError, match="unknown algorithm 'nope'"):
        make_algorithm("nope")


def test_training_examples_share_targets_per_field(splits):
    train, _ = splits
    examples = list(training_examples(train))
    assert len(examples) == 7
    first, second = examples[0], examples[1]  # two slices of field 0
    assert set(first.targets) == {"nucleus", "mitochondria"}
    assert first.targets["nucleus"] is second.targets["nucleus"]


def test_train_mean_is_the_mean_target(splits):
    train, _ = splits
    model = make_algorithm("train-mean")
    model.fit(training_examples(train))
    pred = model.predict(Case("x", np.zeros((128, 128), np.uint16)))
    from vsbench.algorithms.baselines import _resample, normalise

    targets = [_resample(normalise(read_plane(train.ground_truth_dir / f"image_{i}_Nucleus.ome.tiff")[0]),
                         (128, 128)) for i in (0, 1)]
    np.testing.assert_allclose(pred["nucleus"], (targets[0] + targets[1]) / 2, rtol=1e-5, atol=1e-6)
    assert np.allclose(pred["tubulin"], _resample(normalise(
        read_plane(train.ground_truth_dir / "image_1_Tubulin.ome.tiff")[0]), (128, 128)), atol=1e-5)


class _Flaky:
    name = "flaky"

    def __init__(self):
        self.calls = []

    def predict(self, case):
        self.calls.append(case.name)
        if case.name == "image_1_PC_z6.ome.tiff":
            raise KeyError("boom")
        return {o: case.image.astype(np.float32) for o in ORGANELLES}


def test_runner_records_failures_and_resumes(splits, tmp_path):
    _, test = splits
    out = tmp_path / "pred"
    flaky = _Flaky()
    record = run_predictor(flaky, test, out, progress=False)
    status = {c["image"]: c["status"] for c in record["cases"]}
    assert status.pop("image_1_PC_z6.ome.tiff") == "failed"
    assert set(status.values()) == {"ok"} and len(status) == 6
    assert json.loads((out / "run.json").read_text())["inputs_hash"] == test.manifest["inputs_hash"]
    img, meta = read_plane(prediction_path(out, "actin", "image_0_BF_z3.ome.tiff"))
    assert img.dtype == np.float32 and meta.physical_size_x == 0.1
    # a rerun only retries what failed
    again = _Flaky()
    run_predictor(again, test, out, progress=False)
    assert again.calls == ["image_1_PC_z6.ome.tiff"]
    # and refuses to mix predictions of another split's inputs or of another algorithm
    other = Split(make_split(tmp_path / "other", seed=9))
    with pytest.raises(ValueError, match="other inputs"):
        run_predictor(_Flaky(), other, out, progress=False)
    with pytest.raises(ValueError, match="holds predictions of 'flaky'"):
        run_predictor(make_algorithm("input"), test, out, progress=False)
    # --overwrite starts afresh: nothing of the old run survives, a failing case leaves no file
    record = run_predictor(make_algorithm("input"), test, out, overwrite=True, progress=False)
    assert record["algorithm"] == "input" and {c["status"] for c in record["cases"]} == {"ok"}
    assert prediction_path(out, "nucleus", "image_1_PC_z6.ome.tiff").exists()
    run_predictor(_Flaky(), test, out, overwrite=True, progress=False)
    assert not prediction_path(out, "nucleus", "image_1_PC_z6.ome.tiff").exists()


def test_predict_cli(splits, tmp_path, capsys):
    train, test = splits
    out = tmp_path / "p"
    assert main(["--quiet", "predict", "--split", str(test.root), "--algorithm", "filterbank",
                 "--train", str(train.root), "--out", str(out)]) == 0
    assert "7 cases predicted, 0 failed" in capsys.readouterr().out
    assert len(list((out / "nucleus-fluorescence-ome-tiff").iterdir())) == 7
    assert main(["algorithms"]) == 0
    assert "filterbank" in capsys.readouterr().out
