"""Leaderboard inputs: the latest score of every scored run of a benchmark, as one per-case table."""

from __future__ import annotations

import pytest
import yaml

from vsbench.harness.benchmark import load_benchmark
from vsbench.harness.runner import run_benchmark
from vsbench.harness.store import ResultStore
from vsbench.leaderboard.data import COLUMNS, board_entries, case_table

from splitfactory import make_split


def test_entries_and_case_table_of_a_stored_benchmark(tmp_path):
    split = make_split(tmp_path / "split", seed=4)
    path = tmp_path / "b.yaml"
    path.write_text(yaml.safe_dump({"name": "board", "task": "lmc", "workspace": "ws",
                                    "splits": [{"name": "test", "path": str(split)}],
                                    "submissions": [{"name": n, "version": "1", "solution": n}
                                                    for n in ("input", "inverted")]}))
    bench = load_benchmark(path)
    with ResultStore(workspace=bench.workspace) as store:
        with pytest.raises(ValueError, match="has no scored runs"):
            board_entries(store, "board")
        run_benchmark(bench, store, progress=False, log=lambda m: None)
        entries = board_entries(store, "board")
        assert [e.submission for e in entries] == ["input", "inverted"]
        table = case_table(entries)
    assert list(table.columns) == COLUMNS
    assert set(table["submission"]) == {"input", "inverted"} and table["case"].nunique() == 7
    pcc = table[(table.metric == "PCC") & (table.group == "nucleus")].pivot(index="case", columns="submission",
                                                                           values="value")
    assert ((pcc["input"] + pcc["inverted"]).abs() < 1e-6).all()  # inverting the input flips the correlation
    assert not table.loc[table.metric == "MAE", "higher_is_better"].any()
    assert table.loc[table.metric == "SSIM", "higher_is_better"].all()
