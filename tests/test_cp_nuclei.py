"""CellProfiler nucleus measurements (metrics/cp_nuclei.py) and `vsbench evaluate --cellprofiler`."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import tifffile
from scipy import ndimage

from vsbench.harness.cli import main
from vsbench.harness.evaluate import evaluate_lmc
from vsbench.harness.omeio import PlaneMeta, write_plane
from vsbench.harness.predict import prediction_path
from vsbench.harness.split import Split, target_name, write_manifest
from vsbench.metrics import cp_nuclei
from vsbench.metrics.cp_nuclei import (
    CP_METRICS,
    FEATURE_METRICS,
    NUCLEUS_FEATURES,
    diameter_range,
    nucleus_feature_errors,
    nucleus_features,
)

from splitfactory import make_predictions, make_split

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # numpy/scipy deprecations in the library

AREA = "Mean_nuclei_AreaShape_Area"
STANDARD = {"MAE", "PCC", "SSIM", "E_dist", "C_dist"}


def disks(shape=(128, 128), centers=((30, 30), (30, 90), (90, 40), (95, 95)), radius=10, blur=0.0, noise=0.02,
          seed=0) -> np.ndarray:
    """Bright disks of ``radius`` px (intensity 1) on a dark background, optionally blurred, plus noise."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    img = np.zeros(shape)
    for cy, cx in centers:
        img[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2] = 1.0
    if blur:
        img = ndimage.gaussian_filter(img, blur)
    return img + np.random.default_rng(seed).normal(0, noise, shape)


def _finite(features: dict[str, float]) -> bool:
    return all(math.isfinite(v) for v in features.values())


# ---- nucleus_features ----

def test_feature_names_and_order():
    assert NUCLEUS_FEATURES[0] == "Count_nuclei" and len(NUCLEUS_FEATURES) == 10
    assert "Mean_nuclei_AreaShape_MeanRadius" in NUCLEUS_FEATURES
    assert "Mean_nuclei_Intensity_IntegratedIntensity" in NUCLEUS_FEATURES
    assert CP_METRICS[:2] == ("CP_count_error", "CP_area_error") and CP_METRICS[-1] == "CP_mae"
    assert set(FEATURE_METRICS) == set(NUCLEUS_FEATURES) and all(m.startswith("CP_") for m in CP_METRICS)


def test_known_disks_give_known_count_and_area():
    r = 10
    f = nucleus_features(disks(radius=r), pixel_size_um=1.0)
    assert list(f) == list(NUCLEUS_FEATURES) and _finite(f)
    assert f["Count_nuclei"] == 4
    # Tolerance: the object boundary lies within 1.5 px of the drawn one (CellProfiler smooths before its
    # MCE threshold, which sits low on a blurred edge): equivalent radius sqrt(area / pi) = r +- 1.5 px.
    assert abs(math.sqrt(f[AREA] / math.pi) - r) <= 1.5
    assert f[AREA] >= np.count_nonzero(disks(radius=r, noise=0)[:60, :60] > 0.5)  # 317 px drawn, sharp edge
    assert f["Mean_nuclei_AreaShape_FormFactor"] == pytest.approx(1.0, abs=0.1)  # round
    assert f["Mean_nuclei_AreaShape_Solidity"] > 0.9
    assert 0.5 < f["Mean_nuclei_Intensity_MeanIntensity"] <= 1.0  # on the [0, 1] scale of step 0
    assert f["Mean_nuclei_Intensity_IntegratedIntensity"] == pytest.approx(
        f["Mean_nuclei_Intensity_MeanIntensity"] * f[AREA], rel=0.05)
    # many larger nuclei at 0.5 µm/px (diameter range 10-60 px)
    centers = [(y, x) for y in range(40, 260, 70) for x in range(40, 260, 70)]
    g = nucleus_features(disks(shape=(256, 256), centers=centers, radius=15, blur=1.0), pixel_size_um=0.5)
    assert g["Count_nuclei"] == len(centers) == 16
    assert abs(math.sqrt(g[AREA] / math.pi) - 15) <= 1.5


def test_diameter_range_from_pixel_size():
    assert diameter_range(None) == (10, 100) == diameter_range(0.0) == diameter_range(float("nan"))
    assert diameter_range(1.0) == (5, 30) and diameter_range(0.5) == (10, 60) and diameter_range(0.1) == (50, 300)
    # 20 px disks are nuclei at 1 µm/px (20 µm) but too small at 0.1 µm/px (2 µm): discarded
    assert nucleus_features(disks(), 0.1)["Count_nuclei"] == 0


def test_scale_and_pixel_type_invariance():
    img = disks(blur=1.0)
    base = nucleus_features(img, 1.0)
    scaled = nucleus_features(img * 1234.5 + 77.0, 1.0)
    assert scaled == pytest.approx(base, rel=1e-9)  # x -> a x + b leaves the normalised image unchanged
    u8 = np.round(np.clip((img - img.min()) / np.ptp(img), 0, 1) * 255).astype(np.uint8)
    u16 = np.round(np.clip((img - img.min()) / np.ptp(img), 0, 1) * 40000).astype(np.uint16)
    for quantised in (nucleus_features(u8, 1.0), nucleus_features(u16, 1.0)):
        assert quantised["Count_nuclei"] == base["Count_nuclei"]
        assert quantised == pytest.approx(base, rel=0.02)  # 8-bit quantisation moves intensities < 1 %


def test_empty_image_gives_count_zero_and_nan_means():
    for img in (np.zeros((64, 64)), np.full((64, 64), 500, np.uint16), np.zeros((64, 64), np.float32)):
        f = nucleus_features(img)
        assert f["Count_nuclei"] == 0.0
        assert all(math.isnan(f[k]) for k in NUCLEUS_FEATURES[1:])
    hot = np.zeros((64, 64))
    hot[3, 3] = 1e6  # one outlier pixel is above the 99.9th percentile: no contrast left, no nucleus
    assert nucleus_features(hot)["Count_nuclei"] == 0.0


@pytest.mark.parametrize("bad", [np.zeros((4, 4, 3)), np.array([[np.nan, 1.0], [2.0, 3.0]]), np.zeros((0, 5))])
def test_bad_images_are_refused(bad):
    with pytest.raises(ValueError):
        nucleus_features(bad)


# ---- nucleus_feature_errors ----

def _features(count: float, area: float = 100.0) -> dict[str, float]:
    if count == 0:
        return nucleus_features(np.zeros((8, 8)))
    return {f: (count if f == "Count_nuclei" else area if f == AREA else 2.0) for f in NUCLEUS_FEATURES}


def test_error_definitions():
    e = nucleus_feature_errors(_features(4, 100.0), _features(6, 150.0))
    assert list(e) == list(CP_METRICS)
    assert e["CP_count_error"] == pytest.approx(0.5)  # |6 - 4| / 4
    assert e["CP_area_error"] == pytest.approx(0.5)  # |150 - 100| / 100
    assert e["CP_formfactor_error"] == 0.0
    assert e["CP_mae"] == pytest.approx(1.0 / 10)  # mean of the 10 feature errors
    same = nucleus_features(disks(), 1.0)
    assert set(nucleus_feature_errors(same, dict(same)).values()) == {0.0}


def test_error_rules_for_missing_objects_never_nan():
    empty, some = _features(0), _features(4)
    both = nucleus_feature_errors(empty, empty)
    assert set(both.values()) == {0.0}
    missed = nucleus_feature_errors(some, empty)  # the prediction lost every nucleus
    assert set(missed.values()) == {1.0}
    invented = nucleus_feature_errors(empty, some)  # nuclei where the truth has none
    assert invented["CP_count_error"] == 4.0  # |4 - 0| / max(0, 1)
    assert all(v == 1.0 for k, v in invented.items() if k not in ("CP_count_error", "CP_mae"))
    zero_std = dict(some, Mean_nuclei_Intensity_StdIntensity=0.0)
    assert nucleus_feature_errors(zero_std, zero_std)["CP_stdintensity_error"] == 0.0
    assert nucleus_feature_errors(zero_std, some)["CP_stdintensity_error"] == 1.0
    for e in (both, missed, invented):
        assert all(math.isfinite(v) for v in e.values())
    with pytest.raises(KeyError):
        nucleus_feature_errors({"Count_nuclei": 1.0}, some)


def test_feature_cache_computes_once():
    cache = cp_nuclei.FeatureCache()
    calls = []
    for _ in range(3):
        assert cache.get("abc", lambda: calls.append(1) or {"x": 1.0}) == {"x": 1.0}
    assert len(calls) == 1 and len(cache) == 1


# ---- vsbench evaluate --cellprofiler ----

NUCLEUS_FIELDS = {0: 1, 1: 2}  # image id -> seed of its nucleus ground truth (make_split's fields with nuclei)


def _nucleus_truth(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = [(int(rng.integers(14, 38)) + 40 * (i // 2), int(rng.integers(14, 38)) + 40 * (i % 2)) for i in range(4)]
    img = disks(shape=(96, 96), centers=centers, radius=int(rng.integers(6, 9)), blur=1.0, noise=0.03, seed=seed)
    return np.clip(img * 3000 + 200, 0, 65535).astype(np.uint16)


@pytest.fixture()
def nuclei_split(tmp_path):
    """make_split's three fields at 96 x 96, nucleus ground truth replaced by disks at 1 µm/px."""
    split = make_split(tmp_path / "split", shape=(96, 96))
    for image_id, seed in NUCLEUS_FIELDS.items():
        write_plane(split / "ground_truth" / target_name(image_id, "nucleus"), _nucleus_truth(seed),
                    PlaneMeta(1.0, 1.0, "nucleus"))
    write_manifest(split, "lmc", {"generator": "tests.test_cp_nuclei"})
    preds = make_predictions(split, tmp_path / "pred")
    return split, preds


def _nucleus_predictions(split, preds, transform) -> None:
    s = Split(split)
    for case in s.cases():
        gt_path = s.target_path(case, "nucleus")
        if gt_path.exists():
            write_plane(prediction_path(preds, "nucleus", case.name), transform(tifffile.imread(gt_path)))


def test_cli_cellprofiler_adds_cp_metrics_per_case_and_z_deviation(nuclei_split, tmp_path, capsys):
    split, preds = nuclei_split
    out = tmp_path / "metrics.json"
    assert main(["--quiet", "evaluate", "--task", "lmc", "--split", str(split), "--predictions", str(preds),
                 "--out", str(out), "--cellprofiler"]) == 0
    assert "CP_mae" in capsys.readouterr().out
    got = json.loads(out.read_text())  # written with allow_nan=False: NaN-free
    assert got["errors"] == []
    n_nucleus = 0
    for entry in got["results"]:
        if entry["nucleus"]:
            n_nucleus += 1
            assert set(entry["nucleus"]) == STANDARD | set(CP_METRICS)
            assert all(isinstance(v, float) and math.isfinite(v) for k, v in entry["nucleus"].items()
                       if k.startswith("CP_"))
        assert not any(k.startswith("CP_") for o in ("mitochondria", "tubulin", "actin") for k in entry[o])
    assert n_nucleus == 5
    assert set(got["z_deviation"]["nucleus"]) == {"0", "2", "3"}
    for dev, means in got["z_deviation"]["nucleus"].items():
        assert set(CP_METRICS) <= set(means), dev
        assert means["CP_mae"] is not None
    assert set(CP_METRICS) <= set(got["aggregates"]["nucleus"])
    assert not any(m.startswith("CP_") for m in got["z_deviation"]["mitochondria"]["0"])
    prov = got["provenance"]
    assert prov["metrics"]["nucleus"] == [*sorted(STANDARD, key=["MAE", "PCC", "SSIM", "E_dist", "C_dist"].index),
                                          *CP_METRICS]
    assert prov["cellprofiler"]["metrics"] == list(CP_METRICS)
    assert prov["cellprofiler"]["library"] == "cellprofiler-library-nightly"
    assert prov["cellprofiler"]["library_version"] == cp_nuclei.library_version()


def test_default_evaluation_has_no_cp_metrics(nuclei_split):
    split, preds = nuclei_split
    metrics = evaluate_lmc(Split(split), preds, progress=False)
    assert "cellprofiler" not in metrics["provenance"]
    assert metrics["provenance"]["metrics"]["nucleus"] == ["MAE", "PCC", "SSIM", "E_dist", "C_dist"]
    assert all(set(r["nucleus"]) <= STANDARD for r in metrics["results"])


def test_perfect_prediction_scores_zero_and_degraded_scores_worse(nuclei_split):
    split, preds = nuclei_split
    _nucleus_predictions(split, preds, lambda gt: gt.copy())
    perfect = evaluate_lmc(Split(split), preds, progress=False, cellprofiler=True)
    assert perfect["errors"] == []
    assert all(perfect["aggregates"]["nucleus"][m] == 0.0 for m in CP_METRICS)

    def degrade(gt: np.ndarray) -> np.ndarray:  # blurred and shifted by (5, 7) px
        return np.roll(ndimage.gaussian_filter(gt.astype(np.float32), 3.0), (5, 7), axis=(0, 1))

    _nucleus_predictions(split, preds, degrade)
    worse = evaluate_lmc(Split(split), preds, progress=False, cellprofiler=True)
    assert worse["errors"] == []
    assert worse["aggregates"]["nucleus"]["CP_mae"] > 0.05
    assert worse["aggregates"]["nucleus"]["CP_area_error"] > 0.0
    for entry in worse["results"]:
        if entry["nucleus"]:
            assert entry["nucleus"]["CP_mae"] > 0.0


def test_target_features_computed_once_per_file(nuclei_split, monkeypatch):
    split, preds = nuclei_split
    calls: list[tuple[int, ...]] = []
    real = cp_nuclei.nucleus_features

    def counting(image, pixel_size_um=None):
        calls.append(image.shape)
        assert pixel_size_um == 1.0  # the target's OME pixel size, for target and prediction alike
        return real(image, pixel_size_um)

    monkeypatch.setattr(cp_nuclei, "nucleus_features", counting)
    monkeypatch.setattr(cp_nuclei, "TARGET_FEATURES", cp_nuclei.FeatureCache())
    evaluate_lmc(Split(split), preds, progress=False, cellprofiler=True)
    assert len(calls) == 5 + 2  # every nucleus prediction, each of the two nucleus targets once
    assert len(cp_nuclei.TARGET_FEATURES) == 2
    evaluate_lmc(Split(split), preds, progress=False, cellprofiler=True)
    assert len(calls) == 7 + 5  # in-process cache: targets are not measured again


def test_cellprofiler_failure_is_an_error_and_keeps_other_metrics(nuclei_split, monkeypatch):
    split, preds = nuclei_split

    def broken(image, pixel_size_um=None):
        raise RuntimeError("boom")

    monkeypatch.setattr(cp_nuclei, "nucleus_features", broken)
    monkeypatch.setattr(cp_nuclei, "TARGET_FEATURES", cp_nuclei.FeatureCache())
    metrics = evaluate_lmc(Split(split), preds, progress=False, cellprofiler=True)
    assert len(metrics["errors"]) == 5
    assert all(e["organelle"] == "nucleus" and e["reason"] == "CellProfiler: boom" for e in metrics["errors"])
    assert all(set(r["nucleus"]) == STANDARD for r in metrics["results"] if r["nucleus"])
