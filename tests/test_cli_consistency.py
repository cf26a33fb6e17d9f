"""CLI consistency, help texts and paths (issue 15, defects 10 and 11), through the installed ``vsbench``.

Global flags after the subcommand, one error path for every command, a closed stdout, numeric flags that refuse
nonsense, ``--metric`` for the absolute policy, quiet tifffile, read commands that create no database, ``show``
of a file that is not a metrics.json; shipped regression policies by name, help texts, the committed checkpoints
(``vsbench model path``), ``containers run --runtime local --train``, and a wheel that builds without warnings.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from vsbench.harness.cli import build_parser

from cli_support import shell, vsbench

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """A tiny synthetic Light My Cells dataset: DATA/train and DATA/test."""
    root = tmp_path_factory.mktemp("lmc")
    vsbench("data", "synth", "lmc", root / "lmc", "--fovs", "1", "--size", "64", "--max-deviation", "1",
            "--seed", "0", cwd=root)
    return root / "lmc"


@pytest.fixture(scope="module")
def scored(data, tmp_path_factory) -> dict[str, Path]:
    """Predictions and metrics.json of two in-process solutions on the test split."""
    root = tmp_path_factory.mktemp("scored")
    out = {}
    for name in ("blurred", "inverted"):
        vsbench("--quiet", "predict", name, "--split", data / "test", "--out", root / name, cwd=root)
        vsbench("--quiet", "evaluate", "--split", data / "test", "--predictions", root / name,
                "--out", root / f"{name}.json", cwd=root)
        out[name] = root / f"{name}.json"
    return out


def _bench(folder: Path, data: Path, **extra) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"name": "cons", "task": "lmc", "splits": [{"name": "test", "path": str(data / "test")}],
           "submissions": [{"name": s, "version": "1", "solution": s} for s in ("blurred", "inverted")],
           "metrics": ["PCC", "SSIM"], **extra}
    path = folder / "bench.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def board(data, tmp_path_factory) -> Path:
    """A benchmark file whose two submissions are run and stored (its workspace next to it)."""
    bench = _bench(tmp_path_factory.mktemp("board"), data)
    vsbench("--quiet", "run", bench, cwd=bench.parent)
    return bench


def _one_error_line(proc: subprocess.CompletedProcess) -> str:
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("vsbench: error: "), proc.stderr
    return lines[0]


# ------------------------------------------------------------------------------------------------- defect 10


def test_quiet_and_debug_are_accepted_before_or_after_the_subcommand(tmp_path):
    noisy = vsbench("data", "synth", "lmc", tmp_path / "a", "--fovs", "1", "--size", "32", cwd=tmp_path)
    assert noisy.stderr  # progress bars, which --quiet removes wherever it is given
    after = vsbench("data", "synth", "lmc", tmp_path / "b", "--fovs", "1", "--size", "32", "--quiet", cwd=tmp_path)
    before = vsbench("--quiet", "data", "synth", "lmc", tmp_path / "c", "--fovs", "1", "--size", "32", cwd=tmp_path)
    assert after.stderr == before.stderr == ""
    assert after.stdout.replace("/b/", "/c/") == before.stdout
    debug = vsbench("show", tmp_path / "missing.json", "--debug", cwd=tmp_path, expect=1)
    assert "Traceback (most recent call last)" in debug.stderr
    _one_error_line(vsbench("show", tmp_path / "missing.json", cwd=tmp_path, expect=2))


def test_leaderboard_show_errors_go_through_the_one_error_path(tmp_path):
    (tmp_path / "bench.yaml").write_text("name: x\ntask: lmc\nsplits: []\n")
    for action in (["show"], ["publish", "--out", "site"]):
        proc = vsbench("leaderboard", *action, "bench.yaml", cwd=tmp_path, expect=2)
        lines = proc.stderr.splitlines()
        assert lines and all(line.startswith("vsbench: error: bench.yaml: ") for line in lines), proc.stderr


def test_a_closed_stdout_ends_the_command_quietly(tmp_path):
    """``vsbench ... | head -c 0``: the reader is gone before vsbench writes; no message, no traceback."""
    for command in ("vsbench algorithms", "vsbench model path vqgan-lmc-tiny"):
        proc = shell(f"{command} | head -c 0", cwd=tmp_path, expect=141)  # 128 + SIGPIPE, as a killed command
        assert proc.stdout == proc.stderr == "", (command, proc.stderr)
    help_text = shell("vsbench train --help | head -c 0", cwd=tmp_path, expect=None)  # argparse swallows it
    assert help_text.returncode in (0, 141) and help_text.stderr == ""


@pytest.mark.parametrize("args", [
    ["leaderboard", "show", "bench.yaml", "--bootstrap", "-5"],
    ["leaderboard", "publish", "bench.yaml", "--out", "site", "--bootstrap", "-1"],
    ["leaderboard", "show", "bench.yaml", "--decimals", "-2"],
    ["run", "bench.yaml", "--workers", "0"],
    ["evaluate", "--split", "s", "--predictions", "p", "--workers", "-3"],
    ["demo", "--fovs", "0"],
    ["data", "synth", "lmc", "out", "--size", "-64"],
    ["containers", "run", "img", "--split", "s", "--predictions", "p", "--time-limit", "0"],
    ["train", "patchgan", "--split", "s", "--out", "o", "--steps", "-1"],
], ids=lambda a: " ".join(a[:2]) + " " + [x for x in a if x.startswith("--")][-1])
def test_negative_or_zero_counts_are_usage_errors(args, tmp_path):
    proc = vsbench(*args, cwd=tmp_path, expect=2)
    flag = next(x for x in reversed(args) if x.startswith("--"))
    assert proc.stderr.splitlines()[-1].startswith(f"vsbench: error: argument {flag}: must be "), proc.stderr
    assert not (tmp_path / "site").exists() and not (tmp_path / "out").exists()


@pytest.mark.slow
def test_absolute_policy_takes_its_metric_from_the_metric_flag(board):
    line = _one_error_line(vsbench("leaderboard", "show", board, "--policy", "absolute", "--bootstrap", "0",
                                   cwd=board.parent, expect=2))
    assert "--metric" in line and "SSIM" in line
    shown = vsbench("leaderboard", "show", board, "--policy", "absolute", "--metric", "SSIM", "--bootstrap", "0",
                    "--json", cwd=board.parent)
    assert '"policy": "absolute"' in shown.stdout and "blurred" in shown.stdout
    site = board.parent / "site"
    vsbench("leaderboard", "publish", board, "--out", site, "--policy", "absolute", "--metric", "PCC",
            "--bootstrap", "5", cwd=board.parent)
    assert (site / "index.html").is_file()
    unknown = _one_error_line(vsbench("leaderboard", "show", board, "--metric", "SIMM", "--bootstrap", "0",
                                      cwd=board.parent, expect=2))
    assert "SIMM" in unknown and "PCC" in unknown


def test_a_truncated_prediction_tiff_is_one_reason_line(data, scored, tmp_path):
    pred = tmp_path / "pred"
    shutil.copytree(scored["blurred"].parent / "blurred", pred)
    victim = sorted((pred / "nucleus-fluorescence-ome-tiff").iterdir())[0]
    victim.write_bytes(victim.read_bytes()[:400])  # cut inside the tags' values: tifffile logs per tag
    proc = vsbench("--quiet", "evaluate", "--split", data / "test", "--predictions", pred, "--out",
                   tmp_path / "m.json", cwd=tmp_path, expect=1)
    line = _one_error_line(proc)
    assert "TiffFileError" not in proc.stderr and victim.name in line and "truncated" in line


def test_read_commands_create_no_database(data, scored, tmp_path):
    missing = tmp_path / "nonexistent"
    bench = _bench(tmp_path / "b", data, workspace=str(missing))
    for args in (["results", "list", "--workspace", missing], ["results", "show", "abc", "--workspace", missing],
                 ["results", "list", "--database", f"sqlite:///{missing}/x.db"],
                 ["compare", "abc", "def", "--database", f"sqlite:///{missing}/x.db"],
                 ["leaderboard", "show", bench], ["leaderboard", "publish", bench, "--out", tmp_path / "site"]):
        line = _one_error_line(vsbench(*args, cwd=tmp_path, expect=2))
        assert "no results database" in line and str(missing) in line, args
        assert not missing.exists(), args
    assert not (tmp_path / "site").exists()


def test_show_says_what_a_file_that_is_not_a_metrics_json_is(data, tmp_path):
    manifest = data / "test" / "manifest.json"
    line = _one_error_line(vsbench("show", manifest, cwd=tmp_path, expect=2))
    assert str(manifest) in line and "not a metrics.json" in line and "split manifest" in line
    (tmp_path / "list.json").write_text("[1, 2]")
    line = _one_error_line(vsbench("show", "list.json", cwd=tmp_path, expect=2))
    assert "list.json" in line and "not a metrics.json" in line


# ------------------------------------------------------------------------------------------------- defect 11


def test_compare_takes_a_shipped_policy_by_name_from_any_folder(scored, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = vsbench("compare", scored["blurred"], scored["inverted"], "--policy", "default", "--json", cwd=elsewhere,
                   expect=None)
    assert proc.returncode in (0, 1), proc.stderr
    assert "nucleus SSIM at every z-deviation" in proc.stdout  # a rule of leaderboard/policies/default.yaml
    line = _one_error_line(vsbench("compare", scored["blurred"], scored["inverted"], "--policy", "strict",
                                   cwd=elsewhere, expect=2))
    assert "strict" in line and "default" in line
    (elsewhere / "mine.yaml").write_text("rules:\n  - {metric: '*', group: '*', max_drop: 1, p: 0.05}\n")
    vsbench("compare", scored["blurred"], scored["blurred"], "--policy", "mine.yaml", cwd=elsewhere)


def test_compare_help_lists_the_shipped_policies_and_no_missing_path(tmp_path):
    text = vsbench("compare", "--help", cwd=tmp_path).stdout
    from vsbench.leaderboard.policies import names

    assert "--policy NAME|FILE" in text and {"adipocyte", "default"} <= set(names())
    assert f"shipped: {', '.join(names())}" in " ".join(text.split())
    assert "vsbench/leaderboard/policies" not in text


def _parsers(parser: argparse.ArgumentParser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                yield from _parsers(sub)


def test_no_help_text_shows_a_doubled_percent_sign(tmp_path):
    for parser in _parsers(build_parser()):
        assert "%%" not in parser.format_help(), parser.prog
    text = vsbench("leaderboard", "publish", "--help", cwd=tmp_path).stdout
    assert "95% bootstrap" in " ".join(text.split())


def test_every_parser_takes_quiet_and_debug():
    for parser in _parsers(build_parser()):
        assert {"--quiet", "--debug"} <= set(parser._option_string_actions), parser.prog


def test_help_choices_are_listed_once(tmp_path):
    for words in (["train"], ["model", "info"]):
        text = vsbench(*words, "--help", cwd=tmp_path).stdout
        usage = "".join(text.split("\n\n")[0].split())
        choices = re.search(r"--config\{([^}]*)\}", usage).group(1).split(",")
        assert len(choices) == len(set(choices)) and {"tiny", "paper", "lmc-tiny"} <= set(choices), choices


def test_predict_help_says_checkpoint_loads_the_vqgan_models(tmp_path):
    text = " ".join(vsbench("predict", "--help", cwd=tmp_path).stdout.split())
    assert "vqgan-lmc-tiny" in text and "adipocyte-vqgan-tiny" in text and "vsbench model path" in text


def test_predict_vqgan_without_checkpoint_points_at_the_committed_one(data, tmp_path):
    line = _one_error_line(vsbench("--quiet", "predict", "--split", data / "test", "--out", tmp_path / "o",
                                   "--algorithm", "vqgan-lmc-tiny", cwd=tmp_path, expect=2))
    assert '--checkpoint "$(vsbench model path vqgan-lmc-tiny)"' in line
    line = _one_error_line(vsbench("--quiet", "containers", "run", "--runtime", "local", "vqgan-lmc-tiny",
                                   "--split", data / "test", "--predictions", tmp_path / "c", cwd=tmp_path,
                                   expect=2))
    assert '--checkpoint "$(vsbench model path vqgan-lmc-tiny)"' in line


def test_containers_run_local_takes_train_for_a_learning_solution(data, tmp_path):
    asked = _one_error_line(vsbench("--quiet", "containers", "run", "--runtime", "local", "filterbank", "--split",
                                    data / "test", "--predictions", tmp_path / "p0", cwd=tmp_path, expect=2))
    assert "--train" in asked
    vsbench("--quiet", "containers", "run", "--runtime", "local", "filterbank", "--split", data / "test",
            "--predictions", tmp_path / "p", "--train", data / "train", cwd=tmp_path)
    assert len(list((tmp_path / "p" / "nucleus-fluorescence-ome-tiff").iterdir())) == 2
    line = _one_error_line(vsbench("containers", "run", "some-image", "--split", data / "test", "--predictions",
                                   tmp_path / "q", "--train", data / "train", cwd=tmp_path, expect=2))
    assert "--train" in line and "--runtime local" in line


def test_demo_help_names_the_site_it_writes(tmp_path):
    text = " ".join(vsbench("demo", "--help", cwd=tmp_path).stdout.split())
    assert "OUT/site/<task>/index.html" in text and "leaderboard" in text


def test_model_path_prints_the_committed_checkpoint_folder(tmp_path):
    from vsbench.algorithms.checkpoints import path

    for name, folder in (("vqgan-lmc-tiny", "vqgan-lmc-tiny"), ("adipocyte-patchgan-tiny", "patchgan-adipocyte-tiny"),
                         ("patchgan-adipocyte-tiny", "patchgan-adipocyte-tiny")):
        proc = vsbench("model", "path", name, cwd=tmp_path)
        assert proc.stdout == f"{path(folder)}\n" and proc.stderr == ""
        assert Path(proc.stdout.strip()).is_absolute() and Path(proc.stdout.strip()).name == folder
        assert any(Path(proc.stdout.strip()).rglob("checkpoint.pt"))
    line = _one_error_line(vsbench("model", "path", "vqgan", cwd=tmp_path, expect=2))
    assert "'vqgan'" in line and "vqgan-lmc-tiny" in line and "adipocyte-patchgan-tiny" in line


@pytest.mark.slow
def test_the_wheel_builds_without_warnings_and_ships_the_package_data(tmp_path):
    """``pip wheel`` of a copy of the source tree: no setuptools warning; templates, policies, checkpoints in."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("harness", "metrics", "algorithms", "leaderboard"):
        shutil.copytree(REPO / folder, src / folder, ignore=ignore)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w",
                           str(tmp_path / "whl"), str(src)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    warned = [line for line in (proc.stdout + proc.stderr).splitlines() if "warn" in line.lower()]
    assert warned == [], "\n".join(warned[:20])
    (wheel,) = (tmp_path / "whl").glob("vsbench-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("vsbench/leaderboard/templates/index.html", "vsbench/leaderboard/templates/entry.html",
                   "vsbench/leaderboard/templates/site.css", "vsbench/leaderboard/templates/site.js",
                   "vsbench/leaderboard/policies/default.yaml",
                   "vsbench/algorithms/checkpoints/vqgan-lmc-tiny/nucleus/checkpoint.pt",
                   "vsbench/algorithms/checkpoints/patchgan-adipocyte-tiny/checkpoint.pt",
                   "vsbench/harness/migrations/script.py.mako"):
        assert needed in names, needed
    meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
    assert "License-Expression: MIT" in zipfile.ZipFile(wheel).read(meta).decode()
