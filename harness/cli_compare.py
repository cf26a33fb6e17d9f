"""``vsbench compare BASELINE CANDIDATE``: regression testing of a model version against another."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

COMPARE_DESCRIPTION = """\
Compare a candidate model version with a baseline on the same split, case by case: for every metric x group
(organelle or magnification) x z-deviation, and for every metric x group overall, the mean and median of the
paired differences candidate - baseline, a Wilcoxon signed-rank test and the matched-pairs rank-biserial
correlation. A policy decides what counts as a regression; without --policy: any metric worse by more than 0.01
(absolute, mean paired difference) with p < 0.05 at the overall level. "Worse" follows the metric's direction
(a drop of PCC or SSIM, a rise of MAE or a distance).

BASELINE and CANDIDATE are stored runs (a run key or a unique prefix, from 'vsbench results list'; each run's
latest score is used) or metrics.json files (or folders holding one). They must be on the same split.

Exit status: 0 no regression, 1 the candidate regresses beyond the policy, 2 bad input."""

COMPARE_EPILOG = """\
policy file (YAML), e.g.:
  rules:
    - {metric: SSIM, group: nucleus, max_drop: 0.01, p: 0.05, per_z_deviation: true}
    - {metric: "*", group: "*", max_drop: 0.02, p: 0.05}     # every metric and group, overall
(fields: metric, group (shell patterns), max_drop (>= 0, absolute), p (0-1], per_z_deviation, name;
 vsbench/leaderboard/policies/default.yaml is an example)"""


def add_compare(sub: argparse._SubParsersAction) -> None:
    """Add ``compare`` to the top-level subparsers."""
    p = sub.add_parser("compare", help="regression test: a candidate model version against a baseline, per case",
                       description=COMPARE_DESCRIPTION, epilog=COMPARE_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("baseline", help="baseline: run key (or unique prefix) or metrics.json")
    p.add_argument("candidate", help="candidate: run key (or unique prefix) or metrics.json")
    p.add_argument("--policy", type=Path, help="policy YAML (default: any metric worse by > 0.01 with p < 0.05, "
                   "overall)")
    p.add_argument("--metrics", nargs="+", metavar="METRIC", help="compare only these metrics")
    p.add_argument("--workspace", type=Path, default=Path(".vsbench"),
                   help="workspace holding results.db (default .vsbench)")
    p.add_argument("--database", help="SQLAlchemy URL instead of WORKSPACE/results.db")
    p.add_argument("--markdown", type=Path, metavar="FILE", help="write a Markdown report (verdict on top)")
    p.add_argument("--junit", type=Path, metavar="FILE", help="write JUnit XML (one test case per rule x cell)")
    p.add_argument("--json", action="store_true", help="print the whole comparison as JSON")
    p.set_defaults(func=_cmd_compare)


def _open_store(args):
    """The results store, or None when there is no database and both references are paths."""
    from vsbench.harness.store import ResultStore

    if args.database is None and not (args.workspace / "results.db").exists() \
            and all(Path(ref).exists() for ref in (args.baseline, args.candidate)):
        return None
    if args.database is None and not (args.workspace / "results.db").exists():
        raise ValueError(f"no results database at {args.workspace / 'results.db'} (give --workspace or --database)")
    return ResultStore(args.database, workspace=args.workspace)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _cmd_compare(args) -> int:
    from vsbench.leaderboard import compare as cmp

    rules = cmp.load_policy(args.policy)  # bad policy: exit 2 before touching the database
    store = _open_store(args)
    try:
        result = cmp.compare_entries(cmp.resolve(store, args.baseline), cmp.resolve(store, args.candidate), rules,
                                     args.metrics)
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
