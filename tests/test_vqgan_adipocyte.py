"""The VQGAN specialists configured for the adipocyte task (``adipocyte-vqgan-tiny``)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import tifffile
import torch

from vsbench.algorithms.adipocyte_base import (
    CHANNELS,
    AdipocyteCase,
    AdipocytePredictor,
    AdipocyteTrainable,
    AdipocyteTrainingExample,
)
from vsbench.algorithms.registry import algorithm_names, algorithm_task, make_algorithm
from vsbench.algorithms.vqgan.adipocyte import (
    INPUT_PLANES,
    PLANE_INDICES,
    VQGANAdipocyte,
    adipocyte_specialist_data,
    adipocyte_specialist_data_from_split,
    input_planes,
    target_window,
    to_raw,
)
from vsbench.algorithms.vqgan.config import VQGANConfig, get_config
from vsbench.algorithms.vqgan.data import postprocess, preprocess, rescale_to_uint8, training_pair, window_to_uint8
from vsbench.algorithms.vqgan.train import Trainer, _model_input, load_checkpoint, load_specialist, train
from vsbench.harness.cli import main
from vsbench.harness.predict_adipocyte import adipocyte_training_examples, output_dir
from vsbench.harness.split import Split
from vsbench.harness.synth_adipocyte import synthesize_adipocyte


def _cfg(channel: str) -> VQGANConfig:
    return dataclasses.replace(get_config("tiny", channel), resolution=32, size=32, batch_size=2)


def _planes(shape=(40, 36), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scale = np.array([100, 500, 1000, 2000, 4000, 8000, 16000])[:, None, None]  # every plane its own range
    return (rng.random((7, *shape)) * scale).astype(np.uint16)


def _examples(n=3, shape=(40, 36)) -> list[AdipocyteTrainingExample]:
    rng = np.random.default_rng(5)
    out = []
    for i in range(n):
        targets = {c: (rng.random(shape) * 1000 * (i + 1) + 100 * k).astype(np.uint16) for k, c in enumerate(CHANNELS)}
        out.append(AdipocyteTrainingExample(AdipocyteCase(f"B03_F{i + 1:03d}", _planes(shape, i), "20x"), targets))
    return out


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("vqgan-adipocyte")
    return (Split(synthesize_adipocyte(tmp / "train", "20x", sets=2, size=(64, 64), seed=0)),
            Split(synthesize_adipocyte(tmp / "test", "20x", sets=2, size=(64, 64), seed=1)))


@pytest.fixture(scope="module")
def root(splits, tmp_path_factory):
    out = tmp_path_factory.mktemp("vqgan-adipocyte-ckpt")
    for channel in CHANNELS:
        data = adipocyte_specialist_data_from_split(splits[0], channel)
        train(_cfg(channel), data, out / channel, 3, seed=0, val_data=splits[1])
    return out


# --------------------------------------------------------------------------------------------------- data

def test_plane_choice_and_per_plane_rescale():
    assert INPUT_PLANES == ("Z02", "Z04", "Z06") and PLANE_INDICES == (1, 3, 5)
    planes = _planes()
    x = input_planes(planes)
    assert x.shape == (3, 40, 36) and x.dtype == np.uint8
    for k, z in enumerate(PLANE_INDICES):  # each plane on its own 2 / 99.8 window
        np.testing.assert_array_equal(x[k], rescale_to_uint8(planes[z]))
    assert x[0].max() == x[2].max() == 255  # not one window for the three (planes differ 16x in range)
    # inference: preprocess of the raw planes == the training path (uint8 once, then resize and [-1, 1])
    raw = planes[list(PLANE_INDICES)]
    assert torch.equal(preprocess(raw, 32), _model_input(x, 32))
    assert not torch.equal(preprocess(raw, 32)[0, 0], preprocess(raw, 32)[0, 2])
    with pytest.raises(ValueError, match="2-D slice or a 3 x H x W stack"):
        preprocess(planes, 32)


def test_training_pair_keeps_the_three_channels_and_lmc_slices_replicated():
    planes = input_planes(_planes())
    target = np.arange(40 * 36, dtype=np.int64).reshape(40, 36) % 256
    target = target.astype(np.uint8)
    x, y = training_pair(planes, target, 32, np.random.default_rng(0))
    assert x.shape == y.shape == (3, 32, 32)
    assert not torch.equal(x[0], x[1]) and torch.equal(y[0], y[2])
    # the same draws give the same geometry for a 2-D slice, replicated (the LMC path)
    x2, y2 = training_pair(planes[1], target, 32, np.random.default_rng(0))
    assert torch.equal(x2[0], x[1]) and torch.equal(x2[0], x2[2]) and torch.equal(y2, y)
    with pytest.raises(ValueError, match="differ in shape"):
        training_pair(planes[:, :30], target, 32, np.random.default_rng(0))


def test_dataset_level_target_window_and_its_inverse():
    examples = _examples()
    pooled = np.concatenate([ex.targets["lipids"].ravel() for ex in examples]).astype(np.float64)
    low, high = target_window(ex.targets["lipids"] for ex in examples)
    np.testing.assert_allclose((low, high), np.percentile(pooled, (2, 99.8)), rtol=0, atol=1e-9)
    data = adipocyte_specialist_data(examples, "lipids")
    assert data.organelle == "lipids" and data.target_window == (low, high) and len(data) == 3
    assert data.n_slices == 3 and data.inputs[0][0].shape == (3, 40, 36) and data.names == [["B03_F001"],
                                                                                          ["B03_F002"],
                                                                                          ["B03_F003"]]
    for ex, t in zip(examples, data.targets, strict=True):  # one window for all, not per image
        np.testing.assert_array_equal(t, window_to_uint8(ex.targets["lipids"], low, high))
    assert data.targets[0].mean() < data.targets[2].mean() - 50  # a dimmer image stays dimmer
    u = np.array([[0, 65535], [32768, 65535]], np.uint16)
    raw = to_raw(u, (low, high))
    assert raw.dtype == np.uint16 and raw[0, 0] == round(low) and raw[0, 1] == round(high)
    assert abs(int(raw[1, 0]) - (low + high) / 2) <= 1
    assert to_raw(np.array([65535]), (60000.0, 70000.0))[0] == 65535  # clipped to uint16
    val = adipocyte_specialist_data(examples[:1], "lipids", window=(low, high))
    assert val.target_window == (low, high)
    np.testing.assert_array_equal(val.targets[0], data.targets[0])
    with pytest.raises(ValueError, match="unknown adipocyte channel"):
        adipocyte_specialist_data(examples, "nucleus")
    with pytest.raises(ValueError, match="no training example has cytoplasm"):
        adipocyte_specialist_data([AdipocyteTrainingExample(examples[0].case, {})], "cytoplasm")
    bad = AdipocyteTrainingExample(examples[0].case, {"nuclei": np.zeros((8, 8), np.uint16)})
    with pytest.raises(ValueError, match="B03_F001: nuclei ground truth shape"):
        adipocyte_specialist_data([bad], "nuclei")


def test_config_for_the_adipocyte_channels():
    for channel in CHANNELS:
        tiny, paper = get_config("tiny", channel), get_config("paper", channel)
        assert tiny.task == paper.task == "adipocyte" and tiny.organelle == channel
        assert tiny.disc_weight == paper.disc_weight == 0.8
        assert tiny.learning_rate == get_config("tiny").learning_rate  # tiny keeps its own lr
    assert get_config("paper", "nuclei").base_learning_rate == get_config("paper", "nucleus").base_learning_rate
    assert get_config("paper", "lipids").base_learning_rate == 1e-6
    assert get_config("tiny", "nucleus").task == "lmc" and get_config("tiny", "nucleus").disc_weight == 0.75
    with pytest.raises(ValueError, match="unknown organelle"):
        get_config("tiny", "golgi")
    with pytest.raises(ValueError, match="organelle must be one of"):
        dataclasses.replace(get_config("tiny", "nucleus"), organelle="lipids")  # lipids is not an lmc organelle


# ------------------------------------------------------------------------------------------------ training

def test_training_steps_keep_the_window_in_the_checkpoint(root, splits, tmp_path):
    for channel in CHANNELS:
        state = load_checkpoint(root / channel / "checkpoint.pt")
        data = adipocyte_specialist_data_from_split(splits[0], channel)
        assert state["step"] == 3 and state["organelle"] == channel and state["config"]["task"] == "adipocyte"
        assert tuple(state["target_window"]) == data.target_window
        assert (root / channel / "best.pt").is_file()
        assert Trainer.from_checkpoint(root / channel).target_window == data.target_window
    lmc = Trainer(get_config("tiny", "nucleus"))
    assert lmc.state_dict()["target_window"] is None
    # resuming on data of another window is an error
    other = adipocyte_specialist_data_from_split(splits[1], "lipids")
    copy = tmp_path / "lipids"
    copy.mkdir()
    (copy / "checkpoint.pt").write_bytes((root / "lipids" / "checkpoint.pt").read_bytes())
    with pytest.raises(ValueError, match="window"):
        train(_cfg("lipids"), other, copy, 4, seed=0)
    # an adipocyte split (path) is read with the adipocyte data path
    trainer = train(_cfg("nuclei"), splits[0].root, tmp_path / "n", 1, seed=0)
    assert trainer.target_window == adipocyte_specialist_data_from_split(splits[0], "nuclei").target_window


# ---------------------------------------------------------------------------------------------- predictor

def test_predictor_loads_and_predicts_raw_uint16(root):
    predictor = VQGANAdipocyte(checkpoint=root)
    assert predictor.fitted and predictor.name == "adipocyte-vqgan-tiny" and predictor.task == "adipocyte"
    assert isinstance(predictor, AdipocytePredictor) and isinstance(predictor, AdipocyteTrainable)
    specialists = predictor.provenance["specialists"]
    assert set(specialists) == set(CHANNELS) and predictor.provenance["input_planes"] == ["Z02", "Z04", "Z06"]
    assert all(len(s["checkpoint_sha256"]) == 64 and s["checkpoint"].endswith("best.pt") for s in specialists.values())
    for shape in [(45, 70), (64, 64), (33, 31)]:
        case = AdipocyteCase("B03_F001", _planes(shape, 3), "20x")
        out = predictor.predict(case)
        assert set(out) == set(CHANNELS)
        for channel in CHANNELS:
            low, high = specialists[channel]["target_window"]
            assert out[channel].shape == shape and out[channel].dtype == np.uint16
            assert round(low) <= out[channel].min() and out[channel].max() <= round(high)
    case = AdipocyteCase("B03_F002", _planes((45, 70), 4), "20x")
    out = predictor.predict(case)
    for channel in CHANNELS:  # the documented steps by hand
        model = load_specialist(root / channel / "best.pt")[0]
        with torch.no_grad():
            y = model(preprocess(case.planes[[1, 3, 5]], 32))[0]
        expected = to_raw(postprocess(y, (45, 70)), tuple(specialists[channel]["target_window"]))
        np.testing.assert_allclose(out[channel].astype(float), expected.astype(float), atol=2)  # thread order


def test_missing_or_wrong_specialists_are_clear_errors(root, tmp_path):
    partial = tmp_path / "partial"
    (partial / "nuclei").mkdir(parents=True)
    (partial / "nuclei" / "checkpoint.pt").write_bytes((root / "nuclei" / "checkpoint.pt").read_bytes())
    with pytest.raises(FileNotFoundError, match="no lipids specialist"):
        VQGANAdipocyte(checkpoint=partial)
    swapped = tmp_path / "swapped"
    for channel in CHANNELS:
        (swapped / channel).mkdir(parents=True)
        (swapped / channel / "checkpoint.pt").write_bytes((root / "cytoplasm" / "checkpoint.pt").read_bytes())
    with pytest.raises(ValueError, match="is a cytoplasm specialist, not nuclei"):
        VQGANAdipocyte(checkpoint=swapped)
    with pytest.raises(RuntimeError, match="call fit"):
        VQGANAdipocyte().predict(AdipocyteCase("B03_F001", _planes((8, 8)), "20x"))


def test_registered_and_fits_in_process(splits, tmp_path):
    assert "adipocyte-vqgan-tiny" in algorithm_names("adipocyte")
    assert "adipocyte-vqgan-tiny" not in algorithm_names()
    assert algorithm_task("adipocyte-vqgan-tiny") == "adipocyte"
    assert isinstance(make_algorithm("adipocyte-vqgan-tiny"), VQGANAdipocyte)
    predictor = VQGANAdipocyte(steps=1, work_dir=tmp_path / "w")
    assert not predictor.fitted
    predictor.fit(adipocyte_training_examples(splits[0]))
    assert predictor.fitted and all((tmp_path / "w" / c / "checkpoint.pt").is_file() for c in CHANNELS)
    out = predictor.predict(AdipocyteCase("B03_F001", _planes((64, 64)), "20x"))
    assert all(a.shape == (64, 64) and a.dtype == np.uint16 for a in out.values())


def test_harness_predict_with_checkpoint(root, splits, tmp_path, capsys):
    out = tmp_path / "p"
    argv = ["--quiet", "predict", "--split", str(splits[1].root), "--algorithm", "adipocyte-vqgan-tiny",
            "--checkpoint", str(root), "--out", str(out)]
    assert main(argv) == 0
    record = json.loads((out / "run.json").read_text())
    assert record["algorithm"] == "adipocyte-vqgan-tiny" and record["task"] == "adipocyte"
    assert set(record["model"]["specialists"]) == set(CHANNELS)
    assert len(record["cases"]) == 2 and all(c["status"] == "ok" for c in record["cases"])
    for channel in CHANNELS:
        files = sorted(output_dir(out, channel).iterdir())
        assert len(files) == 2
        image = tifffile.imread(files[0])
        assert image.dtype == np.uint16 and image.shape == (64, 64)


def test_cli_trains_an_adipocyte_specialist(splits, tmp_path, capsys):
    out = tmp_path / "ckpt" / "lipids"
    argv = ["--quiet", "train", "vqgan", "--organelle", "lipids", "--split", str(splits[0].root), "--val",
            str(splits[1].root), "--out", str(out), "--steps", "1"]
    assert main(argv) == 0
    assert "lipids specialist, step 1" in capsys.readouterr().out
    state = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert state["organelle"] == "lipids" and state["target_window"] is not None
    assert main([*argv[:-2], "--out", str(tmp_path / "x"), "--task", "lmc"]) == 2
    assert "is a adipocyte target, not lmc" in capsys.readouterr().err
