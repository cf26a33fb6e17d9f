"""`vsbench evaluate --task adipocyte`: the organisers' score from real CellProfiler runs, checked against a
direct recomputation from the feature tables and images, with the degenerate cases and the cache."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
from scipy import ndimage

from vsbench.harness.adipocyte_split import CHANNELS, adipocyte_sets
from vsbench.harness.cli import main
from vsbench.harness.evaluate_adipocyte import evaluate_adipocyte, prediction_path
from vsbench.harness.split import Split
from vsbench.harness.synth_adipocyte import synthesize_adipocyte
from vsbench.metrics.adipocyte import ADIPOCYTE_FEATURES

from adipocyte_reference import reference_feature_mae, reference_pixel_mae, reference_total

SIZE = (384, 384)  # the cells' adaptive threshold window (185 px) must fit twice


@pytest.fixture(scope="module")
def split20(tmp_path_factory) -> Split:
    return Split(synthesize_adipocyte(tmp_path_factory.mktemp("a20") / "s", "20x", sets=4, size=SIZE, seed=3))


@pytest.fixture(scope="module")
def split60(tmp_path_factory) -> Split:
    return Split(synthesize_adipocyte(tmp_path_factory.mktemp("a60") / "s", "60x", sets=2, size=SIZE, seed=4))


def _predict(split: Split, out: Path, transform) -> Path:
    for s in adipocyte_sets(split):
        for ch in CHANNELS:
            target = tifffile.imread(s.target_path(split, ch))
            path = prediction_path(out, ch, s.targets[ch])
            path.parent.mkdir(parents=True, exist_ok=True)
            tifffile.imwrite(path, transform(target))
    return out


def _blur(image: np.ndarray) -> np.ndarray:
    return np.clip(ndimage.gaussian_filter(image.astype(np.float64), 2.0) * 0.9, 0, 65535).astype(np.uint16)


@pytest.fixture(scope="module")
def blurred(split20, tmp_path_factory) -> Path:
    return _predict(split20, tmp_path_factory.mktemp("p") / "blurred", _blur)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """Shared by the tests: CellProfiler measures each distinct image set once (the cache is content-keyed)."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def scored(split20, blurred, cache) -> dict:
    return evaluate_adipocyte([(split20, blurred)], workers=2, progress=False, cache_dir=cache)


def test_perfect_prediction_scores_zero(split20, tmp_path, cache):
    perfect = _predict(split20, tmp_path / "perfect", lambda t: t)
    m = evaluate_adipocyte([(split20, perfect)], workers=2, progress=False, cache_dir=cache)
    s = m["aggregates"]["per_magnification"]["20x"]
    assert s["pixel_mae"] == 0 and s["feature_mae"] == 0 and s["mae"] == 0
    assert m["complete"] and not m["errors"]


def test_scores_equal_the_organisers_computation(split20, blurred, scored):
    tables = scored["feature_tables"]["20x"]
    targ = pd.read_csv(io.StringIO(tables["targets"]))
    pred = pd.read_csv(io.StringIO(tables["predictions"]))
    assert list(targ.columns[3:]) == list(ADIPOCYTE_FEATURES) and len(targ) == 4
    assert list(targ["Metadata_FoV"]) == [f"F{s.site:03d}" for s in adipocyte_sets(split20)]
    has_nan = targ.isna().any().any() or pred.isna().any().any()
    s = scored["aggregates"]["per_magnification"]["20x"]
    if not has_nan and not (targ.drop(columns=["Metadata_Well", "Metadata_FoV"]).median() == 0).any():
        expected, per_feature = reference_feature_mae(targ, pred)
        assert s["feature_mae"] == pytest.approx(expected, rel=1e-9)
    else:  # the degenerate rules fire; they are tested on their own in test_metrics_adipocyte
        assert s["feature_rules"]
    t_sets, p_sets = [], []
    for a in adipocyte_sets(split20):
        t_sets.append(np.stack([tifffile.imread(a.target_path(split20, ch)) for ch in CHANNELS]))
        p_sets.append(np.stack([tifffile.imread(prediction_path(blurred, ch, a.targets[ch])) for ch in CHANNELS]))
    pix, per_channel = reference_pixel_mae(t_sets, p_sets)
    assert s["pixel_mae"] == pytest.approx(pix, rel=1e-6)
    assert [s["pixel_per_channel"][c] for c in CHANNELS] == pytest.approx(per_channel, rel=1e-6)
    assert s["mae"] == pytest.approx((s["pixel_mae"] + s["feature_mae"]) / 2)
    assert 0 < s["pixel_mae"] and 0 < s["feature_mae"]


def test_results_breakdown_and_provenance(split20, scored):
    d_of = {a.key: a.d for a in adipocyte_sets(split20)}
    assert [r["image_set"] for r in scored["results"]] == sorted(d_of)
    rows = scored["z_deviation"]["20x"]
    assert set(rows) == {str(d) for d in d_of.values()}
    assert sum(r["n_sets"] for r in rows.values()) == 4
    for r in scored["results"]:
        assert set(r["generic"]) == set(CHANNELS) and 0 < r["generic"]["lipids"]["PCC"] <= 1
        assert set(r["features"]["target"]) == set(ADIPOCYTE_FEATURES)
        # a z-deviation holding one set scores that set, with the split's normalisers
        if sum(1 for v in d_of.values() if v == r["d"]) == 1:
            assert rows[str(r["d"])]["mae"] == pytest.approx(r["mae"])
    prov = scored["provenance"]
    assert prov["splits"][0]["split_hash"] == split20.split_hash and prov["cellprofiler_library"]
    assert list(prov["pipeline_settings"]["20x"]["nuclei_diameter"]) == [20, 80]  # the 20x_ver3 .cppipe
    json.dumps(scored, allow_nan=False)


def test_missing_and_bad_predictions_are_recorded_not_fatal(split20, blurred, scored, tmp_path, cache):
    pred = tmp_path / "partial"
    shutil.copytree(blurred, pred)
    sets = adipocyte_sets(split20)
    prediction_path(pred, "lipids", sets[0].targets["lipids"]).unlink()
    bad = prediction_path(pred, "nuclei", sets[1].targets["nuclei"])
    tifffile.imwrite(bad, tifffile.imread(bad).astype(np.float32))
    m = evaluate_adipocyte([(split20, pred)], workers=2, progress=False, cache_dir=cache)
    reasons = {e["image_set"]: e["reason"] for e in m["errors"]}
    assert "missing prediction" in reasons[sets[0].key] and "uint16" in reasons[sets[1].key]
    assert not m["complete"]
    s = m["aggregates"]["per_magnification"]["20x"]
    assert s["n_sets"] == 2 and s["missing_predictions"] == [sets[0].key, sets[1].key]
    # the denominators are the split's, whatever a submission leaves out
    full = scored["aggregates"]["per_magnification"]["20x"]
    assert s["feature_normalisers"] == full["feature_normalisers"]
    assert s["pixel_normalisers"] == full["pixel_normalisers"]


def test_target_features_come_from_the_cache(split20, blurred, scored, tmp_path):
    fresh = tmp_path / "fresh"
    # seed a fresh cache with the module cache's rows of this split only, then score twice
    first = evaluate_adipocyte([(split20, blurred)], workers=2, progress=False, cache_dir=fresh)
    second = evaluate_adipocyte([(split20, blurred)], workers=2, progress=False, cache_dir=fresh)
    assert first["provenance"]["n_target_feature_rows_from_cache"] == 0
    assert second["provenance"]["n_target_feature_rows_from_cache"] == 4
    assert second["aggregates"] == first["aggregates"] == scored["aggregates"]
    assert len(list((fresh / "cp-features").rglob("*.json"))) == 8  # 4 targets + 4 predictions


def test_weighted_total_over_magnifications(split20, split60, blurred, tmp_path, cache):
    p60 = _predict(split60, tmp_path / "p60", _blur)
    m = evaluate_adipocyte([(split20, blurred), (split60, p60)], workers=2, progress=False, cache_dir=cache)
    per = m["aggregates"]["per_magnification"]
    total = m["aggregates"]["total"]
    assert total["n_sets"] == 6
    assert total["mae"] == pytest.approx(reference_total({k: (v["mae"], v["n_sets"]) for k, v in per.items()}))
    with pytest.raises(ValueError, match="two splits of magnification 20x"):
        evaluate_adipocyte([(split20, blurred), (split20, blurred)], progress=False, cache_dir=None)


def test_cli_prints_the_scores_and_exits_1_on_missing(split20, blurred, tmp_path, capsys, cache):
    out = tmp_path / "m" / "metrics.json"
    args = ["--quiet", "evaluate", "--task", "adipocyte", "--split", str(split20.root), "--predictions",
            str(blurred), "--out", str(out), "--cache-dir", str(cache)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "pixel MAE" in text and "feature MAE" in text and "by z-deviation" in text
    assert (out.parent / "metrics-features" / "Adipocytes_Image_20x_targets.csv").is_file()
    assert main(["show", str(out)]) == 0
    assert "feature MAE" in capsys.readouterr().out
    partial = tmp_path / "partial"
    shutil.copytree(blurred, partial)
    shutil.rmtree(partial / "cytoplasm-fluorescence-tiff")
    args[args.index(str(blurred))] = str(partial)
    assert main(args) == 1
    assert "could not be scored" in capsys.readouterr().err
    assert main(args + ["--allow-partial"]) == 0
    # one prediction folder per split
    assert main(["evaluate", "--task", "adipocyte", "--split", str(split20.root), "--split", str(split20.root),
                 "--predictions", str(blurred), "--out", str(out)]) == 2
    assert "one --predictions per --split" in capsys.readouterr().err
