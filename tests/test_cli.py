"""The command line end to end: help texts, synth -> predict -> evaluate -> show, and the demo."""

from __future__ import annotations

import json

import pytest

from vsbench.harness.cli import build_parser, main
from vsbench.harness.split import Split

SUBCOMMANDS = [
    [], ["data"], ["data", "synth"], ["data", "synth", "lmc"], ["data", "synth", "adipocyte"],
    ["data", "import", "lmc"], ["data", "import", "adipocyte"], ["data", "verify"],
    ["algorithms"], ["predict"], ["evaluate"], ["show"], ["demo"],
]


@pytest.mark.parametrize("words", SUBCOMMANDS, ids=lambda w: " ".join(w) or "vsbench")
def test_every_command_has_help(words, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([*words, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: vsbench") and len(out.splitlines()) > 4


def test_evaluate_help_explains_the_layout(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["evaluate", "--help"])
    out = capsys.readouterr().out
    assert "<organelle>-fluorescence-ome-tiff" in out and "--allow-partial" in out


def test_usage_error_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate"])
    assert exit_info.value.code == 2
    assert "required: --split" in capsys.readouterr().err


def test_flow_end_to_end(tmp_path, capsys):
    data = tmp_path / "lmc"
    assert main(["--quiet", "data", "synth", "lmc", str(data), "--fovs", "3", "--size", "96", "--seed", "4"]) == 0
    out = capsys.readouterr().out
    assert "test:" in out and "18 inputs" in out
    test = Split(data / "test")
    assert test.verify() == []
    assert main(["--quiet", "predict", "--split", str(data / "test"), "--algorithm", "filterbank",
                 "--train", str(data / "train"), "--out", str(tmp_path / "pred")]) == 0
    metrics_path = tmp_path / "m.json"
    assert main(["--quiet", "evaluate", "--split", str(data / "test"), "--predictions", str(tmp_path / "pred"),
                 "--out", str(metrics_path)]) == 0
    metrics = json.loads(metrics_path.read_text())
    assert len(metrics["results"]) == 18 and metrics["errors"] == []
    assert metrics["provenance"]["algorithm"] == "filterbank"
    assert metrics["provenance"]["split_hash"] == test.split_hash
    assert sorted(metrics["z_deviation"]["nucleus"]) == ["0", "1", "2", "3", "4", "5"]
    capsys.readouterr()
    assert main(["show", str(metrics_path)]) == 0
    table = capsys.readouterr().out
    assert "dz=5" in table and "nucleus" in table and "PCC" in table


@pytest.mark.slow
def test_demo(tmp_path, capsys, monkeypatch):
    """Both tasks, both solutions (as images when an engine answers, else in-process), the baselines, stored."""
    from vsbench.harness.store import ResultStore

    monkeypatch.chdir(tmp_path)
    out = tmp_path / "demo"
    assert main(["--quiet", "demo", "--out", "demo", "--fovs", "3", "--size", "128"]) == 0  # relative, as make does
    text = capsys.readouterr().out
    assert "vqgan-lmc-tiny: organelle x metric x z-deviation" in text and "filterbank" in text
    assert "Adipocyte, adipocyte-patchgan-tiny: the organisers' score" in text and "results: sqlite:///" in text
    assert (out / "z_deviation.png").stat().st_size > 10_000
    for task in ("lmc", "adipocyte"):
        assert (out / "site" / task / "index.html").is_file() and f"site/{task}/index.html" in text
    lmc = ("vqgan-lmc-tiny", "input", "inverted", "blurred", "train-mean", "filterbank", "tiny-unet")
    adipocyte = ("adipocyte-patchgan-tiny", "adipocyte-train-median", "adipocyte-ridge")
    for task, names in (("lmc", lmc), ("adipocyte", adipocyte)):
        for name in names:
            metrics = json.loads((out / task / name / "metrics.json").read_text())
            assert metrics["errors"] == [], (task, name)
    with ResultStore(workspace=out / ".vsbench") as store:
        runs = store.list_runs()
        assert sorted(r["submission"] for r in runs) == sorted(lmc + adipocyte)
        assert all(r["status"] == "complete" and r["n_succeeded"] == r["n_cases"] > 0 for r in runs)
        images = "solutions ran as sandboxed images" in text
        assert all(r["sandboxed"] is images for r in runs if r["submission"] in (lmc[0], adipocyte[0]))
    assert main(["--quiet", "run", str(out / "lmc.yaml"), "--json"]) == 0  # the stored work is all reused
    again = json.loads(capsys.readouterr().out)
    assert (again["inferred"], again["scored"]) == (0, 0) and again["reused_runs"] == len(lmc)


def test_synth_adipocyte_cli(tmp_path, capsys):
    out = tmp_path / "adipo"
    assert main(["--quiet", "data", "synth", "adipocyte", str(out), "--magnification", "40x", "--sets", "2",
                 "--size", "64x80", "--seed", "3"]) == 0
    assert "2 image set(s) at 40x, 14 inputs" in capsys.readouterr().out
    assert Split(out).task == "adipocyte" and Split(out).verify() == []
    with pytest.raises(SystemExit) as exit_info:
        main(["--quiet", "data", "synth", "adipocyte", str(tmp_path / "x"), "--size", "64by80"])
    assert exit_info.value.code == 2 and "size must be HxW" in capsys.readouterr().err
