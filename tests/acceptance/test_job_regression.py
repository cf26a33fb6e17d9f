"""Job 2, regression-testing a model version, exactly as the README shows it: ``model@v1``, ``model@v2`` and
``model@v3`` in one benchmark file, run, listed and gated with ``vsbench compare`` (README "The three jobs",
block 2): v2 (v1's weights in float16) passes, v3 (a worse model) exits 1."""

from __future__ import annotations

import json
from xml.etree import ElementTree as ET

import pytest

from cli_support import vsbench
from readme_jobs import run_job

pytestmark = pytest.mark.slow


def test_readme_job_2_gates_a_release(tmp_path):
    cmds, statuses, proc = run_job(2, tmp_path)
    assert statuses == [c.expect for c in cmds]
    assert statuses[-1] == 1  # the README's regression example is a regression

    listed = vsbench("results", "list", cwd=tmp_path).stdout
    for version in ("v1", "v2", "v3"):
        assert f"model@{version}" in listed
    runs = json.loads(vsbench("results", "list", "--json", cwd=tmp_path).stdout)
    assert len(runs) == 3 and {r["status"] for r in runs} == {"complete"}
    assert len({r["run_key"] for r in runs}) == 3

    report = (tmp_path / "report.md").read_text()
    verdict = next(line for line in report.splitlines() if line.startswith("**"))
    assert verdict.startswith("**OK:") and "model@v1" in verdict and "model@v2" in verdict
    junit = ET.parse(tmp_path / "report.xml").getroot()
    cases = junit.findall(".//testcase")
    assert cases and not junit.findall(".//failure")

    regression = (tmp_path / "regression.md").read_text()
    verdict = next(line for line in regression.splitlines() if line.startswith("**"))
    assert verdict.startswith("**REGRESSION:") and "model@v3" in verdict

    # the same gate as JSON: float16 weights move no checked cell by more than rounding
    same = json.loads(vsbench("compare", "model@v1", "model@v2", "--policy", "default", "--json",
                              cwd=tmp_path).stdout)
    assert same["exit_code"] == 0 and same["checks"]
    assert max(abs(c["mean_diff"]) for c in same["checks"]) < 0.01
    assert (same["baseline"]["submission"], same["baseline"]["version"]) == ("model", "v1")
