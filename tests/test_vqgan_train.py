"""Training of the VQGAN specialists: data grouping, losses, adaptive weight, resume, checkpoints (fast: a 32 px
``tiny`` config, batches of 2)."""

from __future__ import annotations

import copy
import csv
import dataclasses
import hashlib

import numpy as np
import pytest
import torch

from vsbench.algorithms.base import Case, TrainingExample
from vsbench.algorithms.vqgan.config import get_config
from vsbench.algorithms.vqgan.data import preprocess, rescale_to_uint8
from vsbench.algorithms.vqgan.networks import VQModel
from vsbench.algorithms.vqgan.train import (
    BEST,
    CHECKPOINT,
    CSV_FIELDS,
    LOSSES_CSV,
    SpecialistData,
    Trainer,
    _model_input,
    adaptive_weight,
    checkpoint_digest,
    disc_factor,
    hinge_d_loss,
    load_specialist,
    specialist_data,
    specialist_data_from_split,
    train,
    validation_rec_loss,
)

from splitfactory import make_split

CFG = dataclasses.replace(get_config("tiny", "nucleus"), resolution=32, size=32, batch_size=2)
# (modality, organelles with ground truth, slices): the DIC field has no nucleus
FIELDS = [("BF", ("nucleus", "mitochondria"), 3), ("PC", ("nucleus", "tubulin"), 2), ("DIC", ("actin",), 2)]


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _examples(shape=(40, 36), seed: int = 0) -> list[TrainingExample]:
    """Three fields, several slices each sharing one target dict."""
    rng = np.random.default_rng(seed)
    out = []
    for k, (modality, organelles, slices) in enumerate(FIELDS):
        base = rng.random(shape)
        targets = {o: (base * (i + 1) * 900 + rng.random(shape) * 50).astype(np.uint16)
                   for i, o in enumerate(organelles)}
        for z in range(slices):
            image = ((base + 0.1 * z * rng.random(shape)) * 3000 + 100).astype(np.uint16)
            out.append(TrainingExample(Case(f"image_{k}_{modality}_z{z}.ome.tiff", image, modality, 0.3), targets))
    return out


@pytest.fixture(scope="module")
def data() -> SpecialistData:
    return specialist_data(_examples(), "nucleus")


def _states_equal(a: dict, b: dict) -> bool:
    for key in ("model", "discriminator"):
        if a[key].keys() != b[key].keys() or not all(torch.equal(a[key][k], b[key][k]) for k in a[key]):
            return False
    for key in ("ae_opt", "d_opt"):
        for i, s in a[key]["state"].items():
            t = b[key]["state"][i]
            if not all(torch.equal(torch.as_tensor(s[k]), torch.as_tensor(t[k])) for k in s):
                return False
    return a["step"] == b["step"]


# -------------------------------------------------------------------------------------------------------- data

def test_specialist_data_groups_fields_and_rescales():
    examples = _examples()
    data = specialist_data(examples, "nucleus")
    assert data.organelle == "nucleus" and len(data) == 2 and data.n_slices == 5
    assert [len(s) for s in data.inputs] == [3, 2]
    assert data.names == [[e.case.name for e in examples[:3]], [e.case.name for e in examples[3:5]]]
    np.testing.assert_array_equal(data.targets[0], rescale_to_uint8(examples[0].targets["nucleus"]))
    np.testing.assert_array_equal(data.inputs[1][1], rescale_to_uint8(examples[4].case.image))
    assert all(t.dtype == np.uint8 and t.shape == (40, 36) for t in data.targets)
    actin = specialist_data(examples, "actin")
    assert len(actin) == 1 and actin.n_slices == 2


def test_specialist_data_errors(tmp_path):
    examples = _examples()
    with pytest.raises(ValueError, match="no training example has actin"):
        specialist_data(examples[:5], "actin")
    with pytest.raises(ValueError, match="unknown organelle"):
        specialist_data(examples, "golgi")
    bad = TrainingExample(Case("image_9_BF_z0.ome.tiff", np.zeros((8, 8), np.uint16)), examples[0].targets)
    with pytest.raises(ValueError, match=r"image_9_BF_z0\.ome\.tiff: input shape \(8, 8\)"):
        specialist_data([*examples, bad], "nucleus")
    split = make_split(tmp_path / "lmc")
    data = specialist_data_from_split(split, "tubulin")
    assert len(data) == 1 and data.n_slices == 2 and data.targets[0].shape == (48, 40)
    manifest = split / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"task": "lmc"', '"task": "adipocyte"'))
    with pytest.raises(ValueError, match="adipocyte split, not lmc"):
        specialist_data_from_split(split, "nucleus")


def test_batch_is_a_function_of_seed_and_step(data):
    a, b = Trainer(CFG, seed=0), Trainer(CFG, seed=0)
    x1, y1 = a.batch(data)
    x2, y2 = b.batch(data)
    assert x1.shape == y1.shape == (2, 3, 32, 32)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert float(x1.min()) >= -1 and float(x1.max()) <= 1
    b.step = 1
    assert not torch.equal(b.batch(data)[0], x1)
    assert not torch.equal(Trainer(CFG, seed=1).batch(data)[0], x1)


def test_model_input_matches_preprocess():
    raw = (np.random.default_rng(3).random((40, 36)) * 4000).astype(np.uint16)
    assert torch.equal(_model_input(rescale_to_uint8(raw), 32), preprocess(raw, 32))


# -------------------------------------------------------------------------------------------------------- loss

def test_hinge_loss_on_hand_made_logits():
    real = torch.tensor([2.0, 0.5, -1.0])  # relu(1 - x): 0, 0.5, 2 -> mean 5/6
    fake = torch.tensor([-2.0, 0.0, 1.0])  # relu(1 + x): 0, 1, 2 -> mean 1
    assert hinge_d_loss(real, fake).item() == pytest.approx(0.5 * (5 / 6 + 1))
    assert hinge_d_loss(torch.full((4,), 3.0), torch.full((4,), -3.0)).item() == 0.0


def test_adaptive_weight_hand_computed():
    last = torch.nn.Parameter(torch.tensor([1.0, 2.0, 3.0]))
    a, b = torch.tensor([3.0, 0.0, 4.0]), torch.tensor([0.0, 1.0, 0.0])
    w = adaptive_weight((a * last).sum(), (2 * b * last).sum(), last, 0.75)  # grads a (norm 5), 2b (norm 2)
    assert w.item() == pytest.approx(5 / (2 + 1e-4) * 0.75) and not w.requires_grad
    # a zero adversarial gradient: 5 / 1e-4 = 5e4, clamped to 1e4, times the disc weight
    w = adaptive_weight((a * last).sum(), (0 * last).sum(), last, 0.8)
    assert w.item() == pytest.approx(1e4 * 0.8)


def test_train_step_d_weight_equals_separate_backward_passes(data):
    trainer = Trainer(CFG, seed=0)
    twin = copy.deepcopy(trainer)
    x, y = twin.batch(data)
    yhat, _, _ = twin.model(x)
    last = twin.model.last_layer
    (y - yhat).abs().mean().backward(retain_graph=True)
    g_nll = last.grad.norm().item()
    twin.model.zero_grad()
    (-twin.discriminator(yhat).mean()).backward()
    g_adv = last.grad.norm().item()
    expected = min(max(g_nll / (g_adv + 1e-4), 0.0), 1e4) * CFG.disc_weight
    losses = trainer.train_step(data)
    assert losses["d_weight"] == pytest.approx(expected, rel=1e-5)
    assert losses["loss"] == pytest.approx(losses["rec_loss"] + losses["d_weight"] * losses["g_loss"]
                                           + losses["codebook_loss"], rel=1e-5)


def test_disc_factor_zero_before_disc_start(data):
    cfg = dataclasses.replace(CFG, disc_start=2)
    assert [disc_factor(cfg, s) for s in range(4)] == [0.0, 0.0, 1.0, 1.0]
    trainer = Trainer(cfg, seed=0)
    d0 = {k: v.clone() for k, v in trainer.discriminator.named_parameters()}
    for _ in range(2):
        losses = trainer.train_step(data)
        assert losses["disc_factor"] == 0.0 and losses["disc_loss"] == 0.0
        assert losses["loss"] == pytest.approx(losses["rec_loss"] + losses["codebook_loss"], rel=1e-6)
    assert all(torch.equal(v, d0[k]) for k, v in trainer.discriminator.named_parameters())
    losses = trainer.train_step(data)
    assert losses["disc_factor"] == 1.0 and losses["disc_loss"] > 0
    assert not all(torch.equal(v, d0[k]) for k, v in trainer.discriminator.named_parameters())


def test_perceptual_weight_needs_a_hook(data):
    cfg = dataclasses.replace(CFG, perceptual_weight=1.0)
    with pytest.raises(ValueError, match="needs a perceptual loss"):
        Trainer(cfg)
    trainer = Trainer(cfg, perceptual=lambda y, yhat: torch.full((y.shape[0],), 0.5))
    losses = trainer.train_step(data)
    plain = Trainer(CFG).train_step(data)
    assert losses["rec_loss"] == pytest.approx(plain["rec_loss"] + 0.5, rel=1e-5)


def test_gradient_accumulation_runs_micro_batches(data):
    cfg = dataclasses.replace(CFG, accumulate_grad_batches=2)
    trainer = Trainer(cfg)
    # micro-batch j of step k draws from default_rng([seed, 2k + j]): step 0's second is the plain run's step 1
    plain = Trainer(CFG)
    plain.step = 1
    assert torch.equal(trainer.batch(data, 1)[0], plain.batch(data)[0])
    losses = trainer.train_step(data)
    assert trainer.step == 1 and all(np.isfinite(v) for v in losses.values())


# ------------------------------------------------------------------------------------------------------- train

def test_train_writes_checkpoint_csv_and_resumes_bit_identically(tmp_path, data):
    straight = train(CFG, data, tmp_path / "a", steps=6, seed=0, steps_per_epoch=2)
    assert straight.step == 6
    rows = list(csv.DictReader((tmp_path / "a" / LOSSES_CSV).open()))
    assert [int(r["step"]) for r in rows] == [2, 4, 6] and [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert set(rows[0]) == set(CSV_FIELDS)
    for r in rows:
        for k in ("rec_loss", "codebook_loss", "g_loss", "d_weight", "disc_loss", "usage", "perplexity"):
            assert np.isfinite(float(r[k])), k
        assert 0 < float(r["usage"]) <= 1 and 1 <= float(r["perplexity"]) <= CFG.n_embed
        assert r["val_rec_loss"] == ""
    state = torch.load(tmp_path / "a" / CHECKPOINT, weights_only=False)
    assert state["step"] == 6 and state["seed"] == 0 and state["organelle"] == "nucleus"
    assert state["config"] == CFG.to_dict() and state["format"].startswith("vsbench-vqgan")
    assert {"model", "discriminator", "ae_opt", "d_opt"} <= set(state)

    first = train(CFG, data, tmp_path / "b", steps=4, seed=0, steps_per_epoch=2)
    assert first.step == 4
    resumed = train(CFG, data, tmp_path / "b", steps=6, seed=0, steps_per_epoch=2)
    assert resumed.step == 6
    assert _states_equal(straight.state_dict(), resumed.state_dict())
    assert len(list(csv.DictReader((tmp_path / "b" / LOSSES_CSV).open()))) == 3
    assert train(CFG, data, tmp_path / "b", steps=6, seed=0).step == 6  # done: nothing to do

    other = train(CFG, data, tmp_path / "c", steps=6, seed=1, steps_per_epoch=6)
    assert not _states_equal(straight.state_dict(), other.state_dict())
    with pytest.raises(ValueError, match="seed 0, not 'tiny'.*seed 1"):
        train(CFG, data, tmp_path / "a", steps=8, seed=1)
    with pytest.raises(ValueError, match="trained with config"):
        train(dataclasses.replace(CFG, disc_weight=0.5), data, tmp_path / "a", steps=8, seed=0)


def test_train_from_examples_with_validation_keeps_best(tmp_path):
    examples = _examples()
    val = _examples(seed=5)
    seen = []
    trainer = train(CFG, examples, tmp_path, steps=4, seed=0, steps_per_epoch=1, val_data=val,
                    callback=lambda step, losses: seen.append((step, losses["rec_loss"])))
    assert [s for s, _ in seen] == [1, 2, 3, 4]
    rows = list(csv.DictReader((tmp_path / LOSSES_CSV).open()))
    scores = [float(r["val_rec_loss"]) for r in rows]
    assert len(scores) == 4 and all(np.isfinite(scores))
    best = torch.load(tmp_path / BEST, weights_only=False)
    assert best["best_val_rec_loss"] == pytest.approx(min(scores), rel=1e-5)
    assert best["step"] == 1 + int(np.argmin(scores))
    assert trainer.best_val_rec_loss == pytest.approx(min(scores), rel=1e-5)
    # the score is the inference path's L1 on every validation slice
    model, cfg, _, _ = load_specialist(tmp_path / CHECKPOINT)
    vdata = specialist_data(val, "nucleus")
    with torch.no_grad():
        manual = np.mean([float((model(preprocess(e.case.image, 32))[0]
                                 - _model_input(rescale_to_uint8(e.targets["nucleus"]), 32)).abs().mean())
                          for e in val if "nucleus" in e.targets])
    assert validation_rec_loss(model, vdata, cfg.resolution) == pytest.approx(manual, rel=1e-5)
    assert scores[-1] == pytest.approx(manual, rel=1e-4)


def test_train_rejects_other_organelle_and_non_finite(tmp_path, data, monkeypatch):
    with pytest.raises(ValueError, match="data of nucleus"):
        train(dataclasses.replace(CFG, organelle="actin"), data, tmp_path / "x", steps=1)
    step = Trainer.train_step

    def poisoned(self, d):
        losses = step(self, d)
        return {**losses, "rec_loss": float("nan")} if self.step == 2 else losses

    monkeypatch.setattr(Trainer, "train_step", poisoned)
    with pytest.raises(FloatingPointError, match="non-finite loss at step 2.*rec_loss"):
        train(CFG, data, tmp_path / "y", steps=3)


def test_train_restores_thread_count(tmp_path, data):
    torch.set_num_threads(2)
    train(CFG, data, tmp_path, steps=1)
    assert torch.get_num_threads() == 2


def test_load_specialist_round_trip(tmp_path, data):
    trainer = train(CFG, data, tmp_path, steps=2, seed=3)
    model, cfg, organelle, step = load_specialist(tmp_path)
    assert isinstance(model, VQModel) and not model.training
    assert cfg.to_dict() == CFG.to_dict() and organelle == "nucleus" and step == 2
    x = preprocess(data.inputs[0][0], 32)
    with torch.no_grad():
        assert torch.equal(model(x)[0], trainer.predict(x))
    digest = checkpoint_digest(tmp_path)
    assert digest == hashlib.sha256((tmp_path / CHECKPOINT).read_bytes()).hexdigest()
    assert checkpoint_digest(tmp_path / CHECKPOINT) == digest
    restored = Trainer.from_checkpoint(tmp_path)
    assert _states_equal(restored.state_dict(), trainer.state_dict())
    torch.save({"format": "other"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a vqgan checkpoint"):
        load_specialist(tmp_path / "other.pt")
    with pytest.raises(FileNotFoundError):
        load_specialist(tmp_path / "missing")
