"""The regression gate refuses to pass on a typo, and the leaderboard of a challenge's first day (issue 15, defects
4 and 5).

Defect 5: a policy rule whose metric or group pattern matches nothing in the compared runs, or an unknown name in
``--metrics``, is an error (exit 2) listing the known names; a comparison that checks zero cells is an error unless
``--allow-empty``. Defect 4: one scored submission ranks 1 with interval [1, 1] and Kendall's tau "n/a" (``show``,
``show --json``: null, the site); zero scored submissions are a one-line error for ``show`` and ``publish``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from vsbench.leaderboard import compare as cmp
from vsbench.leaderboard.stability import bootstrap_ranks

from cli_support import vsbench


def _one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vsbench: error: "), stderr
    return lines[0]


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> Path:
    """Two scored submissions on one synthetic split: a.json (blurred) and b.json (inverted)."""
    root = tmp_path_factory.mktemp("gate")
    vsbench("data", "synth", "lmc", "data", "--fovs", "2", "--size", "64", "--seed", "0", cwd=root)
    for name, solution in (("a", "blurred"), ("b", "inverted")):
        vsbench("predict", solution, "--split", "data/test", "--out", f"pred/{name}", cwd=root)
        vsbench("evaluate", "--task", "lmc", "--split", "data/test", "--predictions", f"pred/{name}",
                "--out", f"{name}.json", cwd=root)
    return root


@pytest.mark.parametrize("rule, named, listed", [
    ("{metric: SIMM, group: nucleos}", "SIMM", "SSIM"),
    ("{metric: SSIM, group: nucleos}", "nucleos", "nucleus"),
    ("{metric: 'CP_*', group: nucleus}", "CP_*", "C_dist"),
])
def test_a_policy_rule_matching_nothing_is_an_error(pair, rule, named, listed):
    (pair / "typo.yaml").write_text(f"rules:\n  - {rule}\n  - {{metric: '*', group: '*'}}\n")
    proc = vsbench("compare", "a.json", "b.json", "--policy", "typo.yaml", cwd=pair, expect=2)
    line = _one_error_line(proc.stderr)
    assert f"'{named}'" in line and listed in line and "rule 1" in line
    assert proc.stdout == ""


def test_an_unknown_metric_in_the_metrics_option_is_an_error(pair):
    line = _one_error_line(vsbench("compare", "a.json", "b.json", "--metrics", "SSIM", "SIMM", cwd=pair,
                                   expect=2).stderr)
    assert "'SIMM'" in line and "SSIM" in line and "E_dist" in line


def test_a_comparison_that_checks_nothing_is_an_error_unless_allowed(pair):
    # MAE and tubulin both exist, but tubulin is scored with PCC and SSIM only: the rule checks no cell
    (pair / "empty.yaml").write_text("rules:\n  - {metric: MAE, group: tubulin}\n")
    line = _one_error_line(vsbench("compare", "a.json", "b.json", "--policy", "empty.yaml", cwd=pair,
                                   expect=2).stderr)
    assert "0 check" in line and "--allow-empty" in line
    ok = vsbench("compare", "a.json", "b.json", "--policy", "empty.yaml", "--allow-empty", cwd=pair)
    assert "(0 check(s))" in ok.stdout and "rule matched no comparison" in ok.stdout


def test_a_policy_that_matches_checks_as_before(pair):
    # a metric filtered out by --metrics is still a metric of the runs: its rule is a note, not an error
    (pair / "ok.yaml").write_text("rules:\n  - {metric: SSIM, group: nucleus}\n  - {metric: PCC, group: '*'}\n")
    proc = vsbench("compare", "a.json", "a.json", "--policy", "ok.yaml", "--metrics", "PCC", cwd=pair)
    assert "no regression beyond the policy (4 check(s))" in proc.stdout
    assert "rule matched no comparison: SSIM/nucleus" in proc.stdout


def test_compare_entries_refuses_a_typo_in_process(pair):
    base, cand = (cmp.resolve(None, str(pair / f"{n}.json")) for n in "ab")
    with pytest.raises(ValueError, match=r"policy rule 1: group 'nucleos' matches no group .*nucleus"):
        cmp.compare_entries(base, cand, cmp.parse_policy([{"metric": "SSIM", "group": "nucleos"}]))
    result = cmp.compare_entries(base, cand, cmp.parse_policy([{"metric": "MAE", "group": "tubulin"}]),
                                 allow_empty=True)
    assert result.checks == [] and result.exit_code == 0


# ------------------------------------------------------------------------------------------------ defect 4

@pytest.fixture(scope="module")
def first_day(pair) -> Path:
    """A benchmark with one scored submission (a challenge's first day), run through the CLI."""
    (pair / "one.yaml").write_text("name: one\ntask: lmc\nworkspace: ws-one\nsplits: [{name: test, path: data/test}]\n"
                                   "submissions: [{name: input, version: '1', solution: input}]\n")
    vsbench("run", "one.yaml", cwd=pair)
    return pair


@pytest.mark.slow
def test_one_entry_ranks_first_with_tau_not_available(first_day):
    shown = vsbench("leaderboard", "show", "one.yaml", "--bootstrap", "200", cwd=first_day).stdout
    assert "1-1" in shown and "Kendall's tau vs this ranking n/a" in shown
    doc = json.loads(vsbench("leaderboard", "show", "one.yaml", "--bootstrap", "200", "--json",
                             cwd=first_day).stdout)
    (row,) = doc["rows"]
    assert (row["rank"], row["rank_lo"], row["rank_hi"]) == (1, 1, 1)
    assert doc["bootstrap"]["kendall_tau"] == {"test": {"mean": None, "lo": None, "hi": None}}

    out = vsbench("leaderboard", "publish", "one.yaml", "--out", "site", "--bootstrap", "200", cwd=first_day)
    assert "1 entries" in out.stdout
    board = pd.read_csv(first_day / "site" / "split-test" / "board.csv")
    assert board[["rank", "rank_95_low", "rank_95_high"]].values.tolist() == [[1, 1, 1]]
    html = (first_day / "site" / "index.html").read_text()
    assert "Kendall&#39;s tau between the bootstrap rankings and this one: n/a" in html


@pytest.mark.slow
def test_no_scored_entry_is_a_one_line_error(first_day):
    # the database exists (it holds another benchmark's run) but nothing of this benchmark is scored yet
    (first_day / "none.yaml").write_text("name: none\ntask: lmc\nworkspace: ws-one\nsplits: [{name: test, path: "
                                         "data/test}]\nsubmissions: [{name: input, version: '1', solution: input}]\n")
    for command in (["show"], ["publish", "--out", "site-none"]):
        line = _one_error_line(vsbench("leaderboard", *command, "none.yaml", cwd=first_day, expect=2).stderr)
        assert "'none' has no scored runs" in line
    assert not (first_day / "site-none").exists()


def test_bootstrap_of_a_single_entry():
    table = pd.DataFrame({"submission": "only", "version": "1", "split": "test", "case": [f"c{i}" for i in range(5)],
                          "group": "nucleus", "metric": "SSIM", "z_deviation": 0, "value": [0.1, 0.2, 0.3, 0.4, 0.5],
                          "higher_is_better": True})
    stab = bootstrap_ranks(table, "mean-rank", n=50)
    assert stab.tau == {"test": {"mean": None, "lo": None, "hi": None}}
    assert stab.summary[["rank", "rank_lo", "rank_hi", "p_first"]].values.tolist() == [[1, 1, 1, 1]]


def _adipocyte_metrics(path: Path, mae: list[float]) -> Path:
    """A minimal adipocyte metrics.json: one image set per value, at 20x, z-deviations 0, 1, 2, ..."""
    results = [{"image_set": f"B03_F{i + 1:03d}", "magnification": "20x", "d": i % 3, "pixel_mae": v,
                "feature_mae": v, "mae": v} for i, v in enumerate(mae)]
    path.write_text(json.dumps({"task": "adipocyte", "results": results, "errors": [],
                                "provenance": {"split": "test", "split_hash": "ab" * 32, "algorithm": path.stem}}))
    return path


def test_the_shipped_adipocyte_policy_gates_adipocyte_runs(tmp_path):
    base = _adipocyte_metrics(tmp_path / "v1.json", [0.30 + 0.01 * i for i in range(12)])
    same = _adipocyte_metrics(tmp_path / "v2.json", [0.30 + 0.01 * i for i in range(12)])
    worse = _adipocyte_metrics(tmp_path / "v3.json", [0.40 + 0.012 * i for i in range(12)])
    vsbench("compare", base, same, "--policy", "adipocyte", cwd=tmp_path, expect=0)
    out = vsbench("compare", base, worse, "--policy", "adipocyte", cwd=tmp_path, expect=1).stdout
    assert out.startswith("REGRESSION") and "mae (20x)" in out
    # the Light My Cells policy names organelles and SSIM/PCC: on adipocyte runs that is a mistake, said so
    line = _one_error_line(vsbench("compare", base, worse, "--policy", "default", cwd=tmp_path, expect=2).stderr)
    assert "SSIM" in line and "pixel_mae" in line
