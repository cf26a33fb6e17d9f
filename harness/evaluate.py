"""Score a prediction folder against a split: the organisers' ``metrics.json``, and more.

``metrics.json`` holds ``results`` (one entry per input, one dict of metric values per organelle
that has ground truth), ``aggregates`` (also under the organisers' spelling ``agregate``),
``transmitted_light``, ``z_deviation``, ``errors`` and ``provenance``. A case that cannot be
scored (missing, unreadable, wrongly shaped or non-finite prediction) gets an entry in ``errors``
and is left out of every mean; it never stops the run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from vsbench.harness import __version__
from vsbench.harness.omeio import ImageReadError, read_image, read_plane
from vsbench.harness.predict import LOGS_DIR, RUN_RECORD, prediction_path
from vsbench.harness.split import BEST_Z_CSV, GROUND_TRUTH, LMC_ORGANELLE_FILES, LMCCase, Split, sha256_file
from vsbench.metrics import aggregate
from vsbench.metrics.lmc import ORGANELLE_METRICS, MetricInputError, organelle_metrics

EVALUATOR = "vsbench.metrics.lmc (Light My Cells 2024 definitions)"


class _TargetCache:
    """Ground truth is shared by every slice of a field of view: read it once, and only after its
    sha256 matches the split's manifest (a score must be computed on the files the split_hash
    names)."""

    def __init__(self, split: Split, size: int = 16):
        self.size = size
        self.root = split.root
        self.digests = {f["path"]: f["sha256"] for f in split.manifest["files"]}
        self._items: OrderedDict[Path, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: Path) -> np.ndarray:
        with self._lock:
            if path in self._items:
                self._items.move_to_end(path)
                return self._items[path]
        rel = path.relative_to(self.root).as_posix()
        if self.digests.get(rel) != sha256_file(path):
            raise ImageReadError(f"{path.name}: differs from the split's manifest (run 'vsbench data verify')")
        image = read_image(path)
        with self._lock:
            self._items[path] = image
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return image


def _score_case(split: Split, predictions: Path, case: LMCCase, targets: _TargetCache, cellprofiler: bool = False):
    entry = {
        "image": case.name,
        "modality": case.modality,
        "image_z": case.image_z,
        "best_z": case.best_z,
        "z_deviation": case.z_deviation,
    }
    errors = []
    with_truth = set(split.organelles(case))
    for organelle in LMC_ORGANELLE_FILES:
        entry[organelle] = {}
        pred_path = prediction_path(predictions, organelle, case.name)
        if not pred_path.is_file():
            # the contract asks for all four outputs, even where there is no ground truth
            reason = "missing prediction" + ("" if organelle in with_truth else " (no ground truth: not scored)")
            errors.append({"image": case.name, "organelle": organelle, "reason": reason})
            continue
        if organelle not in with_truth:
            continue
        try:
            gt = targets.get(split.target_path(case, organelle))
        except ImageReadError as exc:
            errors.append({"image": case.name, "organelle": organelle, "reason": f"ground truth: {exc}"})
            continue
        try:
            pred = read_image(pred_path)
            entry[organelle] = organelle_metrics(organelle, gt, pred)
        except (ImageReadError, MetricInputError) as exc:
            errors.append({"image": case.name, "organelle": organelle, "reason": str(exc)})
            continue
        if cellprofiler and organelle == "nucleus":
            try:
                entry[organelle].update(_cp_nucleus_metrics(split, case, targets, gt, pred))
            except Exception as exc:  # CellProfiler's library raises many types; the case's other metrics stand
                errors.append({"image": case.name, "organelle": organelle, "reason": f"CellProfiler: {exc}"})
    return entry, errors


def _cp_nucleus_metrics(split: Split, case: LMCCase, targets: _TargetCache, gt: np.ndarray,
                        pred: np.ndarray) -> dict[str, float]:
    """The ``CP_`` metrics of one nucleus prediction (:mod:`vsbench.metrics.cp_nuclei`). The target's
    features are measured once per target file, cached by its sha256 in the split manifest; the
    target's pixel size (OME PhysicalSizeX, µm) sets the nucleus diameter of both pipelines."""
    from vsbench.metrics import cp_nuclei  # imports CellProfiler's library: only when asked for

    path = split.target_path(case, "nucleus")

    def measure() -> tuple[float | None, dict[str, float]]:
        meta = read_plane(path)[1]
        pixel_size = meta.physical_size_x or meta.physical_size_y
        return pixel_size, cp_nuclei.nucleus_features(gt, pixel_size)

    pixel_size, target = cp_nuclei.TARGET_FEATURES.get(targets.digests[path.relative_to(split.root).as_posix()],
                                                       measure)
    return cp_nuclei.nucleus_feature_errors(target, cp_nuclei.nucleus_features(pred, pixel_size))


def _prediction_files(predictions: Path) -> list[Path]:
    """The files :func:`_predictions_digest` covers, in its order (the run record and logs left out)."""
    return sorted(p for p in predictions.rglob("*") if p.is_file() and p.name != RUN_RECORD
                  and p.relative_to(predictions).parts[0] != LOGS_DIR)


def file_digests(predictions: Path | str, paths: list[Path]) -> list[str]:
    """``relative path<TAB>sha256`` lines of ``paths`` (files under ``predictions``): the pieces of
    :func:`_predictions_digest`, so that the hashing can run in parallel, anywhere."""
    predictions = Path(predictions)
    return [f"{Path(p).relative_to(predictions).as_posix()}\t{sha256_file(Path(p))}\n" for p in paths]


def combine_digests(lines: list[str]) -> str:
    """The predictions hash from the :func:`file_digests` lines of every prediction file, in order."""
    h = hashlib.sha256()
    for line in lines:
        h.update(line.encode())
    return h.hexdigest()


def _predictions_digest(predictions: Path) -> str:
    return combine_digests(file_digests(predictions, _prediction_files(predictions)))


def check_lmc_inputs(split: Split, predictions: Path) -> list[LMCCase]:
    """The split's cases, after the checks every LMC evaluation makes before scoring (a ValueError
    names the first problem)."""
    if split.task != "lmc":
        raise ValueError(f"{split.root} is a '{split.task}' split, not 'lmc'")
    if not Path(predictions).is_dir():
        raise ValueError(f"{predictions}: prediction folder not found")
    cases = split.cases()
    if not cases:
        raise ValueError(f"{split.root}: the split has no inputs")
    digests = {f["path"]: f["sha256"] for f in split.manifest["files"]}
    best_z = split.ground_truth_dir / BEST_Z_CSV
    if best_z.is_file() and digests.get(f"{GROUND_TRUTH}/{BEST_Z_CSV}") != sha256_file(best_z):
        raise ValueError(f"{best_z}: differs from the split's manifest (run 'vsbench data verify')")
    return cases


def score_lmc_cases(split_root: Path | str, predictions: Path | str, case_names: list[str],
                    cellprofiler: bool = False) -> list[tuple[dict, list[dict]]]:
    """Score the cases named ``case_names`` (input file names) of the split at ``split_root``: one
    ``(results entry, errors)`` per name, in order. Self-contained (opens the split, has its own
    ground-truth cache) and picklable by reference, so it runs in-process, in a worker process or as
    a Dask task; :func:`assemble_lmc_metrics` turns the concatenated chunks into metrics.json."""
    split = Split(split_root)
    by_name = {c.name: c for c in split.cases()}
    missing = [n for n in case_names if n not in by_name]
    if missing:
        raise ValueError(f"{split.root}: no input named {missing[0]}")
    targets = _TargetCache(split)
    return [_score_case(split, Path(predictions), by_name[n], targets, cellprofiler) for n in case_names]


def assemble_lmc_metrics(split: Split, predictions: Path, done: list[tuple[dict, list[dict]]],
                         cellprofiler: bool = False, predictions_hash: str | None = None) -> dict:
    """metrics.json from the ``(entry, errors)`` of every case of ``split`` in :meth:`Split.cases`
    order (as :func:`score_lmc_cases` returns them). ``predictions_hash``: the digest when it was
    computed elsewhere (:func:`file_digests` + :func:`combine_digests`); None computes it here."""
    predictions = Path(predictions)
    results = [entry for entry, _ in done]
    errors = [e for _, errs in done for e in errs]

    table = _tidy(results)
    means = aggregate.organelle_means(table)
    run_record = predictions / RUN_RECORD
    algorithm = json.loads(run_record.read_text()).get("algorithm") if run_record.is_file() else None
    metrics = {
        "results": [json_safe(r) for r in results],
        "aggregates": means,
        "agregate": means,  # the organisers' spelling, read by their leaderboard tooling
        "transmitted_light": aggregate.modality_means(table),
        "z_deviation": aggregate.z_deviation_means(table),
        "errors": errors,
        "provenance": {
            "task": split.task,
            "split": str(split.root.resolve()),
            "split_hash": split.split_hash,
            "inputs_hash": split.manifest.get("inputs_hash"),
            "predictions": str(predictions.resolve()),
            "predictions_hash": predictions_hash or _predictions_digest(predictions),
            "algorithm": algorithm,
            "evaluator": EVALUATOR,
            "metrics": {o: list(m) for o, m in ORGANELLE_METRICS.items()},
            "vsbench_version": __version__,
            "created_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "n_cases": len(done),
            "n_errors": len(errors),
        },
    }
    if cellprofiler:
        from vsbench.metrics import cp_nuclei

        metrics["provenance"]["metrics"]["nucleus"] += list(cp_nuclei.CP_METRICS)
        metrics["provenance"]["cellprofiler"] = {"organelle": "nucleus", **cp_nuclei.provenance()}
    return metrics


def evaluate_lmc(split: Split, predictions: Path, workers: int | None = None, progress: bool = True,
                 cellprofiler: bool = False) -> dict:
    """Score ``predictions`` (container output layout) on an LMC ``split``; returns metrics.json.

    ``cellprofiler`` adds CellProfiler nucleus measurements to every nucleus score: the ``CP_`` relative
    errors of :mod:`vsbench.metrics.cp_nuclei`, carried through every mean like the other metrics, and
    ``provenance['cellprofiler']`` (metric names, pipeline, library version).

    Threads in this process; :func:`vsbench.harness.scale.evaluate_lmc_dask` runs the same scoring
    (:func:`score_lmc_cases`) as Dask tasks and gives the same metrics.json."""
    predictions = Path(predictions)
    cases = check_lmc_inputs(split, predictions)
    targets = _TargetCache(split)
    workers = workers or min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_score_case, split, predictions, c, targets, cellprofiler) for c in cases]
        done = [f.result() for f in tqdm(futures, desc="evaluate", unit="case", disable=not progress)]
    return assemble_lmc_metrics(split, predictions, done, cellprofiler)


def json_safe(value):
    """``value`` with every NaN / inf float replaced by None (JSON null) and numpy scalars made Python."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _tidy(results: list[dict]):
    rows = []
    for entry in results:
        for organelle in LMC_ORGANELLE_FILES:
            for metric, value in (entry.get(organelle) or {}).items():
                rows.append({**{k: entry.get(k) for k in ("image", "modality", "image_z", "best_z", "z_deviation")},
                             "organelle": organelle, "metric": metric,
                             "value": float("nan") if value is None else value})
    return aggregate.tidy(rows)


def tidy_from_metrics(metrics: dict):
    """The tidy table of a metrics.json (for printing and comparison)."""
    return _tidy(metrics["results"])


def write_metrics(metrics: dict, out: Path) -> None:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(metrics, indent=1, allow_nan=False) + "\n")
    tmp.replace(out)
