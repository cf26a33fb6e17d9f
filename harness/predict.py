"""Run an in-process predictor over a split and write its outputs in the container contract.

The prediction of organelle ``o`` for input file ``X`` is ``PRED/<o>-fluorescence-ome-tiff/X``
(the grand-challenge interface slugs of Light My Cells, ``lmc.md`` §2.3), written with the input's
pixel size. ``PRED/run.json`` records the algorithm, the split's ``inputs_hash`` and every case's
status: a failing case is recorded and the run goes on; a rerun skips cases already written.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from tqdm import tqdm

from vsbench.algorithms.base import ORGANELLES, Case, Predictor, Trainable, TrainingExample
from vsbench.harness import __version__
from vsbench.harness.omeio import PlaneMeta, read_plane, write_plane
from vsbench.harness.split import LMCCase, Split

RUN_RECORD = "run.json"
LOGS_DIR = "logs"  # stdout/stderr a runtime kept, beside run.json; not part of the predictions


def output_dir(predictions: Path, organelle: str) -> Path:
    return Path(predictions) / f"{organelle}-fluorescence-ome-tiff"


def prediction_path(predictions: Path, organelle: str, case_name: str) -> Path:
    return output_dir(predictions, organelle) / case_name


def load_case(split: Split, case: LMCCase) -> tuple[Case, PlaneMeta]:
    image, meta = read_plane(split.input_path(case))
    modality = meta.channel if meta.channel in ("BF", "PC", "DIC") else case.modality
    return Case(case.name, image, modality, meta.physical_size_x), meta


def training_examples(split: Split) -> Iterator[TrainingExample]:
    """Every input of a training split with the ground truth of its field of view.

    Slices of one field share the same target arrays (read once).
    """
    targets: dict[int, dict[str, np.ndarray]] = {}
    for lmc_case in split.cases():
        if lmc_case.image_id not in targets:
            targets.clear()  # cases come sorted by field; keep only the current field in memory
            targets[lmc_case.image_id] = {
                o: read_plane(split.target_path(lmc_case, o))[0] for o in split.organelles(lmc_case)
            }
        case, _ = load_case(split, lmc_case)
        yield TrainingExample(case, targets[lmc_case.image_id])


def fit_if_needed(predictor: Predictor, train: Split | None) -> None:
    """Call ``predictor.fit`` on the examples of ``train`` if the predictor learns and is not trained yet
    (``fitted``, e.g. loaded from a checkpoint); :class:`ValueError` if it must learn and ``train`` is None."""
    if isinstance(predictor, Trainable) and not getattr(predictor, "fitted", False):
        if train is None:
            raise ValueError(f"algorithm '{predictor.name}' learns from data: pass a training split (--train)")
        predictor.fit(training_examples(train))


def run_predictor(
    predictor: Predictor, split: Split, out: Path, overwrite: bool = False, progress: bool = True
) -> dict:
    """Predict every case of ``split`` into ``out``; returns the run record (also in run.json)."""
    out = Path(out)
    record_path = out / RUN_RECORD
    if overwrite:
        for organelle in ORGANELLES:
            shutil.rmtree(output_dir(out, organelle), ignore_errors=True)
        record_path.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    previous = json.loads(record_path.read_text()) if record_path.is_file() else {}
    if previous and previous.get("inputs_hash") != split.manifest.get("inputs_hash"):
        raise ValueError(f"{out} holds predictions for other inputs; choose another folder or --overwrite")
    if previous and previous.get("algorithm") != predictor.name:
        raise ValueError(f"{out} holds predictions of '{previous.get('algorithm')}'; choose another folder "
                         "or --overwrite")
    model = getattr(predictor, "provenance", None)  # e.g. the checkpoint and its sha256
    if previous and previous.get("model", model) != model:
        raise ValueError(f"{out} holds predictions of another model of '{predictor.name}' (run.json 'model' "
                         "differs: other weights or settings); choose another folder or --overwrite")
    statuses: dict[str, dict] = {c["image"]: c for c in previous.get("cases", [])}
    record = {
        "algorithm": predictor.name,
        "model": model,
        "task": split.task,
        "split": str(split.root),
        "inputs_hash": split.manifest.get("inputs_hash"),
        "vsbench_version": __version__,
        "cases": [],
    }
    cases = split.cases()
    for lmc_case in tqdm(cases, desc=f"predict {predictor.name}", unit="case", disable=not progress):
        done = statuses.get(lmc_case.name, {}).get("status") == "ok" and all(
            prediction_path(out, o, lmc_case.name).is_file() for o in ORGANELLES
        )
        if done:
            continue
        statuses[lmc_case.name] = _predict_one(predictor, split, lmc_case, out)
        record["cases"] = [statuses[c.name] for c in cases if c.name in statuses]
        _write_json(record_path, record)  # a killed run resumes from here
    record["cases"] = [statuses[c.name] for c in cases if c.name in statuses]
    _write_json(record_path, record)
    return record


def _write_json(path: Path, obj: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1) + "\n")
    tmp.replace(path)


def _predict_one(predictor: Predictor, split: Split, lmc_case: LMCCase, out: Path) -> dict:
    t0 = time.perf_counter()
    try:
        case, meta = load_case(split, lmc_case)
        outputs = predictor.predict(case)
        for organelle in ORGANELLES:
            if organelle not in outputs:
                raise ValueError(f"no output for {organelle}")
            arr = np.asarray(outputs[organelle])
            if arr.shape != case.image.shape:
                raise ValueError(f"{organelle} output shape {arr.shape} != input shape {case.image.shape}")
            if arr.dtype == np.float16 or arr.dtype.kind == "b":
                arr = arr.astype(np.float32)
            write_plane(prediction_path(out, organelle, lmc_case.name), arr, PlaneMeta(
                meta.physical_size_x, meta.physical_size_y, organelle))
        status = {"image": lmc_case.name, "status": "ok"}
    except Exception as exc:  # one failing case never sinks the run
        for organelle in ORGANELLES:  # no partial or stale output may be scored for a failed case
            prediction_path(out, organelle, lmc_case.name).unlink(missing_ok=True)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        status = {"image": lmc_case.name, "status": "failed", "reason": reason}
    status["seconds"] = round(time.perf_counter() - t0, 4)
    return status
