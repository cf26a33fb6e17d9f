"""``vsbench compare BASELINE CANDIDATE``: regression testing of a model version against another."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vsbench.harness.cli_runs import READ_DATABASE_HELP, WORKSPACE_HELP

COMPARE_DESCRIPTION = """\
Compare a candidate model version with a baseline on the same split, case by case: for every metric x group
(organelle or magnification) x z-deviation, and for every metric x group overall, the mean and median of the
paired differences candidate - baseline, a Wilcoxon signed-rank test and the matched-pairs rank-biserial
correlation. A policy decides what counts as a regression; without --policy: any metric worse by more than 0.01
(absolute, mean paired difference) with p < 0.05 at the overall level. "Worse" follows the metric's direction
(a drop of PCC or SSIM, a rise of MAE, a distance or a CellProfiler CP_* error; vsbench.metrics declares it).
A policy rule whose metric or group pattern matches nothing in the two runs, or a --metrics name they lack, is
an error, and so is a comparison in which the policy checks nothing (unless --allow-empty): a typo never passes.

BASELINE and CANDIDATE select stored runs (each run's latest score is used) or name metrics.json files (or
folders holding one). They must be on the same split. A stored run is selected by
  NAME@VERSION        a submission of the benchmark file, e.g. 'vsbench compare model@v1 model@v2'
  RUN_KEY             a run key or a unique prefix of it (the first column of 'vsbench results list')
  NAME                a submission stored at one version only
Where the database holds several benchmarks or the benchmark several splits, --benchmark NAME and --split NAME
say which; a selector that matches several runs, or none, is an error listing the runs it could mean.

Exit status: 0 no regression, 1 the candidate regresses beyond the policy, 2 bad input."""

COMPARE_EPILOG = """\
policy file (YAML), e.g.:
  rules:
    - {metric: SSIM, group: nucleus, max_drop: 0.01, p: 0.05, per_z_deviation: true}
    - {metric: "*", group: "*", max_drop: 0.02, p: 0.05}     # every metric and group, overall
(fields: metric, group (shell patterns), max_drop (>= 0, absolute), p (0-1], per_z_deviation, name)
--policy takes such a file, or by name a policy shipped with vsbench (from any folder), one of: """


def add_compare(sub: argparse._SubParsersAction) -> None:
    """Add ``compare`` to the top-level subparsers."""
    from vsbench.leaderboard.policies import names

    shipped = names()
    p = sub.add_parser("compare", help="regression test: a candidate model version against a baseline, per case",
                       description=COMPARE_DESCRIPTION, epilog=COMPARE_EPILOG + ", ".join(shipped),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("baseline", help="baseline: NAME@VERSION, run key (or unique prefix) or metrics.json")
    p.add_argument("candidate", help="candidate: NAME@VERSION, run key (or unique prefix) or metrics.json")
    p.add_argument("--benchmark", metavar="NAME", help="select runs of this benchmark only (the name in its file)")
    p.add_argument("--split", metavar="NAME", help="select runs on this split only (the split's name in the file)")
    p.add_argument("--policy", metavar="NAME|FILE",
                   help=f"policy YAML file, or the name of a shipped one (shipped: {', '.join(shipped)}); default: "
                   "any metric worse by > 0.01 with p < 0.05, overall")
    p.add_argument("--metrics", nargs="+", metavar="METRIC",
                   help="compare only these metrics (each must be a metric of the two runs)")
    p.add_argument("--allow-empty", action="store_true",
                   help="accept a comparison in which the policy checks nothing (default: an error, exit 2)")
    p.add_argument("--workspace", type=Path, help=WORKSPACE_HELP)
    p.add_argument("--database", metavar="URL", help=READ_DATABASE_HELP)
    p.add_argument("--markdown", type=Path, metavar="FILE", help="write a Markdown report (verdict on top)")
    p.add_argument("--junit", type=Path, metavar="FILE", help="write JUnit XML (one test case per rule x cell)")
    p.add_argument("--json", action="store_true", help="print the whole comparison as JSON")
    p.set_defaults(func=_cmd_compare)


def _open_store(args):
    """The results store (:func:`vsbench.harness.store.resolve_database` picks it), or None when that is the
    workspace's SQLite file, there is none, and both references are paths."""
    from vsbench.harness.store import ResultStore, default_url, resolve_database

    url = resolve_database(args.database, None, args.workspace, workspace_explicit=args.workspace is not None)
    workspace = args.workspace or Path(".vsbench")
    if url == default_url(workspace) and not (workspace / "results.db").exists() \
            and all(Path(ref).exists() for ref in (args.baseline, args.candidate)):
        return None
    return ResultStore(url, must_exist=True)  # a missing database: a one-line error naming where it looked


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _cmd_compare(args) -> int:
    from vsbench.leaderboard import compare as cmp
    from vsbench.leaderboard.policies import resolve

    policy = None if args.policy is None else resolve(args.policy)
    rules = cmp.load_policy(policy)  # bad policy: exit 2 before touching the database
    store = _open_store(args)
    try:
        baseline, candidate = (cmp.resolve(store, ref, args.benchmark, args.split)
                               for ref in (args.baseline, args.candidate))
        result = cmp.compare_entries(baseline, candidate, rules, args.metrics, args.allow_empty)
    finally:
        if store is not None:
            store.close()
    if args.markdown:
        _write(args.markdown, cmp.to_markdown(result))
    if args.junit:
        _write(args.junit, cmp.to_junit(result))
    if args.json:
        print(json.dumps(cmp.to_json(result), indent=1))
        print(result.verdict, file=sys.stderr)
    else:
        print(cmp.summary(result))
    return result.exit_code
