"""Job 1, evaluating a submission, exactly as the README shows it: a participant's ``docker save`` archive is
loaded, run in the sandbox on a held-out split and scored (README "The three jobs", block 1)."""

from __future__ import annotations

import json

import pytest

from cli_support import vsbench
from readme_jobs import run_job

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_readme_job_1_evaluates_a_docker_save_archive(docker_client, tmp_path):
    cmds, statuses, _ = run_job(1, tmp_path)
    assert statuses == [c.expect for c in cmds] == [0] * len(cmds)
    (tmp_path / "team-a.tar").unlink()  # 1.3 GB: not kept in pytest's temporary folders

    record = json.loads((tmp_path / "pred" / "team-a" / "run.json").read_text())
    image_id = docker_client.images.get("team-a:latest").id
    assert record["sandboxed"] is True and record["summary"]["succeeded"] == 12
    assert {c["status"] for c in record["cases"]} == {"succeeded"}
    assert {c.get("image_digest") for c in record["cases"]} == {image_id}

    metrics = json.loads((tmp_path / "team-a.json").read_text())
    prov = metrics["provenance"]
    assert metrics["errors"] == [] and prov["n_cases"] == 12
    split = json.loads((tmp_path / "data" / "lmc" / "test" / "manifest.json").read_text())
    assert prov["split_hash"] == split["split_hash"] and prov["inputs_hash"] == split["inputs_hash"]
    assert prov["predictions_hash"]
    pcc = metrics["aggregates"]["nucleus"]["PCC"]
    assert 0.2 < pcc <= 1.0  # the trained VQGAN nucleus specialist, not noise

    shown = vsbench("show", "team-a.json", cwd=tmp_path).stdout
    assert "nucleus" in shown and "dz=0" in shown
