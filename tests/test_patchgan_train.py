"""Training, checkpoints, resume and the predictor of the Patch-GAN virtual stainer (fast: tiny nets, tiny crops)."""

from __future__ import annotations

import csv
import dataclasses

import numpy as np
import pytest
import torch

from vsbench.algorithms.adipocyte_base import (
    CHANNELS,
    AdipocyteCase,
    AdipocytePredictor,
    AdipocyteTrainable,
    AdipocyteTrainingExample,
    check_outputs,
)
from vsbench.algorithms.patchgan.config import get_config
from vsbench.algorithms.patchgan.predictor import PatchGANPredictor, pad_to_multiple
from vsbench.algorithms.patchgan.train import (
    CHECKPOINT,
    LOSSES_CSV,
    Trainer,
    load_checkpoint,
    load_training_data,
    train,
)
from vsbench.algorithms.registry import algorithm_task, make_algorithm
from vsbench.harness.cli import build_parser, main

CFG = dataclasses.replace(get_config("tiny"), crop=32, batch_size=2)


def _examples(n: int = 2, size: int = 48, seed: int = 0) -> list[AdipocyteTrainingExample]:
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        planes = rng.integers(500, 3000, (7, size, size)).astype(np.uint16)
        bright = planes[3].astype(np.float64)
        targets = {c: np.clip(bright * (i + 1) / 10, 0, 65535).astype(np.uint16) for i, c in enumerate(CHANNELS)}
        out.append(AdipocyteTrainingExample(AdipocyteCase(f"B0{k + 2}_F00{k + 1}", planes, "20x"), targets))
    return out


@pytest.fixture(scope="module")
def data():
    return load_training_data(_examples())


def _params(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)


def test_training_steps_give_finite_losses_checkpoint_and_csv(data, tmp_path):
    seen = []
    trainer = train(CFG, data, tmp_path, steps=4, seed=0, steps_per_epoch=2,
                    callback=lambda step, losses: seen.append(losses))
    assert trainer.step == 4 and len(seen) == 4
    assert all(np.isfinite(v) for losses in seen for v in losses.values())
    assert all(losses["d_loss"] < 10 and losses["g_adv"] < 10 for losses in seen)
    state = load_checkpoint(tmp_path)
    assert state["step"] == 4 and {"generator", "discriminator", "g_opt", "d_opt"} <= set(state)
    assert state["config"]["crop"] == 32 and state["alignment"] == "default" and state["magnification"] == "20x"
    rows = list(csv.DictReader((tmp_path / LOSSES_CSV).open()))
    assert [r["epoch"] for r in rows] == ["1", "2"] and [r["step"] for r in rows] == ["2", "4"]


def test_resume_continues_exactly_and_seed_determines_the_run(data, tmp_path):
    straight = train(CFG, data, tmp_path / "a", steps=6, seed=3, steps_per_epoch=3)
    first = train(CFG, data, tmp_path / "b", steps=3, seed=3, steps_per_epoch=3)  # an "interrupted" run
    assert first.step == 3
    resumed = Trainer.from_checkpoint(tmp_path / "b" / CHECKPOINT)
    assert resumed.step == 3
    _assert_same(_params(resumed.generator), _params(first.generator))
    _assert_same(resumed.g_opt.state_dict()["state"][0], first.g_opt.state_dict()["state"][0])
    resumed = train(CFG, data, tmp_path / "b", steps=6, seed=3, steps_per_epoch=3)
    assert resumed.step == 6
    _assert_same(_params(resumed.generator), _params(straight.generator))
    _assert_same(_params(resumed.discriminator), _params(straight.discriminator))
    again = train(CFG, data, tmp_path / "c", steps=6, seed=3, steps_per_epoch=3)
    _assert_same(_params(again.generator), _params(straight.generator))
    other = train(CFG, data, tmp_path / "d", steps=6, seed=4, steps_per_epoch=3)
    assert any(not torch.equal(a, b) for a, b in zip(_params(other.generator).values(),
                                                     _params(straight.generator).values(), strict=True))
    with pytest.raises(ValueError, match="seed 3"):
        train(CFG, data, tmp_path / "a", steps=8, seed=5)


def test_predictor_pads_crops_and_returns_uint16(data, tmp_path):
    train(CFG, data, tmp_path, steps=2, seed=0)
    predictor = PatchGANPredictor(checkpoint=tmp_path)
    assert isinstance(predictor, AdipocytePredictor) and predictor.step == 2
    predictor.fit([])  # loaded from a checkpoint: nothing to learn
    planes = np.random.default_rng(1).integers(0, 60000, (7, 45, 70)).astype(np.uint16)
    out = check_outputs(predictor.predict(AdipocyteCase("C02_F003", planes, "20x")), (45, 70))
    assert set(out) == set(CHANNELS) and all(a.dtype == np.uint16 for a in out.values())
    assert pad_to_multiple(torch.zeros(1, 7, 45, 70), 32).shape[-2:] == (64, 96)
    assert pad_to_multiple(torch.zeros(1, 7, 5, 64), 32).shape[-2:] == (32, 64)  # too small to reflect


def test_registered_predictor_fits_in_process(tmp_path):
    assert algorithm_task("adipocyte-patchgan-tiny") == "adipocyte"
    predictor = make_algorithm("adipocyte-patchgan-tiny")
    assert isinstance(predictor, PatchGANPredictor) and isinstance(predictor, AdipocyteTrainable)
    with pytest.raises(RuntimeError, match="call fit"):
        predictor.predict(_examples(1)[0].case)
    examples = _examples(2, size=40)
    cfg, steps = predictor.training_plan(load_training_data(examples))
    assert cfg.crop == 32 and steps == 4 * 16  # ceil(10 passes over 2 x 40² pixels / (2 x 32²))
    predictor.steps = 3
    predictor.fit(examples)
    assert predictor.step == 3
    out = check_outputs(predictor.predict(examples[0].case), (40, 40))
    assert len(out) == len(CHANNELS)


def test_train_cli(tmp_path, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    assert "--steps" in capsys.readouterr().out
    from vsbench.harness.synth_adipocyte import synthesize_adipocyte

    split = synthesize_adipocyte(tmp_path / "split", "20x", sets=1, size=(128, 128), seed=0)
    out = tmp_path / "ckpt"
    argv = ["--quiet", "train", "patchgan", "--task", "adipocyte", "--split", str(split), "--config", "tiny",
            "--out", str(out), "--steps", "2", "--steps-per-epoch", "1"]
    assert main(argv) == 0
    assert "step 2" in capsys.readouterr().out
    assert load_checkpoint(out)["step"] == 2
    assert len(list(csv.DictReader((out / LOSSES_CSV).open()))) == 2
