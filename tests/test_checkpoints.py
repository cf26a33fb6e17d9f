"""The committed tiny checkpoints (``algorithms/checkpoints``) and weights-only export (``vsbench model export``)."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from vsbench.algorithms import checkpoints
from vsbench.algorithms.adipocyte_base import CHANNELS, AdipocyteCase, AdipocyteTrainingExample
from vsbench.algorithms.base import ORGANELLES, Case
from vsbench.algorithms.export import export_checkpoint, file_sha256, weights_digest
from vsbench.algorithms.patchgan.config import get_config as patchgan_config
from vsbench.algorithms.patchgan.predictor import PatchGANPredictor, load_generator
from vsbench.algorithms.patchgan.train import load_training_data
from vsbench.algorithms.patchgan.train import train as train_patchgan
from vsbench.algorithms.registry import make_algorithm
from vsbench.algorithms.vqgan.config import get_config as vqgan_config
from vsbench.algorithms.vqgan.predictor import VQGANSpecialists
from vsbench.algorithms.vqgan.train import load_checkpoint as load_vqgan_checkpoint
from vsbench.algorithms.vqgan.train import load_specialist, specialist_data_from_split
from vsbench.algorithms.vqgan.train import train as train_vqgan
from vsbench.harness.cli_model import _add_model_export

from splitfactory import make_split

MAX_BYTES = 5_000_000  # "5 MB", decimal: the stricter reading
VQGAN = checkpoints.path("vqgan-lmc-tiny")
PATCHGAN = checkpoints.path("adipocyte-patchgan-tiny")
# where the last session's training checkpoints were (absent on CI: those comparisons skip)
SOURCES = {"vqgan-lmc-tiny": Path("/tmp/vqe/ckpt"), "adipocyte-patchgan-tiny": Path("/tmp/pg/ckpt")}


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _lmc_image(shape=(96, 80), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    blobs = 2000 + 800 * np.sin(yy / 7.0) * np.cos(xx / 5.0)
    return np.clip(blobs + rng.normal(0, 150, shape), 0, 65535).astype(np.uint16)


def _adipocyte_case(size=64, seed=0) -> AdipocyteCase:
    rng = np.random.default_rng(seed)
    planes = rng.integers(500, 3000, (7, size, size)).astype(np.uint16)
    return AdipocyteCase("B03_F001", planes, "20x")


def _equal_outputs(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


# ---------------------------------------------------------------------------------------- the committed checkpoints

def test_committed_checkpoints_fit_in_5_mb():
    files = [p for p in checkpoints.ROOT.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert sum(p.stat().st_size for p in files) <= MAX_BYTES
    assert {p.relative_to(checkpoints.ROOT).as_posix() for p in files if p.suffix == ".pt"} == {
        *(f"vqgan-lmc-tiny/{o}/checkpoint.pt" for o in ORGANELLES), "patchgan-adipocyte-tiny/checkpoint.pt"}


def test_readme_lists_every_file_with_its_size_and_sha256():
    text = (checkpoints.ROOT / "README.md").read_text()
    rows = re.findall(r"`([\w./-]+\.pt)`\s*\|\s*([\d,]+)\s*\|\s*`([0-9a-f]{64})`", text)
    listed = {name: (int(size.replace(",", "")), sha) for name, size, sha in rows}
    on_disk = {p.relative_to(checkpoints.ROOT).as_posix(): p for p in checkpoints.ROOT.rglob("*.pt")}
    assert set(listed) == set(on_disk)
    for name, path in on_disk.items():
        assert listed[name] == (path.stat().st_size, file_sha256(path)), name


def test_demo_constants_name_the_folders():
    assert checkpoints.DEMO_CHECKPOINTS == {"vqgan-lmc-tiny": VQGAN, "adipocyte-patchgan-tiny": PATCHGAN}
    assert checkpoints.path("patchgan-adipocyte-tiny") == PATCHGAN
    with pytest.raises(KeyError, match="no committed checkpoint"):
        checkpoints.path("nope")


def test_committed_checkpoints_are_weights_only_with_provenance():
    for path in [*(VQGAN / o / "checkpoint.pt" for o in ORGANELLES), PATCHGAN / "checkpoint.pt"]:
        state = torch.load(path, map_location="cpu", weights_only=True)  # plain tensors and containers only
        assert state["weights_only"] is True and state["weights_dtype"] == "float32"
        assert "discriminator" not in state and not {"g_opt", "d_opt", "ae_opt"} & set(state)
        assert state["config"]["name"] == "tiny" and state["step"] > 0
        assert len(state["exported_from"]["sha256"]) == 64
        network = state["generator"] if "generator" in state else state["model"]
        assert weights_digest(network) == state["exported_from"]["weights_sha256"]  # the source's exact weights
    assert [torch.load(VQGAN / o / "checkpoint.pt", weights_only=True)["organelle"] for o in ORGANELLES] == list(
        ORGANELLES)


def test_committed_vqgan_specialists_load_and_predict():
    predictor = make_algorithm("vqgan-lmc-tiny", checkpoint=VQGAN)
    assert predictor.fitted and predictor.name == "vqgan-lmc-tiny"
    for o in ORGANELLES:
        record = predictor.provenance["specialists"][o]
        assert record["step"] == 1500 and record["exported_from"]["file"] == f"{o}/checkpoint.pt"
    image = _lmc_image()
    out = predictor.predict(Case("c.ome.tiff", image, "BF"))
    assert set(out) == set(ORGANELLES)
    assert all(a.shape == image.shape and a.dtype == np.uint16 and a.std() > 0 for a in out.values())
    source = SOURCES["vqgan-lmc-tiny"]
    if not all((source / o / "checkpoint.pt").is_file() for o in ORGANELLES):
        pytest.skip(f"{source}: the training checkpoints are not on this machine")
    for o in ORGANELLES:
        if file_sha256(source / o / "checkpoint.pt") != predictor.provenance["specialists"][o]["exported_from"][
                "sha256"]:
            pytest.skip(f"{source / o}: not the checkpoint the committed one was exported from")
    _equal_outputs(out, VQGANSpecialists(checkpoint=source).predict(Case("c.ome.tiff", image, "BF")))


def test_committed_patchgan_loads_and_predicts():
    predictor = make_algorithm("adipocyte-patchgan-tiny", checkpoint=PATCHGAN)
    assert predictor.fitted and predictor.name == "adipocyte-patchgan-tiny" and predictor.step == 2500
    assert predictor.provenance["exported_from"]["file"] == "checkpoint.pt"
    case = _adipocyte_case()
    out = predictor.predict(case)
    assert set(out) == set(CHANNELS)
    assert all(a.shape == case.shape and a.dtype == np.uint16 and a.std() > 0 for a in out.values())
    source = SOURCES["adipocyte-patchgan-tiny"]
    if not (source / "checkpoint.pt").is_file():
        pytest.skip(f"{source}: the training checkpoint is not on this machine")
    if file_sha256(source / "checkpoint.pt") != predictor.provenance["exported_from"]["sha256"]:
        pytest.skip(f"{source}: not the checkpoint the committed one was exported from")
    _equal_outputs(out, PatchGANPredictor(checkpoint=source).predict(case))


# ------------------------------------------------------------------------------- export of freshly trained models

def _vqgan_cfg(organelle: str):
    return dataclasses.replace(vqgan_config("tiny", organelle), resolution=32, size=32, batch_size=2)


@pytest.fixture(scope="module")
def vqgan_root(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("vqgan-export")
    split = make_split(tmp / "train")
    torch.set_num_threads(1)
    for organelle in ORGANELLES:
        train_vqgan(_vqgan_cfg(organelle), specialist_data_from_split(split, organelle), tmp / "ckpt" / organelle,
                    2, seed=0)
    return tmp / "ckpt"


def _patchgan_examples(n=2, size=48) -> list[AdipocyteTrainingExample]:
    rng = np.random.default_rng(0)
    out = []
    for k in range(n):
        planes = rng.integers(500, 3000, (7, size, size)).astype(np.uint16)
        targets = {c: np.clip(planes[3] * (i + 1) / 10, 0, 65535).astype(np.uint16) for i, c in enumerate(CHANNELS)}
        out.append(AdipocyteTrainingExample(AdipocyteCase(f"B0{k + 2}_F00{k + 1}", planes, "20x"), targets))
    return out


PATCHGAN_CFG = dataclasses.replace(patchgan_config("tiny"), crop=32, crop_before_augmentation=46, batch_size=2)


def test_vqgan_export_round_trip(vqgan_root, tmp_path):
    written = export_checkpoint("vqgan", vqgan_root, tmp_path / "w")
    assert sorted(p.relative_to(tmp_path / "w").as_posix() for p in written) == sorted(
        f"{o}/checkpoint.pt" for o in ORGANELLES)
    for o in ORGANELLES:
        full, small = vqgan_root / o / "checkpoint.pt", tmp_path / "w" / o / "checkpoint.pt"
        assert small.stat().st_size < full.stat().st_size / 2
        state = load_vqgan_checkpoint(small)
        assert state["exported_from"] == {"file": f"{o}/checkpoint.pt", "sha256": file_sha256(full),
                                          "size": full.stat().st_size,
                                          "weights_sha256": weights_digest(load_vqgan_checkpoint(full)["model"])}
        assert weights_digest(state["model"]) == state["exported_from"]["weights_sha256"]
        assert (state["organelle"], state["step"], state["seed"]) == (o, 2, 0)
        assert state["config"] == load_vqgan_checkpoint(full)["config"]
    image = _lmc_image(seed=1)
    full = VQGANSpecialists(checkpoint=vqgan_root).predict(Case("c.ome.tiff", image))
    _equal_outputs(VQGANSpecialists(checkpoint=tmp_path / "w").predict(Case("c.ome.tiff", image)), full)
    # the same source exports to the same bytes
    again = export_checkpoint("vqgan", vqgan_root, tmp_path / "again")
    assert [file_sha256(p) for p in again] == [file_sha256(p) for p in written]
    with pytest.raises(FileExistsError, match="--overwrite"):
        export_checkpoint("vqgan", vqgan_root, tmp_path / "w")
    # an export cannot resume training
    with pytest.raises(ValueError, match="weights-only"):
        train_vqgan(_vqgan_cfg("nucleus"), specialist_data_from_split(make_split(tmp_path / "s"), "nucleus"),
                    tmp_path / "w" / "nucleus", 4, seed=0)


def test_vqgan_half_export_is_the_float16_rounding(vqgan_root, tmp_path):
    src = vqgan_root / "nucleus" / "checkpoint.pt"
    (path,) = export_checkpoint("vqgan", src, tmp_path / "h.pt", half=True)
    state = load_vqgan_checkpoint(path)
    assert state["weights_dtype"] == "float16" and state["exported_from"]["file"] == "checkpoint.pt"
    assert all(v.dtype in (torch.float16, torch.int64) for v in state["model"].values())
    model, _, organelle, step = load_specialist(path)
    reference = load_specialist(src)[0].state_dict()
    assert (organelle, step) == ("nucleus", 2)
    for k, v in model.state_dict().items():
        expected = reference[k].half().float() if reference[k].is_floating_point() else reference[k]
        assert v.dtype == reference[k].dtype
        torch.testing.assert_close(v, expected, rtol=0, atol=0, msg=k)


def test_patchgan_export_round_trip(tmp_path):
    data = load_training_data(_patchgan_examples())
    train_patchgan(PATCHGAN_CFG, data, tmp_path / "full", steps=2, seed=0)
    written = export_checkpoint("patchgan", tmp_path / "full", tmp_path / "w")
    assert written == [tmp_path / "w" / "checkpoint.pt"]
    case = _adipocyte_case(size=40, seed=3)
    full = PatchGANPredictor(checkpoint=tmp_path / "full")
    small = PatchGANPredictor(checkpoint=tmp_path / "w")
    _equal_outputs(small.predict(case), full.predict(case))
    assert small.provenance["exported_from"]["checkpoint_digest"] == full.provenance["checkpoint_sha256"]
    assert small.provenance["exported_from"]["sha256"] == file_sha256(tmp_path / "full" / "checkpoint.pt")
    assert (small.step, small.name) == (2, full.name)
    with pytest.raises(ValueError, match="weights-only"):
        train_patchgan(PATCHGAN_CFG, data, tmp_path / "w", steps=4, seed=0)
    # float16 on disk, float32 after loading, the float16 rounding of the weights
    export_checkpoint("patchgan", tmp_path / "full", tmp_path / "h", half=True)
    model, _, _ = load_generator(tmp_path / "h")
    reference = load_generator(tmp_path / "full")[0].state_dict()
    for k, v in model.state_dict().items():
        expected = reference[k].half().float() if reference[k].is_floating_point() else reference[k]
        torch.testing.assert_close(v, expected, rtol=0, atol=0, msg=k)


def test_patchgan_export_keeps_the_stage2_models(tmp_path):
    data = load_training_data(_patchgan_examples())
    cfg = dataclasses.replace(PATCHGAN_CFG, stage2=("nuclei",))
    train_patchgan(cfg, data, tmp_path / "full", steps=1, seed=0, stage2_steps=1)
    written = export_checkpoint("patchgan", tmp_path / "full", tmp_path / "w")
    assert [p.relative_to(tmp_path / "w").as_posix() for p in written] == [
        "checkpoint.pt", "stage2_nuclei/checkpoint.pt"]
    case = _adipocyte_case(size=40, seed=4)
    small = PatchGANPredictor(checkpoint=tmp_path / "w")
    assert list(small.generator.stage2) == ["nuclei"]
    _equal_outputs(small.predict(case), PatchGANPredictor(checkpoint=tmp_path / "full").predict(case))


def test_cli_model_export(vqgan_root, tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="vsbench model")
    _add_model_export(parser.add_subparsers(dest="model_command", required=True))
    args = parser.parse_args(["export", "vqgan", "--checkpoint", str(vqgan_root / "actin"), "--out",
                              str(tmp_path / "actin"), "--half"])
    assert args.func(args) == 0
    path = tmp_path / "actin" / "checkpoint.pt"
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert capsys.readouterr().out.strip() == f"{path}: {path.stat().st_size:,} bytes, sha256 {sha}"
    assert load_vqgan_checkpoint(path)["weights_dtype"] == "float16"
