"""TinyUNet: the predict interface, seeded determinism, and that it learns what trivial baselines cannot."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vsbench.algorithms.base import ORGANELLES, Case, Predictor, Trainable, TrainingExample
from vsbench.algorithms.registry import algorithm_class, make_algorithm
from vsbench.algorithms.unet import TinyUNet
from vsbench.harness.evaluate import evaluate_lmc
from vsbench.harness.predict import fit_if_needed, run_predictor
from vsbench.harness.split import Split
from vsbench.harness.synth_lmc import synthesize_lmc

TRIVIAL = ("input", "inverted", "blurred", "train-mean")


def _examples(seed: int = 0, shape=(40, 36)) -> list[TrainingExample]:
    """Three fields (one per modality), two slices each; the targets are functions of the input."""
    rng = np.random.default_rng(seed)
    out = []
    for k, modality in enumerate(("BF", "PC", "DIC")):
        base = rng.random(shape)
        targets = {"nucleus": (base > 0.5).astype(np.float32) * 1000, ORGANELLES[1 + k]: base * 500}
        for z in range(2):
            image = (base + 0.1 * z * rng.random(shape)) * 3000 + 100
            out.append(TrainingExample(Case(f"image_{k}_{modality}_z{z}.ome.tiff", image.astype(np.uint16),
                                            modality, 0.3), targets))
    return out


def _quick(seed: int = 0) -> TinyUNet:
    return TinyUNet(steps=3, seed=seed, crop=32, batch=2, widths=(4, 8, 8))


def test_registered_and_follows_the_interface():
    assert algorithm_class("tiny-unet") is TinyUNet
    model = make_algorithm("tiny-unet")
    assert isinstance(model, Predictor) and isinstance(model, Trainable)
    with pytest.raises(RuntimeError, match="fit"):
        model.predict(Case("x", np.zeros((8, 8), np.uint16)))
    with pytest.raises(ValueError, match="no ground truth"):
        model.fit([TrainingExample(Case("x", np.zeros((8, 8), np.uint16)), {})])


@pytest.mark.parametrize("modality", ["BF", "PC", "DIC", None])
def test_outputs_four_finite_maps_of_the_input_shape(modality):
    model = _quick()
    model.fit(_examples())  # fields smaller than a crop are mirrored out to it
    img = np.random.default_rng(1).integers(0, 60000, (77, 53)).astype(np.uint16)  # not a multiple of 4
    out = model.predict(Case("image_9_PC_z1.ome.tiff", img, modality, 0.3))
    assert set(out) == set(ORGANELLES)
    for arr in out.values():
        assert arr.shape == img.shape and arr.dtype == np.float32 and np.isfinite(arr).all()
    assert len({arr.tobytes() for arr in out.values()}) == 4  # four different heads, not one copy


def test_default_size_and_training_budget():
    model = TinyUNet()
    model.fit(_examples(shape=(24, 20)))
    n_weights = sum(p.numel() for p in model.model.parameters())
    assert 30_000 < n_weights < 300_000
    assert model.steps_run == 1  # epochs count passes over the training pixels: tiny data, one step


def test_same_seed_same_model_other_seed_other_model():
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    case = Case("image_9_DIC_z1.ome.tiff", np.random.default_rng(2).integers(0, 9000, (45, 50)), "DIC", 0.3)
    runs = []
    for seed in (7, 7, 8):
        model = _quick(seed)
        model.fit(_examples())
        runs.append(model.predict(case))
    assert all(np.array_equal(runs[0][o], runs[1][o]) for o in ORGANELLES)
    assert not np.array_equal(runs[0]["nucleus"], runs[2]["nucleus"])
    # fitting leaves the process's torch settings as it found them
    assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == (threads, deterministic)


# Nucleus PCC on the test split of synthesize_lmc(fovs=3, size=256) with the default budget (about 30 s of
# training on one CPU thread), measured for data seeds 0, 1, 2: tiny-unet 0.689, 0.612, 0.693 against the
# best trivial baseline (always "inverted") 0.441, 0.320, 0.418, a margin of +0.25 to +0.29. The same
# model after 2 steps scores 0.046 on seed 0 (margin -0.40): the test fails for a model that has not learnt.
LEARNING_MARGIN = 0.15


@pytest.mark.slow
def test_learns_what_trivial_baselines_cannot(tmp_path):
    paths = synthesize_lmc(tmp_path / "data", fovs=3, size=256, seed=0, progress=False)
    train, test = Split(paths["train"]), Split(paths["test"])
    pcc = {}
    for name in (*TRIVIAL, "tiny-unet"):
        predictor = make_algorithm(name)
        fit_if_needed(predictor, train)
        run_predictor(predictor, test, tmp_path / name, progress=False)
        metrics = evaluate_lmc(test, tmp_path / name, progress=False)
        assert not [e for e in metrics["errors"] if "not scored" not in e["reason"]]
        pcc[name] = {o: m["PCC"] for o, m in metrics["aggregates"].items()}
    best_trivial = max(pcc[name]["nucleus"] for name in TRIVIAL)
    assert pcc["tiny-unet"]["nucleus"] > best_trivial + LEARNING_MARGIN, pcc
