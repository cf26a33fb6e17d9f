"""Bootstrap rank stability: paired case resamples, re-ranked with the board's own rule."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from test_ranking import lmc_table

from vsbench.leaderboard.data import COLUMNS
from vsbench.leaderboard.stability import SUMMARY_COLUMNS, bootstrap_ranks
from vsbench.metrics import higher_is_better


def random_table(n_subs=7, n_cases=50, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [{"submission": f"s{s}", "version": "1", "split": "test", "case": f"c{c:02d}", "group": g, "metric": m,
             "z_deviation": c % 6, "value": rng.normal(0.1 * s, 1.0), "higher_is_better": higher_is_better(m)}
            for s in range(n_subs) for c in range(n_cases) for g in ("nucleus", "mitochondria", "actin", "tubulin")
            for m in ("PCC", "SSIM", "MAE", "E_dist", "C_dist")]
    return pd.DataFrame(rows, columns=COLUMNS)


def test_same_seed_same_output_other_seed_other_draws():
    table = random_table(n_subs=4, n_cases=12)
    a = bootstrap_ranks(table, "lmc", n=50, seed=3)
    b = bootstrap_ranks(table, "lmc", n=50, seed=3)
    c = bootstrap_ranks(table, "lmc", n=50, seed=4)
    assert a.summary.equals(b.summary) and a.tau == b.tau
    assert np.array_equal(a.ranks["test"], b.ranks["test"]) and np.array_equal(a.draws["test"], b.draws["test"])
    assert not np.array_equal(a.draws["test"], c.draws["test"])
    assert list(a.summary.columns) == SUMMARY_COLUMNS and a.draws["test"].shape == (50, 12)
    dist = a.distribution("test")
    assert (dist.sum(axis=1) == 50).all()


def test_dominant_submission_is_stable_and_reported_rank_matches():
    # A beats B beats C on every case of every cell: every resample gives the same ranking
    data = {("nucleus", "PCC"): {"A": [.9, .8, .7], "B": [.6, .5, .4], "C": [.3, .2, .1]},
            ("nucleus", "MAE"): {"A": [.1, .2, .1], "B": [.3, .4, .3], "C": [.5, .6, .5]}}
    for policy in ("lmc", "mean-rank", "median-rank"):
        stab = bootstrap_ranks(lmc_table(data), policy, n=200, seed=0)
        s = stab.summary.set_index("submission")
        assert s["rank"].to_dict() == {"A": 1, "B": 2, "C": 3}
        assert s["rank_lo"].tolist() == s["rank_hi"].tolist() == [1, 2, 3]
        assert s.loc["A", "p_first"] == 1.0
        assert stab.tau["test"] == {"mean": 1.0, "lo": 1.0, "hi": 1.0}


def test_absolute_and_adipocyte_bootstrap():
    table = random_table(n_subs=3, n_cases=10)
    stab = bootstrap_ranks(table, "absolute", n=100, seed=1, metrics=["PCC"])
    assert set(stab.summary["submission"]) == {"s0", "s1", "s2"}
    assert ((stab.summary["rank_lo"] <= stab.summary["median_rank"])
            & (stab.summary["median_rank"] <= stab.summary["rank_hi"])).all()
    assert -1 <= stab.tau["test"]["lo"] <= stab.tau["test"]["mean"] <= stab.tau["test"]["hi"] <= 1
    adipo = random_table(n_subs=3, n_cases=10).assign(metric="mae", higher_is_better=False)
    adipo = adipo.drop_duplicates(["submission", "case"])
    assert len(bootstrap_ranks(adipo, "adipocyte", n=20).summary) == 3
    with pytest.raises(ValueError):
        bootstrap_ranks(table, "lmc", n=0)


def test_thousand_resamples_of_fifty_cases_and_seven_submissions_take_seconds():
    table = random_table()
    start = time.perf_counter()
    stab = bootstrap_ranks(table, "lmc", n=1000, seed=0)
    elapsed = time.perf_counter() - start
    assert stab.ranks["test"].shape == (1000, 7)
    assert elapsed < 5, elapsed
