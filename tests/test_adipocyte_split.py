"""The adipocyte split reader: CV7000 names, image sets, d and z_shift from the manifest, layout errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from vsbench.harness import adipocyte_split as asp
from vsbench.harness import synth_adipocyte as sa
from vsbench.harness.adipocyte_split import (
    AdipocyteSet,
    adipocyte_sets,
    bf_name,
    parse_cv7000_name,
    parse_set_key,
    set_key,
    split_magnification,
    target_name,
)
from vsbench.harness.split import GROUND_TRUTH, INPUTS, MANIFEST, Split, SplitError

SETS = 7  # 20x has 6 sites per well: sets B03_F001..F006 and B04_F001
KEYS = [f"B03_F{s:03d}" for s in range(1, 7)] + ["B04_F001"]


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    """Seven 20x image sets of 48 x 48 pixels, window shifts d = k % 3 (about 2 s)."""
    return sa.synthesize_adipocyte(tmp_path_factory.mktemp("adipo") / "split", "20x", SETS, (48, 48), seed=3,
                                   max_shift=2)


@pytest.fixture
def copy(synth, tmp_path) -> Path:
    """A private copy of the synthetic split, free to damage."""
    return Path(shutil.copytree(synth, tmp_path / "split"))


def _edit_manifest(root: Path, edit) -> None:
    man = json.loads((root / MANIFEST).read_text())
    edit(man)
    (root / MANIFEST).write_text(json.dumps(man))


def test_names_round_trip():
    name = bf_name("D04", 12, 7)
    assert name == "AssayPlate_Greiner_#655090_D04_T0001F012L01A04Z07C04.tif"
    assert parse_cv7000_name(name) == ("D04", 12, 4, 7, 4)
    assert target_name("B03", 1, "lipids") == "AssayPlate_Greiner_#655090_B03_T0001F001L01A02Z01C02.tif"
    assert [parse_cv7000_name(target_name("C02", 5, c))[4] for c in asp.CHANNELS] == [1, 2, 3]
    assert sa.bf_name is bf_name  # the generator writes the names the reader parses
    assert set_key("B03", 1) == "B03_F001" and parse_set_key("D04_F012") == ("D04", 12)
    with pytest.raises(KeyError, match="brightfield"):
        target_name("B03", 1, "brightfield")


@pytest.mark.parametrize("name", [
    "AssayPlate_Greiner_#655090_B03_T0001F001L01A04Z01C04.tiff",  # .tiff
    "AssayPlate_Greiner_#655091_B03_T0001F001L01A04Z01C04.tif",  # other plate
    "AssayPlate_Greiner_#655090_b03_T0001F001L01A04Z01C04.tif",  # lower-case row
    "AssayPlate_Greiner_#655090_B03_T0001F01L01A04Z01C04.tif",  # two-digit site
    "AssayPlate_Greiner_#655090_B03_T0001F001L01A04Z01.tif",  # no channel
    "image_1_BF_z1.ome.tiff",
])
def test_bad_names_raise_one_line(name):
    with pytest.raises(SplitError) as info:
        parse_cv7000_name(name)
    assert name in str(info.value) and "\n" not in str(info.value)


def test_bad_set_key():
    for key in ("B03_001", "B3_F001", "B03-F001"):
        with pytest.raises(SplitError, match="image-set key"):
            parse_set_key(key)


def test_reader_on_synthetic_split(synth):
    split = Split(synth)
    sets = adipocyte_sets(split)
    assert [s.key for s in sets] == KEYS
    assert split_magnification(split) == "20x"
    table = {(r["well"], r["site"]): r for r in split.manifest["info"]["image_sets"]}
    for s in sets:
        assert isinstance(s, AdipocyteSet) and s.magnification == "20x"
        assert s.inputs == tuple(bf_name(s.well, s.site, z) for z in range(1, 8))
        assert all(p.is_file() for p in s.input_paths(split))
        assert list(s.targets) == ["nuclei", "lipids", "cytoplasm"]
        for c, name in s.targets.items():
            assert name == target_name(s.well, s.site, c) and s.target_path(split, c).is_file()
        row = table[(s.well, s.site)]
        assert (s.d, s.z_shift) == (row["d"], row["z_shift"])
    assert [s.d for s in sets] == [k % 3 for k in range(SETS)]
    assert all(abs(s.z_shift) == s.d for s in sets)
    # the input files are exactly the split's inputs
    assert sorted(n for s in sets for n in s.inputs) == sorted(p.name for p in split.inputs_dir.iterdir())
    assert len(set(sets)) == SETS  # hashable (targets are not part of the hash)


def test_missing_plane_names_set_and_plane(copy):
    (copy / INPUTS / bf_name("B03", 2, 5)).unlink()
    with pytest.raises(SplitError, match=r"B03_F002.*Z05"):
        adipocyte_sets(Split(copy))


def test_bad_input_name(copy):
    (copy / INPUTS / "stray.tif").write_bytes(b"x")
    with pytest.raises(SplitError, match="stray.tif"):
        adipocyte_sets(Split(copy))


def test_fluorescence_in_inputs_is_an_error(copy):
    name = target_name("B03", 1, "nuclei")
    shutil.copy(copy / GROUND_TRUTH / name, copy / INPUTS / name)
    with pytest.raises(SplitError, match="not a brightfield plane"):
        adipocyte_sets(Split(copy))


def test_target_without_inputs_is_an_error(copy):
    shutil.copy(copy / GROUND_TRUTH / target_name("B03", 1, "nuclei"),
                copy / GROUND_TRUTH / target_name("D02", 4, "nuclei"))
    with pytest.raises(SplitError, match="D02_F004 has no inputs"):
        adipocyte_sets(Split(copy))


@pytest.mark.parametrize("value, message", [(None, "no 'magnification'"), ("10x", "'10x' is not one of")])
def test_magnification_missing_or_invalid(copy, value, message):
    def edit(man):
        if value is None:
            del man["info"]["magnification"]
        else:
            man["info"]["magnification"] = value
    _edit_manifest(copy, edit)
    with pytest.raises(SplitError, match=message):
        adipocyte_sets(Split(copy))


def test_other_task_is_an_error(copy):
    _edit_manifest(copy, lambda man: man.update(task="lmc"))
    with pytest.raises(SplitError, match="not 'adipocyte'"):
        adipocyte_sets(Split(copy))


def test_without_ground_truth_or_z_table(copy):
    shutil.rmtree(copy / GROUND_TRUTH)
    _edit_manifest(copy, lambda man: man["info"].pop("image_sets"))
    sets = adipocyte_sets(Split(copy))
    assert [s.key for s in sets] == KEYS
    assert all(s.targets == {} and s.d is None and s.z_shift is None for s in sets)


def test_bad_d_in_manifest(copy):
    _edit_manifest(copy, lambda man: man["info"]["image_sets"][0].update(d="one"))
    with pytest.raises(SplitError, match="d must be an integer"):
        adipocyte_sets(Split(copy))
