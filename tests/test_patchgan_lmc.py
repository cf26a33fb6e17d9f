"""The Patch-GAN virtual stainer on Light My Cells: training data, a few training steps, the predictor, the registry
(fast: tiny nets, tiny crops)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from vsbench.algorithms.base import ORGANELLES, Case, Predictor, Trainable, TrainingExample
from vsbench.algorithms.baselines import normalise
from vsbench.algorithms.patchgan.config import LMC_TARGET_SCALE, get_config
from vsbench.algorithms.patchgan.lmc import (
    DEFAULT_STEPS,
    PatchGANLMCPredictor,
    lmc_training_data,
    lmc_training_data_from_split,
)
from vsbench.algorithms.patchgan.train import load_checkpoint, train
from vsbench.algorithms.registry import algorithm_class, algorithm_names, algorithm_task, make_algorithm

from splitfactory import make_split

CFG = dataclasses.replace(get_config("lmc-tiny"), crop=32, crop_before_augmentation=48, batch_size=2)
# (modality, organelles with ground truth, slices): no field has all four, actin and tubulin are rare
FIELDS = [("BF", ("nucleus", "mitochondria"), 3), ("PC", ("nucleus", "tubulin"), 2), ("DIC", ("actin",), 2)]


def _examples(shape=(48, 40), seed: int = 0) -> list[TrainingExample]:
    """Three fields, several slices each sharing one target dict; inputs of different dtypes and scales."""
    rng = np.random.default_rng(seed)
    out = []
    for k, (modality, organelles, slices) in enumerate(FIELDS):
        base = rng.random(shape)
        targets = {o: (base * (i + 1) * 900 + rng.random(shape) * 50).astype(np.uint16)
                   for i, o in enumerate(organelles)}
        for z in range(slices):
            image = base + 0.1 * z * rng.random(shape)
            image = (image * 200).astype(np.uint8) if modality == "PC" else (image * 3000 + 100).astype(np.uint16)
            out.append(TrainingExample(Case(f"image_{k}_{modality}_z{z}.ome.tiff", image, modality, 0.3), targets))
    return out


def test_training_data_masks_shapes_and_shared_targets():
    examples = _examples()
    data = lmc_training_data(examples, LMC_TARGET_SCALE)
    assert len(data) == 7 and data.channels == ORGANELLES and data.magnification is None
    assert data.keys == [ex.case.name for ex in examples]
    assert all(x.shape == (1, 48, 40) and x.dtype == np.float32 for x in data.inputs)
    assert all(y.shape == (4, 48, 40) and y.dtype == np.float32 for y in data.targets)
    expected = [[o in organelles for o in ORGANELLES] for _, organelles, n in FIELDS for _ in range(n)]
    assert [m.tolist() for m in data.present] == expected
    assert all(m.dtype == bool for m in data.present)
    # slices of one field share one target array (and mask); other fields do not
    assert data.targets[0] is data.targets[1] is data.targets[2] and data.targets[3] is data.targets[4]
    assert len({id(t) for t in data.targets}) == 3
    # inputs: percentile-normalised whatever the dtype (uint8 PC next to uint16 BF)
    for x, ex in zip(data.inputs, examples, strict=True):
        np.testing.assert_allclose(x[0], normalise(ex.case.image), rtol=0, atol=0)
    # targets: normalised x target_scale, clipped to the generator's [0, 10000]; zeros where missing
    bf = examples[0].targets
    np.testing.assert_allclose(data.targets[0][1], np.clip(normalise(bf["mitochondria"]) * LMC_TARGET_SCALE, 0, 1e4),
                               rtol=1e-6)
    assert not data.targets[0][2:].any() and data.targets[5][:3].max() == 0
    assert all(t.min() >= 0 and t.max() <= 1e4 for t in data.targets)
    other = lmc_training_data(examples, 1000.0)
    np.testing.assert_allclose(other.targets[0] * 4, data.targets[0], rtol=1e-6)


def test_training_data_errors_and_skips():
    examples = _examples()
    blank = TrainingExample(Case("image_9_BF_z0.ome.tiff", np.zeros((48, 40), np.uint16)), {})
    unknown = TrainingExample(Case("image_9_BF_z1.ome.tiff", np.zeros((48, 40), np.uint16)),
                              {"lipids": np.ones((48, 40))})
    assert len(lmc_training_data([blank, *examples, unknown])) == 7  # no known organelle: skipped
    with pytest.raises(ValueError, match="no training example has ground truth"):
        lmc_training_data([blank, unknown])
    bad = TrainingExample(Case("image_7_BF_z3.ome.tiff", np.zeros((40, 48), np.uint16)), examples[0].targets)
    with pytest.raises(ValueError, match=r"image_7_BF_z3\.ome\.tiff: input shape \(40, 48\) != ground truth"):
        lmc_training_data([examples[0], bad])
    mixed = {"nucleus": np.ones((48, 40)), "actin": np.ones((40, 40))}
    with pytest.raises(ValueError, match="image_8_DIC_z0.ome.tiff: ground-truth images of different shapes"):
        lmc_training_data([TrainingExample(Case("image_8_DIC_z0.ome.tiff", np.ones((48, 40))), mixed)])
    with pytest.raises(ValueError, match="not an LMC config"):
        PatchGANLMCPredictor(config="tiny")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("patchgan-lmc")
    seen = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the predictor trains: 2 threads on a shared 2-core machine can be 30x slower
    try:
        trainer = train(CFG, lmc_training_data(_examples()), out, steps=4, seed=0, steps_per_epoch=2,
                        alignment="none", callback=lambda step, losses: seen.append(losses))
    finally:
        torch.set_num_threads(threads)
    assert trainer.step == 4 and len(seen) == 4
    assert all(np.isfinite(v) for losses in seen for v in losses.values())
    return out


def test_a_few_steps_give_a_checkpoint_the_predictor_loads(checkpoint):
    state = load_checkpoint(checkpoint)
    assert state["step"] == 4 and state["channels"] == list(ORGANELLES) and state["magnification"] is None
    assert state["config"]["task"] == "lmc" and state["config"]["in_channels"] == 1
    predictor = PatchGANLMCPredictor(checkpoint=checkpoint)
    assert isinstance(predictor, Predictor) and isinstance(predictor, Trainable)
    assert predictor.step == 4 and predictor.target_scale == LMC_TARGET_SCALE
    generator = predictor.generator
    predictor.fit([])  # loaded from a checkpoint: nothing to learn
    assert predictor.generator is generator


@pytest.mark.parametrize("shape, dtype", [((45, 70), np.uint16), ((33, 97), np.uint8), ((64, 32), np.float32),
                                          ((7, 5), np.uint16)])
def test_predict_gives_four_float32_maps_of_the_input_shape(checkpoint, shape, dtype):
    predictor = PatchGANLMCPredictor(checkpoint=checkpoint)
    image = (np.random.default_rng(1).random(shape) * 200).astype(dtype)
    out = predictor.predict(Case("image_9_PC_z1.ome.tiff", image, "PC", 0.3))
    assert list(out) == list(ORGANELLES)
    for arr in out.values():
        assert arr.shape == shape and arr.dtype == np.float32 and np.isfinite(arr).all()
        assert arr.min() >= 0 and arr.max() <= 1e4 / LMC_TARGET_SCALE  # the ScaleLayer's range / target_scale


def test_registered_and_fits_in_process(tmp_path):
    assert "patchgan-lmc-tiny" in algorithm_names() and algorithm_task("patchgan-lmc-tiny") == "lmc"
    assert algorithm_class("patchgan-lmc-tiny") is PatchGANLMCPredictor
    predictor = make_algorithm("patchgan-lmc-tiny")
    assert isinstance(predictor, PatchGANLMCPredictor) and predictor.steps == DEFAULT_STEPS
    with pytest.raises(RuntimeError, match="call fit"):
        predictor.predict(_examples()[0].case)
    predictor = PatchGANLMCPredictor(config=CFG, steps=2, work_dir=tmp_path / "run")
    examples = _examples(shape=(40, 36))
    assert predictor.training_plan(lmc_training_data(examples)).crop == 32
    predictor.fit(examples)
    assert predictor.step == 2 and load_checkpoint(tmp_path / "run")["step"] == 2
    out = predictor.predict(examples[0].case)
    assert all(out[o].shape == (40, 36) for o in ORGANELLES)


def test_training_data_from_a_split_folder(tmp_path):
    data = lmc_training_data_from_split(make_split(tmp_path / "train"))  # the fields of splitfactory.DEFAULT_FIELDS
    assert len(data) == 7 and all(x.shape == (1, 48, 40) for x in data.inputs)
    present = {key.split("_z")[0]: [o for o, p in zip(ORGANELLES, m, strict=True) if p]
               for key, m in zip(data.keys, data.present, strict=True)}
    assert present == {"image_0_BF": ["nucleus", "mitochondria"], "image_1_PC": ["nucleus", "tubulin"],
                       "image_2_DIC": ["mitochondria", "actin"]}
    assert len({id(t) for t in data.targets}) == 3
    make_split(tmp_path / "blank", fields=[(0, "BF", (), [(0, 0)])])
    with pytest.raises(ValueError, match="no training example has ground truth"):
        lmc_training_data_from_split(tmp_path / "blank")


def test_cli_trains_on_an_lmc_split_and_predicts_from_the_checkpoint(tmp_path, capsys):
    import json

    from vsbench.harness.cli import main

    train_split, test_split = make_split(tmp_path / "train"), make_split(tmp_path / "test", seed=1)
    ckpt = tmp_path / "ckpt"
    base = ["--quiet", "train", "patchgan", "--task", "lmc", "--split", str(train_split), "--out", str(ckpt)]
    assert main([*base, "--config", "tiny", "--steps", "1"]) == 2
    assert "for the adipocyte task" in capsys.readouterr().err
    assert main([*base, "--val", str(test_split), "--steps", "2", "--steps-per-epoch", "1"]) == 0
    assert "lmc-tiny, step 2" in capsys.readouterr().out
    state = load_checkpoint(ckpt)
    assert state["config"]["name"] == "lmc-tiny" and state["alignment"] == "none"
    header = (ckpt / "losses.csv").read_text().splitlines()[0].split(",")
    assert {"val_mae", *(f"val_{o}" for o in ORGANELLES)} <= set(header)
    out = tmp_path / "pred"
    assert main(["--quiet", "predict", "--split", str(test_split), "--algorithm", "patchgan-lmc-tiny",
                 "--checkpoint", str(ckpt), "--out", str(out)]) == 0
    record = json.loads((out / "run.json").read_text())
    assert record["algorithm"] == "patchgan-lmc-tiny" and record["model"]["step"] == 2
    assert all(c["status"] == "ok" for c in record["cases"])
