"""What a leaderboard is built from: the stored scores of a benchmark, as one long per-case table.

:func:`board_entries` picks, for every submission and split of a benchmark in the results database, its
complete run and that run's latest score; :func:`case_table` reads their ``metrics.json`` files into one table
with a row per submission x split x case x group x metric (``group``: the organelle on Light My Cells, the
magnification on the Adipocyte task), with the case's z-deviation and the metric's direction
(:func:`vsbench.metrics.higher_is_better`). Rankings, rank stability, comparisons and the published site all start
from these two. :func:`unranked_runs` lists the submissions that failed or are not scored, which a board shows
below the ranked ones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd

from vsbench.harness.run_selection import run_label as entry_label  # name@version, as everywhere
from vsbench.metrics import higher_is_better

ADIPOCYTE_CASE_METRICS = ("pixel_mae", "feature_mae", "mae")
COLUMNS = ["submission", "version", "split", "case", "group", "metric", "z_deviation", "value", "higher_is_better"]


@dataclass
class Entry:
    """One submission on one split: its stored run and the score a board uses."""

    submission: str
    version: str
    split: str
    run_key: str
    score_key: str
    metrics_path: Path
    run: dict = field(repr=False)
    score: dict = field(repr=False)

    @property
    def label(self) -> str:
        """``name@version`` (:func:`entry_label`)."""
        return entry_label(self.submission, self.version)

    @cached_property
    def metrics(self) -> dict:
        """The score's ``metrics.json``, read once."""
        return json.loads(self.metrics_path.read_text())


def board_entries(store, benchmark: str, split: str | None = None) -> list[Entry]:
    """The newest complete, scored run of each submission (name and version) on each split of ``benchmark``
    (optionally of one split), with its most recent score; :class:`ValueError` (one line) when the benchmark has
    none. An older run of the same name@version (e.g. an image rebuilt under the same version) is not an entry."""
    entries, seen = [], set()
    for row in store.list_runs(benchmark=benchmark):  # newest first
        if row["status"] != "complete" or not row.get("score_keys") or (split and row["split_name"] != split):
            continue
        identity = (row["submission"], row["submission_version"], row["split_name"])
        if identity in seen:
            continue
        seen.add(identity)
        scores = [store.get_score(k) for k in row["score_keys"]]
        latest = max((s for s in scores if s), key=lambda s: s.get("updated_at") or s.get("created_at"))
        entries.append(Entry(row["submission"], row["submission_version"], row["split_name"], row["run_key"],
                             latest["score_key"], Path(latest["metrics_path"]), store.get_run(row["run_key"]),
                             latest))
    if not entries:
        where = f" on split {split!r}" if split else ""
        stored = [r for r in store.list_runs(benchmark=benchmark) if not split or r["split_name"] == split]
        hint = (f"; its {len(stored)} stored run(s) failed or are not scored (see 'vsbench results list')" if stored
                else " (run 'vsbench run' first)")
        raise ValueError(f"benchmark {benchmark!r} has no scored runs{where} in this database{hint}")
    entries.sort(key=lambda e: (e.split, e.submission, e.version))
    return entries


def unranked_runs(store, benchmark: str, entries: list[Entry], split: str | None = None) -> list[dict]:
    """The submissions of ``benchmark`` (optionally on one split) that are not on the board of ``entries``: for
    each (submission, version, split) with no complete, scored run, its newest run, as a dict with
    ``submission``, ``version``, ``split``, ``run_key``, ``status`` (``failed``, ``running``, ``pending``, or
    ``unscored`` for a complete run without a score), ``n_cases``, ``n_succeeded`` and ``reason`` (one line,
    raw: escape it to print it). Sorted by split, submission, version."""
    from vsbench.harness.logs import run_reason

    ranked = {(e.submission, e.version, e.split) for e in entries}
    newest: dict[tuple, dict] = {}
    for row in store.list_runs(benchmark=benchmark):  # newest first
        key = (row["submission"], row["submission_version"], row["split_name"])
        if key in ranked or key in newest or (split and row["split_name"] != split):
            continue
        newest[key] = row
    out = []
    for (submission, version, split_name), row in sorted(newest.items(), key=lambda kv: (kv[0][2], *kv[0][:2])):
        status = row["status"]
        if status == "complete":
            status, reason = "unscored", "not scored: run 'vsbench run' again to score it"
        else:
            reason = run_reason((store.get_run(row["run_key"]) or {}).get("cases", []))
            if reason is None:
                reason = "still running, or interrupted" if status in ("running", "pending") else "no case ran"
        out.append({"submission": submission, "version": version, "split": split_name, "run_key": row["run_key"],
                    "status": status, "n_cases": row.get("n_cases"), "n_succeeded": row.get("n_succeeded"),
                    "reason": reason})
    return out


def provenance(entry: Entry) -> dict:
    """What produced an entry's scores: the image digest (or checkpoint), runtime, split hash, evaluator and
    vsbench versions, hardware, and the run and score keys (in full: the site's provenance.json)."""
    run, score = entry.run, entry.score
    hw = run.get("hardware") or {}
    if isinstance(hw, str):
        hw = json.loads(hw)
    identity = run.get("image_digest") or (f"checkpoint {run['checkpoint_hash'][:16]}" if run.get("checkpoint_hash")
                                           else run.get("image_ref") or "–")
    return {"entry": entry.label, "submission": entry.submission, "version": entry.version, "split": entry.split,
            "identity": identity, "image_digest": run.get("image_digest"), "image_ref": run.get("image_ref"),
            "checkpoint_hash": run.get("checkpoint_hash"),
            "runtime": f"{run.get('runtime')}{'' if run.get('sandboxed') else ' (not sandboxed)'}",
            "split_hash": run.get("split_hash") or "", "inputs_hash": run.get("inputs_hash"),
            "predictions_hash": run.get("predictions_hash"), "evaluator": f"{score.get('evaluator_version')}",
            "vsbench": run.get("vsbench_version"), "limits": run.get("limits"),
            "hardware": ", ".join(str(x) for x in (hw.get("cpu"), hw.get("gpu") or "no GPU") if x),
            "started_at": run.get("started_at"), "finished_at": run.get("finished_at"),
            "duration_s": run.get("duration_s"), "n_cases": run.get("n_cases"), "n_succeeded": run.get("n_succeeded"),
            "run_key": entry.run_key, "score_key": entry.score_key}


def _lmc_rows(entry: Entry, metrics: dict) -> pd.DataFrame:
    from vsbench.harness.evaluate import tidy_from_metrics

    tidy = tidy_from_metrics(metrics)
    return pd.DataFrame({"case": tidy["image"], "group": tidy["organelle"], "metric": tidy["metric"],
                         "z_deviation": tidy["z_deviation"], "value": tidy["value"]})


def _adipocyte_rows(entry: Entry, metrics: dict) -> pd.DataFrame:
    rows = [{"case": r["image_set"], "group": r["magnification"], "metric": m, "z_deviation": r.get("d"),
             "value": r.get(m)} for r in metrics["results"] for m in ADIPOCYTE_CASE_METRICS]
    return pd.DataFrame(rows, columns=["case", "group", "metric", "z_deviation", "value"])


def case_table(entries: list[Entry], metrics: list[str] | None = None) -> pd.DataFrame:
    """The per-case long table of ``entries`` (columns :data:`COLUMNS`), optionally only ``metrics``."""
    parts = []
    for entry in entries:
        doc = entry.metrics
        part = _adipocyte_rows(entry, doc) if doc.get("task") == "adipocyte" else _lmc_rows(entry, doc)
        part.insert(0, "split", entry.split)
        part.insert(0, "version", entry.version)
        part.insert(0, "submission", entry.submission)
        parts.append(part)
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COLUMNS[:-1])
    if metrics is not None:
        table = table[table["metric"].isin(metrics)]
    table["value"] = pd.to_numeric(table["value"], errors="coerce")
    # each metric's direction as declared in vsbench.metrics; an undeclared metric is an error, not a default
    directions = {name: higher_is_better(name) for name in table["metric"].unique()}
    table["higher_is_better"] = table["metric"].map(directions).astype(bool)
    return table.reset_index(drop=True)[COLUMNS]
