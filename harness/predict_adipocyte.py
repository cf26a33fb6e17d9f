"""Run an in-process adipocyte predictor over a split and write its outputs in the container layout.

The prediction of channel ``c`` (nuclei, lipids, cytoplasm) for image set ``<well>_F<site>`` is::

    PRED/<c>-fluorescence-tiff/<CV7000 name of that set's ground truth c>

e.g. ``PRED/lipids-fluorescence-tiff/AssayPlate_Greiner_#655090_B03_T0001F001L01A02Z01C02.tif``: a
uint16 TIFF of the shape of the input planes, in the raw target intensity scale (the challenge scores
raw 16-bit values, ``adipocyte.md`` §1.3). Keeping the ground-truth file names lets CellProfiler's
order-based image-set matching pair predictions and targets.

``PRED/run.json`` is the run record of :mod:`vsbench.harness.predict` with the same fields and
semantics (``algorithm``, ``task``, ``split``, ``inputs_hash``, ``vsbench_version``, ``cases`` with
``image`` = the set key, ``status`` ok/failed, ``reason``, ``seconds``) plus ``magnification``. It is
rewritten atomically after every set, so a killed run resumes: sets recorded ok whose three files exist
are skipped. A set whose loading or prediction fails, or whose outputs break the contract of
:func:`vsbench.algorithms.adipocyte_base.check_outputs`, is recorded as failed and leaves no file; the
run goes on. A folder holding another algorithm's predictions, or predictions for other inputs, is
refused unless ``overwrite``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tifffile
from tqdm import tqdm

from vsbench.algorithms.adipocyte_base import (
    CHANNELS,
    AdipocyteCase,
    AdipocytePredictor,
    AdipocyteTrainable,
    AdipocyteTrainingExample,
    check_outputs,
)
from vsbench.harness import __version__
from vsbench.harness.adipocyte_split import (
    TASK,
    AdipocyteSet,
    adipocyte_sets,
    read_uint16_plane,
    split_magnification,
    target_name,
)
from vsbench.harness.predict import RUN_RECORD, _write_json  # the same record file as LMC's
from vsbench.harness.split import Split


def output_dir(predictions: Path, channel: str) -> Path:
    """``PRED/<channel>-fluorescence-tiff``."""
    return Path(predictions) / f"{channel}-fluorescence-tiff"


def prediction_path(predictions: Path, channel: str, aset: AdipocyteSet) -> Path:
    """Where the prediction of ``channel`` for image set ``aset`` goes (its ground truth's file name)."""
    return output_dir(predictions, channel) / target_name(aset.well, aset.site, channel)


def load_adipocyte_case(split: Split, aset: AdipocyteSet) -> AdipocyteCase:
    """The 7 brightfield planes of ``aset`` as an :class:`AdipocyteCase`; :class:`ValueError` (one line)
    if a plane is unreadable, not a uint16 2-D image, or of another shape than Z01."""
    paths = aset.input_paths(split)
    planes = [read_uint16_plane(p) for p in paths]
    for path, plane in zip(paths, planes, strict=True):
        if plane.shape != planes[0].shape:
            raise ValueError(f"{path.name}: shape {plane.shape} differs from Z01's {planes[0].shape}")
    return AdipocyteCase(aset.key, np.stack(planes), aset.magnification)


def adipocyte_training_examples(split: Split) -> Iterator[AdipocyteTrainingExample]:
    """Every image set of an adipocyte training split with the ground-truth channels it has.

    Sets without any ground truth are skipped. Raises :class:`SplitError` if ``split`` is not an
    adipocyte split, :class:`ValueError` if a file is unreadable or a target's shape differs from the input.
    """
    for aset in adipocyte_sets(split):
        if not aset.targets:
            continue
        case = load_adipocyte_case(split, aset)
        targets = {}
        for channel in aset.targets:
            target = read_uint16_plane(aset.target_path(split, channel))
            if target.shape != case.shape:
                raise ValueError(f"{aset.target_path(split, channel).name}: shape {target.shape} differs from "
                                 f"the input planes' {case.shape}")
            targets[channel] = target
        yield AdipocyteTrainingExample(case, targets)


def predictor_task(predictor: object) -> str:
    """The task an in-process predictor was written for (``task`` attribute; LMC predictors have none)."""
    return getattr(predictor, "task", "lmc")


def fit_adipocyte_if_needed(predictor: AdipocytePredictor, train: Split | None, for_split: Split | None = None) -> None:
    """Call ``predictor.fit`` on the examples of ``train`` if the predictor learns and is not trained yet
    (``fitted``, e.g. loaded from a checkpoint).

    :class:`ValueError` if it learns and ``train`` is None, or ``train`` is not an adipocyte split. A warning
    if ``for_split`` (the split to be predicted) has another magnification than ``train`` (the challenge's
    models are trained per magnification).
    """
    if isinstance(predictor, AdipocyteTrainable) and not getattr(predictor, "fitted", False):
        if train is None:
            raise ValueError(f"algorithm '{predictor.name}' learns from data: pass a training split (--train)")
        if train.task != TASK:
            raise ValueError(f"{train.root} is an {train.task} split; '{predictor.name}' needs an adipocyte "
                             "training split")
        if for_split is not None and for_split.task == TASK:
            trained, predicted = split_magnification(train), split_magnification(for_split)
            if trained != predicted:
                warnings.warn(f"'{predictor.name}' is trained on {trained} images ({train.root}) and predicts "
                              f"{predicted} images ({for_split.root})", stacklevel=2)
        predictor.fit(adipocyte_training_examples(train))


def run_adipocyte_predictor(
    predictor: AdipocytePredictor, split: Split, out: Path, overwrite: bool = False, progress: bool = True
) -> dict:
    """Predict every image set of ``split`` into ``out``; returns the run record (also in ``out/run.json``).

    Raises :class:`ValueError` (before writing anything) if the predictor or the split is not of the
    adipocyte task, or ``out`` holds predictions of another algorithm or for other inputs (unless
    ``overwrite``, which first removes every earlier prediction and the record).
    """
    if predictor_task(predictor) != TASK or split.task != TASK:
        raise ValueError(f"{predictor.name} is an {predictor_task(predictor)} algorithm; {split.root} is an "
                         f"{split.task} split")
    sets = adipocyte_sets(split)  # SplitError unless an adipocyte split
    out = Path(out)
    record_path = out / RUN_RECORD
    if overwrite:
        for channel in CHANNELS:
            shutil.rmtree(output_dir(out, channel), ignore_errors=True)
        record_path.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    try:
        previous = json.loads(record_path.read_text()) if record_path.is_file() else {}
    except json.JSONDecodeError:
        raise ValueError(f"{record_path}: not a readable run record; choose another folder or --overwrite") from None
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
        "task": TASK,
        "split": str(split.root),
        "inputs_hash": split.manifest.get("inputs_hash"),
        "magnification": split_magnification(split),
        "vsbench_version": __version__,
        "cases": [],
    }
    for aset in tqdm(sets, desc=f"predict {predictor.name}", unit="set", disable=not progress):
        done = statuses.get(aset.key, {}).get("status") == "ok" and all(
            prediction_path(out, c, aset).is_file() for c in CHANNELS
        )
        if done:
            continue
        statuses[aset.key] = _predict_one(predictor, split, aset, out)
        record["cases"] = [statuses[s.key] for s in sets if s.key in statuses]
        _write_json(record_path, record)  # a killed run resumes from here
    record["cases"] = [statuses[s.key] for s in sets if s.key in statuses]
    _write_json(record_path, record)
    return record


def _tmp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")  # not *.tif: never mistaken for a prediction


def _predict_one(predictor: AdipocytePredictor, split: Split, aset: AdipocyteSet, out: Path) -> dict:
    t0 = time.perf_counter()
    finals = {c: prediction_path(out, c, aset) for c in CHANNELS}
    try:
        case = load_adipocyte_case(split, aset)
        outputs = check_outputs(predictor.predict(case), case.shape)
        for channel, path in finals.items():  # all three to temporary files first, then renamed
            path.parent.mkdir(parents=True, exist_ok=True)
            tifffile.imwrite(_tmp_path(path), outputs[channel], photometric="minisblack", metadata=None)
        for path in finals.values():
            _tmp_path(path).replace(path)
        status = {"image": aset.key, "status": "ok"}
    except Exception as exc:  # one failing set never sinks the run
        for path in finals.values():  # no partial or stale output may be scored for a failed set
            path.unlink(missing_ok=True)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        status = {"image": aset.key, "status": "failed", "reason": reason}
    finally:
        for path in finals.values():
            _tmp_path(path).unlink(missing_ok=True)
    status["seconds"] = round(time.perf_counter() - t0, 4)
    return status


