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
from vsbench.algorithms.patchgan.networks import CompositeGenerator, pad_to_multiple
from vsbench.algorithms.patchgan.predictor import PatchGANPredictor
from vsbench.algorithms.patchgan.train import (
    BEST,
    CHECKPOINT,
    LOSSES_CSV,
    Trainer,
    load_checkpoint,
    load_training_data,
    masked_mae,
    train,
    validation_mae,
)
from vsbench.algorithms.registry import algorithm_task, make_algorithm
from vsbench.harness.cli import build_parser, main

CFG = dataclasses.replace(get_config("tiny"), crop=32, crop_before_augmentation=46, batch_size=2)


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
    for argv in (["--quiet", "train", "patchgan"], ["train", "patchgan", "--quiet"]):  # either place silences it
        assert build_parser().parse_args([*argv, "--split", "s", "--out", "o"]).quiet is True
    assert build_parser().parse_args(["train", "patchgan", "--split", "s", "--out", "o"]).quiet is False
    from vsbench.harness.synth_adipocyte import synthesize_adipocyte

    split = synthesize_adipocyte(tmp_path / "split", "20x", sets=1, size=(128, 128), seed=0)
    out = tmp_path / "ckpt"
    argv = ["--quiet", "train", "patchgan", "--task", "adipocyte", "--split", str(split), "--config", "tiny",
            "--out", str(out), "--steps", "2", "--steps-per-epoch", "1"]
    assert main(argv) == 0
    assert "step 2" in capsys.readouterr().out
    assert load_checkpoint(out)["step"] == 2
    assert len(list(csv.DictReader((out / LOSSES_CSV).open()))) == 2


def test_validation_mae_is_the_organisers_pixel_mae_and_goes_to_the_csv(data, tmp_path):
    from vsbench.metrics.adipocyte import pixel_mae

    val = load_training_data(_examples(2, size=40, seed=5))
    trainer = train(CFG, data, tmp_path, steps=2, seed=0, steps_per_epoch=1, val_data=val)
    scores = validation_mae(trainer, val)
    predictor = PatchGANPredictor(checkpoint=tmp_path)
    examples = _examples(2, size=40, seed=5)
    predictions = [predictor.predict(ex.case) for ex in examples]
    expected = pixel_mae([ex.targets for ex in examples], predictions)
    assert scores["mean"] == pytest.approx(expected["pixel_mae"], rel=1e-12)
    for c, value in zip(CHANNELS, expected["per_channel"].values(), strict=True):  # C01, C02, C03
        assert scores[c] == pytest.approx(value, rel=1e-12)
    rows = list(csv.DictReader((tmp_path / LOSSES_CSV).open()))
    assert len(rows) == 2 and float(rows[-1]["val_mae"]) == pytest.approx(scores["mean"], rel=1e-5)
    assert all(float(rows[-1][f"val_{c}"]) > 0 for c in CHANNELS)
    # best.pt: the epoch with the lowest validation MAE, loadable by the predictor
    vals = [float(r["val_mae"]) for r in rows]
    best = load_checkpoint(tmp_path / BEST)
    assert best["step"] == 1 + vals.index(min(vals)) and best["best_val_mae"] == pytest.approx(min(vals), rel=1e-5)
    assert PatchGANPredictor(checkpoint=tmp_path / BEST).step == best["step"]


def test_masked_targets_leave_missing_channels_out_of_the_mae():
    fake = torch.zeros(2, 3, 4, 4)
    target = torch.ones(2, 3, 4, 4)
    target[0, 1] = 100.0  # missing in image 0: must not count
    mask = torch.tensor([[True, False, True], [True, True, True]])
    assert masked_mae(fake, target, mask).item() == pytest.approx(1.0)
    assert masked_mae(fake, target, None).item() == pytest.approx((99 * 16 + 6 * 16) / 96)


def test_stage2_models_train_on_frozen_stage1_resume_and_load(data, tmp_path):
    cfg = dataclasses.replace(CFG, stage2=("nuclei",))
    trainer = train(cfg, data, tmp_path / "a", steps=2, seed=0, stage2_steps=3, steps_per_epoch=1)
    assert trainer.step == 2 and set(trainer.stage2_trainers) == {"nuclei"}
    stage1 = _params(trainer.generator)
    t2 = trainer.stage2_trainers["nuclei"]
    assert t2.step == 3 and (tmp_path / "a" / "stage2_nuclei" / CHECKPOINT).is_file()
    _assert_same(_params(trainer.generator), stage1)  # stage 2 never changes Model 1
    assert (t2.generator.in_channels, t2.generator.out_channels) == (7 + 3, 1)
    x, y, mask = t2.batch(data)
    assert x.shape[1] == 7 and y.shape[1] == 3
    # interrupted after one stage-2 update, then resumed: same weights as straight through
    train(cfg, data, tmp_path / "b", steps=2, seed=0, stage2_steps=1, steps_per_epoch=1)
    resumed = train(cfg, data, tmp_path / "b", steps=2, seed=0, stage2_steps=3, steps_per_epoch=1)
    _assert_same(_params(resumed.stage2_trainers["nuclei"].generator), _params(t2.generator))
    # the predictor composes Model 1 and the stage-2 model; lipids and cytoplasm stay Model 1's
    predictor = PatchGANPredictor(checkpoint=tmp_path / "a")
    assert list(predictor.generator.stage2) == ["nuclei"]
    plain = PatchGANPredictor()
    plain.generator = CompositeGenerator(predictor.generator.stage1, {}, CHANNELS).eval()
    case = _examples(1, size=40, seed=9)[0].case
    both, first = predictor.predict(case), plain.predict(case)
    assert np.array_equal(both["lipids"], first["lipids"]) and np.array_equal(both["cytoplasm"], first["cytoplasm"])
    assert not np.array_equal(both["nuclei"], first["nuclei"])
    digest = predictor.provenance["checkpoint_sha256"]
    (tmp_path / "a" / "stage2_nuclei" / CHECKPOINT).unlink()  # the digest covers the stage-2 weights
    assert PatchGANPredictor(checkpoint=tmp_path / "a").provenance["checkpoint_sha256"] != digest


def test_predict_cli_loads_a_checkpoint_and_records_it(tmp_path, capsys):
    import json

    from vsbench.harness.synth_adipocyte import synthesize_adipocyte

    split = synthesize_adipocyte(tmp_path / "split", "20x", sets=2, size=(64, 64), seed=0)
    ckpt = tmp_path / "ckpt"
    assert main(["--quiet", "train", "patchgan", "--split", str(split), "--val", str(split), "--out", str(ckpt),
                 "--steps", "1"]) == 0
    out = tmp_path / "pred"
    argv = ["--quiet", "predict", "--split", str(split), "--algorithm", "adipocyte-patchgan-tiny",
            "--checkpoint", str(ckpt), "--out", str(out)]
    assert main(argv) == 0
    record = json.loads((out / "run.json").read_text())
    assert record["algorithm"] == "adipocyte-patchgan-tiny" and record["model"]["step"] == 1
    assert len(record["model"]["checkpoint_sha256"]) == 64 and record["model"]["checkpoint"] == str(ckpt.resolve())
    assert all(c["status"] == "ok" for c in record["cases"]) and len(record["cases"]) == 2
    assert main(["--quiet", "train", "patchgan", "--split", str(split), "--out", str(ckpt), "--steps", "2"]) == 0
    capsys.readouterr()
    assert main(argv) == 2  # other weights: refuses to mix them into the same folder
    assert "another model" in capsys.readouterr().err
    assert main([*argv[:-2], "--out", str(tmp_path / "p2"), "--train", str(split)]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["--quiet", "predict", "--split", str(split), "--algorithm", "adipocyte-ridge",
                 "--checkpoint", str(ckpt), "--out", str(tmp_path / "p3")]) == 2
    assert "does not load checkpoints" in capsys.readouterr().err
