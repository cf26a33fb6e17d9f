"""vsbench compare: paired per-case regression testing of a candidate against a baseline."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import pytest
import tifffile
from scipy import ndimage

from vsbench.harness.cli import main
from vsbench.harness.evaluate import evaluate_lmc, write_metrics
from vsbench.harness.omeio import write_plane
from vsbench.harness.predict import prediction_path
from vsbench.harness.split import Split
from vsbench.harness.store import ResultStore, score_from_metrics
from vsbench.leaderboard import compare as cmp

from splitfactory import ORGANELLES, make_split

# six fields with nucleus ground truth, each seen at z-deviations 0 and 2: 12 nucleus cases, 6 per z-deviation
FIELDS = [(i, ("BF", "PC", "DIC")[i % 3], ("nucleus", ("tubulin", "actin")[i % 2]), [(5, 5), (3, 5)])
          for i in range(6)]
POLICY = Path(cmp.__file__).parent / "policies" / "default.yaml"


def _predict(split_root: Path, out: Path, seed: int, degrade: bool) -> Path:
    """Ground truth plus a little noise; ``degrade``: blurred, with much more noise (every metric worse)."""
    rng = np.random.default_rng(seed)
    split = Split(split_root)
    for case in split.cases():
        shape = tifffile.imread(split.input_path(case)).shape
        for organelle in ORGANELLES:
            gt_path = split.target_path(case, organelle)
            if gt_path.exists():
                gt = tifffile.imread(gt_path).astype(np.float64)
                if degrade:
                    pred = ndimage.gaussian_filter(gt, 2) + rng.normal(0, gt.std() * 0.8, gt.shape)
                else:
                    pred = gt + rng.normal(0, gt.std() * 0.05, gt.shape)
            else:
                pred = rng.random(shape) * 100
            write_plane(prediction_path(out, organelle, case.name), pred.astype(np.float32))
    return out


def _store_run(store: ResultStore, split_root: Path, preds: Path, key: str, version: str) -> str:
    metrics = evaluate_lmc(Split(split_root), preds, workers=1, progress=False)
    path = preds.parent / f"{key}-metrics.json"
    write_metrics(metrics, path)
    run_key = f"{key}-{'0' * 20}"
    split = Split(split_root)
    store.upsert_run({"run_key": run_key, "benchmark": "cmp", "submission": "model", "submission_version": version,
                      "split_name": split_root.name, "split_hash": split.split_hash, "status": "complete"})
    store.upsert_score(score_from_metrics(metrics, score_key=f"s{run_key}", run_key=run_key, metrics_path=path))
    return run_key


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """A workspace with baseline, equal and regressed runs on one split and a run on another split."""
    root = tmp_path_factory.mktemp("compare")
    split = make_split(root / "test", shape=(32, 32), seed=3, fields=FIELDS)
    other = make_split(root / "other", shape=(32, 32), seed=5, fields=FIELDS[:2])
    good = _predict(split, root / "good", seed=1, degrade=False)
    bad = _predict(split, root / "bad", seed=2, degrade=True)
    ws = root / ".vsbench"
    with ResultStore(workspace=ws) as store:
        keys = {"base": _store_run(store, split, good, "aaa1", "1"),
                "equal": _store_run(store, split, good, "bbb2", "2"),
                "bad": _store_run(store, split, bad, "ccc3", "3"),
                "other": _store_run(store, other, _predict(other, root / "o", seed=1, degrade=False), "ddd4", "4")}
    return ws, keys, root


def _cli(argv: list[str]) -> int:
    """``vsbench --quiet ...`` through the real CLI (status, or 2 with one line on an error)."""
    return main(["--quiet", *argv])


def test_equal_model_is_no_change(bench, capsys):
    ws, keys, root = bench
    with ResultStore(workspace=ws) as store:
        result = cmp.compare(store, keys["base"], keys["equal"][:4])
    assert not result.regressed and result.exit_code == 0 and result.checks
    assert (result.comparisons["p_value"] == 1.0).all() and (result.comparisons["mean_diff"] == 0).all()
    assert (result.comparisons["rank_biserial"] == 0).all()
    assert _cli(["compare", "aaa", "bbb", "--workspace", str(ws), "--policy", str(POLICY),
                 "--junit", str(root / "eq.xml")]) == 0
    assert capsys.readouterr().out.startswith("OK:")
    suite = ET.parse(root / "eq.xml").getroot().find("testsuite")
    assert suite.get("failures") == "0" and not suite.findall("testcase/failure")


def test_injected_regression_fails(bench, capsys):
    ws, keys, root = bench
    md, junit = root / "r.md", root / "r.xml"
    code = _cli(["compare", "aaa", "ccc", "--workspace", str(ws), "--markdown", str(md), "--junit", str(junit)])
    assert code == 1
    out = capsys.readouterr().out
    assert out.startswith("REGRESSION:") and "SSIM (nucleus)" in out and "PCC (nucleus)" in out
    assert "SSIM nucleus overall: worse by" in out and "nan" not in out
    text = md.read_text()
    assert "**REGRESSION:" in text.split("\n## ")[0]  # the verdict on top
    assert text.index("| FAIL |") < text.index("## All comparisons")
    root_el = ET.parse(junit).getroot()
    failures = root_el.findall(".//testcase/failure")
    with ResultStore(workspace=ws) as store:
        result = cmp.compare(store, keys["base"], keys["bad"])
    assert len(failures) == len(result.regressions) == int(root_el.find("testsuite").get("failures")) > 0
    assert len(root_el.findall(".//testcase")) == len(result.checks)
    nucleus_ssim = result.comparisons.query("metric == 'SSIM' and group == 'nucleus' and level == 'overall'").iloc[0]
    assert nucleus_ssim.n == 12 and nucleus_ssim.worse_by > 0.01 and nucleus_ssim.p_value < 0.05
    assert nucleus_ssim.rank_biserial == -1.0 and nucleus_ssim.mean_diff < 0  # every case dropped
    mae = result.comparisons.query("metric == 'MAE' and group == 'nucleus' and level == 'overall'").iloc[0]
    assert mae.mean_diff > 0 and mae.worse_by == mae.mean_diff  # lower is better: a rise is worse
    # the reverse direction is an improvement, not a regression
    assert _cli(["compare", "ccc", "aaa", "--workspace", str(ws), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["regressed"] is False and doc["exit_code"] == 0 and doc["checks"]


def test_policy_per_z_deviation(bench, tmp_path):
    ws, keys, _ = bench
    policy = tmp_path / "p.yaml"
    policy.write_text("rules:\n  - {metric: SSIM, group: nucleus, max_drop: 0.01, p: 0.05, per_z_deviation: true}\n"
                      "  - {metric: MAE, group: tubulin, max_drop: 0.01}\n")  # both exist, no such cell
    with ResultStore(workspace=ws) as store:
        result = cmp.compare(store, keys["base"], keys["bad"], policy=policy)
        lenient = cmp.compare_entries(cmp.resolve(store, keys["base"]), cmp.resolve(store, keys["bad"]),
                                      [cmp.Rule("SSIM", "nucleus", max_drop=5.0)])
    assert {c.cell["z_deviation"] for c in result.checks} == {0, 2} and all(c.regressed for c in result.checks)
    assert all(c.cell["n"] == 6 for c in result.checks)
    assert "FAIL SSIM nucleus z-deviation 2: worse by" in cmp.summary(result)
    assert "| SSIM | nucleus | 0 | 6 |" in cmp.to_markdown(result)
    assert [r.group for r in result.unmatched] == ["tubulin"]
    assert "matched no comparison" in cmp.summary(result)
    assert not lenient.regressed  # a drop within max_drop is allowed


def test_different_splits_refused(bench, capsys):
    ws, keys, _ = bench
    assert _cli(["compare", "aaa", "ddd", "--workspace", str(ws)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "not on the same split" in err and "test (" in err and "other (" in err


def test_bad_references(bench, capsys):
    ws, keys, _ = bench
    assert _cli(["compare", "zzz", "aaa", "--workspace", str(ws)]) == 2
    assert "neither a stored run key" in capsys.readouterr().err


def test_metrics_json_paths(bench):
    ws, keys, root = bench
    result = cmp.compare(None, str(root / "aaa1-metrics.json"), str(root / "ccc3-metrics.json"))
    assert result.regressed


@pytest.mark.parametrize("text, message", [
    ("rules: []", "non-empty list of rules"),
    ("rules:\n  - {metric: SSIM, max_drop: -1}", "policy rule 1: max_drop must be a number >= 0"),
    ("rules:\n  - {metric: SSIM}\n  - {name: strict, metric: PCC, p: 2}", "policy rule 2 (strict): p must be"),
    ("rules:\n  - {metric: SSIM, maxdrop: 0.1}", "policy rule 1: unknown field(s) maxdrop"),
    ("rules:\n  - {metric: '', group: nucleus}", "policy rule 1: metric must be a non-empty string"),
    ("rules:\n  - {metric: PCC, per_z_deviation: 'yes'}", "per_z_deviation must be true or false"),
    ("rules:\n  - SSIM", "policy rule 1: a rule must be a mapping"),
    ("rulez:\n  - {metric: SSIM}", "unknown top-level field(s) rulez"),
    ("rules: [", "not YAML"),
])
def test_policy_validation(tmp_path, text, message):
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        cmp.load_policy(path)
    assert "\n" not in str(info.value)


def test_policy_file_and_default():
    rules = cmp.load_policy(POLICY)
    assert rules and any(r.per_z_deviation for r in rules)
    assert cmp.load_policy(None) == cmp.DEFAULT_POLICY
    assert cmp.DEFAULT_POLICY[0].matches("anything", "any group") and not cmp.DEFAULT_POLICY[0].per_z_deviation


def test_statistics():
    assert cmp.wilcoxon(np.zeros(5)) == (0.0, 1.0)
    assert cmp.rank_biserial(np.array([1.0, 2.0, -3.0])) == pytest.approx((1 + 2 - 3) / 6)
    assert cmp.rank_biserial(np.array([0.0, 0.5, 1.0])) == 1.0
    stat, p = cmp.wilcoxon(np.array([-0.1, -0.2, -0.3, -0.4, -0.5, -0.6, -0.7]))
    assert stat == 0 and p < 0.05
