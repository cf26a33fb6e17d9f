"""The split layout: names, best_z.csv, manifest hashes and verification."""

from __future__ import annotations

import json

import pytest

from vsbench.harness.cli import main
from vsbench.harness.split import (
    LMCCase,
    Split,
    SplitError,
    input_name,
    parse_input_name,
    read_best_z,
    target_name,
)

from splitfactory import make_split


def test_names():
    assert parse_input_name("image_12_DIC_z3.ome.tiff") == (12, "DIC", 3)
    assert input_name(12, "DIC", 3) == "image_12_DIC_z3.ome.tiff"
    assert target_name(4, "mitochondria") == "image_4_Mitochondria.ome.tiff"
    for bad in ("image_1_XX_z1.ome.tiff", "img_1_BF_z1.ome.tiff", "image_1_BF.ome.tiff"):
        with pytest.raises(SplitError, match="not an LMC input name"):
            parse_input_name(bad)
    assert LMCCase("x", 1, "BF", 2, 5).z_deviation == 3
    assert LMCCase("x", 1, "BF", 2, None).z_deviation is None


def test_cases_and_organelles(tmp_path):
    split = Split(make_split(tmp_path / "s"))
    cases = split.cases()
    assert [c.name for c in cases][:3] == ["image_0_BF_z0.ome.tiff", "image_0_BF_z3.ome.tiff",
                                           "image_0_BF_z5.ome.tiff"]
    assert [c.z_deviation for c in cases] == [3, 0, 2, 0, 2, 1, 0]
    assert split.organelles(cases[0]) == ["nucleus", "mitochondria"]
    assert split.organelles(cases[-1]) == ["mitochondria", "actin"]


def test_manifest_hashes_and_verify(tmp_path, capsys):
    root = make_split(tmp_path / "s")
    again = make_split(tmp_path / "t")
    split = Split(root)
    files = {f["path"] for f in split.manifest["files"]}
    assert "ground_truth/best_z.csv" in files and "inputs/image_2_DIC_z1.ome.tiff" in files
    assert len(files) == split.manifest["n_inputs"] + 6 + 1
    assert split.split_hash == Split(again).split_hash  # same content, same hash, wherever it lives
    assert split.verify() == []
    assert main(["data", "verify", str(root)]) == 0
    # one changed pixel file and one stray file are both found
    (root / "inputs" / "image_0_BF_z0.ome.tiff").write_bytes(b"changed")
    (root / "inputs" / "stray.txt").write_text("x")
    problems = Split(root).verify()
    assert "inputs/image_0_BF_z0.ome.tiff: sha256 differs from manifest" in problems
    assert "inputs/stray.txt: not in manifest" in problems
    assert main(["data", "verify", str(root)]) == 1
    assert "2 problem(s)" in capsys.readouterr().out


def test_inputs_hash_ignores_ground_truth(tmp_path):
    from vsbench.harness.split import write_manifest

    root = make_split(tmp_path / "s")
    before = Split(root).manifest
    (root / "ground_truth" / "best_z.csv").write_text("name,modality,image_z,best_z\n")
    after = write_manifest(root, "lmc")
    assert after["inputs_hash"] == before["inputs_hash"] and after["split_hash"] != before["split_hash"]


def test_bad_best_z_and_manifest(tmp_path):
    (tmp_path / "b.csv").write_text("name,image_z\nx,1\n")
    with pytest.raises(SplitError, match="missing column"):
        read_best_z(tmp_path / "b.csv")
    (tmp_path / "c.csv").write_text("name,modality,image_z,best_z\nx,BF,one,2\n")
    with pytest.raises(SplitError, match="line 2"):
        read_best_z(tmp_path / "c.csv")
    root = make_split(tmp_path / "s")
    (root / "manifest.json").write_text("{not json")
    with pytest.raises(SplitError, match="invalid JSON"):
        Split(root)
    (root / "manifest.json").write_text(json.dumps({"task": "lmc"}))
    with pytest.raises(SplitError, match="missing 'split_hash'"):
        Split(root)
