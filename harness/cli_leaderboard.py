"""``vsbench leaderboard show BENCH.yaml``: the ranked board of a benchmark, with bootstrap rank intervals."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# vsbench.leaderboard.ranking.POLICIES, listed here so that building the parser imports no pandas (the solution
# images' runtime has none; tests/test_ranking.py checks the two lists agree)
POLICIES = ("mean-rank", "median-rank", "absolute", "lmc", "adipocyte")

TASK_POLICY = {"lmc": "lmc", "adipocyte": "adipocyte"}


def add_leaderboard(sub: argparse._SubParsersAction) -> None:
    """Add ``leaderboard show`` and ``leaderboard publish`` to the top-level subparsers."""
    board = sub.add_parser("leaderboard", help="rank the stored scores of a benchmark",
                           description="Rank the stored scores of a benchmark file.")
    actions = board.add_subparsers(dest="leaderboard_command", metavar="ACTION", required=True)
    show = actions.add_parser(
        "show", help="the ranked board, with 95%% bootstrap rank intervals",
        description="Rank every submission of a benchmark on each split with a ranking policy (default: the "
        "benchmark file's ranking.policy when it sets one, else the task's own rule: lmc or adipocyte), and "
        "bootstrap the cases to show how stable each rank is.")
    show.add_argument("benchmark", type=Path, help="benchmark YAML file")
    show.add_argument("--database", help="SQLAlchemy URL of the results database (default: the benchmark's)")
    show.add_argument("--policy", choices=POLICIES, help="ranking policy (default: see above)")
    show.add_argument("--decimals", type=int, default=None,
                      help="round values to N decimals before ranking (ties: equal after rounding)")
    show.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                      help="case bootstrap resamples for the rank intervals (default 1000; 0: none)")
    show.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    show.add_argument("--json", action="store_true", help="print the board as JSON")
    show.set_defaults(func=_cmd_show)

    pub = actions.add_parser(
        "publish", help="write the static leaderboard site (HTML, CSV, JSON, plots) a challenge can host as is",
        description="Write a static site into --out: per split, the ranked board with 95%% bootstrap rank intervals "
        "and the policy and tie rule stated, metric-vs-z-deviation curves per submission, the rank-stability blob "
        "plot, the pixel-MAE vs CellProfiler-MAE trade-off (adipocyte), example panels (input, ground truth, each "
        "prediction), the provenance of every entry, and CSV / JSON exports of every table. Open OUT/index.html.")
    pub.add_argument("benchmark", type=Path, help="benchmark YAML file")
    pub.add_argument("--out", type=Path, required=True, help="site folder (created)")
    pub.add_argument("--database", help="SQLAlchemy URL of the results database (default: the benchmark's)")
    pub.add_argument("--policy", choices=POLICIES, help="ranking policy (default: as for 'show')")
    pub.add_argument("--decimals", type=int, default=None, help="round values to N decimals before ranking")
    pub.add_argument("--bootstrap", type=int, default=1000, metavar="N", help="case resamples (default 1000)")
    pub.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    pub.set_defaults(func=_cmd_publish)


def _cmd_publish(args) -> int:
    from vsbench.harness.benchmark import load_benchmark
    from vsbench.harness.store import ResultStore
    from vsbench.leaderboard.publish import build_boards, publish_site

    bench = load_benchmark(args.benchmark)
    policy = args.policy or default_policy(bench)
    with ResultStore(args.database or bench.database, workspace=bench.workspace) as store:
        boards = build_boards(bench, store, policy, args.decimals, args.bootstrap, args.seed)
        index = publish_site(args.out, f"{bench.name} leaderboard", bench.task, boards, bench.metric_set,
                             store.url)
    print(f"published {bench.name}: {index} ({sum(len(b.board) for b in boards)} entries, policy {policy})")
    return 0


def default_policy(bench) -> str:
    """The benchmark file's ``ranking.policy`` when it sets one, else the task's own rule."""
    if "ranking" in bench.model_fields_set and "policy" in bench.ranking.model_fields_set:
        return bench.ranking.policy
    return TASK_POLICY[bench.task]


def _cmd_show(args) -> int:
    from vsbench.harness.benchmark import load_benchmark
    from vsbench.harness.store import ResultStore
    from vsbench.leaderboard.data import board_entries, case_table
    from vsbench.leaderboard.ranking import rank
    from vsbench.leaderboard.stability import bootstrap_ranks

    try:
        bench = load_benchmark(args.benchmark)
        policy = args.policy or default_policy(bench)
        metrics = list(bench.ranking.metrics) or None
        with ResultStore(args.database or bench.database, workspace=bench.workspace) as store:
            table = case_table(board_entries(store, bench.name), bench.metric_set)
        board = rank(table, policy, metrics, args.decimals)
        stab = bootstrap_ranks(table, policy, args.bootstrap, args.seed, metrics, args.decimals) \
            if args.bootstrap > 0 else None
    except ValueError as err:
        print(f"vsbench leaderboard show: {err}", file=sys.stderr)
        return 2
    rows = board.table.to_dict(orient="records")
    intervals = {}
    if stab is not None:
        for r in stab.summary.itertuples():
            intervals[(r.split, r.submission, r.version)] = (r.median_rank, r.rank_lo, r.rank_hi)
    for r in rows:
        iv = intervals.get((r["split"], r["submission"], r["version"]))
        r["median_rank"], r["rank_lo"], r["rank_hi"] = iv if iv else (None, None, None)
    if args.json:
        doc = {"benchmark": bench.name, **board.to_dict(), "rows": rows,
               "bootstrap": ({"n": stab.n, "seed": stab.seed, "kendall_tau": stab.tau} if stab else None)}
        print(json.dumps(doc, indent=2, default=str))
        return 0
    _print_board(bench.name, board, rows, stab)
    return 0


def _fmt(x, digits=4) -> str:
    return "-" if x is None or x != x else f"{x:.{digits}g}"


def _print_board(name: str, board, rows: list[dict], stab) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for split in sorted({r["split"] for r in rows}):
        table = Table(title=f"{name} - split {split} - policy {board.policy}")
        for col, justify in (("rank", "right"), ("submission", "left"), ("version", "left"), ("score", "right"),
                             ("95% rank interval", "right"), ("cases", "right")):
            table.add_column(col, justify=justify)
        for r in (r for r in rows if r["split"] == split):
            interval = "-" if r["rank_lo"] is None else f"{r['rank_lo']:g}-{r['rank_hi']:g}"
            table.add_row(str(r["rank"]), r["submission"], r["version"], _fmt(r["score"]), interval,
                          str(r["n_cases"]))
        console.print(table)
        if stab is not None:
            tau = stab.tau.get(split, {})
            console.print(f"bootstrap: {stab.n} case resamples (seed {stab.seed}); Kendall's tau vs this ranking "
                          f"{_fmt(tau.get('mean'), 3)} [{_fmt(tau.get('lo'), 3)}, {_fmt(tau.get('hi'), 3)}]",
                          markup=False)
    console.print(f"policy: {board.policy} - {board.definition}; score: {board.direction}", markup=False)
    console.print(f"ties: {board.ties}", markup=False)
