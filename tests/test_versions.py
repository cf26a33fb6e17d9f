"""Two versions of one model (issue 15, defects 2 and 3): a submission is (name, version).

A benchmark lists ``model`` at ``v1`` and ``v2`` (two in-process solutions) plus a third entry; ``vsbench run``
keeps the versions apart (run keys, workspace folders, result rows), ``vsbench compare`` takes ``NAME@VERSION``
selectors (with ``--benchmark`` / ``--split`` where a store holds several), and the published site labels every
entry ``name@version`` with one colour per entry in every figure (and in the demo's z-deviation plot).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from matplotlib.colors import to_hex

from vsbench.harness.benchmark import BenchmarkError, parse_benchmark
from vsbench.harness.cli import main

from cli_support import vsbench

ARTIFACTS = Path(os.environ.get("VSBENCH_TEST_ARTIFACTS", Path(__file__).resolve().parents[1] / "test-artifacts"))
LABELS = {"model@v1", "model@v2", "input@1"}

BENCH = """\
name: bench
task: lmc
splits: [{name: test, path: data/test}]
submissions:
  - {name: model, version: v1, solution: blurred}
  - {name: model, version: v2, solution: inverted}
  - {name: input, version: "1", solution: input}
"""

# a second benchmark in the same workspace, on two splits: model@v1 is then in two benchmarks and on two splits
TWO_SPLITS = """\
name: twosplits
task: lmc
splits: [{name: test, path: data/test}, {name: train, path: data/train}]
submissions:
  - {name: model, version: v1, solution: blurred}
  - {name: model, version: v2, solution: inverted}
"""


def _doc(*subs: dict) -> dict:
    return {"name": "b", "task": "lmc", "splits": [{"name": "test", "path": "t"}], "submissions": list(subs)}


def test_one_name_at_two_versions_is_two_submissions():
    bench = parse_benchmark(_doc({"name": "model", "version": "v1", "solution": "blurred"},
                                 {"name": "model", "version": "v2", "solution": "inverted"}))
    assert [(s.name, s.version) for s in bench.submissions] == [("model", "v1"), ("model", "v2")]
    with pytest.raises(BenchmarkError, match=r"^benchmark: submissions: duplicate name 'model' at version 'v1'"):
        parse_benchmark(_doc({"name": "model", "version": "v1", "solution": "blurred"},
                             {"name": "model", "version": "v1", "solution": "inverted"}))


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    """A folder whose workspace holds ``bench`` (model@v1, model@v2, input@1 on test) and ``twosplits``."""
    root = tmp_path_factory.mktemp("versions")
    vsbench("--quiet", "data", "synth", "lmc", "data", "--fovs", "2", "--size", "64", "--seed", "0", cwd=root)
    (root / "bench.yaml").write_text(BENCH)
    (root / "twosplits.yaml").write_text(TWO_SPLITS)
    vsbench("--quiet", "run", "bench.yaml", cwd=root)
    vsbench("--quiet", "run", "twosplits.yaml", cwd=root)
    return root


def _runs(root: Path, benchmark: str) -> dict[tuple[str, str, str], dict]:
    runs = json.loads(vsbench("results", "list", "--benchmark", benchmark, "--json", cwd=root).stdout)
    return {(r["submission"], r["submission_version"], r["split_name"]): r for r in runs}


@pytest.mark.slow
def test_versions_are_kept_apart_in_runs(ws):
    runs = _runs(ws, "bench")
    assert set(runs) == {("model", "v1", "test"), ("model", "v2", "test"), ("input", "1", "test")}
    v1, v2 = runs[("model", "v1", "test")], runs[("model", "v2", "test")]
    assert v1["run_key"] != v2["run_key"] and v1["predictions_path"] != v2["predictions_path"]
    assert v1["image_ref"] == "blurred" and v2["image_ref"] == "inverted"
    assert all(r["status"] == "complete" and r["score_keys"] for r in runs.values())
    listed = vsbench("results", "list", "--benchmark", "bench", cwd=ws).stdout
    assert "model@v1" in listed and "model@v2" in listed


@pytest.mark.slow
def test_results_show_takes_the_selectors_results_list_shows(ws):
    runs = _runs(ws, "bench")
    v2 = runs[("model", "v2", "test")]
    shown = json.loads(vsbench("results", "show", "model@v2", "--benchmark", "bench", "--json", cwd=ws).stdout)
    assert shown["run_key"] == v2["run_key"] and shown["submission_version"] == "v2"
    by_key = json.loads(vsbench("results", "show", v2["run_key"][:10], "--json", cwd=ws).stdout)
    assert by_key["run_key"] == v2["run_key"]
    text = vsbench("results", "show", "input@1", cwd=ws).stdout  # input@1 is stored once: no scope needed
    assert runs[("input", "1", "test")]["run_key"] in text
    # model@v1 is in two benchmarks and, in twosplits, on two splits: the error lists them and what narrows it
    err = _error(vsbench("results", "show", "model@v1", cwd=ws, expect=2))
    assert "ambiguous" in err and "--benchmark" in err and f"({runs[('model', 'v1', 'test')]['run_key'][:12]})" in err
    err = _error(vsbench("results", "show", "model@v1", "--benchmark", "twosplits", cwd=ws, expect=2))
    assert "--split" in err
    vsbench("results", "show", "model@v1", "--benchmark", "twosplits", "--split", "train", cwd=ws)
    assert "'model@v9'" in _error(vsbench("results", "show", "model@v9", "--benchmark", "bench", cwd=ws, expect=2))


@pytest.mark.slow
def test_compare_takes_name_at_version(ws):
    runs = _runs(ws, "bench")
    proc = vsbench("compare", "model@v1", "model@v2", "--benchmark", "bench", "--json", cwd=ws, expect=None)
    assert proc.returncode in (0, 1), proc.stderr
    doc = json.loads(proc.stdout)
    assert (doc["baseline"]["submission"], doc["baseline"]["version"]) == ("model", "v1")
    assert (doc["candidate"]["submission"], doc["candidate"]["version"]) == ("model", "v2")
    assert doc["baseline"]["run_key"] == runs[("model", "v1", "test")]["run_key"]
    assert doc["candidate"]["run_key"] == runs[("model", "v2", "test")]["run_key"]
    assert "model@v2" in proc.stderr and "model@v1" in proc.stderr  # the verdict names both
    # a run-key prefix and a metrics.json path still work, mixed with a selector
    prefix = runs[("model", "v1", "test")]["run_key"][:10]
    same = vsbench("compare", prefix, "model@v1", "--benchmark", "bench", cwd=ws)
    assert same.stdout.startswith("OK:") and "model@v1" in same.stdout
    metrics = json.loads(vsbench("results", "show", prefix, "--json", cwd=ws).stdout)["scores"][0]["metrics_path"]
    vsbench("compare", metrics, "model@v1", "--benchmark", "bench", cwd=ws)
    # --split picks one of a benchmark's splits
    two = _runs(ws, "twosplits")
    proc = vsbench("compare", "model@v1", "model@v2", "--benchmark", "twosplits", "--split", "train", "--json",
                   cwd=ws, expect=None)
    assert proc.returncode in (0, 1), proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["baseline"]["run_key"] == two[("model", "v1", "train")]["run_key"]
    assert doc["candidate"]["run_key"] == two[("model", "v2", "train")]["run_key"]


def _error(proc) -> str:
    err = proc.stderr.strip()
    assert err.startswith("vsbench: error: ") and "\n" not in err and "Traceback" not in err, err
    return err


@pytest.mark.slow
def test_ambiguous_and_unknown_selectors_list_the_candidates(ws, capsys):
    runs = {(bench, *k): r for bench in ("bench", "twosplits") for k, r in _runs(ws, bench).items()}
    # model@v1 is in two benchmarks: --benchmark narrows it; the candidates name theirs
    err = _error(vsbench("compare", "model@v1", "model@v2", cwd=ws, expect=2))
    assert "ambiguous" in err and "--benchmark" in err
    for bench, split in (("bench", "test"), ("twosplits", "test"), ("twosplits", "train")):
        key = runs[(bench, "model", "v1", split)]["run_key"][:12]
        assert f"model@v1 on {split} in {bench} ({key})" in err, err

    def compare(*args: str, expect: int = 2) -> str:  # the same CLI in-process (the subprocess start is slow)
        code = main(["--quiet", "compare", *args, "--workspace", str(ws / ".vsbench")])
        out, err = capsys.readouterr()
        assert code == expect, (out, err)
        return out if expect != 2 else _error(SimpleNamespace(stderr=err))

    # twosplits has two splits: --split narrows it
    err = compare("model@v1", "model@v2", "--benchmark", "twosplits")
    assert "ambiguous" in err and "--split" in err
    for split in ("test", "train"):
        assert f"model@v1 on {split} ({runs[('twosplits', 'model', 'v1', split)]['run_key'][:12]})" in err, err
    # an unknown version: the versions of that name are the candidates
    err = compare("model@v3", "model@v2", "--benchmark", "bench")
    assert "'model@v3'" in err and "model@v1 on test (" in err and "model@v2 on test (" in err, err
    assert "input@1" not in err
    # a bare name that has two versions is ambiguous; one with one version is enough
    err = compare("model", "input", "--benchmark", "bench")
    assert "'model'" in err and "model@v1 on test (" in err and "model@v2 on test (" in err, err
    assert compare("input", "input@1", "--benchmark", "bench", expect=0).startswith("OK:")
    # unknown benchmark or split: the known ones
    err = compare("model@v1", "model@v2", "--benchmark", "nope")
    assert "'nope'" in err and "bench" in err and "twosplits" in err, err
    err = compare("model@v1", "model@v2", "--benchmark", "bench", "--split", "train")
    assert "'train'" in err and "test" in err, err
    # another benchmark's entry is not found through --benchmark
    err = compare("model@v1", "input@1", "--benchmark", "twosplits", "--split", "test")
    assert "'input@1'" in err and "model@v1 on test (" in err, err


def test_compare_help_describes_the_selectors(tmp_path):
    out = vsbench("compare", "--help", cwd=tmp_path).stdout
    assert "NAME@VERSION" in out and "model@v1" in out and "--benchmark" in out and "--split" in out
    assert "run key" in out and "metrics.json" in out


# ------------------------------------------------------------------------------------------------ the site

@pytest.fixture(scope="module")
def site(ws) -> Path:
    out = vsbench("--quiet", "leaderboard", "publish", "bench.yaml", "--out", "site", "--bootstrap", "50", cwd=ws)
    assert "3 entries" in out.stdout
    return ws / "site"


@pytest.mark.slow
def test_site_exports_and_tables_hold_both_versions(site):
    board = pd.read_csv(site / "split-test" / "board.csv", dtype=str)
    assert set(board["entry"]) == LABELS and len(board) == 3
    assert set(zip(board["submission"], board["version"], strict=True)) == {("model", "v1"), ("model", "v2"),
                                                                             ("input", "1")}
    assert {r["entry"] for r in json.loads((site / "split-test" / "board.json").read_text())} == LABELS
    assert set(pd.read_csv(site / "leaderboard.csv", dtype=str)["entry"]) == LABELS
    assert {r["entry"] for r in json.loads((site / "leaderboard.json").read_text())} == LABELS
    assert {p["entry"] for p in json.loads((site / "split-test" / "provenance.json").read_text())} == LABELS
    cases = pd.read_csv(site / "split-test" / "cases.csv", dtype=str)
    assert set(zip(cases["submission"], cases["version"], strict=True)) == {("model", "v1"), ("model", "v2"),
                                                                             ("input", "1")}
    html = (site / "index.html").read_text()
    for label in LABELS:
        assert html.count(f'data-entry="{label}"') == 1  # one board row each
        assert f"{label} (prediction)" in html  # its example panel
        assert f'">{label}</a></td><td><code>' in html  # its provenance row, linking to its page


@pytest.mark.slow
def test_site_figures_label_and_colour_each_entry(ws):
    """Every figure of the page labels the entries name@version and draws each in its one colour."""
    import matplotlib.pyplot as plt

    from vsbench.harness.benchmark import load_benchmark
    from vsbench.harness.store import ResultStore
    from vsbench.leaderboard.publish import build_boards, site_styles, split_figures

    bench = load_benchmark(ws / "bench.yaml")
    with ResultStore(workspace=bench.workspace) as store:
        boards = build_boards(bench, store, "lmc", bootstrap=50)
    styles = site_styles(boards)
    assert set(styles) == LABELS
    colours = {label: to_hex(s["color"]) for label, s in styles.items()}
    assert len(set(colours.values())) == 3  # one colour per entry
    figs = split_figures("lmc", boards[0], bench.metric_set, styles)
    assert set(figs) == {"z_deviation", "rank_stability"}
    try:
        curves = figs["z_deviation"]
        lines = [line for ax in curves.axes for line in ax.get_lines()]
        assert {line.get_label() for line in lines} == LABELS
        for line in lines:  # every panel: the entry's own colour, never merged (one line per entry per panel)
            assert to_hex(line.get_color()) == colours[line.get_label()]
        for ax in curves.axes:
            labels = [line.get_label() for line in ax.get_lines()]
            assert len(labels) == len(set(labels))
        legend = [t.get_text() for t in curves.legends[0].get_texts()]
        assert sorted(legend) == sorted(LABELS)
        blobs = figs["rank_stability"]
        ax = blobs.axes[0]
        assert [t.get_text() for t in ax.get_xticklabels()] == list(boards[0].board["entry"])
        drawn = {c.get_label(): c for c in ax.collections if c.get_label() in LABELS}
        assert set(drawn) == LABELS
        for label, coll in drawn.items():
            assert {to_hex(c) for c in coll.get_facecolor()} == {colours[label]}
            # all of an entry's blobs sit at its own x
            x = list(boards[0].board["entry"]).index(label)
            assert set(coll.get_offsets()[:, 0]) == {x}
    finally:
        for fig in figs.values():
            plt.close(fig)


def test_tradeoff_and_demo_plot_use_the_site_colours():
    """The adipocyte trade-off plot and the demo's z_deviation.png colour an entry as the site does."""
    import matplotlib.pyplot as plt

    from vsbench.harness.plots import z_deviation_figure
    from vsbench.leaderboard.figures import entry_styles
    from vsbench.leaderboard.publish import SplitBoard, split_figures

    labels = ["model@v1", "model@v2", "ridge@1"]
    styles = entry_styles(labels)
    assert entry_styles(list(reversed(labels))) == styles  # the order given does not matter
    rows = [{"submission": s, "version": v, "split": "test", "case": c, "group": "20x", "metric": m,
             "z_deviation": None, "value": val, "higher_is_better": False}
            for s, v, base in (("model", "v1", 1.0), ("model", "v2", 2.0), ("ridge", "1", 3.0))
            for c in ("a", "b") for m, val in (("pixel_mae", base), ("feature_mae", base + 0.5))]
    board = pd.DataFrame({"rank": [1, 2, 3], "entry": labels, "submission": ["model", "model", "ridge"],
                          "version": ["v1", "v2", "1"], "score": [1.0, 2.0, 3.0]})
    split = SplitBoard("test", board, "", "", pd.DataFrame(rows), [])
    figs = split_figures("adipocyte", split, ["pixel_mae", "feature_mae"], styles)
    try:
        ax = figs["tradeoff"].axes[0]
        points = {c.get_label(): c for c in ax.collections}
        assert set(points) == set(labels)
        for label, coll in points.items():
            assert to_hex(coll.get_facecolor()[0]) == to_hex(styles[label]["color"])
        assert points["model@v2"].get_offsets()[0].tolist() == [2.0, 2.5]  # the versions are not averaged
        assert sorted(t.get_text() for t in ax.get_legend().get_texts()) == sorted(labels)
    finally:
        for fig in figs.values():
            plt.close(fig)
    # the demo's plot: tidy tables per entry label, coloured by the same rule
    tidy = pd.DataFrame({"organelle": ["nucleus"] * 4, "metric": ["PCC", "PCC", "SSIM", "SSIM"],
                         "z_deviation": [0, 1, 0, 1], "value": [0.5, 0.4, 0.3, 0.2]})
    fig = z_deviation_figure({label: tidy.assign(value=tidy["value"] + i) for i, label in enumerate(labels)})
    try:
        lines = [line for ax in fig.axes for line in ax.get_lines()]
        assert {line.get_label() for line in lines} == set(labels)
        for line in lines:
            assert to_hex(line.get_color()) == to_hex(styles[line.get_label()]["color"])
    finally:
        plt.close(fig)


@pytest.mark.slow
@pytest.mark.browser
def test_the_page_shows_both_versions(site, browser):
    from matplotlib.colors import to_rgb
    from selenium.webdriver.common.by import By

    from vsbench.leaderboard.figures import entry_styles

    browser.get_log("browser")
    browser.get((site / "index.html").as_uri())
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
    rows = browser.find_elements(By.CSS_SELECTOR, "table.leaderboard tbody tr")
    assert sorted(r.get_attribute("data-entry") for r in rows) == sorted(LABELS)
    shown = {r.get_attribute("data-entry"): r for r in rows}
    for label in LABELS:
        assert shown[label].is_displayed() and label in shown[label].text
    captions = [c.text for c in browser.find_elements(By.CSS_SELECTOR, ".panels figcaption") if c.is_displayed()]
    assert {"model@v1 (prediction)", "model@v2 (prediction)", "input@1 (prediction)"} <= set(captions)
    swatches = {r.get_attribute("data-entry"): r.find_element(By.CSS_SELECTOR, ".swatch").value_of_css_property(
        "background-color") for r in rows}
    for label, style in entry_styles(LABELS).items():  # the table's colour key is the figures' colour
        rgb = tuple(round(255 * x) for x in to_rgb(style["color"]))
        assert swatches[label].replace(" ", "") in (f"rgba({rgb[0]},{rgb[1]},{rgb[2]},1)", f"rgb{rgb}".replace(" ", ""))
    assert len(set(swatches.values())) == 3
    broken = browser.execute_script(
        "return Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
    assert broken == []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "leaderboard-versions.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000


@pytest.mark.slow
def test_a_name_at_version_run_again_as_another_model_is_one_board_entry_the_newest(tmp_path):
    """The same name@version run twice as different models (an image rebuilt under the same version): two stored
    runs, one board row, the newer run's; never an average of the two."""
    vsbench("data", "synth", "lmc", "data", "--fovs", "2", "--size", "64", "--seed", "0", cwd=tmp_path)
    bench = tmp_path / "bench.yaml"
    for solution in ("blurred", "inverted"):
        bench.write_text(f"name: b\ntask: lmc\nsplits: [{{name: test, path: data/test}}]\n"
                         f"submissions:\n  - {{name: m, version: '1', solution: {solution}}}\n"
                         f"  - {{name: input, version: '1', solution: input}}\n")
        vsbench("run", "bench.yaml", "--quiet", cwd=tmp_path)
    runs = json.loads(vsbench("results", "list", "--json", cwd=tmp_path).stdout)
    assert sorted(r["submission"] for r in runs) == ["input", "m", "m"]
    newest = next(r for r in runs if r["submission"] == "m")  # results list: newest first
    board = json.loads(vsbench("leaderboard", "show", "bench.yaml", "--json", "--bootstrap", "0",
                               cwd=tmp_path).stdout)
    rows = [r for r in board["rows"] if r["submission"] == "m"]
    assert len(rows) == 1 and rows[0]["n_cases"] == 12
    from vsbench.harness.store import ResultStore
    from vsbench.leaderboard.data import board_entries

    with ResultStore(workspace=tmp_path / ".vsbench") as store:
        entries = [e for e in board_entries(store, "b") if e.submission == "m"]
    assert [e.run_key for e in entries] == [newest["run_key"]]
