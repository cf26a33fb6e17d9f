"""Ranking policies on small boards computed by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vsbench.leaderboard.data import COLUMNS
from vsbench.leaderboard.ranking import (
    competition_ranks,
    rank,
    rank_absolute,
    rank_adipocyte,
    rank_lmc,
    rank_mean_position,
    rank_median_position,
)
from vsbench.metrics import higher_is_better

NAN = np.nan
Z = {"c1": 0, "c2": 0, "c3": 1}
# (group, metric): {submission: [c1, c2, c3]}; binary fractions so every mean is exact
LMC = {
    ("nucleus", "PCC"): {"A": [.75, .25, .5], "B": [.5, .5, .625], "C": [.25, .25, .875]},
    ("nucleus", "MAE"): {"A": [.125, .375, .25], "B": [.25, .25, .125], "C": [.5, .5, .375]},
    ("actin", "PCC"): {"A": [.5, .5, .5], "B": [.25, .25, .25], "C": [.75, .75, NAN]},
}


def lmc_table(data=LMC, split="test") -> pd.DataFrame:
    rows = [{"submission": s, "version": "1", "split": split, "case": c, "group": g, "metric": m,
             "z_deviation": Z[c], "value": v, "higher_is_better": higher_is_better(m)}
            for (g, m), subs in data.items() for s, vals in subs.items() for c, v in zip(Z, vals, strict=True)]
    return pd.DataFrame(rows, columns=COLUMNS)


def ranks_of(board) -> dict:
    return dict(zip(board.table["submission"], board.table["rank"], strict=True))


def scores_of(board) -> dict:
    return dict(zip(board.table["submission"], board.table["score"], strict=True))


def test_competition_ranks_ties_direction_nan_and_rounding():
    assert competition_ranks([3, 1, 3, 2]).tolist() == [1, 4, 1, 3]
    assert competition_ranks([3, 1, 3, 2], higher_is_better=False).tolist() == [3, 1, 3, 2]
    assert competition_ranks([NAN, 1, NAN, 2]).tolist() == [3, 2, 3, 1]  # NaN last, shared
    assert np.isnan(competition_ranks([NAN, NAN])).all()
    values = [0.12341, 0.12344, 0.2]
    assert competition_ranks(values).tolist() == [3, 2, 1]  # exact equality: no tie
    assert competition_ranks(values, decimals=4).tolist() == [2, 2, 1]  # 0.1234 == 0.1234
    assert competition_ranks([[1, 2], [2, 1]], axis=0).tolist() == [[2, 1], [1, 2]]


def test_lmc_cell_rule_by_hand():
    # cells (organelle, metric, z): cell value = mean over the cell's cases (z0: c1, c2; z1: c3)
    #   nucleus PCC z0  A .5  B .5  C .25  -> 1 1 3     nucleus PCC z1  A .5  B .625 C .875 -> 3 2 1
    #   nucleus MAE z0  A .25 B .25 C .5   -> 1 1 3     nucleus MAE z1  A .25 B .125 C .375 -> 2 1 3 (lower better)
    #   actin PCC z0    A .5  B .25 C .75  -> 2 3 1     actin PCC z1    A .5  B .25  C NaN  -> 1 2 3 (NaN last)
    board = rank_lmc(lmc_table())
    assert scores_of(board) == pytest.approx({"A": 10 / 6, "B": 10 / 6, "C": 14 / 6})
    assert ranks_of(board) == {"A": 1, "B": 1, "C": 3}
    assert board.table["n_cases"].tolist() == [3, 3, 3]
    assert board.direction == "lower is better" and "share a rank" in board.ties
    assert rank(lmc_table(), "lmc").table.equals(board.table)


def test_mean_and_median_position_and_metric_direction():
    # case means over all groups: PCC A .5, B 2.375/6, C 2.875/5 (NaN skipped) -> C 1, A 2, B 3
    #                             MAE A .25, B .625/3, C 1.375/3 (lower better)  -> B 1, A 2, C 3
    board = rank_mean_position(lmc_table())
    assert scores_of(board) == {"A": 2.0, "B": 2.0, "C": 2.0} and ranks_of(board) == {"A": 1, "B": 1, "C": 1}
    assert ranks_of(rank_median_position(lmc_table())) == {"A": 1, "B": 1, "C": 1}
    only_mae = rank(lmc_table(), "mean-rank", metrics=["MAE"])
    assert ranks_of(only_mae) == {"B": 1, "A": 2, "C": 3}
    # flipping MAE's direction would flip its ranking: direction is per metric
    flipped = lmc_table().assign(higher_is_better=True)
    assert ranks_of(rank(flipped, "mean-rank", metrics=["MAE"])) == {"C": 1, "A": 2, "B": 3}


def test_median_differs_from_mean():
    data = {("g", "PCC"): {"A": [1, 1, 1], "B": [.5, .5, .5], "C": [0, 0, 0]},
            ("g", "SSIM"): {"A": [1, 1, 1], "B": [.5, .5, .5], "C": [0, 0, 0]},
            ("g", "MAE"): {"A": [1, 1, 1], "B": [.5, .5, .5], "C": [0, 0, 0]}}
    # ranks A: 1 1 3, B: 2 2 2, C: 3 3 1 -> mean A 5/3 B 2 C 7/3; median A 1 B 2 C 3
    assert scores_of(rank(lmc_table(data), "mean-rank")) == pytest.approx({"A": 5 / 3, "B": 2, "C": 7 / 3})
    median = rank(lmc_table(data), "median-rank")
    assert scores_of(median) == {"A": 1, "B": 2, "C": 3} and ranks_of(median) == {"A": 1, "B": 2, "C": 3}


def test_absolute_with_group_rounding_and_nan():
    assert ranks_of(rank_absolute(lmc_table(), "PCC")) == {"C": 1, "A": 2, "B": 3}
    nucleus = rank_absolute(lmc_table(), "PCC", group="nucleus")  # A .5, B 1.625/3, C 1.375/3
    assert ranks_of(nucleus) == {"B": 1, "A": 2, "C": 3}
    data = {("g", "PCC"): {"A": [.12341] * 3, "B": [.12344] * 3, "C": [.2] * 3, "D": [NAN] * 3}}
    assert ranks_of(rank(lmc_table(data), "absolute")) == {"C": 1, "B": 2, "A": 3, "D": 4}
    rounded = rank(lmc_table(data), "absolute", decimals=4)
    assert ranks_of(rounded) == {"C": 1, "A": 2, "B": 2, "D": 4}
    assert "rounding to 4 decimals" in rounded.ties
    assert rounded.table.set_index("submission").loc["D", "n_cases"] == 0
    with pytest.raises(ValueError, match="ranks one metric"):
        rank(lmc_table(), "absolute")
    with pytest.raises(ValueError, match="unknown ranking policy"):
        rank(lmc_table(), "best")


def adipocyte_table(per_case: dict, metrics=("mae",)) -> pd.DataFrame:
    rows = [{"submission": s, "version": "1", "split": "test", "case": f"{g}-{i}", "group": g, "metric": m,
             "z_deviation": 0, "value": v[m] if isinstance(v, dict) else v, "higher_is_better": False}
            for s, groups in per_case.items() for g, vals in groups.items() for i, v in enumerate(vals)
            for m in metrics]
    return pd.DataFrame(rows, columns=COLUMNS)


def test_adipocyte_weighted_over_magnifications():
    # X: MAE_20x = .3 (2 sets), MAE_40x = .6 (1 set) -> (2*.3 + .6)/3 = .4 (not (.3 + .6)/2 = .45)
    # Y: MAE_20x = .5, MAE_40x = .25 -> (1 + .25)/3
    table = adipocyte_table({"X": {"20x": [.2, .4], "40x": [.6]}, "Y": {"20x": [.5, .5], "40x": [.25]}})
    board = rank_adipocyte(table)
    assert scores_of(board) == pytest.approx({"X": .4, "Y": 1.25 / 3})
    assert ranks_of(board) == {"X": 1, "Y": 2} and board.direction == "lower is better"
    # without the combined column: per-set mean of pixel and feature MAE
    parts = adipocyte_table({"X": {"20x": [{"pixel_mae": .25, "feature_mae": .75}]},
                             "Y": {"20x": [{"pixel_mae": .5, "feature_mae": .25}]}}, ("pixel_mae", "feature_mae"))
    assert scores_of(rank(parts, "adipocyte")) == pytest.approx({"X": .5, "Y": .375})


def test_splits_are_ranked_separately():
    table = pd.concat([lmc_table(split="a"), lmc_table(split="b")], ignore_index=True)
    board = rank(table, "lmc")
    assert board.table.groupby("split")["rank"].apply(list).to_dict() == {"a": [1, 1, 3], "b": [1, 1, 3]}
    assert board.to_dict()["rows"][0]["split"] == "a"


def _show(argv, capsys):
    import argparse

    from vsbench.harness.cli_leaderboard import add_leaderboard

    parser = argparse.ArgumentParser(prog="vsbench")
    add_leaderboard(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["leaderboard", "show", *argv])
    rc = args.func(args)
    return rc, capsys.readouterr()


def test_leaderboard_show_on_a_stored_benchmark(tmp_path, capsys):
    import json

    import yaml

    from vsbench.harness.benchmark import load_benchmark
    from vsbench.harness.runner import run_benchmark
    from vsbench.harness.store import ResultStore, StoreError

    from splitfactory import make_split

    split = make_split(tmp_path / "split", seed=4)
    path = tmp_path / "b.yaml"
    path.write_text(yaml.safe_dump({"name": "board", "task": "lmc", "workspace": str(tmp_path / "ws"),
                                    "splits": [{"name": "test", "path": str(split)}],
                                    "submissions": [{"name": n, "version": "1", "solution": n}
                                                    for n in ("input", "inverted", "blurred")]}))
    bench = load_benchmark(path)
    with pytest.raises(StoreError, match="no results database at .*results.db"):  # read commands create none
        _show([str(path)], capsys)
    with ResultStore(workspace=bench.workspace) as store:
        with pytest.raises(ValueError, match="has no scored runs"):  # main prints it as 'vsbench: error: ...'
            _show([str(path)], capsys)
        run_benchmark(bench, store, progress=False, log=lambda m: None)
    rc, out = _show([str(path), "--json", "--bootstrap", "50", "--decimals", "4"], capsys)
    assert rc == 0, out.err
    doc = json.loads(out.out)
    assert doc["policy"] == "lmc" and doc["bootstrap"]["n"] == 50  # no ranking in the file: the task's rule
    assert sorted(r["submission"] for r in doc["rows"]) == ["blurred", "input", "inverted"]
    assert [r["rank"] for r in doc["rows"]] == sorted(r["rank"] for r in doc["rows"])
    assert all(r["n_cases"] == 7 and r["rank_lo"] <= r["rank_hi"] for r in doc["rows"])
    assert "rounding to 4 decimals" in doc["ties"]
    rc, out = _show([str(path), "--policy", "mean-rank", "--bootstrap", "20"], capsys)
    assert rc == 0 and "policy: mean-rank" in out.out and "ties:" in out.out and "inverted" in out.out


def test_the_cli_lists_the_same_policies():
    from vsbench.harness import cli_leaderboard
    from vsbench.leaderboard import ranking

    assert tuple(cli_leaderboard.POLICIES) == tuple(ranking.POLICIES)
