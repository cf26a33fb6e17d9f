"""The predict contract run in this process: the file form of the predict protocol and a local runtime.

:func:`predict_folder` is what ``vsbench predict SOLUTION --input DIR --output DIR`` runs (and what a container
entrypoint can run): it reads a contract input folder (``inputs.json`` when present, else the files of the
input socket) and writes the contract output folder (``containers/CONTRACT.md``).

:func:`run_local` runs an in-process solution on a split through the same contract, as the Docker runtime
runs an image: stage the split's inputs (:func:`vsbench.harness.contract.stage_inputs`), predict the
staged folder, ingest the outputs (:func:`vsbench.harness.contract.ingest_outputs`) into the prediction
layout ``vsbench evaluate`` reads, and write ``run.json`` with one :class:`CaseResult` per case. Nothing is
isolated (the solution runs with this process's rights), so the record says ``"sandboxed": false``.
"""

from __future__ import annotations

import json
import tempfile
import time
import traceback
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import tifffile
from tqdm import tqdm

from vsbench.harness import __version__
from vsbench.harness.contract import (
    ADIPOCYTE,
    CONTRACT_VERSION,
    FAILED,
    IMAGES,
    INPUT_SOCKETS,
    INPUTS_JSON,
    LMC,
    MAGNIFICATION_JSON,
    MAGNIFICATION_SOCKET,
    OUTPUT_SOCKETS,
    STATUSES,
    SUCCEEDED,
    CaseResult,
    ContractError,
    check_relative_name,
    ingest_outputs,
    lmc_storable,
    one_line,
    prepare_prediction_folder,
    stage_inputs,
)
from vsbench.harness.omeio import PlaneMeta, read_plane, write_plane
from vsbench.harness.predict import LOGS_DIR, RUN_RECORD, _write_json
from vsbench.harness.split import LMC_INPUT_RE, LMC_MODALITIES, Split

MAGNIFICATIONS = ("20x", "40x", "60x")


def solution_task(predictor: object) -> str:
    """The task of an in-process predictor (its ``task`` attribute; LMC predictors have none)."""
    return getattr(predictor, "task", LMC)


def read_input_folder(input_dir: Path | str, task: str) -> tuple[list[str], str | None]:
    """The case file names of a contract input folder, in order, and the magnification (adipocyte, else None).

    From ``inputs.json`` when present (its entries of the task's input socket, and the ``magnification``
    value), else every regular file of ``images/<input socket>/`` (sorted) and ``magnification.json``.
    :class:`ContractError` (one line) if the folder does not follow the contract.
    """
    input_dir = Path(input_dir)
    socket = INPUT_SOCKETS[task]
    socket_dir = input_dir / IMAGES / socket
    if not socket_dir.is_dir():
        raise ContractError(f"{input_dir}: no {IMAGES}/{socket}/ (not a contract input folder of the {task} task)")
    magnification = None
    manifest = input_dir / INPUTS_JSON
    if manifest.is_file():
        try:
            entries = json.loads(manifest.read_text())
        except json.JSONDecodeError as exc:
            raise ContractError(f"{manifest}: invalid JSON ({exc.msg} at line {exc.lineno})") from None
        if not isinstance(entries, list):
            raise ContractError(f"{manifest}: expected a list of socket values")
        names = []
        for entry in entries:
            slug = ((entry or {}).get("interface") or {}).get("slug") if isinstance(entry, dict) else None
            if slug == socket:
                name = (entry.get("image") or {}).get("name")
                if not isinstance(name, str) or check_relative_name(name) or "/" in name:
                    raise ContractError(f"{manifest}: bad image name {name!r} for socket {socket}")
                names.append(name)
            elif slug == MAGNIFICATION_SOCKET:
                magnification = entry.get("value")
    else:
        names = sorted(p.name for p in socket_dir.iterdir() if p.is_file() and not p.name.startswith("."))
        mag_file = input_dir / MAGNIFICATION_JSON
        if mag_file.is_file():
            try:
                magnification = json.loads(mag_file.read_text())
            except json.JSONDecodeError:
                raise ContractError(f"{mag_file}: not a JSON string such as \"20x\"") from None
    if not names:
        raise ContractError(f"{input_dir}: no case in {IMAGES}/{socket}/")
    if task == ADIPOCYTE and magnification not in MAGNIFICATIONS:
        raise ContractError(f"{input_dir}: magnification {magnification!r} is not one of "
                            f"{', '.join(MAGNIFICATIONS)} ({MAGNIFICATION_JSON} or the '{MAGNIFICATION_SOCKET}' "
                            f"entry of {INPUTS_JSON})")
    return names, magnification


def _lmc_modality(name: str, meta: PlaneMeta) -> str | None:
    if meta.channel in LMC_MODALITIES:
        return meta.channel
    m = LMC_INPUT_RE.match(name)
    return m["modality"] if m else None


def _write_lmc_outputs(output_dir: Path, name: str, shape: tuple[int, ...], meta: PlaneMeta, outputs: dict) -> None:
    for organelle, socket in OUTPUT_SOCKETS[LMC].items():
        if organelle not in outputs:
            raise ValueError(f"no output for {organelle}")
        arr = np.asarray(outputs[organelle])
        if arr.shape != shape:
            raise ValueError(f"{organelle} output shape {arr.shape} != input shape {shape}")
        if arr.dtype.kind == "b":
            arr = arr.astype(np.float32)
        write_plane(output_dir / IMAGES / socket / name, lmc_storable(arr),
                    PlaneMeta(meta.physical_size_x, meta.physical_size_y, organelle))


def _predict_file(predictor: object, task: str, input_dir: Path, output_dir: Path, name: str,
                  magnification: str | None) -> None:
    path = input_dir / IMAGES / INPUT_SOCKETS[task] / name
    if task == LMC:
        from vsbench.algorithms.base import Case

        image, meta = read_plane(path)
        case = Case(name, image, _lmc_modality(name, meta), meta.physical_size_x)
        _write_lmc_outputs(output_dir, name, image.shape, meta, predictor.predict(case))
        return
    from vsbench.algorithms.adipocyte_base import AdipocyteCase, check_outputs

    try:
        planes = np.asarray(tifffile.imread(path))
    except Exception as exc:  # tifffile raises many kinds on garbage
        raise ValueError(f"{name}: unreadable TIFF ({type(exc).__name__})") from None
    case = AdipocyteCase(name.split(".")[0], planes, magnification)
    outputs = check_outputs(predictor.predict(case), case.shape)
    for channel, socket in OUTPUT_SOCKETS[ADIPOCYTE].items():
        target = output_dir / IMAGES / socket / name
        target.parent.mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(target, outputs[channel], photometric="minisblack", metadata=None)


def predict_folder(predictor: object, input_dir: Path | str, output_dir: Path | str,
                   progress: bool = False, tracebacks: dict[str, str] | None = None) -> list[CaseResult]:
    """Run ``predictor`` on every case of the contract input folder ``input_dir`` into ``output_dir``.

    ``output_dir`` must be empty or absent. One :class:`CaseResult` per case file (``case`` = the file name):
    ``succeeded``, or ``failed`` with the exception's first line when reading, predicting or writing raised
    (its partial outputs are removed; the other cases go on); ``tracebacks``, when given, gets the traceback of
    each case that raised, by file name. :class:`ContractError` when ``input_dir`` is not a contract input folder
    of the predictor's task.
    """
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    task = solution_task(predictor)
    if task not in INPUT_SOCKETS:
        raise ContractError(f"'{getattr(predictor, 'name', predictor)}' is a {task} solution: no contract")
    names, magnification = read_input_folder(input_dir, task)
    if output_dir.exists() and (not output_dir.is_dir() or any(output_dir.iterdir())):
        raise ContractError(f"{output_dir}: the output folder must be empty")
    for socket in OUTPUT_SOCKETS[task].values():
        (output_dir / IMAGES / socket).mkdir(parents=True, exist_ok=True)
    results = []
    label = getattr(predictor, "name", "solution")
    for name in tqdm(names, desc=f"predict {label}", unit="case", disable=not progress):
        t0 = time.perf_counter()
        try:
            _predict_file(predictor, task, input_dir, output_dir, name, magnification)
            result = CaseResult(name, SUCCEEDED)
        except Exception as exc:  # one failing case never sinks the run
            for socket in OUTPUT_SOCKETS[task].values():
                (output_dir / IMAGES / socket / name).unlink(missing_ok=True)
            result = CaseResult(name, FAILED, one_line(exc))
            if tracebacks is not None:
                tracebacks[name] = "".join(traceback.format_exception(exc))
        result.durations["predict"] = round(time.perf_counter() - t0, 4)
        results.append(result)
    return results


def fit_solution(predictor: object, train: Split | None) -> None:
    """Train ``predictor`` on ``train`` if it learns and is not trained yet (:class:`ValueError` if it must
    learn and ``train`` is None, or ``train`` is a split of another task)."""
    if solution_task(predictor) == ADIPOCYTE:
        from vsbench.harness.predict_adipocyte import fit_adipocyte_if_needed

        fit_adipocyte_if_needed(predictor, train)
        return
    from vsbench.harness.predict import fit_if_needed

    if train is not None and train.task != LMC:
        raise ValueError(f"{train.root} is an {train.task} split; an lmc solution needs an lmc training split")
    fit_if_needed(predictor, train)


def run_local(solution: str | object, split: Split | Path | str, predictions: Path | str, *,
              checkpoint: Path | str | None = None, train: Split | Path | str | None = None,
              cases: Iterable[str] | None = None, overwrite: bool = False, max_output_bytes: int | None = None,
              work_dir: Path | str | None = None, progress: bool = False) -> dict:
    """Run ``solution`` (a registry name, or a predictor object) on ``split`` through the contract.

    Writes the valid outputs into ``predictions`` (the layout ``vsbench evaluate`` reads) and
    ``predictions/run.json``: ``runtime`` "local", ``sandboxed`` false, ``algorithm``, ``model``, ``task``,
    ``split``, ``inputs_hash``, ``contract_version``, ``vsbench_version``, ``summary`` (count per status)
    and ``cases`` (one :class:`CaseResult` per case: ``failed`` when predicting raised, with ``stderr`` the
    log ``predictions/logs/local.stderr.txt`` that holds its traceback, else the ingestion's ``succeeded`` /
    ``invalid_output``). ``predictions`` must be empty or absent unless ``overwrite``, which
    first removes the prediction layout and run.json there. Returns the record.
    """
    split = split if isinstance(split, Split) else Split(split)
    if isinstance(solution, str):
        from vsbench.algorithms.registry import algorithm_task, make_algorithm

        if algorithm_task(solution) != split.task:
            raise ValueError(f"{solution} is an {algorithm_task(solution)} algorithm; {split.root} is an "
                             f"{split.task} split")
        predictor = make_algorithm(solution, checkpoint=checkpoint)
    else:
        predictor = solution
    task = solution_task(predictor)
    if task != split.task:
        raise ValueError(f"{getattr(predictor, 'name', predictor)} is an {task} solution; {split.root} is an "
                         f"{split.task} split")
    predictions = prepare_prediction_folder(predictions, task, overwrite)
    train_split = None if train is None else (train if isinstance(train, Split) else Split(train))
    fit_solution(predictor, train_split)

    with tempfile.TemporaryDirectory(prefix="vsbench-local-", dir=work_dir) as tmp:
        input_dir, output_dir = Path(tmp) / "input", Path(tmp) / "output"
        staged = stage_inputs(split, input_dir, cases)
        tracebacks: dict[str, str] = {}
        predicted = {r.case: r for r in predict_folder(predictor, input_dir, output_dir, progress=progress,
                                                       tracebacks=tracebacks)}
        notes: list[str] = []
        ingested = ingest_outputs(output_dir, staged, predictions, task, max_bytes=max_output_bytes, notes=notes)
    log = predictions / LOGS_DIR / "local.stderr.txt"  # the tracebacks of the cases that raised
    if tracebacks:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("".join(f"--- {name}\n{text}" for name, text in tracebacks.items()))
    results = []
    for case, result in zip(staged, ingested, strict=True):
        ran = predicted.get(case.file_name, CaseResult(case.case, FAILED, "the solution did not run this case"))
        durations = {**ran.durations, **result.durations}
        if ran.status != SUCCEEDED:
            result = CaseResult(case.case, FAILED, ran.reason,
                                stderr=str(log) if case.file_name in tracebacks else None)
        result.durations = durations
        results.append(result)
    record = {
        "runtime": "local",
        "sandboxed": False,
        "algorithm": getattr(predictor, "name", type(predictor).__name__),
        "model": getattr(predictor, "provenance", None),
        "task": task,
        "split": str(split.root),
        "inputs_hash": split.manifest.get("inputs_hash"),
        "contract_version": CONTRACT_VERSION,
        "vsbench_version": __version__,
        "summary": {s: sum(r.status == s for r in results) for s in STATUSES},
        "cases": [r.to_dict() for r in results],
    }
    if notes:
        record["notes"] = notes
    _write_json(predictions / RUN_RECORD, record)
    return record
