"""``vsbench run BENCH.yaml`` and ``vsbench results list|show``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vsbench.harness.cli_args import positive_int

RUN_DESCRIPTION = """\
Run every submission of a benchmark file on every split, score the predictions and store the results with their
provenance (image digest or checkpoint hash, split manifest hash, evaluator and vsbench versions, seed, hardware,
timings, per-case status and reason, log locations) in the results database: --database URL, else
$VSBENCH_DB_URL, else the benchmark file's 'database:', else the workspace's SQLite file (WORKSPACE/results.db).

Idempotent and resumable: work is keyed by what decides its result, so running the same command again (after a
crash or a kill) does only what is missing, and never stores a row twice. Changing only the evaluator (vsbench
version, metric set) re-scores the stored predictions without running any container. --retry-failed re-runs the
failed cases of finished runs only.

The benchmark file is checked whole before anything runs or is stored (unknown solutions, solutions that learn
without 'train:' or a checkpoint, paths that do not exist, splits of another task): each problem on its own line,
exit 2. A run is stored complete (some case succeeded) or failed (none did); exit 1 when any case did not succeed,
with one error line per such submission saying why and where its logs are ('vsbench results show KEY' prints the
last lines of each failed case's log, control characters escaped).

Images and docker-save archives run in the sandboxed Docker runtime (an engine must answer); solutions run
in-process with the local runtime (not sandboxed, said so). Work runs as Dask tasks: a local cluster of --workers
by default, or an existing cluster at --scheduler tcp://HOST:8786 (docs/scale-out.md)."""

RUN_EPILOG = """\
benchmark file (YAML), e.g.:
  name: lmc-demo
  task: lmc                                 # or adipocyte
  splits: [{name: test, path: data/lmc/test}]
  submissions:
    - {name: my-model, version: "3", image: my-model:3}
    - {name: team-a, version: "1", archive: uploads/team-a.tar.gz, digest: "sha256:..."}
    - {name: filterbank, version: "1", solution: filterbank, train: data/lmc/train}
  metrics: [PCC, SSIM]                      # default: all of the task's
  limits: {time_s: 600, memory: 8g, gpus: 0}
(see vsbench.harness.benchmark for every field)"""


# which results database a command uses: one rule, vsbench.harness.store.resolve_database
RUN_DATABASE_HELP = ("SQLAlchemy URL of the results database, e.g. postgresql+psycopg://user:pw@host/db (a team's "
                     "shared one) or sqlite:///results.db. Which database: --database, else $VSBENCH_DB_URL, else "
                     "the benchmark file's 'database:', else its WORKSPACE/results.db (passwords are never shown)")
READ_DATABASE_HELP = ("SQLAlchemy URL of the results database, e.g. postgresql+psycopg://user:pw@host/db. Which "
                      "database: --database, else --workspace's results.db when given, else $VSBENCH_DB_URL, else "
                      ".vsbench/results.db (passwords are never shown)")
WORKSPACE_HELP = "workspace holding results.db (default .vsbench); given, it beats $VSBENCH_DB_URL"


def add_runs(sub: argparse._SubParsersAction) -> None:
    """Add ``run`` and ``results`` to the top-level subparsers."""
    run = sub.add_parser("run", help="run a benchmark file: every submission on every split, scored and stored",
                         description=RUN_DESCRIPTION, epilog=RUN_EPILOG,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("benchmark", type=Path, help="benchmark YAML file")
    run.add_argument("--database", metavar="URL", help=RUN_DATABASE_HELP)
    run.add_argument("--runtime", choices=["auto", "docker", "local"], default="auto",
                     help="auto (default): Docker for images and archives, in-process for solutions; local: refuse "
                     "images")
    run.add_argument("--retry-failed", action="store_true", help="re-run the failed cases of finished runs")
    run.add_argument("--workers", type=positive_int, default=1, help="local Dask workers (default 1)")
    run.add_argument("--scheduler", metavar="ADDRESS", help="an existing Dask scheduler (tcp://host:8786)")
    run.add_argument("--json", action="store_true", help="print the outcome as JSON")
    run.set_defaults(func=_cmd_run)

    results = sub.add_parser("results", help="inspect stored runs and scores",
                             description="List and show what 'vsbench run' stored.")
    actions = results.add_subparsers(dest="results_command", metavar="ACTION", required=True)
    for name, help_text in (("list", "one line per run (newest first)"),
                            ("show", "one run: provenance, cases, scores")):
        p = actions.add_parser(name, help=help_text, description=help_text)
        if name == "show":
            p.add_argument("run", metavar="RUN", help="the run, as 'vsbench results list' shows it: NAME@VERSION "
                           "(e.g. model@v1), a run key or a unique prefix of it, or a NAME stored at one version")
        p.add_argument("--workspace", type=Path, help=WORKSPACE_HELP)
        p.add_argument("--database", metavar="URL", help=READ_DATABASE_HELP)
        p.add_argument("--benchmark", metavar="NAME", help="only runs of this benchmark (the name in its file)")
        if name == "show":
            p.add_argument("--split", metavar="NAME", help="only runs on this split (its name in the benchmark file)")
        p.add_argument("--json", action="store_true", help="JSON for scripts")
        p.set_defaults(func=_cmd_results_list if name == "list" else _cmd_results_show)


def _open_store(url: str, must_exist: bool = False):
    """The results store at ``url``; ``must_exist`` (the read commands): a missing SQLite file is a one-line error
    naming where it looked, and no empty database is made."""
    from vsbench.harness.store import ResultStore

    return ResultStore(url, must_exist=must_exist)


def _read_store_url(args) -> str:
    """The database of a read command (``results``, ``compare``): ``--database``, else an explicit ``--workspace``,
    else ``$VSBENCH_DB_URL``, else .vsbench/results.db (:func:`vsbench.harness.store.resolve_database`)."""
    from vsbench.harness.store import resolve_database

    return resolve_database(args.database, None, args.workspace, workspace_explicit=args.workspace is not None)


def _cmd_run(args) -> int:
    from vsbench.harness.benchmark import check_benchmark, load_benchmark
    from vsbench.harness.runner import run_benchmark
    from vsbench.harness.store import resolve_database

    bench = check_benchmark(load_benchmark(args.benchmark))  # every problem of the file, before anything is stored
    with _open_store(resolve_database(args.database, bench.database, bench.workspace)) as store:
        log = (lambda msg: print(msg, file=sys.stderr)) if args.json else print
        outcome = run_benchmark(bench, store, runtime=args.runtime, retry_failed=args.retry_failed,
                                scheduler=args.scheduler, workers=args.workers, progress=not args.quiet, log=log)
        if args.json:
            print(json.dumps({"inferred": outcome.inferred, "reused_runs": outcome.reused_runs,
                              "scored": outcome.scored, "reused_scores": outcome.reused_scores,
                              "rows": outcome.rows, "errors": outcome.errors, "failures": outcome.failures,
                              "database": store.display_url},
                             indent=1))
        else:
            print(_summary_table(store, bench, outcome))
            print(f"{bench.name}: {outcome.inferred} run(s) done, {outcome.reused_runs} reused; {outcome.scored} "
                  f"score(s) done, {outcome.reused_scores} reused; results in {store.display_url}")
    for error in outcome.errors:
        print(f"vsbench: error: {error}", file=sys.stderr)
    for failure in outcome.failures:  # each run with cases that did not succeed: why, and where its logs are
        print(f"vsbench: error: {failure['message']}", file=sys.stderr)
    return 1 if outcome.errors or outcome.failures else 0


def _headline(store, score_key: str | None, metrics: list[str]) -> dict[str, float | None]:
    """Mean of each metric over its rows at the top scope (organelle or channel means)."""
    if score_key is None:
        return {}
    values: dict[str, list[float]] = {}
    for row in store.metric_values(score_key):
        if row["scope"] in ("organelle", "channel", "overall", "total") and row["value"] is not None:
            values.setdefault(row["metric"], []).append(row["value"])
    return {m: (sum(v) / len(v) if v else None) for m in metrics for v in [values.get(m, [])]}


def _summary_table(store, bench, outcome) -> str:
    metrics = bench.metric_set
    head = ["submission", "version", "split", "cases ok"] + metrics
    rows = []
    for r in outcome.rows:
        means = _headline(store, r["score_key"], metrics)
        rows.append([r["submission"], r["version"], r["split"], f"{r['n_succeeded']}/{r['n_cases']}"]
                    + [("-" if means.get(m) is None else f"{means[m]:.4g}") for m in metrics])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=False)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=False)) for line in [head, *rows]]
    return "\n".join(lines)


def _cmd_results_list(args) -> int:
    with _open_store(_read_store_url(args), must_exist=True) as store:
        runs = store.list_runs(benchmark=args.benchmark)
    if args.json:
        print(json.dumps(runs, indent=1, default=str))
        return 0
    if not runs:
        print("no runs stored")
        return 0
    for run in runs:
        print(f"{run['run_key'][:12]}  {run['benchmark']}  {run['submission']}@{run['submission_version']}  "
              f"{run['split_name']}  {run['status']}  {run.get('n_succeeded')}/{run.get('n_cases')} ok  "
              f"{run['runtime']}{'' if run.get('sandboxed') else ' (not sandboxed)'}")
    return 0


def _print_failed_cases(cases: list[dict], limit: int = 20) -> None:
    """The cases that did not succeed, grouped by status, reason and log: the status and reason, the cases, where
    the log is and its last lines (once per log file). A container's output is untrusted: control characters are
    shown escaped, never written raw."""
    from vsbench.harness.logs import TAIL_LINES, escape_control, log_tail

    bad = [c for c in cases if c["status"] != "succeeded"]
    print(f"cases: {len(cases)}, not succeeded: {len(bad)}")
    groups: dict[tuple, list[str]] = {}
    for case in bad:
        log = case.get("stderr") or case.get("stdout")
        groups.setdefault((case["status"], case.get("reason"), log), []).append(escape_control(case["case"]))
    shown: set[str] = set()
    for (status, reason, log), names in list(groups.items())[:limit]:
        what = names[0] if len(names) == 1 else f"{len(names)} cases"
        print(f"  {what}: {status}: {escape_control(reason)}")
        if len(names) > 1:
            more = f", ... ({len(names) - 10} more)" if len(names) > 10 else ""
            print(f"    cases: {', '.join(names[:10])}{more}")
        if not log:
            continue
        if log in shown:
            print(f"    log: {escape_control(log)} (its tail is above)")
            continue
        shown.add(log)
        print(f"    log: {escape_control(log)}" + ("" if Path(log).is_file() else " (not found)"))
        for line in log_tail(log, TAIL_LINES):
            print(f"    | {line}")
    if len(groups) > limit:
        print(f"  ... and {len(groups) - limit} more (--json lists every case)")


def _cmd_results_show(args) -> int:
    from vsbench.harness.run_selection import select_run

    with _open_store(_read_store_url(args), must_exist=True) as store:
        row = select_run(store, args.run, args.benchmark, args.split)
        run = store.get_run(row["run_key"])
        run["scores"] = [store.get_score(k) for k in run.get("score_keys", [])]
    if args.json:
        print(json.dumps(run, indent=1, default=str))
        return 0
    skip = {"cases", "scores", "hardware", "limits"}
    for key, value in run.items():
        if key not in skip and key != "score_keys":
            print(f"{key:18} {value}")
    print(f"{'hardware':18} {json.dumps(run.get('hardware'))}")
    _print_failed_cases(run.get("cases", []))
    for score in run["scores"]:
        if score:
            print(f"score {score['score_key'][:12]}: {score['evaluator']} {score['evaluator_version']}, metrics "
                  f"{', '.join(score['metrics'])}, {score['metrics_path']}")
    return 0
