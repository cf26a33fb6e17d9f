"""``vsbench.metrics.adipocyte`` against the organisers' composition in ``tests/adipocyte_reference.py``
(pandas + sklearn + ``np.median``, shared/reference/adipocyte.md §1.2-1.4), and the degenerate-case rules
of the module docstring against hand-computed values.

Tolerances: ``rtol = 1e-12`` for the feature MAE (both sides compute in float64, in a different
order); ``rtol = 1e-6`` for the pixel MAE (the reference averages float32 differences in float32,
the module sums them in float64 or exactly); pooled medians of integer images must be *equal*.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from vsbench.metrics import adipocyte as adi
from vsbench.metrics.adipocyte import (
    ADIPOCYTE_FEATURES,
    PixelMAEAccumulator,
    channel_pixel_mae,
    combined_mae,
    feature_mae,
    feature_normalisers,
    pixel_mae,
    weighted_total,
)

from adipocyte_reference import reference_feature_mae, reference_pixel_mae, reference_total

FEATURE_RTOL = 1e-12
PIXEL_RTOL = 1e-6
HYP = settings(max_examples=40, deadline=None)


def _json_ok(result: dict) -> None:
    json.dumps(result, allow_nan=False)


# --- the feature list ---------------------------------------------------------------------------


def test_feature_list():
    assert isinstance(ADIPOCYTE_FEATURES, tuple)
    assert len(ADIPOCYTE_FEATURES) == len(set(ADIPOCYTE_FEATURES)) == 99
    assert ADIPOCYTE_FEATURES[:16] == tuple(f"Granularity_{k}_Bodipy" for k in range(1, 17))
    assert ADIPOCYTE_FEATURES[16:21] == (
        "Count_nuclei",
        "Count_nuclei_no_edge",
        "Count_Lipids_no_edge",
        "Count_Defective_lipid_droplets",
        "Count_cells_no_edge",
    )
    assert ADIPOCYTE_FEATURES[21] == "Mean_nuclei_no_edge_Intensity_MeanIntensity_Hoechst"
    assert ADIPOCYTE_FEATURES[21 + 39] == "StDev_nuclei_no_edge_Intensity_MeanIntensity_Hoechst"
    assert ADIPOCYTE_FEATURES[-1] == "StDev_cells_no_edge_AreaShape_Solidity"
    assert "Mean_nuclei_no_edge_AreaShape_Area" in ADIPOCYTE_FEATURES
    assert "Mean_Lipids_no_edge_Intensity_IntegratedIntensity_Defect_image_rescaled" in ADIPOCYTE_FEATURES
    for agg in ("Mean", "StDev"):
        for obj, n in (("nuclei_no_edge", 15), ("Lipids_no_edge", 12), ("cells_no_edge", 12)):
            assert sum(f.startswith(f"{agg}_{obj}_") for f in ADIPOCYTE_FEATURES) == n


# --- feature MAE against the reference ----------------------------------------------------------


def _keys(n: int) -> list[str]:
    return [f"{'BCD'[i % 3]}{2 + i % 3:02d}_F{i + 1:03d}" for i in range(n)]


def _random_table(rng: np.random.Generator, n: int, keys: list[str]) -> pd.DataFrame:
    cols = {}
    for f in ADIPOCYTE_FEATURES:
        kind = rng.integers(0, 4)
        if f.startswith("Count_"):
            cols[f] = (rng.poisson(rng.uniform(0.5, 300), n) + 1).astype(np.float64)
        elif kind == 0:
            cols[f] = rng.normal(rng.normal(0, 5), rng.uniform(0.1, 3), n)  # signs vary, medians can be negative
        else:
            cols[f] = rng.lognormal(rng.normal(0, 4), rng.uniform(0.05, 1.5), n)
    return pd.DataFrame(cols, index=pd.Index(keys, name="ImageSet"))


def _perturb(rng: np.random.Generator, table: pd.DataFrame) -> pd.DataFrame:
    pred = table * rng.lognormal(0, 0.3, table.shape) + rng.normal(0, 0.1, table.shape)
    counts = [c for c in table.columns if c.startswith("Count_")]
    pred[counts] = np.rint(pred[counts].clip(lower=0))
    return pred


def _with_meta(rng: np.random.Generator, table: pd.DataFrame) -> pd.DataFrame:
    out = table.copy()
    out["ImageNumber"] = np.arange(1, len(out) + 1)
    out["Metadata_Well"] = [k[:3] for k in out.index]
    out["Metadata_FoV"] = [k[4:] for k in out.index]
    return out[list(rng.permutation(out.columns))]


@HYP
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 24))
def test_feature_mae_matches_reference(seed, n):
    rng = np.random.default_rng(seed)
    keys = _keys(n)
    targ = _random_table(rng, n, keys)
    pred = _perturb(rng, targ) if rng.random() < 0.8 else _random_table(rng, n, keys)
    targ_in = _with_meta(rng, targ)
    pred_in = _with_meta(rng, pred).iloc[rng.permutation(n)]  # rows in another order: matched by key
    ref_total, ref_per = reference_feature_mae(targ_in, pred_in.loc[targ_in.index])
    res = feature_mae(targ_in, pred_in)
    assert res["n_sets"] == n and res["rules"] == [] and res["missing_predictions"] == []
    assert list(res["per_feature"]) == list(ADIPOCYTE_FEATURES)
    np.testing.assert_allclose(res["feature_mae"], ref_total, rtol=FEATURE_RTOL, atol=0)
    got = np.array([res["per_feature"][f] for f in ADIPOCYTE_FEATURES])
    np.testing.assert_allclose(got, ref_per[list(ADIPOCYTE_FEATURES)].to_numpy(), rtol=FEATURE_RTOL, atol=0)
    assert all(v["rule"] == "median" for v in res["normalisers"].values())
    np.testing.assert_allclose(
        [res["normalisers"][f]["value"] for f in ADIPOCYTE_FEATURES],
        targ.median().to_numpy(),
        rtol=FEATURE_RTOL,
        atol=0,
    )
    _json_ok(res)


def test_feature_mae_identical_tables_is_zero():
    rng = np.random.default_rng(1)
    targ = _random_table(rng, 6, _keys(6))
    res = feature_mae(targ, targ.copy())
    assert res["feature_mae"] == 0.0 and set(res["per_feature"].values()) == {0.0}


def test_split_normalisers_are_independent_of_predicted_rows():
    rng = np.random.default_rng(7)
    keys = _keys(9)
    targ = _random_table(rng, 9, keys)
    pred = _perturb(rng, targ).iloc[[1, 4, 6]]
    norms = feature_normalisers(targ)
    res = feature_mae(targ, pred, normalisers=norms)
    res_default = feature_mae(targ, pred)  # also computes them over all target rows
    assert res["feature_mae"] == res_default["feature_mae"]
    median = targ.median()
    expected = ((pred - targ.loc[pred.index]).abs() / median.abs()).mean()
    np.testing.assert_allclose(res["per_feature"][ADIPOCYTE_FEATURES[0]], expected.iloc[0], rtol=FEATURE_RTOL)
    np.testing.assert_allclose(res["feature_mae"], expected.mean(), rtol=FEATURE_RTOL)
    assert res["n_sets"] == 3
    assert res["missing_predictions"] == [keys[i] for i in (0, 2, 3, 5, 7, 8)]
    assert [r["rule"] for r in res["rules"]] == ["missing_predictions_excluded"]
    # plain floats are accepted as normalisers too
    res_float = feature_mae(targ, pred, normalisers={k: v["value"] for k, v in norms.items()})
    assert res_float["feature_mae"] == res["feature_mae"]


# --- degenerate-case rules, by hand -------------------------------------------------------------

SMALL = ["Count_nuclei_no_edge", "Mean_nuclei_no_edge_AreaShape_Area", "Granularity_1_Bodipy"]


def _small(rows: dict[str, list[float]], keys: list[str]) -> pd.DataFrame:
    return pd.DataFrame(dict(zip(SMALL, rows.values(), strict=True)), index=keys)


def test_rule_empty_objects_and_nonfinite_zero():
    keys = ["B03_F001", "B03_F002", "B03_F003"]
    targ = _small({"n": [2, 0, 4], "area": [10.0, np.nan, 30.0], "gran": [1.0, 2.0, 4.0]}, keys)
    pred = _small({"n": [0, 0, 4], "area": [np.nan, np.nan, 20.0], "gran": [np.inf, 2.0, np.nan]}, keys)
    res = feature_mae(targ, pred, features=SMALL)
    # targets after rule a: area [10, 0, 30] -> median 10; counts median 2; granularity median 2
    # predictions after rule a: area [0, 0, 20], granularity [0, 2, 0]
    expected = {
        "Count_nuclei_no_edge": (2 + 0 + 0) / 3 / 2,
        "Mean_nuclei_no_edge_AreaShape_Area": (10 + 0 + 10) / 3 / 10,
        "Granularity_1_Bodipy": (1 + 0 + 4) / 3 / 2,
    }
    for f, v in expected.items():
        assert res["per_feature"][f] == pytest.approx(v, rel=1e-15)
    assert res["feature_mae"] == pytest.approx(sum(expected.values()) / 3, rel=1e-15)
    assert res["substitutions"] == {
        "targets": {"Mean_nuclei_no_edge_AreaShape_Area": 1},
        "predictions": {"Mean_nuclei_no_edge_AreaShape_Area": 2, "Granularity_1_Bodipy": 2},
    }
    assert res["rules"] == [
        {
            "rule": "empty_objects_zero",
            "table": "targets",
            "n_values": 1,
            "features": {"Mean_nuclei_no_edge_AreaShape_Area": 1},
        },
        {
            "rule": "empty_objects_zero",
            "table": "predictions",
            "n_values": 2,
            "features": {"Mean_nuclei_no_edge_AreaShape_Area": 2},
        },
        {"rule": "nonfinite_zero", "table": "predictions", "n_values": 2, "features": {"Granularity_1_Bodipy": 2}},
    ]
    assert res["normalisers"]["Mean_nuclei_no_edge_AreaShape_Area"]["n_substituted"] == 1
    _json_ok(res)


def test_rule_zero_median_falls_back_to_mean_abs():
    keys = [f"C02_F{i:03d}" for i in range(1, 6)]
    targ = pd.DataFrame({"Count_Defective_lipid_droplets": [0.0, 0, 0, 2, 4]}, index=keys)
    pred = pd.DataFrame({"Count_Defective_lipid_droplets": [1.0, 0, 0, 2, 0]}, index=keys)
    res = feature_mae(targ, pred, features=["Count_Defective_lipid_droplets"])
    # median 0 -> mean |t| = 6 / 5 = 1.2; mean |p - t| = (1 + 0 + 0 + 0 + 4) / 5 = 1
    assert res["normalisers"]["Count_Defective_lipid_droplets"]["value"] == pytest.approx(1.2, rel=1e-15)
    assert res["normalisers"]["Count_Defective_lipid_droplets"]["rule"] == "mean_abs"
    assert res["normalisers"]["Count_Defective_lipid_droplets"]["median"] == 0.0
    assert res["feature_mae"] == pytest.approx(1 / 1.2, rel=1e-15)
    assert res["rules"] == [{"rule": "mean_abs", "features": ["Count_Defective_lipid_droplets"]}]
    _json_ok(res)


def test_rule_all_zero_targets_unit_normaliser():
    keys = ["D04_F001", "D04_F002", "D04_F003"]
    targ = pd.DataFrame({"Count_Defective_lipid_droplets": [0.0, 0, 0], "Count_nuclei": [4.0, 5, 6]}, index=keys)
    pred = pd.DataFrame({"Count_Defective_lipid_droplets": [1.0, 0, 2], "Count_nuclei": [5.0, 5, 6]}, index=keys)
    res = feature_mae(targ, pred, features=["Count_Defective_lipid_droplets", "Count_nuclei"])
    assert res["normalisers"]["Count_Defective_lipid_droplets"] == {
        "value": 1.0,
        "rule": "unit",
        "median": 0.0,
        "n_sets": 3,
        "n_substituted": 0,
    }
    assert res["per_feature"]["Count_Defective_lipid_droplets"] == 1.0  # raw mean |p - t| = 3 / 3
    assert res["per_feature"]["Count_nuclei"] == pytest.approx(1 / 3 / 5, rel=1e-15)
    assert res["feature_mae"] == pytest.approx((1 + 1 / 15) / 2, rel=1e-15)
    assert res["rules"] == [{"rule": "unit", "features": ["Count_Defective_lipid_droplets"]}]


def test_rule_unmatched_rows_by_key():
    targ = pd.DataFrame({"Count_nuclei": [2.0, 4.0, 6.0]}, index=["B03_F001", "B03_F002", "B03_F003"])
    pred = pd.DataFrame({"Count_nuclei": [100.0, 7.0, 3.0]}, index=["B04_F009", "B03_F003", "B03_F002"])
    res = feature_mae(targ, pred, features=["Count_nuclei"])
    # median over all three targets = 4; matched: F002 |3 - 4| = 1, F003 |7 - 6| = 1
    assert res["n_sets"] == 2
    assert res["feature_mae"] == pytest.approx(1 / 4, rel=1e-15)
    assert res["missing_predictions"] == ["B03_F001"]
    assert res["unmatched_predictions"] == ["B04_F009"]
    assert {"rule": "missing_predictions_excluded", "keys": ["B03_F001"]} in res["rules"]
    assert {"rule": "unmatched_predictions_ignored", "keys": ["B04_F009"]} in res["rules"]


@pytest.mark.parametrize("which", ["targets", "predictions"])
def test_duplicate_keys_raise(which):
    good = pd.DataFrame({"Count_nuclei": [1.0, 2.0]}, index=["B03_F001", "B03_F002"])
    bad = pd.DataFrame({"Count_nuclei": [1.0, 2.0]}, index=["B03_F001", "B03_F001"])
    args = (bad, good) if which == "targets" else (good, bad)
    with pytest.raises(ValueError, match=f"duplicate image-set keys in {which}.*B03_F001"):
        feature_mae(*args, features=["Count_nuclei"])


def test_missing_feature_column_raises():
    rng = np.random.default_rng(3)
    targ = _random_table(rng, 4, _keys(4))
    pred = targ.drop(columns=["StDev_cells_no_edge_AreaShape_Solidity"])
    with pytest.raises(ValueError, match="predictions lack feature column.*StDev_cells_no_edge_AreaShape_Solidity"):
        feature_mae(targ, pred)
    with pytest.raises(ValueError, match="targets lack feature column.*StDev_cells_no_edge_AreaShape_Solidity"):
        feature_mae(pred, targ)


def test_no_matching_row_raises():
    targ = pd.DataFrame({"Count_nuclei": [1.0]}, index=["B03_F001"])
    pred = pd.DataFrame({"Count_nuclei": [1.0]}, index=["B03_F002"])
    with pytest.raises(ValueError, match="no prediction row matches"):
        feature_mae(targ, pred, features=["Count_nuclei"])


def test_bad_normaliser_and_input_errors():
    targ = pd.DataFrame({"Count_nuclei": [1.0, 3.0]}, index=["a", "b"])
    with pytest.raises(ValueError, match="normalisers lack feature"):
        feature_mae(targ, targ, normalisers={}, features=["Count_nuclei"])
    with pytest.raises(ValueError, match="finite and non-zero"):
        feature_mae(targ, targ, normalisers={"Count_nuclei": 0.0}, features=["Count_nuclei"])
    with pytest.raises(ValueError, match="empty"):
        feature_normalisers(targ.iloc[:0], features=["Count_nuclei"])
    with pytest.raises(ValueError, match="non-numeric"):
        feature_mae(targ, pd.DataFrame({"Count_nuclei": ["x", "y"]}, index=["a", "b"]), features=["Count_nuclei"])


def test_meta_columns_dropped_and_extra_columns_reported():
    targ = pd.DataFrame(
        {"Count_nuclei": [2.0, 4.0], "ImageNumber": [1, 2], "Metadata_Well": ["B03", "B03"], "Extra": [0, 1]},
        index=["B03_F001", "B03_F002"],
    )
    pred = targ.assign(Count_nuclei=[3.0, 4.0]).drop(columns=["Extra"])
    res = feature_mae(targ, pred, features=["Count_nuclei"])
    assert res["feature_mae"] == pytest.approx(0.5 / 3, rel=1e-15)
    assert res["rules"] == [{"rule": "ignored_columns", "table": "targets", "columns": ["Extra"]}]


def test_all_nan_feature_tables_never_nan():
    rng = np.random.default_rng(11)
    keys = _keys(5)
    targ = _random_table(rng, 5, keys)
    pred = _perturb(rng, targ)
    lipid_cols = [f for f in ADIPOCYTE_FEATURES if "_Lipids_no_edge_" in f]
    targ.loc[keys[:3], lipid_cols] = np.nan  # no droplet found in most targets -> zero medians
    targ["Count_Lipids_no_edge"] = targ["Count_Lipids_no_edge"].where(~targ.index.isin(keys[:3]), 0.0)
    pred[lipid_cols] = np.nan
    pred["Count_Defective_lipid_droplets"] = np.inf
    res = feature_mae(targ, pred)
    assert math.isfinite(res["feature_mae"]) and all(math.isfinite(v) for v in res["per_feature"].values())
    assert res["substitutions"]["predictions"]["Count_Defective_lipid_droplets"] == 5
    assert {r["rule"] for r in res["rules"]} >= {"empty_objects_zero", "nonfinite_zero", "mean_abs"}
    _json_ok(res)


# --- pixel MAE ----------------------------------------------------------------------------------


def _sets(rng: np.random.Generator, n_sets: int, shape: tuple[int, int], high: int, dtype=np.uint16) -> list:
    return [rng.integers(0, high, (3, *shape)).astype(dtype) for _ in range(n_sets)]


@HYP
@given(
    seed=st.integers(0, 2**32 - 1),
    n_sets=st.integers(1, 3),
    h=st.integers(1, 12),
    w=st.integers(1, 12),
    high=st.sampled_from([2, 5, 300, 4096, 65536]),
)
def test_pixel_mae_uint16_matches_reference(seed, n_sets, h, w, high):
    rng = np.random.default_rng(seed)
    targ = _sets(rng, n_sets, (h, w), high)
    pred = _sets(rng, n_sets, (h, w), high)
    stacked = np.stack(targ).astype(np.float32)
    assume(all(np.median(stacked[:, c]) > 0 for c in range(3)))
    ref_total, ref_per = reference_pixel_mae(targ, pred)
    res = pixel_mae(targ, pred)
    np.testing.assert_allclose(res["pixel_mae"], ref_total, rtol=PIXEL_RTOL, atol=0)
    np.testing.assert_allclose(list(res["per_channel"].values()), ref_per, rtol=PIXEL_RTOL, atol=0)
    for c, ch in enumerate(adi.CHANNELS):  # pooled medians: exactly np.median
        assert res["target_median"][ch] == float(np.median(stacked[:, c]))
        assert res["target_median"][ch] == float(np.median(np.stack(targ)[:, c]))
    assert res["n_sets"] == n_sets and res["rules"] == []
    _json_ok(res)


@HYP
@given(
    seed=st.integers(0, 2**32 - 1),
    n_sets=st.integers(1, 3),
    side=st.integers(1, 10),
    dtypes=st.sampled_from([(np.float32, np.float32), (np.float64, np.float32), (np.uint16, np.float64)]),
)
def test_pixel_mae_float_matches_reference(seed, n_sets, side, dtypes):
    rng = np.random.default_rng(seed)
    targ = [(rng.gamma(2.0, 300.0, (3, side, side + 1)) + 1).astype(dtypes[0]) for _ in range(n_sets)]
    pred = [(rng.gamma(2.0, 300.0, (3, side, side + 1))).astype(dtypes[1]) for _ in range(n_sets)]
    ref_total, ref_per = reference_pixel_mae(targ, pred)
    res = pixel_mae(targ, pred)
    np.testing.assert_allclose(res["pixel_mae"], ref_total, rtol=PIXEL_RTOL, atol=0)
    np.testing.assert_allclose(list(res["per_channel"].values()), ref_per, rtol=PIXEL_RTOL, atol=0)
    stacked = np.stack(targ).astype(np.float32)
    for c, ch in enumerate(adi.CHANNELS):
        assert res["target_median"][ch] == float(np.median(stacked[:, c]))


@HYP
@given(
    parts=st.lists(
        hnp.arrays(
            np.uint16,
            hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=9),
            elements=st.integers(0, 20) | st.integers(0, 65535),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_pooled_median_is_exactly_np_median(parts):
    acc = PixelMAEAccumulator(channels=("C02",))
    for p in parts:
        acc.add("lipids", p, p)
    pooled = np.concatenate([p.ravel() for p in parts])
    res = acc.result()
    assert res["target_median"]["C02"] == float(np.median(pooled))
    assert res["target_median"]["C02"] == float(np.median(pooled.astype(np.float32)))
    assert res["n_pixels"]["C02"] == pooled.size


@pytest.mark.parametrize(
    ("values", "median"), [([7], 7.0), ([1, 2, 3, 4], 2.5), ([1, 2, 4], 2.0), ([65534, 65535], 65534.5)]
)
def test_histogram_median_even_and_odd(values, median):
    hist = np.bincount(np.array(values), minlength=65536)
    assert adi._histogram_median(hist) == median == float(np.median(values))


def test_accumulator_equals_batch_in_any_order():
    rng = np.random.default_rng(5)
    targ = _sets(rng, 4, (17, 23), 5000)
    pred = _sets(rng, 4, (17, 23), 5000)
    batch = pixel_mae(targ, pred)
    acc = PixelMAEAccumulator()
    for i in (2, 0, 3, 1):  # set order and channel order do not matter
        for c in (2, 0, 1):
            acc.add(adi.CHANNELS[c], targ[i][c], pred[i][c])
    assert acc.result() == batch
    acc2 = PixelMAEAccumulator()
    for t, p in zip(targ, pred, strict=True):
        acc2.add_set(
            dict(zip(("nuclei", "lipids", "cytoplasm"), t, strict=True)), dict(zip(adi.CHANNELS, p, strict=True))
        )
    assert acc2.result() == batch


def test_accumulator_mixed_integer_and_float_targets():
    rng = np.random.default_rng(9)
    t_int = rng.integers(1, 900, (8, 9)).astype(np.uint16)
    t_float = rng.uniform(1, 900, (8, 9)).astype(np.float32)
    t_neg = rng.integers(-50, 900, (8, 9)).astype(np.int16)  # negative -> kept, not histogrammed
    preds = [rng.integers(0, 900, (8, 9)).astype(np.uint16) for _ in range(3)]
    targs = [t_int, t_float, t_neg]
    got = channel_pixel_mae(targs, preds)
    pooled_t = np.concatenate([t.astype(np.float32).ravel() for t in targs])
    pooled_p = np.concatenate([p.astype(np.float32).ravel() for p in preds])
    expected = float(np.mean(np.abs(pooled_p - pooled_t), dtype=np.float64) / np.median(pooled_t))
    assert got == pytest.approx(expected, rel=1e-12)


def test_int32_beyond_float32_precision_follows_the_float32_cast():
    t = np.array([[2**24 + 1, 2**24 + 3]], dtype=np.int32)  # float32 rounds these to 2^24, 2^24 + 4
    p = np.array([[2**24, 2**24]], dtype=np.int32)
    _, ref_per = reference_pixel_mae([t[None]], [p[None]])
    assert channel_pixel_mae([t], [p]) == pytest.approx(ref_per[0], rel=1e-12)
    assert channel_pixel_mae([t], [p]) == pytest.approx(2 / (2**24 + 2), rel=1e-12)


def test_uint16_extremes_are_exact():
    t = np.array([[0, 65535], [65535, 65535]], dtype=np.uint16)
    p = np.array([[65535, 0], [65535, 65535]], dtype=np.uint16)
    assert channel_pixel_mae(t, p) == (2 * 65535 / 4) / 65535


def test_pixel_zero_median_rules():
    t = np.array([[0, 0, 0, 6]], dtype=np.uint16)
    p = np.array([[1, 0, 0, 6]], dtype=np.uint16)
    # median 0 -> mean |t| = 1.5; mae = 0.25
    assert channel_pixel_mae(t, p) == pytest.approx(0.25 / 1.5, rel=1e-15)
    acc = PixelMAEAccumulator(channels=("C01", "C03"))
    acc.add("C01", t, p)
    acc.add("C03", np.zeros((2, 2), np.float32), np.full((2, 2), 3.0, np.float32))
    res = acc.result()
    assert res["normalisers"] == {"C01": {"value": 1.5, "rule": "mean_abs"}, "C03": {"value": 1.0, "rule": "unit"}}
    assert res["per_channel"]["C03"] == 3.0
    assert res["rules"] == [{"rule": "mean_abs", "channels": ["C01"]}, {"rule": "unit", "channels": ["C03"]}]
    _json_ok(res)


def test_pixel_input_errors():
    acc = PixelMAEAccumulator()
    with pytest.raises(ValueError, match=r"^shape mismatch in C01: target \(4, 5\) vs prediction \(5, 4\)$"):
        acc.add("C01", np.zeros((4, 5), np.uint16), np.zeros((5, 4), np.uint16))
    with pytest.raises(ValueError, match="non-finite"):
        acc.add("C02", np.ones((2, 2), np.float32), np.array([[1, np.nan], [1, 1]], np.float32))
    with pytest.raises(ValueError, match="unknown channel"):
        acc.add("C04", np.ones((2, 2)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="no image set added"):
        acc.result()  # the rejected sets left nothing behind
    acc.add("C01", np.ones((2, 2), np.uint16), np.ones((2, 2), np.uint16))
    with pytest.raises(ValueError, match="no image set added for channel"):
        acc.result()
    acc.add("C02", np.ones((2, 2), np.uint16), np.ones((2, 2), np.uint16))
    acc.add("C03", np.ones((2, 2), np.uint16), np.ones((2, 2), np.uint16))
    acc.add("C03", np.ones((2, 2), np.uint16), np.ones((2, 2), np.uint16))
    with pytest.raises(ValueError, match="different numbers of image sets"):
        acc.result()
    with pytest.raises(ValueError, match="lacks channel"):
        acc.add_set({"C01": np.ones((2, 2))}, {"C01": np.ones((2, 2))})
    with pytest.raises(ValueError, match="target image sets vs"):
        pixel_mae([np.ones((3, 2, 2))], [])


# --- combination --------------------------------------------------------------------------------


def test_combined_mae():
    assert combined_mae(0.238, 0.370) == pytest.approx(0.304, abs=1e-12)  # adipocyte.md §3.6, 20x
    with pytest.raises(ValueError, match="not finite"):
        combined_mae(float("nan"), 0.3)


def test_weighted_total_by_hand():
    per_mag = {
        "20x": {"n_sets": 8, "feature_mae": 0.2, "pixel_mae": 0.4},
        "40x": {"n_sets": 10, "feature_mae": 0.3, "pixel_mae": 0.5},
        "60x": {"n_sets": 15, "feature_mae": 0.1, "pixel_mae": 0.3, "mae": 0.25},
    }
    res = weighted_total(per_mag)
    # feature: (8*0.2 + 10*0.3 + 15*0.1) / 33 = 6.1 / 33; pixel: (3.2 + 5 + 4.5) / 33 = 12.7 / 33
    # combined: (8*0.3 + 10*0.4 + 15*0.25) / 33 = 10.15 / 33 (the given 60x "mae" is used as it is)
    assert res["feature_mae"] == pytest.approx(6.1 / 33, rel=1e-14)
    assert res["pixel_mae"] == pytest.approx(12.7 / 33, rel=1e-14)
    assert res["mae"] == pytest.approx(10.15 / 33, rel=1e-14)
    assert res["mae"] == pytest.approx(reference_total({"20x": (0.3, 8), "40x": (0.4, 10), "60x": (0.25, 15)}))
    assert res["n_sets"] == 33 and res["missing"] == {}
    assert res["weights"] == pytest.approx({"20x": 8 / 33, "40x": 10 / 33, "60x": 15 / 33})
    _json_ok(res)


def test_weighted_total_sml_report():
    # SML's Table 7 (adipocyte.md §3.6) with their validation sizes 8 / 10 / 15 sets
    res = weighted_total(
        {
            "20x": {"n_sets": 8, "feature_mae": 0.238, "pixel_mae": 0.370},
            "40x": {"n_sets": 10, "feature_mae": 0.263, "pixel_mae": 0.355},
            "60x": {"n_sets": 15, "feature_mae": 0.208, "pixel_mae": 0.327},
        }
    )
    assert res["feature_mae"] == pytest.approx(0.232, abs=6e-4)
    assert res["pixel_mae"] == pytest.approx(0.346, abs=6e-4)
    assert res["mae"] == pytest.approx(0.289, abs=6e-4)


def test_weighted_total_incomplete_and_errors():
    res = weighted_total({"20x": {"n_sets": 2, "pixel_mae": 0.5}, "40x": {"n_sets": 2, "pixel_mae": 0.3}})
    assert res["pixel_mae"] == pytest.approx(0.4) and res["feature_mae"] is None and res["mae"] is None
    assert res["missing"] == {"feature_mae": ["20x", "40x"], "mae": ["20x", "40x"]}
    _json_ok(res)
    with pytest.raises(ValueError, match="sum of n_sets is 0"):
        weighted_total({"20x": {"n_sets": 0, "mae": 0.3}})
    with pytest.raises(ValueError, match="n_sets must be"):
        weighted_total({"20x": {"n_sets": 1.5, "mae": 0.3}})
    with pytest.raises(ValueError, match="not finite"):
        weighted_total({"20x": {"n_sets": 1, "mae": float("inf")}})
    with pytest.raises(ValueError, match="no magnification"):
        weighted_total({})
