"""The synthetic Light My Cells generator: layout, determinism, split composition and physics."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from vsbench.harness import split as sp
from vsbench.harness import synth_lmc
from vsbench.harness.omeio import read_image, read_plane
from vsbench.harness.synth_lmc import synthesize_lmc

SIZE = 256
FOVS = 6
MAX_DEV = 5
ALL_ORGANELLES = set(sp.LMC_ORGANELLE_FILES.values())


@pytest.fixture(scope="module")
def splits(tmp_path_factory) -> dict[str, Path]:
    """6 train + 6 test FOVs at 256 px (about a second)."""
    out = tmp_path_factory.mktemp("synth")
    return synthesize_lmc(out, fovs=FOVS, size=SIZE, seed=0, max_deviation=MAX_DEV)


def _fovs(root: Path) -> dict[int, dict]:
    """image id -> modality, best_z, {image_z: input path}, {organelle file name: GT path}."""
    best = sp.read_best_z(root / sp.GROUND_TRUTH / sp.BEST_Z_CSV)
    fovs: dict[int, dict] = defaultdict(lambda: {"z": {}, "gt": {}})
    for name, (modality, image_z, best_z) in best.items():
        image_id, mod, z = sp.parse_input_name(name)
        assert (mod, z) == (modality, image_z)
        f = fovs[image_id]
        f["modality"], f["best_z"] = modality, best_z
        f["z"][z] = root / sp.INPUTS / name
    for path in (root / sp.GROUND_TRUTH).glob("*.ome.tiff"):
        m = sp.LMC_TARGET_RE.match(path.name)
        assert m, path.name
        assert int(m["id"]) in fovs, f"{path.name} belongs to no FOV with inputs"
        fovs[int(m["id"])]["gt"][m["organelle"]] = path
    return dict(fovs)


def _load(path: Path) -> np.ndarray:
    return read_image(path).astype(np.float64)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def _band(img: np.ndarray) -> np.ndarray:
    """Difference of Gaussians (1 and 3 px): the scale of chromatin, nucleoli and the nuclear edge."""
    return ndimage.gaussian_filter(img, 1.0) - ndimage.gaussian_filter(img, 3.0)


# ---- API, layout ------------------------------------------------------------------------------------


def test_returns_both_splits_with_traceable_manifests(splits):
    assert set(splits) == {"train", "test"}
    for name, root in splits.items():
        assert root == root.parent / name
        manifest = json.loads((root / sp.MANIFEST).read_text())
        assert manifest["task"] == "lmc"
        info = manifest["info"]
        assert info["generator"] == "vsbench.synth_lmc" and info["split"] == name
        assert info["params"] == {"fovs": FOVS, "train_fovs": FOVS, "size": SIZE, "seed": 0,
                                  "max_deviation": MAX_DEV}
        model = info["model"]
        assert model["WAVELENGTH_UM"] == synth_lmc.WAVELENGTH_UM
        assert model["TL_NA_RANGE"] == list(synth_lmc.TL_NA_RANGE)
        assert model["PIXEL_SIZE_RANGE_UM"] == list(synth_lmc.PIXEL_SIZE_RANGE_UM)
        assert model["Z_STEP_RANGE_UM"] == list(synth_lmc.Z_STEP_RANGE_UM)
        assert len(info["fov_table"]) == FOVS


def test_layout_names_ground_truth_and_manifest(splits):
    ids = {}
    for name, root in splits.items():
        split = sp.Split(root)  # validates the layout
        assert split.verify() == []
        listed = {f["path"] for f in split.manifest["files"]}
        on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} - {sp.MANIFEST}
        assert listed == on_disk
        inputs = {p.name for p in (root / sp.INPUTS).iterdir()}
        for n in inputs:
            sp.parse_input_name(n)
        best = sp.read_best_z(root / sp.GROUND_TRUTH / sp.BEST_Z_CSV)
        assert set(best) == inputs
        fovs = _fovs(root)
        assert len(fovs) == FOVS
        for f in fovs.values():
            assert f["gt"], "every FOV has at least one ground-truth organelle"
        cases = split.cases()
        assert all(c.best_z is not None for c in cases) and len(cases) == len(inputs)
        ids[name] = set(fovs)
    assert not ids["train"] & ids["test"], "train and test must be different cells"
    assert min(ids["test"]) > max(ids["train"])


def test_train_split_holds_whole_stacks(splits):
    for f in _fovs(splits["train"]).values():
        nz = len(f["z"])
        assert sorted(f["z"]) == list(range(nz)) and 11 <= nz <= 13
        b = f["best_z"]
        assert 0 <= b < nz and (b >= MAX_DEV or nz - 1 - b >= MAX_DEV)


def test_test_split_has_each_deviation_once_per_fov(splits):
    for f in _fovs(splits["test"]).values():
        devs = sorted(abs(z - f["best_z"]) for z in f["z"])
        assert devs == list(range(MAX_DEV + 1))
        assert min(f["z"]) >= 0


def test_organelle_subsets_and_modalities(splits):
    real = {frozenset(sp.LMC_ORGANELLE_FILES[o] for o in c) for c in synth_lmc.LMC_COMBOS}
    for root in splits.values():
        fovs = _fovs(root)
        seen_org, seen_mod = set(), set()
        for f in fovs.values():
            combo = frozenset(f["gt"])
            assert len(combo) < 4, "no FOV has all four organelles"
            assert combo in real
            assert not (f["modality"] == "DIC" and "Actin" in combo)
            assert len({sp.parse_input_name(p.name)[1] for p in f["z"].values()}) == 1
            seen_org |= combo
            seen_mod.add(f["modality"])
        assert seen_org == ALL_ORGANELLES
        assert seen_mod == set(sp.LMC_MODALITIES)


def test_pixels_dtype_shape_and_metadata(splits):
    lo, hi = synth_lmc.PIXEL_SIZE_RANGE_UM
    for root in splits.values():
        for f in _fovs(root).values():
            sizes = set()
            for path in [*f["z"].values(), *f["gt"].values()]:
                img, meta = read_plane(path)
                assert img.dtype == np.uint16 and img.shape == (SIZE, SIZE)
                assert img.std() > 0
                assert meta.physical_size_x == meta.physical_size_y and lo <= meta.physical_size_x <= hi
                sizes.add(meta.physical_size_x)
                assert meta.channel in (f["modality"], *ALL_ORGANELLES)
            assert len(sizes) == 1, "input and ground truth share the pixel grid"
            for organelle, path in f["gt"].items():
                assert read_plane(path)[1].channel == organelle
                img = _load(path)
                # a stained structure above the background and its noise
                background = img[img <= np.median(img)]
                assert np.percentile(img, 99.9) > np.median(img) + 10 * max(np.std(background), 1)


# ---- determinism ------------------------------------------------------------------------------------


def _hashes(paths: dict[str, Path]) -> dict[str, str]:
    return {k: json.loads((p / sp.MANIFEST).read_text())["split_hash"] for k, p in paths.items()}


def _file_hashes(root: Path) -> dict[str, str]:
    return {f["path"]: f["sha256"] for f in json.loads((root / sp.MANIFEST).read_text())["files"]}


def test_deterministic_for_a_seed_and_fov_independent_of_count(tmp_path):
    kw = {"size": 48, "max_deviation": 3}
    a = _hashes(synthesize_lmc(tmp_path / "a", fovs=2, train_fovs=1, seed=7, **kw))
    b = _hashes(synthesize_lmc(tmp_path / "b", fovs=2, train_fovs=1, seed=7, **kw))
    c = _hashes(synthesize_lmc(tmp_path / "c", fovs=2, train_fovs=1, seed=8, **kw))
    assert a == b
    assert a["train"] != c["train"] and a["test"] != c["test"]
    # asking for more FOVs leaves the first ones byte-identical
    synthesize_lmc(tmp_path / "d", fovs=3, train_fovs=1, seed=7, **kw)
    for split in ("train", "test"):
        small, big = (_file_hashes(tmp_path / r / split) for r in ("a", "d"))
        shared = {p: h for p, h in small.items() if p != "ground_truth/best_z.csv"}
        assert shared and all(big[p] == h for p, h in shared.items())


def test_rewrites_its_own_output_and_refuses_foreign_directories(tmp_path, capsys):
    out = tmp_path / "data"
    synthesize_lmc(out, fovs=2, train_fovs=1, size=32, max_deviation=2, progress=True)
    assert "synth lmc" in capsys.readouterr().err  # the progress bar
    synthesize_lmc(out, fovs=1, train_fovs=1, size=32, max_deviation=2)
    assert sp.Split(out / "test").verify() == []
    assert len(_fovs(out / "test")) == 1, "the earlier, larger split must not leave files behind"
    foreign = tmp_path / "foreign"
    (foreign / "train").mkdir(parents=True)
    (foreign / "train" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        synthesize_lmc(foreign, fovs=1, size=32)
    assert (foreign / "train" / "notes.txt").read_text() == "mine"
    with pytest.raises(ValueError):
        synthesize_lmc(tmp_path / "bad", fovs=-1)


# ---- physics ----------------------------------------------------------------------------------------


def _slice_at(f: dict, d: int) -> list[Path]:
    return [f["z"][z] for z in (f["best_z"] - d, f["best_z"] + d) if z in f["z"]]


def _structure(img: np.ndarray) -> np.ndarray:
    """The specimen's structure from 1 to 16 px, without pixel noise and the illumination fall-off."""
    return ndimage.gaussian_filter(img, 1.0) - ndimage.gaussian_filter(img, 16.0)


def _focus_similarity(splits) -> dict[str, dict[int, list[float]]]:
    """modality -> {deviation: [correlation of the slice's structure with the in-focus slice's]}."""
    out: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for f in _fovs(splits["train"]).values():
        focus = _structure(_load(f["z"][f["best_z"]]))
        for d in (1, MAX_DEV):
            out[f["modality"]][d] += [_corr(focus, _structure(_load(p))) for p in _slice_at(f, d)]
    return out


def test_brightfield_changes_with_defocus(splits):
    """One plane from focus the BF image still resembles the in-focus one; five planes away it does not."""
    bf = _focus_similarity(splits)["BF"]
    assert bf[1] and bf[MAX_DEV]
    assert np.mean(bf[1]) > 0.6
    assert np.mean(bf[1]) > np.mean(bf[MAX_DEV]) + 0.15, dict(bf)


def test_every_modality_changes_with_defocus(splits):
    sim = _focus_similarity(splits)
    assert set(sim) == set(sp.LMC_MODALITIES)
    for modality, by_dev in sim.items():
        assert np.mean(by_dev[1]) > np.mean(by_dev[MAX_DEV]) + 0.04, (modality, dict(by_dev))


def test_nucleus_detail_is_visible_in_focus_not_far_from_it(splits):
    """The nucleus's fine structure (chromatin texture, nucleoli, nuclear edge) is where the specimen is
    only in focus: the band-pass TL image correlates with the band-pass nucleus ground truth more at
    z-deviation 0 than at 5, where defocus spreads it and the partial-coherence envelope washes it out."""
    focus, far = [], []
    for root in splits.values():
        for f in _fovs(root).values():
            if "Nucleus" not in f["gt"]:
                continue
            gt = _band(_load(f["gt"]["Nucleus"]))
            focus.append(abs(_corr(_band(_load(f["z"][f["best_z"]])), gt)))
            far.append(np.mean([abs(_corr(_band(_load(p)), gt)) for p in _slice_at(f, MAX_DEV)]))
    assert len(focus) >= 6
    assert np.mean(focus) > 1.5 * np.mean(far), (focus, far)
    assert np.mean(np.array(focus) > np.array(far)) >= 0.7
