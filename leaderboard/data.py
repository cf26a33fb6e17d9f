"""What a leaderboard is built from: the stored scores of a benchmark, as one long per-case table.

:func:`board_entries` picks, for every submission and split of a benchmark in the results database, its
complete run and that run's latest score; :func:`case_table` reads their ``metrics.json`` files into one table
with a row per submission x split x case x group x metric (``group``: the organelle on Light My Cells, the
magnification on the Adipocyte task), with the case's z-deviation and the metric's direction. Rankings, rank
stability, comparisons and the published site all start from these two.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

# lower is better for distances and errors, higher for similarities (Light My Cells rules; Adipocyte MAEs)
HIGHER_IS_BETTER = {"PCC": True, "SSIM": True, "MAE": False, "E_dist": False, "C_dist": False,
                    "pixel_mae": False, "feature_mae": False, "mae": False}
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


def board_entries(store, benchmark: str, split: str | None = None) -> list[Entry]:
    """Every complete, scored run of ``benchmark`` (optionally of one split), with its most recent score;
    :class:`ValueError` (one line) when the benchmark has none."""
    entries = []
    for row in store.list_runs(benchmark=benchmark):
        if row["status"] != "complete" or not row.get("score_keys") or (split and row["split_name"] != split):
            continue
        scores = [store.get_score(k) for k in row["score_keys"]]
        latest = max((s for s in scores if s), key=lambda s: s.get("updated_at") or s.get("created_at"))
        entries.append(Entry(row["submission"], row["submission_version"], row["split_name"], row["run_key"],
                             latest["score_key"], Path(latest["metrics_path"]), store.get_run(row["run_key"]),
                             latest))
    if not entries:
        where = f" on split {split!r}" if split else ""
        raise ValueError(f"benchmark {benchmark!r} has no scored runs{where} in this database (run 'vsbench run' "
                         "first)")
    entries.sort(key=lambda e: (e.split, e.submission, e.version))
    return entries


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
        doc = json.loads(entry.metrics_path.read_text())
        part = _adipocyte_rows(entry, doc) if doc.get("task") == "adipocyte" else _lmc_rows(entry, doc)
        part.insert(0, "split", entry.split)
        part.insert(0, "version", entry.version)
        part.insert(0, "submission", entry.submission)
        parts.append(part)
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COLUMNS[:-1])
    if metrics is not None:
        table = table[table["metric"].isin(metrics)]
    table["value"] = pd.to_numeric(table["value"], errors="coerce")
    table["higher_is_better"] = table["metric"].map(HIGHER_IS_BETTER).fillna(True).astype(bool)
    return table.reset_index(drop=True)[COLUMNS]
