"""The published leaderboard site as a participant and an organiser read it, in a real headless Chromium at
1280 px (``vsbench leaderboard publish``, public by default and ``--private``), on a benchmark with every kind of
entry: ranked ones, two versions of one model, the ``input`` baseline, one that failed every case; on a hidden
split (``test``) and one whose ground truth is public (``val``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from cli_support import vsbench
from site_checks import board_entries, leaks, legends, open_page, page_problems

pytestmark = [pytest.mark.slow, pytest.mark.browser]

RANKED = ["input@1", "blurred@1", "model@v1", "model@v2"]
FAILED = "model@broken"


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("site")
    vsbench("data", "synth", "lmc", "data", "--fovs", "2", "--size", "64", "--seed", "3", cwd=root)
    vsbench("data", "synth", "lmc", "other", "--fovs", "2", "--size", "64", "--seed", "4", cwd=root)
    shutil.copytree(root / "data" / "train", root / "broken-train")
    victim = sorted((root / "broken-train" / "inputs").iterdir())[0]
    victim.write_bytes(victim.read_bytes()[:100])
    (root / "bench.yaml").write_text(yaml.safe_dump({
        "name": "site", "task": "lmc",
        "splits": [{"name": "test", "path": "data/test"}, {"name": "val", "path": "other/test", "hidden": False}],
        "submissions": [{"name": "input", "version": "1", "solution": "input"},
                        {"name": "blurred", "version": "1", "solution": "blurred"},
                        {"name": "model", "version": "v1", "solution": "filterbank", "train": "data/train"},
                        {"name": "model", "version": "v2", "solution": "inverted"},
                        {"name": "model", "version": "broken", "solution": "filterbank", "train": "broken-train"}]},
        sort_keys=False))
    vsbench("run", "bench.yaml", cwd=root, expect=1)  # model@broken fails
    return root / "bench.yaml"


def _publish(bench: Path, out: str, *mode: str) -> Path:
    proc = vsbench("leaderboard", "publish", bench.name, "--out", out, "--bootstrap", "200", *mode, cwd=bench.parent)
    assert f"({'private' if mode == ('--private',) else 'public'})" in proc.stdout
    return bench.parent / out


@pytest.fixture(scope="module")
def public_site(bench) -> Path:
    return _publish(bench, "public")


@pytest.fixture(scope="module")
def private_site(bench) -> Path:
    return _publish(bench, "private", "--private")


def _pages(site: Path) -> list[Path]:
    return [site / "index.html", *sorted((site / "entries").glob("*.html"))]


@pytest.mark.parametrize("mode", ["public", "private"])
def test_every_page_loads_fits_and_links(mode, public_site, private_site, browser, tmp_path):
    site = public_site if mode == "public" else private_site
    pages = _pages(site)
    assert len(pages) == 1 + len(RANKED) + 1  # the index and one page per entry, the failed one included
    problems = {p.name: page_problems(browser, p, site) for p in pages}
    assert all(not v for v in problems.values()), problems
    assert leaks(site, [str(site.parent), str(tmp_path.parent)]) == []


def test_the_board_lists_every_entry_in_every_plot_and_the_failed_one_below(public_site, browser):
    open_page(browser, public_site / "index.html")
    shown = board_entries(browser)
    assert sorted(shown) == sorted(RANKED * 2)  # two splits, each entry once per split; the failed one not ranked
    for legend in legends(browser):  # curves and rank stability of each split
        assert sorted(legend) == sorted(RANKED), legend
    assert len(legends(browser)) == 4
    unranked = browser.execute_script(
        "return Array.from(document.querySelectorAll('table.unranked tbody tr')).map(r => [r.dataset.entry, "
        "r.dataset.status, r.cells[3].textContent])")
    failed = [u for u in unranked if u[0] == FAILED]
    assert len(failed) == 2 and {u[1] for u in failed} == {"failed"}
    assert all("not a readable TIFF" in u[2] for u in failed), failed
    headers = browser.execute_script(
        "return Array.from(document.querySelectorAll('table.leaderboard thead th')).map(h => h.textContent)")
    for title in ("rank", "entry", "score ↓", "95 % rank interval", "P(rank 1)", "cases", "PCC ↑", "MAE ↓",
                  "SSIM ↑", "nucleus"):
        assert title in headers, (title, headers)
    assert not any("rank_95" in h or "p_first" in h for h in headers)


def test_clicking_a_header_sorts_the_board(public_site, browser):
    from selenium.webdriver.common.by import By

    open_page(browser, public_site / "index.html")
    table = browser.find_element(By.CSS_SELECTOR, "table.leaderboard")

    def column(i: int) -> list[str]:
        return [r.find_elements(By.TAG_NAME, "td")[i].get_attribute("data-sort")
                for r in table.find_elements(By.CSS_SELECTOR, "tbody tr")]

    ranked = [float(v) for v in column(0)]
    assert ranked == sorted(ranked)
    heads = table.find_elements(By.CSS_SELECTOR, "thead th[data-col]")
    pcc = next(h for h in heads if h.text.startswith("PCC"))
    col = int(pcc.get_attribute("data-col"))
    pcc.click()
    values = [float(v) for v in column(col)]
    assert values == sorted(values) and pcc.get_attribute("aria-sort") == "ascending"
    pcc.click()
    values = [float(v) for v in column(col)]
    assert values == sorted(values, reverse=True) and pcc.get_attribute("aria-sort") == "descending"
    entry = next(h for h in heads if h.text.startswith("entry"))
    entry.click()
    names = column(1)
    assert names == sorted(names)
    cases = browser.find_elements(By.CSS_SELECTOR, "table.cases")
    assert cases == []  # per-case tables are on the entry pages


def test_an_entry_page_has_its_cases_curves_worst_cases_and_provenance(public_site, private_site, browser):
    from selenium.webdriver.common.by import By

    for label in RANKED:
        page = public_site / "entries" / f"{label}.html"
        open_page(browser, page)
        assert browser.find_element(By.TAG_NAME, "h1").text.strip() == label
        curves = legends(browser)
        assert curves and all(label in legend for legend in curves)
        if label != "input@1":
            assert all("input@1" in legend for legend in curves)  # the baseline on every entry's curves
        rows = browser.execute_script("return document.querySelectorAll('table.cases tbody tr').length")
        assert rows > 0
        kinds = browser.execute_script(
            "return Array.from(document.querySelectorAll('h2')).map(h => [h.id, Array.from("
            "h.parentElement.querySelectorAll('figure[data-kind]')).map(f => f.dataset.kind)])")
        assert kinds
    # the per-case table sorts, and carries modality and z-deviation
    page = public_site / "entries" / "model@v1.html"
    open_page(browser, page)
    table = browser.find_element(By.CSS_SELECTOR, "table.cases")
    heads = {h.text.split(" ")[0]: h for h in table.find_elements(By.CSS_SELECTOR, "thead th")}
    assert {"case", "target", "modality", "z-deviation", "PCC"} <= set(heads)
    heads["z-deviation"].click()
    col = int(heads["z-deviation"].get_attribute("data-col"))
    z = [float(r.find_elements(By.TAG_NAME, "td")[col].get_attribute("data-sort"))
         for r in table.find_elements(By.CSS_SELECTOR, "tbody tr")]
    assert z == sorted(z) and len(set(z)) > 1
    links = {a.text: a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "dd a")}
    assert {"provenance.json", "metrics.json"} <= set(links)
    prov = json.loads((public_site / "entries" / "model@v1" / "test" / "provenance.json").read_text())
    assert prov["split_hash"] and prov["run_key"] and prov["evaluator"]
    metrics = json.loads((public_site / "entries" / "model@v1" / "test" / "metrics.json").read_text())
    assert len(metrics["results"]) == 12


def _panel_kinds(site: Path, label: str, split: str) -> list[str]:
    html = (site / "entries" / f"{label}.html").read_text()
    part = html.split(f'<h2 id="split-{split}">', 1)[1].split("<h2 ", 1)[0]
    import re

    return re.findall(r'data-kind="(\w+)"', part)


def test_the_public_site_shows_no_ground_truth_of_a_hidden_split_and_no_log(public_site, private_site):
    for label in ("model@v1", "blurred@1"):
        hidden, shown = _panel_kinds(public_site, label, "test"), _panel_kinds(public_site, label, "val")
        assert "prediction" in hidden and "input" in hidden
        assert "truth" not in hidden and "difference" not in hidden
        assert "truth" in shown and "difference" in shown  # val is not hidden
        private = _panel_kinds(private_site, label, "test")
        assert "truth" in private and "difference" in private
    truth_files = [p for p in (public_site / "entries").rglob("*") if p.parts[-2] == "test" and (
        "truth" in p.name or "difference" in p.name)]
    assert truth_files == []
    assert not list((public_site / "split-test").glob("*truth*"))
    assert list((private_site / "split-test").glob("*truth*"))
    index = (public_site / "index.html").read_text()
    assert 'data-kind="truth"' in index  # the val split's example, not the hidden one's
    assert index.count('data-kind="truth"') == 1

    failed_public = (public_site / "entries" / f"{FAILED}.html").read_text()
    failed_private = (private_site / "entries" / f"{FAILED}.html").read_text()
    assert 'class="log"' not in failed_public and "ImageReadError" not in failed_public
    assert "not a readable TIFF" in failed_public  # the harness's reason stays
    assert 'class="log"' in failed_private and "ImageReadError" in failed_private  # the stderr tail, escaped
    tail = failed_private.split('<pre class="log">', 1)[1].split("</pre>", 1)[0]
    assert len(tail.strip().splitlines()) > 3 and "\\n" not in tail  # one line of the log per line


def test_the_same_entry_has_the_same_colour_everywhere(public_site, browser):
    from selenium.webdriver.common.by import By

    open_page(browser, public_site / "index.html")
    swatches = {}
    for row in browser.find_elements(By.CSS_SELECTOR, "table.leaderboard tbody tr"):
        colour = row.find_element(By.CSS_SELECTOR, ".swatch").value_of_css_property("background-color")
        swatches.setdefault(row.get_attribute("data-entry"), set()).add(colour)
    assert all(len(c) == 1 for c in swatches.values()) and len({next(iter(c)) for c in swatches.values()}) == 4
    for label, colours in swatches.items():
        open_page(browser, public_site / "entries" / f"{label}.html")
        assert browser.find_element(By.CSS_SELECTOR, "h1 .swatch").value_of_css_property(
            "background-color") in colours


def test_a_partial_entry_is_flagged_on_the_board_and_listed_below_it(bench, tmp_path):
    """An entry scored on part of the split's cases (a case failed, the rest ranked) says so on the board and in
    the list below it, with the failed case's reason; its page lists that case."""
    from vsbench.harness.benchmark import load_benchmark
    from vsbench.harness.store import ResultStore
    from vsbench.leaderboard.publish import build_boards, publish_site

    spec = load_benchmark(bench)
    with ResultStore(workspace=spec.workspace, must_exist=True) as store:
        boards = build_boards(spec, store, "lmc", bootstrap=0)
    board = next(b for b in boards if b.split == "test")
    entry = next(e for e in board.entries if e.label == "blurred@1")
    cases = [dict(c) for c in entry.run["cases"]]
    cases[0].update(status="failed", reason="exit code 3: boom from the container", exit_code=3)
    entry.run = {**entry.run, "cases": cases, "n_succeeded": len(cases) - 1, "n_failed": 1}
    publish_site(tmp_path / "site", "t", "lmc", boards, spec.metric_set)
    html = (tmp_path / "site" / "index.html").read_text()
    row = html.split('data-entry="blurred@1"', 1)[1].split("</tr>", 1)[0]
    assert 'class="partial"' in row and f"11 of {len(cases)} (partial)" in row
    below = html.split('id="unranked-split-test"', 1)[1].split("</table>", 1)[0]
    assert 'data-entry="blurred@1" data-status="partial"' in below
    assert "ranked on 11 cases; failed: exit code 3 (log withheld)" in below  # public: not what it wrote
    page = (tmp_path / "site" / "entries" / "blurred@1.html").read_text()
    assert f"<td>{cases[0]['case']}</td>" in page and "exit code 3 (log withheld)" in page
    assert "boom from the container" not in html + page
