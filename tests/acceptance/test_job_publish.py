"""Job 3, publishing a leaderboard, exactly as the README shows it: four submissions run, ranked in the
terminal and published as a static site, which a real headless Chromium then opens (README "The three jobs",
block 3)."""

from __future__ import annotations

import json

import pytest

from cli_support import vsbench
from readme_jobs import run_job

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ENTRIES = ("vqgan@tiny", "filterbank@1", "blurred@1", "inverted@1")


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

    index = tmp_path / "site" / "index.html"
    assert index.is_file()
    browser.get_log("browser")
    browser.get(index.as_uri())
    assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    text = browser.find_element("tag name", "body").text
    for label in ENTRIES:
        assert label in text, label
    broken = browser.execute_script(
        "return Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)")
    assert broken == []
    assert browser.execute_script("return document.images.length") >= 3
