"""Importing raw Adipocyte challenge folders: byte-identical round trip, magnification, skips, errors, CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile

from vsbench.harness import synth_adipocyte as sa
from vsbench.harness.adipocyte_split import adipocyte_sets, bf_name, target_name
from vsbench.harness.cli import build_parser, main
from vsbench.harness.import_adipocyte import IMPORTER, AdipocyteImportError, import_adipocyte, magnifications_in
from vsbench.harness.split import GROUND_TRUTH, INPUTS, MANIFEST, Split

KEYS = ["B03_F001", "B03_F002", "B03_F003"]


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    """Three 20x image sets of 48 x 48 pixels (under a second)."""
    return sa.synthesize_adipocyte(tmp_path_factory.mktemp("adipo") / "split", "20x", len(KEYS), (48, 48), seed=7)


def _raw(synth: Path, folder: Path) -> Path:
    """The synthetic split's images flattened into one folder, as the challenge shipped them."""
    folder.mkdir(parents=True)
    for sub in (INPUTS, GROUND_TRUTH):
        for path in (synth / sub).iterdir():
            shutil.copyfile(path, folder / path.name)
    return folder


@pytest.fixture
def raw(synth, tmp_path) -> Path:
    return _raw(synth, tmp_path / "data" / "20x images")


def _info(out: Path) -> dict:
    return json.loads((out / MANIFEST).read_text())["info"]


def test_round_trip_is_byte_identical(synth, raw, tmp_path):
    out = import_adipocyte(raw, tmp_path / "out")
    for sub in (INPUTS, GROUND_TRUTH):
        names = sorted(p.name for p in (synth / sub).iterdir())
        assert sorted(p.name for p in (out / sub).iterdir()) == names
        assert all((out / sub / n).read_bytes() == (synth / sub / n).read_bytes() for n in names)
    split, original = Split(out), Split(synth)
    assert split.verify() == [] and split.task == "adipocyte"
    assert split.split_hash == original.split_hash  # same paths, same bytes
    info = split.manifest["info"]
    assert info["source"] == "import" and info["importer"] == IMPORTER
    assert info["magnification"] == "20x"  # from "20x images"
    assert info["source_dir"] == str(raw.resolve())
    assert info["ground_truth"] is True and info["skipped"] == [] and info["n_ignored_files"] == 0
    assert [(r["well"], r["site"], r["d"], r["z_shift"], r["z_source"], r["shape"]) for r in info["image_sets"]] == [
        ("B03", s, 0, 0, "as acquired", [48, 48]) for s in (1, 2, 3)]
    sets = adipocyte_sets(split)
    assert [s.key for s in sets] == KEYS
    assert all(s.d == 0 and s.z_shift == 0 and len(s.inputs) == 7 and len(s.targets) == 3 for s in sets)


@pytest.mark.parametrize("name, expected", [
    ("20x images", {"20x"}), ("40x_hold_out", {"40x"}), ("60X", {"60x"}), ("images", set()), ("120x", set()),
    ("200x", set()), ("20xl", set()), ("20x_vs_40x", {"20x", "40x"}),
])
def test_magnifications_in(name, expected):
    assert magnifications_in(name) == expected


@pytest.mark.parametrize("parts, expected", [
    (("40x_hold_out",), "40x"),
    (("60x", "plate 1"), "60x"),  # from a parent of SRC
    (("raw", "20x images", "B03"), "20x"),
])
def test_magnification_from_folder_names(synth, tmp_path, parts, expected):
    src = _raw(synth, tmp_path.joinpath(*parts))
    assert _info(import_adipocyte(src, tmp_path / "out", sets=["B03_F001"]))["magnification"] == expected


def test_magnification_from_a_subfolder(synth, tmp_path):
    _raw(synth, tmp_path / "src" / "40x_hold_out")
    assert _info(import_adipocyte(tmp_path / "src", tmp_path / "out"))["magnification"] == "40x"


def test_magnification_unknown_asks_for_it(synth, tmp_path):
    src = _raw(synth, tmp_path / "plain")
    with pytest.raises(AdipocyteImportError, match="--magnification") as info:
        import_adipocyte(src, tmp_path / "out")
    assert "\n" not in str(info.value)
    assert _info(import_adipocyte(src, tmp_path / "out", magnification="60x"))["magnification"] == "60x"
    with pytest.raises(AdipocyteImportError, match="one of 20x, 40x, 60x"):
        import_adipocyte(src, tmp_path / "out2", magnification="10x")


def test_mixed_magnification_folders_refused(synth, tmp_path):
    src = tmp_path / "src"
    _raw(synth, src / "20x images")
    (src / "40x images").mkdir()
    shutil.move(src / "20x images" / bf_name("B03", 3, 1), src / "40x images")
    with pytest.raises(AdipocyteImportError, match="several magnifications"):
        import_adipocyte(src, tmp_path / "out")


def test_incomplete_sets_are_skipped(raw, tmp_path):
    (raw / bf_name("B03", 2, 5)).unlink()
    (raw / target_name("B03", 3, "lipids")).unlink()
    (raw / "Thumbs.db").write_bytes(b"x")
    with pytest.warns(UserWarning) as record:
        out = import_adipocyte(raw, tmp_path / "out")
    messages = [str(w.message) for w in record]
    assert any(m.startswith("import_adipocyte: skipped 2 incomplete image set(s): B03_F002") for m in messages)
    assert any("ignored 1 file(s)" in m and "Thumbs.db" in m for m in messages)
    info = _info(out)
    assert [s.key for s in adipocyte_sets(Split(out))] == ["B03_F001"]
    assert [s["set"] for s in info["skipped"]] == ["B03_F002", "B03_F003"]
    assert "Z05" in info["skipped"][0]["reason"] and "lipids (C02)" in info["skipped"][1]["reason"]
    assert info["ignored_files"] == ["Thumbs.db"]
    assert len(list((out / INPUTS).iterdir())) == 7 and len(list((out / GROUND_TRUTH).iterdir())) == 3


def test_only_brightfield_gives_a_split_to_predict(raw, tmp_path):
    for c in ("nuclei", "lipids", "cytoplasm"):
        for site in (1, 2, 3):
            (raw / target_name("B03", site, c)).unlink()
    with pytest.warns(UserWarning, match="no fluorescence"):
        out = import_adipocyte(raw, tmp_path / "out")
    assert not (out / GROUND_TRUTH).exists() and _info(out)["ground_truth"] is False
    sets = adipocyte_sets(Split(out))
    assert [s.key for s in sets] == KEYS and all(s.targets == {} for s in sets)


def test_sets_restrict_the_import(raw, tmp_path):
    out = import_adipocyte(raw, tmp_path / "out", sets=["B03_F003", "B03_F001"])
    assert [s.key for s in adipocyte_sets(Split(out))] == ["B03_F001", "B03_F003"]
    with pytest.raises(AdipocyteImportError, match="B04_F001"):
        import_adipocyte(raw, tmp_path / "out2", sets=["B04_F001"])
    with pytest.raises(ValueError, match="image-set key"):
        import_adipocyte(raw, tmp_path / "out2", sets=["B03-1"])
    assert not (tmp_path / "out2").exists()


def _garbage(path: Path) -> None:
    path.write_bytes(b"not a tiff at all")


def _float(path: Path) -> None:
    tifffile.imwrite(path, np.zeros((48, 48), np.float32))


def _smaller(path: Path) -> None:
    tifffile.imwrite(path, np.zeros((40, 48), np.uint16))


def _stack(path: Path) -> None:
    tifffile.imwrite(path, np.zeros((2, 48, 48), np.uint16))


@pytest.mark.parametrize("damage, message", [
    (_garbage, "not a readable TIFF"), (_float, "float32, expected uint16"),
    (_smaller, "shape 40x48 differs"), (_stack, "not a single 2-D plane"),
])
@pytest.mark.parametrize("which", ["input", "target"])
def test_bad_file_is_a_one_line_error(raw, tmp_path, damage, message, which):
    name = bf_name("B03", 2, 3) if which == "input" else target_name("B03", 2, "cytoplasm")
    damage(raw / name)
    with pytest.raises(AdipocyteImportError, match=message) as info:
        import_adipocyte(raw, tmp_path / "out")
    assert str(info.value).startswith(name) and "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == [tmp_path / "data"]  # neither OUT nor a half-written stage


def test_same_name_twice_is_an_error(raw, tmp_path):
    (raw / "copy").mkdir()
    shutil.copy(raw / bf_name("B03", 1, 1), raw / "copy")
    with pytest.raises(AdipocyteImportError, match="found twice"):
        import_adipocyte(raw, tmp_path / "out")


def test_output_folder_rules(raw, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(AdipocyteImportError, match="not empty"):
        import_adipocyte(raw, other)
    assert (other / "keep.txt").read_text() == "mine"
    with pytest.raises(AdipocyteImportError, match="outside the source"):
        import_adipocyte(raw, raw / "split")
    with pytest.raises(AdipocyteImportError, match="source folder not found"):
        import_adipocyte(tmp_path / "nothing", tmp_path / "out")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(AdipocyteImportError, match="no CV7000 image files"):
        import_adipocyte(empty, tmp_path / "out")
    out = import_adipocyte(raw, tmp_path / "out")
    assert len(adipocyte_sets(Split(out))) == 3
    import_adipocyte(raw, out, sets=["B03_F002"])  # an earlier import is replaced
    assert [s.key for s in adipocyte_sets(Split(out))] == ["B03_F002"] and Split(out).verify() == []


def test_cli_import(synth, raw, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["--quiet", "data", "import", "adipocyte", str(raw), str(out), "--sets", "B03_F001,B03_F002"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{out}: 2 image set(s) imported at 20x, 0 skipped, 14 inputs, split_hash ")
    assert Split(out).verify() == []
    plain = _raw(synth, tmp_path / "plain")
    assert main(["--quiet", "data", "import", "adipocyte", str(plain), str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vsbench: error: ") and "--magnification" in err and err.count("\n") == 1
    assert main(["--quiet", "data", "import", "adipocyte", str(plain), str(tmp_path / "o2"),
                 "--magnification", "40x"]) == 0
    assert _info(tmp_path / "o2")["magnification"] == "40x"


def test_cli_import_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["data", "import", "adipocyte", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: vsbench data import adipocyte") and "--magnification" in out and "--sets" in out
