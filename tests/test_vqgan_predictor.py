"""The VQGAN specialists behind the LMC predict interface, and 'vsbench train vqgan' / 'predict --checkpoint'."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from vsbench.algorithms.base import ORGANELLES, Case, Predictor
from vsbench.algorithms.registry import algorithm_names, algorithm_task, make_algorithm
from vsbench.algorithms.vqgan.config import get_config
from vsbench.algorithms.vqgan.data import postprocess, preprocess
from vsbench.algorithms.vqgan.predictor import VQGANSpecialists
from vsbench.algorithms.vqgan.train import load_specialist, specialist_data_from_split, train
from vsbench.harness.cli import main

from splitfactory import make_split


def _cfg(organelle: str):
    return dataclasses.replace(get_config("tiny", organelle), resolution=32, size=32, batch_size=2)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("vqgan")
    split = make_split(tmp / "train")  # DEFAULT_FIELDS: every organelle in some field
    for organelle in ORGANELLES:
        train(_cfg(organelle), specialist_data_from_split(split, organelle), tmp / "ckpt" / organelle, 2, seed=0)
    return tmp / "ckpt"


def test_loads_every_specialist_once_and_predicts_as_the_winner(root):
    predictor = VQGANSpecialists(checkpoint=root)
    assert isinstance(predictor, Predictor) and predictor.fitted and predictor.name == "vqgan-lmc-tiny"
    assert set(predictor.provenance["specialists"]) == set(ORGANELLES)
    assert all(len(s["checkpoint_sha256"]) == 64 for s in predictor.provenance["specialists"].values())
    image = np.random.default_rng(0).integers(100, 3000, (45, 70)).astype(np.uint16)
    out = predictor.predict(Case("c.ome.tiff", image, "BF"))
    assert set(out) == set(ORGANELLES) and all(a.shape == (45, 70) and a.dtype == np.uint16 for a in out.values())
    for organelle in ORGANELLES:  # the same model run by hand through the documented steps
        model = load_specialist(root / organelle / "checkpoint.pt")[0]
        with torch.no_grad():
            y, _, _ = model(preprocess(image, 32))
        np.testing.assert_allclose(out[organelle], postprocess(y, (45, 70)), atol=1)  # threads: float order
    blank = np.zeros((40, 40), np.uint16)
    assert all(np.array_equal(a, blank) for a in predictor.predict(Case("z.ome.tiff", blank)).values())


def test_a_missing_specialist_is_a_clear_error(root, tmp_path):
    partial = tmp_path / "partial"
    (partial / "nucleus").mkdir(parents=True)
    (partial / "nucleus" / "checkpoint.pt").write_bytes((root / "nucleus" / "checkpoint.pt").read_bytes())
    with pytest.raises(FileNotFoundError, match="no mitochondria specialist"):
        VQGANSpecialists(checkpoint=partial)
    swapped = tmp_path / "swapped"
    for organelle in ORGANELLES:
        (swapped / organelle).mkdir(parents=True)
        (swapped / organelle / "checkpoint.pt").write_bytes((root / "actin" / "checkpoint.pt").read_bytes())
    with pytest.raises(ValueError, match="is a actin specialist, not nucleus"):
        VQGANSpecialists(checkpoint=swapped)
    with pytest.raises(RuntimeError, match="call fit"):
        VQGANSpecialists().predict(Case("c", np.ones((8, 8))))


def test_registered_and_fits_in_process(tmp_path):
    assert "vqgan-lmc-tiny" in algorithm_names() and algorithm_task("vqgan-lmc-tiny") == "lmc"
    assert isinstance(make_algorithm("vqgan-lmc-tiny"), VQGANSpecialists)
    from vsbench.harness.predict import training_examples
    from vsbench.harness.split import Split

    predictor = VQGANSpecialists(steps=1, work_dir=tmp_path / "w")
    predictor.config_name = "tiny"
    predictor.fit(training_examples(Split(make_split(tmp_path / "train", shape=(64, 64)))))
    assert predictor.fitted and all((tmp_path / "w" / o / "checkpoint.pt").is_file() for o in ORGANELLES)


def test_cli_trains_specialists_and_predicts_from_them(tmp_path, capsys):
    train_split, test_split = make_split(tmp_path / "train", shape=(64, 64)), make_split(tmp_path / "test", seed=1)
    ckpt = tmp_path / "ckpt"
    assert main(["--quiet", "train", "vqgan", "--split", str(train_split), "--out", str(ckpt / "nucleus")]) == 2
    assert "give --organelle" in capsys.readouterr().err
    assert main(["--quiet", "train", "vqgan", "--organelle", "nucleus", "--config", "paper-20x", "--split",
                 str(train_split), "--out", str(ckpt / "nucleus")]) == 2
    for organelle in ORGANELLES:
        argv = ["--quiet", "train", "vqgan", "--organelle", organelle, "--split", str(train_split), "--val",
                str(test_split), "--out", str(ckpt / organelle), "--steps", "1"]
        assert main(argv) == 0
    assert "actin specialist, step 1" in capsys.readouterr().out
    out = tmp_path / "pred"
    assert main(["--quiet", "predict", "--split", str(test_split), "--algorithm", "vqgan-lmc-tiny",
                 "--checkpoint", str(ckpt), "--out", str(out)]) == 0
    record = json.loads((out / "run.json").read_text())
    assert record["algorithm"] == "vqgan-lmc-tiny" and set(record["model"]["specialists"]) == set(ORGANELLES)
    assert all(c["status"] == "ok" for c in record["cases"])
