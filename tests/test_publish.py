"""The published leaderboard site, opened in a real headless Chromium: no console errors, one row per submission
in the ranked order, every image loads, CSV/JSON exports match the board; a screenshot is kept as an artifact."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
import yaml

from vsbench.harness.benchmark import load_benchmark
from vsbench.harness.cli import main
from vsbench.harness.runner import run_benchmark
from vsbench.harness.store import ResultStore

from splitfactory import make_split

ARTIFACTS = Path(os.environ.get("VSBENCH_TEST_ARTIFACTS", Path(__file__).resolve().parents[1] / "test-artifacts"))


@pytest.fixture(scope="module")
def bench_file(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("publish")
    split = make_split(root / "split", seed=8)
    path = root / "bench.yaml"
    path.write_text(yaml.safe_dump({"name": "site", "task": "lmc", "workspace": "ws",
                                    "splits": [{"name": "test", "path": str(split)}],
                                    "submissions": [{"name": n, "version": "1", "solution": n}
                                                    for n in ("input", "inverted", "blurred")]}))
    bench = load_benchmark(path)
    with ResultStore(workspace=bench.workspace) as store:
        run_benchmark(bench, store, progress=False, log=lambda m: None)
    return path


@pytest.mark.browser
def test_the_site_opens_cleanly_in_chromium(bench_file, tmp_path, browser):
    site = tmp_path / "site"
    assert main(["--quiet", "leaderboard", "publish", str(bench_file), "--out", str(site), "--bootstrap", "200"]) == 0
    board = pd.read_csv(site / "split-test" / "board.csv")
    assert list(board["rank"]) == sorted(board["rank"]) and set(board["submission"]) == {"input", "inverted",
                                                                                           "blurred"}
    assert {"rank_95_low", "rank_95_high", "p_first"} <= set(board.columns)
    assert json.loads((site / "split-test" / "board.json").read_text())[0]["submission"] == board["submission"][0]
    assert len(json.loads((site / "split-test" / "provenance.json").read_text())) == 3

    browser.get_log("browser")  # drop anything logged before this page
    browser.get((site / "index.html").as_uri())
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], errors
    rows = browser.execute_script(
        "return Array.from(document.querySelectorAll('table.leaderboard tbody tr')).map(r => r.dataset.submission)")
    assert rows == list(board["submission"])  # one row per submission, in the ranked order
    broken = browser.execute_script(
        "return Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
    n_images = browser.execute_script("return document.images.length")
    # curves, blobs, input + three predictions (the split is hidden, so the public site shows no ground truth)
    assert broken == [] and n_images >= 2 + 1 + 3
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "leaderboard-site.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000


def test_show_and_publish_refuse_a_benchmark_with_no_scores(tmp_path, capsys):
    path = tmp_path / "b.yaml"
    path.write_text(yaml.safe_dump({"name": "empty", "task": "lmc", "workspace": "ws",
                                    "splits": [{"name": "test", "path": "nowhere"}],
                                    "submissions": [{"name": "input", "version": "1", "solution": "input"}]}))
    assert main(["--quiet", "leaderboard", "publish", str(path), "--out", str(tmp_path / "site")]) == 2
    assert "no results database at" in capsys.readouterr().err  # nothing stored yet: none is created either
    assert not (tmp_path / "ws").exists()
    from vsbench.harness.store import ResultStore

    ResultStore(workspace=tmp_path / "ws").close()  # a database, but no run of this benchmark in it
    for words in (["publish", str(path), "--out", str(tmp_path / "site")], ["show", str(path)]):
        assert main(["--quiet", "leaderboard", *words]) == 2
        assert "has no scored runs" in capsys.readouterr().err
