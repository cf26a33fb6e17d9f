"""Every metric carries its direction next to its definition in ``vsbench.metrics``, and ``vsbench compare`` and
the leaderboard read it from there: the CellProfiler errors of ``evaluate --cellprofiler`` are lower-is-better
(issue 15, defect 6), and a metric nobody declared is an error, never a default."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vsbench import metrics as vm
from vsbench.leaderboard.compare import resolve
from vsbench.leaderboard.data import case_table
from vsbench.leaderboard.ranking import rank
from vsbench.metrics import adipocyte, cp_nuclei, lmc

from cli_support import vsbench

EXPECTED = {"MAE": False, "PCC": True, "SSIM": True, "E_dist": False, "C_dist": False,
            "pixel_mae": False, "feature_mae": False, "mae": False, **dict.fromkeys(cp_nuclei.CP_METRICS, False)}


def test_every_metric_vsbench_produces_has_its_direction():
    assert {name: vm.higher_is_better(name) for name in EXPECTED} == EXPECTED
    assert set(vm.known_metrics()) == set(EXPECTED)


def test_the_direction_is_declared_on_the_metric_functions():
    assert lmc.pearson_correlation.higher_is_better is True and lmc.structural_similarity.higher_is_better is True
    assert not any(f.higher_is_better for f in (lmc.mean_absolute_error, lmc.euclidean_distance,
                                                 lmc.cosine_distance, adipocyte.pixel_mae, adipocyte.feature_mae,
                                                 adipocyte.combined_mae, cp_nuclei.nucleus_feature_errors))
    assert set(cp_nuclei.nucleus_feature_errors.metric_names) == set(cp_nuclei.CP_METRICS)
    assert adipocyte.combined_mae.metric_names == ("mae",)


def test_an_unknown_metric_is_an_error_listing_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown metric 'SIMM' \(known: .*SSIM") as err:
        vm.higher_is_better("SIMM")
    assert "\n" not in str(err.value) and "CP_mae" in str(err.value)


def test_a_conflicting_declaration_is_refused():
    with pytest.raises(ValueError, match="SSIM.*higher"):
        @vm.metric("SSIM", higher_is_better=False)
        def backwards(gt, pred) -> float:
            return 0.0
    assert vm.higher_is_better("SSIM") is True


@pytest.fixture(scope="module")
def cp_metrics(tmp_path_factory) -> tuple[Path, Path]:
    """``vsbench evaluate --task lmc --cellprofiler`` of one submission (baseline), and a candidate whose CP_*
    errors are all larger (every other metric equal)."""
    root = tmp_path_factory.mktemp("cp")
    vsbench("data", "synth", "lmc", "data", "--fovs", "2", "--size", "64", "--seed", "0", cwd=root)
    vsbench("predict", "blurred", "--split", "data/test", "--out", "pred", cwd=root)
    vsbench("evaluate", "--task", "lmc", "--cellprofiler", "--split", "data/test", "--predictions", "pred",
            "--out", "base/metrics.json", cwd=root)
    base = root / "base" / "metrics.json"

    def worse(node):
        if isinstance(node, dict):
            return {k: (v * 1.5 + 0.05 if k.startswith("CP_") and isinstance(v, float) else worse(v))
                    for k, v in node.items()}
        return [worse(v) for v in node] if isinstance(node, list) else node

    doc = worse(json.loads(base.read_text()))
    doc["provenance"]["algorithm"] = "worse-nuclei"
    cand = root / "cand" / "metrics.json"
    cand.parent.mkdir()
    cand.write_text(json.dumps(doc))
    return base, cand


@pytest.mark.slow
def test_compare_reports_larger_cellprofiler_errors_as_a_regression(cp_metrics):
    base, cand = cp_metrics
    proc = vsbench("compare", base, cand, "--json", cwd=base.parent, expect=1)
    doc = json.loads(proc.stdout)
    overall = {c["metric"]: c for c in doc["comparisons"] if c["level"] == "overall" and c["group"] == "nucleus"}
    for name in cp_nuclei.CP_METRICS:
        assert overall[name]["higher_is_better"] is False and overall[name]["worse_by"] > 0, name
    failed = {c["metric"] for c in doc["checks"] if c["regressed"]}
    assert failed == set(cp_nuclei.CP_METRICS)
    assert proc.stderr.startswith("REGRESSION") and "CP_mae (nucleus)" in proc.stderr
    # the other way round the candidate improved: no regression
    vsbench("compare", cand, base, cwd=base.parent, expect=0)


@pytest.mark.slow
def test_the_leaderboard_ranks_the_lower_cellprofiler_error_first(cp_metrics):
    entries = [resolve(None, str(p)) for p in cp_metrics]
    table = case_table(entries, ["CP_mae"])
    assert not table["higher_is_better"].any()
    board = rank(table, "absolute", ["CP_mae"]).table.set_index("submission")
    assert board.loc["blurred", "rank"] == 1 and board.loc["worse-nuclei", "rank"] == 2
    assert board.loc["blurred", "score"] < board.loc["worse-nuclei", "score"]
    mean_rank = rank(case_table(entries, list(cp_nuclei.CP_METRICS)), "mean-rank").table.set_index("submission")
    assert mean_rank.loc["blurred", "rank"] == 1


def test_a_metric_without_a_declared_direction_is_refused(tmp_path):
    doc = {"results": [{"image": "a.ome.tiff", "modality": "BF", "image_z": 0, "best_z": 0, "z_deviation": 0,
                        "nucleus": {"SSIM": 0.5, "sharpness": 3.0}}],
           "aggregates": {}, "provenance": {"algorithm": "x", "split_hash": "h", "split": "test"}}
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=r"unknown metric 'sharpness' \(known: .*SSIM"):
        case_table([resolve(None, str(path))])


@pytest.mark.slow
def test_a_benchmark_ranks_by_cellprofiler_error_lowest_first(cp_metrics):
    root = cp_metrics[0].parents[1]
    (root / "bench.yaml").write_text(
        "name: cp\ntask: lmc\nworkspace: ws\ncellprofiler: true\nmetrics: [SSIM, CP_mae]\n"
        "ranking: {policy: absolute, metrics: [CP_mae]}\nsplits: [{name: test, path: data/test}]\n"
        "submissions:\n  - {name: blurred, version: '1', solution: blurred}\n"
        "  - {name: input, version: '1', solution: input}\n")
    vsbench("run", "bench.yaml", cwd=root)
    doc = json.loads(vsbench("leaderboard", "show", "bench.yaml", "--json", "--bootstrap", "0", cwd=root).stdout)
    assert doc["direction"] == "lower is better" and doc["metrics"] == ["CP_mae"]
    rows = sorted(doc["rows"], key=lambda r: r["rank"])
    assert [r["rank"] for r in rows] == [1, 2] and rows[0]["score"] < rows[1]["score"]
