"""The synthetic adipocyte generator: CV7000 layout, determinism, manifest, misalignment and optics."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import tifffile
from scipy import ndimage
from skimage.filters import threshold_otsu
from skimage.registration import phase_cross_correlation

from vsbench.harness import split as sp
from vsbench.harness import synth_adipocyte as sa
from vsbench.harness.synth_adipocyte import bf_name, fl_name, synthesize_adipocyte

SIZE = (256, 256)
SETS = 4  # d = 0, 1, 2, 3
INPUT_RE = re.compile(r"^AssayPlate_Greiner_#655090_(?P<well>[B-D]0[2-4])_T0001F(?P<site>\d{3})L01A04"
                      r"Z(?P<z>0[1-7])C04\.tif$")
TARGET_RE = re.compile(r"^AssayPlate_Greiner_#655090_(?P<well>[B-D]0[2-4])_T0001F(?P<site>\d{3})L01"
                       r"A0(?P<a>[1-3])Z01C0(?P<c>[1-3])\.tif$")


@pytest.fixture(scope="module")
def split(tmp_path_factory) -> Path:
    """Four 20x image sets of 256 x 256 pixels (about 2 s)."""
    return synthesize_adipocyte(tmp_path_factory.mktemp("adipo") / "split", sets=SETS, size=SIZE, seed=0)


def _manifest(root: Path) -> dict:
    return json.loads((root / sp.MANIFEST).read_text())


def _sets(root: Path) -> list[dict]:
    return _manifest(root)["info"]["image_sets"]


def _read(path: Path) -> np.ndarray:
    return tifffile.imread(path).astype(np.float64)


def _in_focus(root: Path, s: dict) -> np.ndarray:
    """The input plane at best focus: Z04 of the unshifted window, Z(4 - z_shift) of this set's."""
    return _read(root / sp.INPUTS / bf_name(s["well"], s["site"], 4 - s["z_shift"]))


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_file_names_counts_dtypes(split):
    inputs = sorted(p.name for p in (split / sp.INPUTS).iterdir())
    targets = sorted(p.name for p in (split / sp.GROUND_TRUTH).iterdir())
    assert len(inputs) == 7 * SETS and len(targets) == 3 * SETS
    per_set: dict[tuple[str, int], set[int]] = {}
    for name in inputs:
        m = INPUT_RE.match(name)
        assert m, name
        per_set.setdefault((m["well"], int(m["site"])), set()).add(int(m["z"]))
    assert all(zs == set(range(1, 8)) for zs in per_set.values())
    assert set(per_set) == {("B03", s) for s in range(1, SETS + 1)}
    for name in targets:
        m = TARGET_RE.match(name)
        assert m and m["a"] == m["c"], name
        assert (m["well"], int(m["site"])) in per_set
    assert fl_name("B03", 1, 2) == "AssayPlate_Greiner_#655090_B03_T0001F001L01A02Z01C02.tif"
    assert bf_name("D04", 12, 7) == "AssayPlate_Greiner_#655090_D04_T0001F012L01A04Z07C04.tif"
    for path in [*(split / sp.INPUTS).iterdir(), *(split / sp.GROUND_TRUTH).iterdir()]:
        img = tifffile.imread(path)
        assert img.dtype == np.uint16 and img.shape == SIZE, path.name


def test_intensities_near_real_statistics(split):
    bf = np.mean([_read(p).mean() for p in (split / sp.INPUTS).iterdir()])
    assert 0.8 * sa.BF_MEAN_ADU["20x"] < bf < 1.2 * sa.BF_MEAN_ADU["20x"]
    for ch in (1, 2, 3):
        mean = np.mean([_read(split / sp.GROUND_TRUTH / fl_name(s["well"], s["site"], ch)).mean()
                        for s in _sets(split)])
        assert 0.6 * sa.FL_MEAN_ADU["20x"][ch] < mean < 1.5 * sa.FL_MEAN_ADU["20x"][ch], ch


def test_manifest_records_d_and_misalignment(split):
    man = _manifest(split)
    info = man["info"]
    assert man["task"] == "adipocyte" and info["generator"] == "vsbench.synth_adipocyte"
    assert info["magnification"] == "20x" and info["pixel_size_um"] == sa.PIXEL_SIZE_UM["20x"]
    assert info["model"]["MISALIGNMENT"]["20x"]["M"] == 0.9988
    assert man["n_inputs"] == 7 * SETS
    for f in man["files"]:
        assert sp.sha256_file(split / f["path"]) == f["sha256"]
    for k, s in enumerate(info["image_sets"]):
        assert s["d"] == k % 4 and abs(s["z_shift"]) == s["d"]
        assert s["planes"] == [3 + s["z_shift"] + i for i in range(7)]
        mdx, mdy, scale = sa.site_misalignment("20x", s["site"])
        mis = s["misalignment"]
        assert mis["scale"] == scale == 0.9988
        assert abs(mis["dx"] - mdx) < 1.0 and abs(mis["dy"] - mdy) < 1.0
    # the site model of Table 1: site 1 (phi = 0) is B + C per axis
    dx, dy, _ = sa.site_misalignment("20x", 1)
    assert dx == pytest.approx(0.06653 - 1.22169) and dy == pytest.approx(-4.0921 + 0.7653)


def test_determinism(split, tmp_path):
    a = synthesize_adipocyte(tmp_path / "a", sets=SETS, size=SIZE, seed=0)
    assert _manifest(a)["split_hash"] == _manifest(split)["split_hash"]
    b = synthesize_adipocyte(tmp_path / "b", sets=1, size=SIZE, seed=1)
    c = synthesize_adipocyte(tmp_path / "c", sets=1, size=SIZE, seed=0)
    hashes = {m: {f["path"]: f["sha256"] for f in _manifest(m)["files"]} for m in (split, b, c)}
    # set 0 does not depend on how many sets are requested, and does depend on the seed
    assert all(hashes[split][p] == h for p, h in hashes[c].items())
    assert hashes[b].keys() == hashes[c].keys()
    assert all(hashes[b][p] != h for p, h in hashes[c].items())
    with pytest.raises(FileExistsError):
        (tmp_path / "other").mkdir()
        (tmp_path / "other" / "x.txt").write_text("not ours")
        synthesize_adipocyte(tmp_path / "other", sets=1, size=(64, 64))


def test_misalignment_is_measurable(split):
    """Cross-correlating the in-focus brightfield with the lipid image (the SML method) finds the shift.

    On one 83 µm field (a few cells) the estimate is good to about 1 px; SML take the median over many
    512² patches of 2154 x 2554 images. So: every set within 1.25 px, all sets together within 0.8 px RMS."""
    errors, gains = [], []
    for s in _sets(split):
        bf = _in_focus(split, s)
        ld = _read(split / sp.GROUND_TRUTH / fl_name(s["well"], s["site"], 2))
        shift, _, _ = phase_cross_correlation(bf - bf.mean(), ld - ld.mean(), upsample_factor=20,
                                              normalization=None)
        dy, dx = -shift  # displacement of the fluorescence against the brightfield
        mis = s["misalignment"]
        assert np.hypot(mis["dx"], mis["dy"]) > 1.0
        assert abs(dx - mis["dx"]) < 1.25 and abs(dy - mis["dy"]) < 1.25, (dx, dy, mis)
        errors.append(np.hypot(dx - mis["dx"], dy - mis["dy"]))
        # moving the brightfield by the recorded shift improves its (anti-)correlation with the lipids
        moved = ndimage.shift(bf, (mis["dy"], mis["dx"]), order=1, mode="nearest")
        inner = (slice(8, -8), slice(8, -8))
        gains.append(abs(_corr(moved[inner], ld[inner])) - abs(_corr(bf[inner], ld[inner])))
        assert gains[-1] > 0.005, gains
    assert np.mean(gains) > 0.03, gains
    assert np.sqrt(np.mean(np.square(errors))) < 0.8, errors


def test_lipid_droplets_dominate_brightfield_contrast(split):
    """Droplets (dn = +0.10) stand out in brightfield; nuclei (dn = -0.006) barely (seed report §5)."""
    ratios = []
    for s in _sets(split):
        mis = s["misalignment"]
        bf = ndimage.shift(_in_focus(split, s), (mis["dy"], mis["dx"]), order=1, mode="nearest")
        nuc = _read(split / sp.GROUND_TRUTH / fl_name(s["well"], s["site"], 1))
        ld = _read(split / sp.GROUND_TRUTH / fl_name(s["well"], s["site"], 2))
        ld_mask = ndimage.binary_dilation(ld > threshold_otsu(ld), iterations=3)
        nuc_mask = nuc > threshold_otsu(nuc)
        nuc_only = nuc_mask & ~ndimage.binary_dilation(ld_mask, iterations=5)
        background = ~ndimage.binary_dilation(ld_mask | nuc_mask, iterations=10)
        if nuc_only.sum() < 200 or ld_mask.sum() < 200:
            continue
        bg = np.median(bf[background])
        ratios.append(np.mean(np.abs(bf[ld_mask] - bg)) / np.mean(np.abs(bf[nuc_only] - bg)))
    assert len(ratios) >= 2
    assert min(ratios) > 3.0, ratios


def test_z_shift_moves_the_input_window(tmp_path):
    """Set 1 with d = 1 holds the planes of set 1 with d = 0 shifted by z_shift; targets are unchanged."""
    size = (128, 128)
    ref = synthesize_adipocyte(tmp_path / "ref", sets=2, size=size, max_shift=0)
    dev = synthesize_adipocyte(tmp_path / "dev", sets=2, size=size, max_shift=1)
    s_ref, s_dev = _sets(ref)[1], _sets(dev)[1]
    assert (s_ref["d"], s_dev["d"]) == (0, 1) and abs(s_dev["z_shift"]) == 1
    for ch in (1, 2, 3):
        name = fl_name(s_ref["well"], s_ref["site"], ch)
        assert sp.sha256_file(ref / sp.GROUND_TRUTH / name) == sp.sha256_file(dev / sp.GROUND_TRUTH / name)
    shift = s_dev["z_shift"]
    zs = [z for z in range(1, 8) if 1 <= z + shift <= 7]
    smooth = lambda img: ndimage.gaussian_filter(img, 1.5)  # noqa: E731  (the noise differs between the runs)
    for z in zs:
        a = smooth(_read(dev / sp.INPUTS / bf_name(s_dev["well"], s_dev["site"], z)))
        same = smooth(_read(ref / sp.INPUTS / bf_name(s_ref["well"], s_ref["site"], z + shift)))
        unshifted = smooth(_read(ref / sp.INPUTS / bf_name(s_ref["well"], s_ref["site"], z)))
        assert _corr(a, same) > 0.98, z
        assert _corr(a, unshifted) < _corr(a, same) - 0.01, z
    # set 0 (d = 0 in both) is identical
    name = bf_name(_sets(ref)[0]["well"], _sets(ref)[0]["site"], 4)
    assert sp.sha256_file(ref / sp.INPUTS / name) == sp.sha256_file(dev / sp.INPUTS / name)


def test_other_magnifications_and_arguments(tmp_path):
    root = synthesize_adipocyte(tmp_path / "m60", magnification="60x", sets=1, size=(64, 96), max_shift=0)
    info = _manifest(root)["info"]
    assert info["pixel_size_um"] == sa.PIXEL_SIZE_UM["60x"]
    assert info["image_sets"][0]["misalignment"]["scale"] == 0.99975
    assert tifffile.imread(root / sp.INPUTS / bf_name("B03", 1, 1)).shape == (64, 96)
    for kwargs in ({"magnification": "10x"}, {"max_shift": 4}, {"sets": 49}, {"size": (16, 16)}):
        with pytest.raises(ValueError):
            synthesize_adipocyte(tmp_path / "bad", **kwargs)
