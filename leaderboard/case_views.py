"""What a published entry page shows of single cases, per task: the per-case table, the worst case of each
target, and the images of a case (input, ground truth, prediction, and their difference as the metric sees it).

The only module of the site that knows a task's files and ``metrics.json`` shape (Light My Cells: one result per
transmitted-light slice, organelles as targets; Adipocyte: one result per image set, the three fluorescence
channels as targets). Everything here reads the split and the predictions of a stored run; nothing is written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

LMC_WORST_BY = "PCC"  # every Light My Cells organelle has it (lmc.md §1.2); higher is better
ADIPOCYTE_CHANNELS = ("nuclei", "lipids", "cytoplasm")  # adipocyte.md §1: the three fluorescence targets
# the metrics an entry page plots against the z-deviation (a panel per target x metric): Light My Cells' one that
# every organelle has (lmc.md §1.2), the Adipocyte task's three scores
CURVE_METRICS = {"lmc": ("PCC",), "adipocyte": ("mae", "pixel_mae", "feature_mae")}


@dataclass
class CaseTable:
    """An entry's per-case table: ``frame`` has the key columns ``case``, ``target``, ``modality``,
    ``z_deviation`` then one column per metric (named by ``metrics``: column -> metric name, for its title and
    direction)."""

    frame: pd.DataFrame
    metrics: dict[str, str]


@dataclass
class WorstCase:
    """The case of a target with the worst value of ``metric``."""

    target: str
    case: str
    metric: str
    value: float


@dataclass
class CaseImages:
    """The images of one case and target, scaled as the metric compares them (``scale`` says how)."""

    input: np.ndarray | None
    truth: np.ndarray | None
    prediction: np.ndarray | None
    scale: str

    @property
    def difference(self) -> np.ndarray | None:
        """Prediction minus ground truth (None without both, or when their shapes differ)."""
        if self.truth is None or self.prediction is None or self.truth.shape != self.prediction.shape:
            return None
        return self.prediction - self.truth


@lru_cache(maxsize=16)
def _split_cases(split_path: str) -> tuple[object, dict[str, object]]:
    """A split and its cases by name (a Light My Cells case, an Adipocyte image set by key): read once per
    publish, not once per entry and panel."""
    from vsbench.harness.split import Split

    split = Split(split_path)
    if split.task == "adipocyte":
        from vsbench.harness.adipocyte_split import adipocyte_sets

        return split, {s.key: s for s in adipocyte_sets(split)}
    return split, {c.name: c for c in split.cases()}


def forget_splits() -> None:
    """Drop the splits read so far (a publish starts from what is on disk now)."""
    _split_cases.cache_clear()


def _finite(value) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.nan
    return value


def curve_metrics(task: str, metrics: list[str]) -> list[str]:
    """Which of ``metrics`` (the benchmark's) an entry page plots against the z-deviation (:data:`CURVE_METRICS`;
    the first two of ``metrics`` when none of them is there)."""
    chosen = [m for m in CURVE_METRICS.get(task, ()) if m in metrics]
    return chosen or list(metrics[:2])


def case_table(doc: dict) -> CaseTable:
    """The per-case table of a ``metrics.json`` (either task)."""
    if doc.get("task") == "adipocyte":
        rows = []
        for r in doc.get("results", []):
            row = {"case": r.get("image_set"), "target": "all", "modality": "BF z-stack",
                   "z_deviation": r.get("d"), "mae": _finite(r.get("mae")), "pixel_mae": _finite(r.get("pixel_mae")),
                   "feature_mae": _finite(r.get("feature_mae"))}
            for channel in ADIPOCYTE_CHANNELS:
                row[f"pixel_mae {channel}"] = _finite((r.get("pixel_per_channel") or {}).get(channel))
            rows.append(row)
        metrics = {"mae": "mae", "pixel_mae": "pixel_mae", "feature_mae": "feature_mae",
                   **{f"pixel_mae {c}": "pixel_mae" for c in ADIPOCYTE_CHANNELS}}
        return CaseTable(pd.DataFrame(rows, columns=["case", "target", "modality", "z_deviation", *metrics]), metrics)
    from vsbench.metrics.lmc import ALL_METRICS, ORGANELLES

    rows = []
    for r in doc.get("results", []):
        for organelle in ORGANELLES:
            values = r.get(organelle) or {}
            if values:
                rows.append({"case": r.get("image"), "target": organelle, "modality": r.get("modality"),
                             "z_deviation": r.get("z_deviation"), **{m: _finite(values.get(m)) for m in ALL_METRICS}})
    frame = pd.DataFrame(rows, columns=["case", "target", "modality", "z_deviation", *ALL_METRICS])
    present = [m for m in ALL_METRICS if frame[m].notna().any()]
    return CaseTable(frame[["case", "target", "modality", "z_deviation", *present]], {m: m for m in present})


def target_means(doc: dict) -> dict[tuple[str, str], float]:
    """Per-target case means a board shows beside its (group, metric) columns when the per-case table has no
    target axis: the Adipocyte task's pixel MAE of each channel (its groups are magnifications); {} for Light My
    Cells, whose groups are the targets already."""
    if doc.get("task") != "adipocyte":
        return {}
    frame = case_table(doc).frame
    return {(c, "pixel_mae"): float(frame[f"pixel_mae {c}"].mean()) for c in ADIPOCYTE_CHANNELS
            if frame[f"pixel_mae {c}"].notna().any()}


def worst_cases(doc: dict) -> list[WorstCase]:
    """The worst case of every target: lowest PCC per organelle (Light My Cells), highest pixel MAE per channel
    (Adipocyte). Cases without a finite value are skipped."""
    table = case_table(doc).frame
    out = []
    if doc.get("task") == "adipocyte":
        for channel in ADIPOCYTE_CHANNELS:
            column = table[f"pixel_mae {channel}"]
            if column.notna().any():
                i = column.idxmax()
                out.append(WorstCase(channel, str(table.at[i, "case"]), "pixel_mae", float(column[i])))
        return out
    for organelle, part in table.groupby("target", sort=False):
        if LMC_WORST_BY in part and part[LMC_WORST_BY].notna().any():
            i = part[LMC_WORST_BY].idxmin()
            value = float(part.at[i, LMC_WORST_BY])
            out.append(WorstCase(str(organelle), str(part.at[i, "case"]), LMC_WORST_BY, value))
    return out


def case_images(task: str, split_path: Path | str, predictions_path: Path | str | None, case: str, target: str,
                with_truth: bool = True) -> CaseImages:
    """Input, ground truth (unless ``with_truth`` is false) and prediction of ``case`` for ``target``, each None
    when its file is missing or unreadable. Light My Cells: each image percentile-normalised on its own, as the
    metrics are (lmc.md §1.1); Adipocyte: raw intensities (the pixel MAE compares them raw)."""
    split, cases = _split_cases(str(split_path))
    if task == "adipocyte":
        return _adipocyte_images(split, cases.get(case), predictions_path, target, with_truth)
    from vsbench.harness.omeio import read_plane
    from vsbench.harness.predict import prediction_path
    from vsbench.metrics.lmc import percentile_normalization

    found = cases.get(case)

    def read(path: Path | None, normalise: bool) -> np.ndarray | None:
        if path is None or not Path(path).is_file():
            return None
        try:
            image = np.squeeze(read_plane(path)[0]).astype(np.float64)
        except (OSError, ValueError):
            return None
        return percentile_normalization(image) if normalise else image

    source = read(split.input_path(found), False) if found else None
    truth = read(split.target_path(found, target), True) if found and with_truth else None
    prediction = read(prediction_path(Path(predictions_path), target, case), True) if predictions_path else None
    return CaseImages(source, truth, prediction, "each image normalised to its 2nd-99.8th percentiles, as the "
                      "metrics see it")


def _adipocyte_images(split, aset, predictions_path, channel: str, with_truth: bool) -> CaseImages:
    from vsbench.harness.adipocyte_split import read_uint16_plane
    from vsbench.harness.predict_adipocyte import prediction_path

    def read(path: Path | None) -> np.ndarray | None:
        if path is None or not Path(path).is_file():
            return None
        try:
            return read_uint16_plane(path).astype(np.float64)
        except (OSError, ValueError):
            return None

    if aset is None:
        return CaseImages(None, None, None, "")
    middle = aset.input_paths(split)[len(aset.inputs) // 2]  # Z04 of Z01..Z07
    truth = read(aset.target_path(split, channel)) if with_truth and channel in aset.targets else None
    prediction = read(prediction_path(Path(predictions_path), channel, aset)) if predictions_path else None
    return CaseImages(read(middle), truth, prediction, "raw 16-bit intensities (the pixel MAE compares them raw); "
                      "input: the middle plane Z04")


def example_case(task: str, split_path: Path | str) -> tuple[str, str] | None:
    """The case and target a split's example panels show: the first slice with a nucleus (Light My Cells), the
    first image set's nuclei (Adipocyte); None when the split has none."""
    try:
        split, cases = _split_cases(str(split_path))
    except (OSError, ValueError):
        return None
    if task == "adipocyte":
        return (next(iter(cases)), "nuclei") if cases else None
    case = next((c for c in cases.values() if "nucleus" in split.organelles(c)), None)
    return (case.name, "nucleus") if case else None


def public_metrics(doc: dict) -> dict:
    """``metrics.json`` as a public site may show it for a hidden split: without anything measured on the ground
    truth itself (the Adipocyte task's CellProfiler feature tables of the targets), scores kept."""
    doc = dict(doc)
    doc.pop("feature_tables", None)
    if doc.get("task") == "adipocyte":
        doc["results"] = [{**r, "features": {k: v for k, v in (r.get("features") or {}).items() if k != "target"}}
                          for r in doc.get("results", [])]
    return doc
