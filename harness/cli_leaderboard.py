"""``vsbench leaderboard show BENCH.yaml``: the ranked board of a benchmark, with bootstrap rank intervals."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vsbench.harness.cli_args import non_negative_int
from vsbench.harness.cli_runs import RUN_DATABASE_HELP

# vsbench.leaderboard.ranking.POLICIES, listed here so that building the parser imports no pandas (the solution
# images' runtime has none; tests/test_ranking.py checks the two lists agree)
POLICIES = ("mean-rank", "median-rank", "absolute", "lmc", "adipocyte")

TASK_POLICY = {"lmc": "lmc", "adipocyte": "adipocyte"}

METRIC_HELP = ("rank on this metric; repeat for several (default: the benchmark file's ranking.metrics, else all "
               "it stores); --policy absolute ranks exactly one")


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
    show.add_argument("--database", metavar="URL", help=RUN_DATABASE_HELP)
    show.add_argument("--policy", choices=POLICIES, help="ranking policy (default: see above)")
    show.add_argument("--metric", dest="metrics", action="append", metavar="NAME", help=METRIC_HELP)
    show.add_argument("--decimals", type=non_negative_int, default=None,
                      help="round values to N decimals before ranking (ties: equal after rounding)")
    show.add_argument("--bootstrap", type=non_negative_int, default=1000, metavar="N",
                      help="case bootstrap resamples for the rank intervals (default 1000; 0: none)")
    show.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    show.add_argument("--json", action="store_true", help="print the board as JSON")
    show.set_defaults(func=_cmd_show)

    pub = actions.add_parser(
        "publish", help="write the static leaderboard site (HTML, CSV, JSON, plots) a challenge can host as is",
        description="Write a static site into --out (open OUT/index.html; it works offline, from file:// and hosted "
        "as is). index.html, per split: the ranked board (score, 95% bootstrap rank interval, P(rank 1), cases, the "
        "mean of every target x metric with its direction), sortable by clicking a header; the entries that failed "
        "or are partial, with status and reason; metric-vs-z-deviation curves, the rank-stability blob plot and "
        "(adipocyte) the pixel vs CellProfiler MAE trade-off, one colour per entry throughout; example panels; "
        "provenance; CSV / JSON exports. entries/NAME@VERSION.html: per entry, its per-case table, metrics.json "
        "and provenance.json, z-deviation curves against the board's best and the input baseline, its worst case "
        "per target (input | truth | prediction | difference), its failed cases. "
        "Default --public: for participants; a hidden split's (splits[].hidden, default true) ground-truth and "
        "difference panels and every container log are left out. --private: for organisers, everything. No page "
        "holds a local path or a credential in either mode.")
    pub.add_argument("benchmark", type=Path, help="benchmark YAML file")
    pub.add_argument("--out", type=Path, required=True, help="site folder (created)")
    pub.add_argument("--database", metavar="URL", help=RUN_DATABASE_HELP)
    mode = pub.add_mutually_exclusive_group()
    mode.add_argument("--public", dest="mode", action="store_const", const="public",
                      help="the site participants see (the default): no ground truth of a hidden split, no logs")
    mode.add_argument("--private", dest="mode", action="store_const", const="private",
                      help="the organisers' site: ground-truth and difference panels of every split, container logs")
    pub.add_argument("--policy", choices=POLICIES, help="ranking policy (default: as for 'show')")
    pub.add_argument("--metric", dest="metrics", action="append", metavar="NAME", help=METRIC_HELP)
    pub.add_argument("--decimals", type=non_negative_int, default=None,
                     help="round values to N decimals before ranking")
    pub.add_argument("--bootstrap", type=non_negative_int, default=1000, metavar="N",
                     help="case resamples (default 1000; 0: none)")
    pub.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    pub.set_defaults(func=_cmd_publish, mode="public")


def _cmd_publish(args) -> int:
    from vsbench.harness.benchmark import load_benchmark
    from vsbench.harness.store import ResultStore, resolve_database
    from vsbench.leaderboard.publish import build_boards, publish_site

    bench = load_benchmark(args.benchmark)
    policy = args.policy or default_policy(bench)
    metrics = ranking_metrics(args.metrics, bench, policy)
    with ResultStore(resolve_database(args.database, bench.database, bench.workspace), must_exist=True) as store:
        boards = build_boards(bench, store, policy, args.decimals, args.bootstrap, args.seed, metrics=metrics)
        index = publish_site(args.out, f"{bench.name} leaderboard", bench.task, boards, bench.metric_set,
                             mode=args.mode)
    print(f"published {bench.name} ({args.mode}): {index} ({sum(len(b.board) for b in boards)} entries, "
          f"policy {policy})")
    return 0


def ranking_metrics(chosen: list[str] | None, bench, policy: str) -> list[str] | None:
    """The metrics a board ranks: ``--metric`` (``chosen``) when given, else the benchmark file's
    ``ranking.metrics``, else None (all). :class:`ValueError` naming the flag for a metric the benchmark does not
    store, or for the absolute policy without exactly one metric."""
    metrics = list(dict.fromkeys(chosen or bench.ranking.metrics))
    known = bench.metric_set
    for metric in metrics:
        if metric not in known:
            raise ValueError(f"--metric {metric}: not a metric of benchmark {bench.name} (one of {', '.join(known)})")
    if policy == "absolute" and len(metrics) != 1:
        where = f"ranking.metrics in {bench.source}" if bench.source else "ranking.metrics in the benchmark file"
        raise ValueError(f"--policy absolute ranks one metric: choose it with --metric NAME (or {where}); one of "
                         f"{', '.join(known)}")
    return metrics or None


def default_policy(bench) -> str:
    """The benchmark file's ``ranking.policy`` when it sets one, else the task's own rule."""
    if "ranking" in bench.model_fields_set and "policy" in bench.ranking.model_fields_set:
        return bench.ranking.policy
    return TASK_POLICY[bench.task]


def _cmd_show(args) -> int:
    from vsbench.harness.benchmark import load_benchmark
    from vsbench.harness.store import ResultStore, resolve_database
    from vsbench.leaderboard.data import board_entries, case_table, unranked_runs
    from vsbench.leaderboard.ranking import rank
    from vsbench.leaderboard.stability import bootstrap_ranks

    bench = load_benchmark(args.benchmark)
    policy = args.policy or default_policy(bench)
    metrics = ranking_metrics(args.metrics, bench, policy)
    with ResultStore(resolve_database(args.database, bench.database, bench.workspace), must_exist=True) as store:
        entries = board_entries(store, bench.name)
        unranked = unranked_runs(store, bench.name, entries)  # failed or unscored: listed below the ranked ones
        table = case_table(entries, bench.metric_set)
    board = rank(table, policy, metrics, args.decimals)
    stab = bootstrap_ranks(table, policy, args.bootstrap, args.seed, metrics, args.decimals) \
        if args.bootstrap > 0 else None
    rows = board.table.to_dict(orient="records")
    intervals = {}
    if stab is not None:
        for r in stab.summary.itertuples():
            intervals[(r.split, r.submission, r.version)] = (r.median_rank, r.rank_lo, r.rank_hi)
    for r in rows:
        iv = intervals.get((r["split"], r["submission"], r["version"]))
        r["median_rank"], r["rank_lo"], r["rank_hi"] = iv if iv else (None, None, None)
    if args.json:
        doc = {"benchmark": bench.name, **board.to_dict(), "rows": rows, "unranked": unranked,
               "bootstrap": ({"n": stab.n, "seed": stab.seed, "kendall_tau": stab.tau} if stab else None)}
        print(json.dumps(doc, indent=2, default=str))
        return 0
    _print_board(bench.name, board, rows, stab, unranked)
    return 0


def _fmt(x, digits=4) -> str:
    return "-" if x is None or x != x else f"{x:.{digits}g}"


def _print_board(name: str, board, rows: list[dict], stab, unranked: list[dict] = ()) -> None:
    from rich.console import Console
    from rich.table import Table

    from vsbench.harness.logs import escape_control
    from vsbench.leaderboard.stability import tau_text

    console = Console()
    for split in sorted({r["split"] for r in rows} | {u["split"] for u in unranked}):
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
            console.print(f"bootstrap: {stab.n} case resamples (seed {stab.seed}); Kendall's tau vs this ranking "
                          f"{tau_text(stab.tau.get(split))}", markup=False)
        below = [u for u in unranked if u["split"] == split]
        if below:  # submissions that failed or are not scored: never silently dropped
            console.print(f"not ranked on split {split}:", markup=False, highlight=False)
            for u in below:
                console.print(f"  {escape_control(u['submission'])}@{escape_control(u['version'])}  {u['status']}  "
                              f"{u['n_succeeded'] or 0}/{u['n_cases'] or 0} cases ok  {escape_control(u['reason'])}",
                              markup=False, highlight=False, soft_wrap=True)
    console.print(f"policy: {board.policy} - {board.definition}; score: {board.direction}", markup=False)
    console.print(f"ties: {board.ties}", markup=False)
