"""`vsbench evaluate` end to end: organisers' numbers, errors, exit codes, provenance."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from vsbench.harness.cli import main
from vsbench.harness.evaluate import evaluate_lmc
from vsbench.harness.omeio import write_plane
from vsbench.harness.predict import prediction_path
from vsbench.harness.split import Split

from lmc_reference import reference_evaluation
from splitfactory import make_predictions, make_split


@pytest.fixture()
def scored(tmp_path):
    split = make_split(tmp_path / "split")
    preds = make_predictions(split, tmp_path / "pred")
    return split, preds


def test_reproduces_reference_evaluation(scored, tmp_path):
    split, preds = scored
    out = tmp_path / "metrics.json"
    assert main(["--quiet", "evaluate", "--task", "lmc", "--split", str(split),
                 "--predictions", str(preds), "--out", str(out)]) == 0
    got = json.loads(out.read_text())
    ref = reference_evaluation(split, preds)
    assert [r["image"] for r in got["results"]] == [r["image"] for r in ref["results"]]
    n_values = 0
    for mine, theirs in zip(got["results"], ref["results"], strict=True):
        for organelle in ("nucleus", "mitochondria", "tubulin", "actin"):
            assert mine[organelle].keys() == theirs[organelle].keys()
            for metric, value in theirs[organelle].items():
                assert mine[organelle][metric] == pytest.approx(value, rel=1e-9)
                n_values += 1
    assert n_values == 3 * (5 + 5) + 2 * (5 + 2) + 2 * (5 + 2)  # slices x metrics of the organelles with GT
    for (kind, *key), value in ref["means"].items():
        if kind == "all":
            organelle, metric = key
            assert got["aggregates"][organelle][metric] == pytest.approx(value, rel=1e-9)
            assert got["agregate"][organelle][metric] == got["aggregates"][organelle][metric]
        elif kind == "mod":
            modality, organelle, metric = key
            assert got["transmitted_light"][modality][organelle][metric] == pytest.approx(value, rel=1e-9)
        else:
            organelle, dev, metric = key
            assert got["z_deviation"][organelle][str(dev)][metric] == pytest.approx(value, rel=1e-9)
    # a modality without images for an organelle is listed as null, like the organisers' NaN
    assert got["transmitted_light"]["DIC"]["nucleus"]["PCC"] is None
    assert got["errors"] == []


def test_results_entries_and_provenance(scored):
    split, preds = scored
    metrics = evaluate_lmc(Split(split), preds, progress=False)
    first = metrics["results"][0]
    assert first["image"] == "image_0_BF_z0.ome.tiff"
    assert (first["modality"], first["image_z"], first["best_z"], first["z_deviation"]) == ("BF", 0, 3, 3)
    assert first["tubulin"] == {} and first["actin"] == {}
    assert set(first["nucleus"]) == {"MAE", "PCC", "SSIM", "E_dist", "C_dist"}
    prov = metrics["provenance"]
    assert prov["split_hash"] == Split(split).split_hash
    assert len(prov["predictions_hash"]) == 64 and prov["vsbench_version"]
    assert prov["n_cases"] == 7


def _damage(split, preds, kind: str):
    case = "image_0_BF_z3.ome.tiff"
    path = prediction_path(preds, "nucleus", case)
    if kind == "missing":
        path.unlink()
    elif kind == "shape":
        write_plane(path, np.ones((10, 12), np.float32))
    elif kind == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    elif kind == "garbage":
        path.write_bytes(b"\x00garbage" * 100)
    elif kind in ("nan", "inf"):
        arr = np.random.default_rng(0).random((48, 40)).astype(np.float32)
        arr[5, 5] = np.nan if kind == "nan" else np.inf
        write_plane(path, arr)
    return case


@pytest.mark.parametrize("kind,needle", [
    ("missing", "missing prediction"), ("shape", "shape mismatch"), ("truncated", "not a readable TIFF"),
    ("garbage", "not a readable TIFF"), ("nan", "NaN or infinite"), ("inf", "NaN or infinite"),
])
def test_bad_prediction_is_one_error_and_left_out(scored, tmp_path, capsys, kind, needle):
    split, preds = scored
    case = _damage(split, preds, kind)
    out = tmp_path / "m.json"
    args = ["--quiet", "evaluate", "--split", str(split), "--predictions", str(preds), "--out", str(out)]
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("vsbench: error: 1 prediction(s) could not be scored")
    got = json.loads(out.read_text())
    assert got["errors"] == [{"image": case, "organelle": "nucleus", "reason": got["errors"][0]["reason"]}]
    assert needle in got["errors"][0]["reason"]
    # the mean leaves the bad case out and equals the mean of the remaining nucleus scores
    bad = next(r for r in got["results"] if r["image"] == case)
    assert bad["nucleus"] == {} and set(bad["mitochondria"]) == {"MAE", "PCC", "SSIM", "E_dist", "C_dist"}
    rest = [r["nucleus"]["PCC"] for r in got["results"] if r["nucleus"]]
    assert len(rest) == 4
    assert got["aggregates"]["nucleus"]["PCC"] == pytest.approx(float(np.mean(rest)), rel=1e-12)
    assert main(args + ["--allow-partial"]) == 0


def test_missing_output_without_ground_truth_is_reported(scored, tmp_path):
    split, preds = scored
    prediction_path(preds, "actin", "image_0_BF_z3.ome.tiff").unlink()
    metrics = evaluate_lmc(Split(split), preds, progress=False)
    assert [e["organelle"] for e in metrics["errors"]] == ["actin"]
    assert "not scored" in metrics["errors"][0]["reason"]


def test_constant_prediction_scores_like_the_organisers(scored):
    split, preds = scored
    write_plane(prediction_path(preds, "nucleus", "image_1_PC_z4.ome.tiff"), np.full((48, 40), 7, np.uint16))
    metrics = evaluate_lmc(Split(split), preds, progress=False)
    entry = next(r for r in metrics["results"] if r["image"] == "image_1_PC_z4.ome.tiff")
    assert entry["nucleus"]["PCC"] == 0.0  # NaN -> 0
    assert math.isfinite(entry["nucleus"]["SSIM"])


@pytest.mark.parametrize("argv,needle", [
    (["evaluate", "--split", "/nonexistent", "--predictions", "/tmp"], "split directory not found"),
    (["show", "/nonexistent/metrics.json"], "not a readable metrics.json"),
    (["data", "verify", "/nonexistent"], "split directory not found"),
])
def test_cli_errors_are_one_line(argv, needle, capsys):
    assert main(["--quiet", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("vsbench: error:") and needle in err[0]


def test_split_without_manifest_is_refused(tmp_path, capsys):
    (tmp_path / "inputs").mkdir()
    assert main(["--quiet", "evaluate", "--split", str(tmp_path), "--predictions", str(tmp_path)]) == 2
    assert "no manifest.json" in capsys.readouterr().err


def test_ground_truth_must_match_the_manifest(scored, tmp_path):
    split, preds = scored
    gt = split / "ground_truth" / "image_1_Tubulin.ome.tiff"
    write_plane(gt, np.ones((48, 40), np.uint16))
    metrics = evaluate_lmc(Split(split), preds, progress=False)
    assert {(e["image"], e["organelle"]) for e in metrics["errors"]} == {
        ("image_1_PC_z4.ome.tiff", "tubulin"), ("image_1_PC_z6.ome.tiff", "tubulin")}
    assert "differs from the split's manifest" in metrics["errors"][0]["reason"]
    (split / "ground_truth" / "best_z.csv").write_text("name,modality,image_z,best_z\n")
    with pytest.raises(ValueError, match="best_z.csv: differs from the split's manifest"):
        evaluate_lmc(Split(split), preds, progress=False)
