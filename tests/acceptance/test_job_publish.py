"""Job 3, publishing a leaderboard, exactly as the README shows it: five submissions (the input baseline among
them) run, ranked in the terminal and published as a static site for participants and one for organisers
(``--private``), which a real headless Chromium then checks page by page (README "The three jobs", block 3)."""

from __future__ import annotations

import json
import re

import pytest

from cli_support import vsbench
from readme_jobs import run_job

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ENTRIES = ("vqgan@tiny", "filterbank@1", "blurred@1", "inverted@1", "input@1")


def test_readme_job_3_publishes_a_site(tmp_path, browser):
    cmds, statuses, proc = run_job(3, tmp_path)
    assert statuses == [c.expect for c in cmds] == [0] * len(cmds)

    board = json.loads(vsbench("leaderboard", "show", "bench.yaml", "--json", cwd=tmp_path).stdout)
    ranked = {f"{r['submission']}@{r['version']}": r for r in board["rows"]}
    assert set(ranked) == set(ENTRIES)
    assert ranked["vqgan@tiny"]["rank"] < ranked["inverted@1"]["rank"]
    for row in ranked.values():  # a 95 % interval of 1000 case resamples around each entry's median rank
        assert 1 <= row["rank_lo"] <= row["median_rank"] <= row["rank_hi"] <= len(ENTRIES)
    assert board["bootstrap"]["n"] == 1000

    from site_checks import board_entries, leaks, legends, open_page, page_problems

    public, private = tmp_path / "site", tmp_path / "site-private"
    for site in (public, private):
        pages = [site / "index.html", *sorted((site / "entries").glob("*.html"))]
        assert len(pages) == 1 + len(ENTRIES)
        problems = {p.name: page_problems(browser, p, site) for p in pages}
        assert all(not v for v in problems.values()), problems
        assert leaks(site, [str(tmp_path)]) == []  # no local path in any page or export
        open_page(browser, site / "index.html")
        assert sorted(board_entries(browser)) == sorted(ENTRIES)
        assert all(sorted(legend) == sorted(ENTRIES) for legend in legends(browser))
        for label in ENTRIES:
            open_page(browser, site / "entries" / f"{label}.html")
            assert browser.find_element("tag name", "h1").text.strip() == label
            assert browser.execute_script("return document.querySelectorAll('table.cases tbody tr').length") > 0
            assert all({label, "input@1"} <= set(legend) for legend in legends(browser))  # against the baseline
    kinds = {site: {k for p in site.rglob("*.html") for k in re.findall(r'data-kind="(\w+)"', p.read_text())}
             for site in (public, private)}
    assert kinds[public] == {"input", "prediction"}  # the test split is hidden: no ground truth on the public site
    assert kinds[private] == {"input", "truth", "prediction", "difference"}
