"""The container predict contract (``containers/CONTRACT.md``), without Docker.

Folders, as on grand-challenge::

    INPUT/images/<input socket>/<case file>          the cases to predict (nothing else of the split)
    INPUT/inputs.json                                one entry per staged file (grand-challenge's shape)
    INPUT/magnification.json                         adipocyte only: "20x", "40x" or "60x"
    OUTPUT/images/<output socket>/<same file name>   one image per output socket and case

:func:`stage_inputs` writes ``INPUT`` for the cases of a split from its ``inputs/`` only;
:func:`ingest_outputs` checks ``OUTPUT`` without following symbolic links and copies every valid case into
the prediction layout that ``vsbench evaluate`` reads (:mod:`vsbench.harness.predict`,
:mod:`vsbench.harness.predict_adipocyte`). :class:`CaseResult` is one entry of ``run.json``; the local
runtime (:mod:`vsbench.harness.local_runtime`) and the Docker runtime share it.

Adipocyte cases are staged as one 7-page uint16 TIFF per image set, ``<well>_F<site>.tif`` (pages Z01..Z07):
grand-challenge gives an algorithm one image per socket, so the 7 CV7000 files become one z-stack.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import tifffile

from vsbench.harness.adipocyte_split import (
    CHANNELS,
    adipocyte_sets,
    read_uint16_plane,
    split_magnification,
    target_name,
)
from vsbench.harness.adipocyte_split import TASK as ADIPOCYTE
from vsbench.harness.omeio import PlaneMeta, read_plane, write_plane
from vsbench.harness.predict import LOGS_DIR, RUN_RECORD
from vsbench.harness.split import Split

CONTRACT_VERSION = "1"
LMC = "lmc"
TASKS = (LMC, ADIPOCYTE)
ORGANELLES = ("nucleus", "mitochondria", "tubulin", "actin")  # vsbench.algorithms.base.ORGANELLES
IMAGES = "images"
INPUTS_JSON = "inputs.json"
MAGNIFICATION_SOCKET = "magnification"
MAGNIFICATION_JSON = "magnification.json"

# per task: the input image socket and output key (organelle / channel) -> output socket
INPUT_SOCKETS = {LMC: "organelles-transmitted-light-ome-tiff", ADIPOCYTE: "brightfield-z-stack-tiff"}
OUTPUT_SOCKETS = {
    LMC: {o: f"{o}-fluorescence-ome-tiff" for o in ORGANELLES},
    ADIPOCYTE: {c: f"{c}-fluorescence-tiff" for c in CHANNELS},
}

# image labels of a vsbench-aware image (all optional; without any org.vsbench.* label the image is run
# as a plain grand-challenge algorithm, one case per run)
LABEL_PREFIX = "org.vsbench."
LABEL_TASK = "org.vsbench.task"  # lmc | adipocyte
LABEL_CONTRACT_VERSION = "org.vsbench.contract-version"  # CONTRACT_VERSION
LABEL_INPUT_SOCKETS = "org.vsbench.input-sockets"  # comma-separated slugs
LABEL_OUTPUT_SOCKETS = "org.vsbench.output-sockets"  # comma-separated slugs
LABEL_BATCH = "org.vsbench.batch"  # "true": all cases of a split in one run
LABEL_GPU = "org.vsbench.gpu"  # "true": give the container a GPU when the host has one
LABEL_MODEL_NAME = "org.vsbench.model.name"
LABEL_MODEL_VERSION = "org.vsbench.model.version"
LABELS = (LABEL_TASK, LABEL_CONTRACT_VERSION, LABEL_INPUT_SOCKETS, LABEL_OUTPUT_SOCKETS, LABEL_BATCH, LABEL_GPU,
          LABEL_MODEL_NAME, LABEL_MODEL_VERSION)

# run.json case statuses
SUCCEEDED, FAILED, TIMED_OUT, OOM, INVALID_OUTPUT = "succeeded", "failed", "timed_out", "oom", "invalid_output"
STATUSES = (SUCCEEDED, FAILED, TIMED_OUT, OOM, INVALID_OUTPUT)

_SLACK = 1 << 20  # bytes of metadata and tiling overhead allowed in one output file


class ContractError(ValueError):
    """A folder or image that does not follow the contract (one-line message)."""


@dataclass(frozen=True)
class StagedCase:
    """One case as written into a contract input folder.

    ``case``: its identity in run.json and metrics (LMC: the input file name; adipocyte: the set key
    ``<well>_F<site>``). ``file_name``: its name in the input socket and in every output socket.
    ``shape``: (H, W) every output must have. ``predictions``: output key -> file name in the prediction
    layout. ``physical_size``: the input's pixel size in micrometres (x, y), written into LMC predictions.
    """

    case: str
    file_name: str
    shape: tuple[int, int]
    predictions: dict[str, str] = field(hash=False)
    physical_size: tuple[float | None, float | None] = (None, None)


@dataclass
class CaseResult:
    """One entry of ``run.json``'s ``cases``.

    ``status``: one of :data:`STATUSES`; ``reason``: one line, None when it succeeded; ``exit_code`` of the
    process that predicted it (None in-process); ``durations``: seconds by phase (``predict``, ``ingest``,
    ...); ``stdout``/``stderr``: where the runtime kept the logs (None when not kept); ``image_digest``: the
    id of the container image that predicted it (None in-process).
    """

    case: str
    status: str
    reason: str | None = None
    exit_code: int | None = None
    durations: dict[str, float] = field(default_factory=dict)
    stdout: str | None = None
    stderr: str | None = None
    image_digest: str | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status {self.status!r} is not one of {', '.join(STATUSES)}")

    def to_dict(self) -> dict:
        """The JSON object of run.json."""
        return asdict(self)


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type name."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return text or type(exc).__name__


def task_of_labels(labels: dict[str, str] | None) -> tuple[str, bool] | None:
    """``(task, batch)`` declared by an image's ``org.vsbench.*`` labels, or None for a plain grand-challenge
    image (no such label). :class:`ContractError` if the labels name an unknown task or contract version."""
    labels = labels or {}
    ours = {k: v for k, v in labels.items() if k.startswith(LABEL_PREFIX)}
    if not ours:
        return None
    task = ours.get(LABEL_TASK)
    if task not in TASKS:
        raise ContractError(f"label {LABEL_TASK}={task!r}: not one of {', '.join(TASKS)}")
    version = ours.get(LABEL_CONTRACT_VERSION, CONTRACT_VERSION)
    if version != CONTRACT_VERSION:
        raise ContractError(f"label {LABEL_CONTRACT_VERSION}={version!r}: this vsbench speaks contract "
                            f"{CONTRACT_VERSION}")
    return task, ours.get(LABEL_BATCH, "false").strip().lower() in ("1", "true", "yes")


def check_relative_name(name: str) -> str | None:
    """Why ``name`` (a path relative to a contract folder, ``/``-separated) may not be used, or None.

    Refused: empty, absolute paths, ``..`` anywhere, backslashes, NUL or control characters, hidden
    components (leading dot), components longer than 255 bytes.
    """
    if not name:
        return "empty name"
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return f"{name!r} is an absolute path"
    if ".." in name:
        return f"{name!r} contains '..'"
    if "\\" in name or any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        return f"{name!r} contains a backslash or a control character"
    for part in name.split("/"):
        if not part or part == ".":
            return f"{name!r} has an empty or '.' component"
        if part.startswith("."):
            return f"{name!r} has a hidden component"
        if len(part.encode("utf-8", "surrogateescape")) > 255:
            return f"{name!r} has a component longer than 255 bytes"
    return None


# --- staging ---------------------------------------------------------------------------------------------


def _inputs_json_entry(pk: int, socket: str, title: str, file_name: str, case: str) -> dict:
    return {
        "pk": pk,
        "interface": {"pk": 0, "slug": socket, "title": title, "kind": "Image", "super_kind": "Image",
                      "relative_path": f"{IMAGES}/{socket}"},
        "image": {"pk": case, "name": file_name},
        "file": None,
        "value": None,
    }


def _magnification_entry(pk: int, magnification: str) -> dict:
    return {
        "pk": pk,
        "interface": {"pk": 1, "slug": MAGNIFICATION_SOCKET, "title": "Magnification", "kind": "String",
                      "super_kind": "Value", "relative_path": MAGNIFICATION_JSON},
        "image": None,
        "file": None,
        "value": magnification,
    }


def _copy_regular(src: Path, dst: Path) -> None:
    """Copy ``src`` (which must be a regular file, not a link) to ``dst`` read-only."""
    st = os.lstat(src)
    if not stat.S_ISREG(st.st_mode):
        raise ContractError(f"inputs/{src.name}: not a regular file (a link or special file is never staged)")
    shutil.copyfile(src, dst, follow_symlinks=False)
    os.chmod(dst, 0o444)


def case_ids(split: Split) -> list[str]:
    """The cases of ``split`` as :func:`stage_inputs` names them, in split order (LMC input file names,
    adipocyte set keys)."""
    if split.task == LMC:
        return [c.name for c in split.cases()]
    return [s.key for s in adipocyte_sets(split)]


def stage_inputs(split: Split | Path | str, input_dir: Path | str,
                 cases: Iterable[str] | None = None) -> list[StagedCase]:
    """Write the contract input folder ``input_dir`` for ``cases`` of ``split`` (default: all, in split order).

    Reads ``split/inputs/`` only and copies (never links) its files, so no ground-truth file, name or inode
    is reachable from ``input_dir``. ``cases`` are LMC input file names or adipocyte set keys.
    ``input_dir`` must be empty or absent and outside the split. Files are made read-only.
    Raises :class:`ContractError` / :class:`SplitError` (one line) on an unknown case or a bad split.
    """
    split = split if isinstance(split, Split) else Split(split)
    input_dir = Path(input_dir)
    root = split.root.resolve()
    target = input_dir.resolve()
    if target == root or root in target.parents:
        raise ContractError(f"{input_dir}: the staging folder must be outside the split {split.root}")
    if input_dir.exists() and (not input_dir.is_dir() or any(input_dir.iterdir())):
        raise ContractError(f"{input_dir}: the staging folder must be empty")
    task = split.task
    if task not in TASKS:
        raise ContractError(f"{split.root}: task {task!r} has no contract (one of {', '.join(TASKS)})")
    socket = INPUT_SOCKETS[task]
    socket_dir = input_dir / IMAGES / socket
    socket_dir.mkdir(parents=True, exist_ok=True)
    wanted = None if cases is None else list(cases)
    staged: list[StagedCase] = []
    entries: list[dict] = []
    if task == LMC:
        available = {c.name: c for c in split.cases()}
        names = list(available) if wanted is None else wanted
        for name in names:
            if name not in available:
                raise ContractError(f"{name}: not a case of {split.root}")
            src = split.inputs_dir / name
            image, meta = read_plane(src)
            _copy_regular(src, socket_dir / name)
            staged.append(StagedCase(name, name, (int(image.shape[0]), int(image.shape[1])),
                                     {o: name for o in ORGANELLES}, (meta.physical_size_x, meta.physical_size_y)))
            entries.append(_inputs_json_entry(len(entries), socket, "Organelles transmitted light OME-TIFF",
                                              name, name))
    else:
        magnification = split_magnification(split)
        sets = {s.key: s for s in adipocyte_sets(split)}
        keys = list(sets) if wanted is None else wanted
        for key in keys:
            if key not in sets:
                raise ContractError(f"{key}: not an image set of {split.root}")
            aset = sets[key]
            planes = []
            for plane_name in aset.inputs:
                src = split.inputs_dir / plane_name
                if not stat.S_ISREG(os.lstat(src).st_mode):
                    raise ContractError(f"inputs/{plane_name}: not a regular file (never staged)")
                planes.append(read_uint16_plane(src))
            if len({p.shape for p in planes}) != 1:
                raise ContractError(f"image set {key}: its brightfield planes differ in shape")
            file_name = f"{key}.tif"
            tifffile.imwrite(socket_dir / file_name, np.stack(planes), photometric="minisblack",
                             metadata={"axes": "ZYX"})
            os.chmod(socket_dir / file_name, 0o444)
            staged.append(StagedCase(key, file_name, planes[0].shape,
                                     {c: target_name(aset.well, aset.site, c) for c in CHANNELS}))
            entries.append(_inputs_json_entry(len(entries), socket, "Brightfield z-stack TIFF", file_name, key))
        (input_dir / MAGNIFICATION_JSON).write_text(json.dumps(magnification) + "\n")
        entries.append(_magnification_entry(len(entries), magnification))
    (input_dir / INPUTS_JSON).write_text(json.dumps(entries, indent=1) + "\n")
    return staged


# --- ingestion -------------------------------------------------------------------------------------------


def max_file_bytes(shape: tuple[int, int]) -> int:
    """The largest output file accepted for an (H, W) case: float64 pixels, 256 px of tile padding per axis,
    plus 1 MiB of metadata."""
    return 8 * (shape[0] + 256) * (shape[1] + 256) + _SLACK


def default_max_output_bytes(staged_cases: Sequence[StagedCase], task: str) -> int:
    """The default cap on the whole output folder: every expected file at :func:`max_file_bytes`."""
    return sum(len(OUTPUT_SOCKETS[task]) * max_file_bytes(c.shape) for c in staged_cases) + 8 * _SLACK


@dataclass
class _Entry:
    rel: str
    kind: str  # "dir", "file", "symlink", or the special file type
    size: int
    nlink: int
    ino: tuple[int, int]


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "dir"), (stat.S_ISREG, "file"), (stat.S_ISLNK, "symlink"),
                       (stat.S_ISFIFO, "fifo"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device")):
        if test(mode):
            return name
    return "special file"


def _inventory(output_dir: Path, max_entries: int) -> tuple[dict[str, _Entry], bool]:
    """Every entry under ``output_dir`` by relative path, never following symbolic links (folders are opened
    relative to their parent's descriptor with ``O_NOFOLLOW``); True as second value when the walk stopped at
    ``max_entries``."""
    found: dict[str, _Entry] = {}
    dir_flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        stack = [("", os.open(output_dir, dir_flags))]
    except OSError:
        return found, False
    try:
        while stack:
            prefix, fd = stack.pop()
            try:
                with os.scandir(fd) as it:
                    for entry in it:
                        rel = f"{prefix}{entry.name}"
                        try:
                            st = entry.stat(follow_symlinks=False)
                        except OSError:
                            continue
                        kind = _kind(st.st_mode)
                        found[rel] = _Entry(rel, kind, st.st_size if kind == "file" else 0, st.st_nlink,
                                            (st.st_dev, st.st_ino))
                        if len(found) > max_entries:
                            return found, True
                        if kind == "dir":
                            try:
                                stack.append((rel + "/", os.open(entry.name, dir_flags, dir_fd=fd)))
                            except OSError:
                                found[rel].kind = "unreadable folder"
            finally:
                os.close(fd)
    finally:
        for _, fd in stack:
            os.close(fd)
    return found, False


def _read_regular(path: Path, entry: _Entry, limit: int) -> bytes:
    """The bytes of a regular file checked by lstat, opened without following links and re-checked."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != entry.ino:
            raise ContractError(f"{entry.rel} changed while being read")
        chunks, total = [], 0
        while total <= limit:
            block = os.read(fd, min(1 << 20, limit + 1 - total))
            if not block:
                break
            chunks.append(block)
            total += len(block)
    finally:
        os.close(fd)
    if total > limit:
        raise ContractError(f"{entry.rel} is over the limit of {limit} bytes")
    return b"".join(chunks)


def _decode_plane(data: bytes, rel: str, shape: tuple[int, int], task: str) -> np.ndarray:
    """The 2-D image in ``data``; :class:`ContractError` naming ``rel`` if it breaks the contract."""
    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            if not tif.series:
                raise ContractError(f"{rel}: not a readable TIFF (it holds no image)")
            declared = tuple(tif.series[0].shape)
            plane = list(declared)
            while len(plane) > 2 and plane[0] == 1:  # T, C, Z of size 1
                plane.pop(0)
            if len(plane) == 3 and plane[-1] == 1:  # one sample per pixel stored as an axis
                plane.pop()
            if tuple(plane) != tuple(shape):
                raise ContractError(f"{rel}: shape {declared}, expected one plane of the input's {tuple(shape)}")
            image = tif.series[0].asarray()
    except ContractError:
        raise
    except Exception as exc:  # tifffile raises many types on garbage
        raise ContractError(f"{rel}: not a readable TIFF ({one_line(exc)[:120]})") from None
    image = np.asarray(image).reshape(shape)
    if image.dtype.kind not in "uif":
        raise ContractError(f"{rel}: pixel type {image.dtype} is not numeric")
    if image.dtype.kind == "f" and not np.isfinite(image).all():
        raise ContractError(f"{rel}: non-finite values (NaN or inf)")
    if task == ADIPOCYTE and image.dtype != np.uint16:
        raise ContractError(f"{rel}: pixel type {image.dtype}, adipocyte outputs must be uint16 raw intensities")
    return image


def lmc_storable(image: np.ndarray) -> np.ndarray:
    """``image`` in a pixel type :func:`vsbench.harness.omeio.write_plane` stores, values unchanged where
    possible (float16 -> float32, int8 -> int16, 64-bit integers -> float64)."""
    if image.dtype.name in ("uint8", "uint16", "int16", "uint32", "int32", "float32", "float64"):
        return image
    if image.dtype == np.float16:
        return image.astype(np.float32)
    if image.dtype == np.int8:
        return image.astype(np.int16)
    return image.astype(np.float64)


def _prediction_dir(predictions: Path, task: str, key: str) -> Path:
    return predictions / (f"{key}-fluorescence-ome-tiff" if task == LMC else f"{key}-fluorescence-tiff")


def _write_case(predictions: Path, task: str, case: StagedCase, images: dict[str, np.ndarray]) -> None:
    paths = {k: _prediction_dir(predictions, task, k) / case.predictions[k] for k in images}
    try:
        for key, image in images.items():
            paths[key].parent.mkdir(parents=True, exist_ok=True)
            if task == LMC:
                px, py = case.physical_size
                write_plane(paths[key], lmc_storable(image), PlaneMeta(px, py, key))
            else:
                tifffile.imwrite(paths[key], image, photometric="minisblack", metadata=None)
    except BaseException:
        for path in paths.values():
            path.unlink(missing_ok=True)
        raise


def _remove_case(predictions: Path, task: str, case: StagedCase) -> None:
    for key in OUTPUT_SOCKETS[task]:
        (_prediction_dir(predictions, task, key) / case.predictions[key]).unlink(missing_ok=True)


def prepare_prediction_folder(predictions: Path | str, task: str, overwrite: bool) -> Path:
    """Make ``predictions`` ready for a runtime: it must be empty or absent, unless ``overwrite``, which first
    removes the prediction layout, the kept logs and run.json there (nothing else). Returns the folder."""
    predictions = Path(predictions)
    if overwrite and predictions.is_dir():
        for key in OUTPUT_SOCKETS[task]:
            shutil.rmtree(_prediction_dir(predictions, task, key), ignore_errors=True)
        shutil.rmtree(predictions / LOGS_DIR, ignore_errors=True)
        (predictions / RUN_RECORD).unlink(missing_ok=True)
    if predictions.exists() and (not predictions.is_dir() or any(predictions.iterdir())):
        raise ValueError(f"{predictions}: the prediction folder must be empty (or pass --overwrite)")
    predictions.mkdir(parents=True, exist_ok=True)
    return predictions


def _owner(rel: str, staged: Sequence[StagedCase]) -> StagedCase | None:
    """The case an unexpected entry names (its last component starts with the case's file stem), if one."""
    if len(staged) == 1:
        return staged[0]
    last = rel.rsplit("/", 1)[-1]
    matches = [c for c in staged if c.file_name.split(".")[0] and c.file_name.split(".")[0] in last]
    return max(matches, key=lambda c: len(c.file_name)) if matches else None


def ingest_outputs(output_dir: Path | str, staged_cases: Sequence[StagedCase], predictions_dir: Path | str,
                   task: str, max_bytes: int | None = None, notes: list[str] | None = None) -> list[CaseResult]:
    """Check the contract output folder ``output_dir`` and copy every valid case into ``predictions_dir``.

    Nothing under ``output_dir`` is followed if it is a symbolic link, and no file is opened before ``lstat``
    says it is a regular file (opened again with ``O_NOFOLLOW`` and re-checked). Per case, each expected
    ``images/<output socket>/<file name>`` must be a regular file with one link, at most
    :func:`max_file_bytes`, a readable TIFF with one 2-D image of the input's (H, W), numeric (adipocyte:
    uint16) and finite. A case with every output valid is written into the prediction layout
    (``succeeded``); otherwise ``invalid_output`` with the first problem as ``reason``, and any earlier
    prediction of it is removed. Any other entry (unexpected socket or file, bad name, link, special file) makes
    the case it names invalid; one that names no case is never read, and its one-line description is appended
    to ``notes`` (so one stray file cannot sink the other cases). An output folder over ``max_bytes`` (default
    :func:`default_max_output_bytes`) or holding too many entries makes every case invalid. Call it once
    whatever wrote ``output_dir`` has stopped (a file swapped during the walk is caught by its inode, and
    refused).
    """
    if task not in TASKS:
        raise ContractError(f"task {task!r} has no contract (one of {', '.join(TASKS)})")
    output_dir, predictions = Path(output_dir), Path(predictions_dir)
    t0 = time.perf_counter()
    staged = list(staged_cases)
    sockets = OUTPUT_SOCKETS[task]
    max_bytes = default_max_output_bytes(staged, task) if max_bytes is None else max_bytes
    problems: dict[str, str] = {}  # case -> first problem
    everyone: str | None = None  # a problem that makes every case invalid

    try:
        root_mode = os.lstat(output_dir).st_mode
    except FileNotFoundError:
        root_mode = None
    if root_mode is None or not stat.S_ISDIR(root_mode):
        everyone = "no output folder" if root_mode is None else f"the output folder is a {_kind(root_mode)}"
        found: dict[str, _Entry] = {}
    else:
        max_entries = 4 * len(staged) * len(sockets) + 64
        found, truncated = _inventory(output_dir, max_entries)
        total = sum(e.size for e in found.values())
        if truncated:
            everyone = f"the output holds more than {max_entries} entries"
        elif total > max_bytes:
            everyone = f"the output holds {total} bytes, over the limit of {max_bytes}"

    expected: dict[str, tuple[StagedCase, str]] = {}
    for case in staged:
        for key, socket in sockets.items():
            expected[f"{IMAGES}/{socket}/{case.file_name}"] = (case, key)
    allowed_dirs = {IMAGES} | {f"{IMAGES}/{s}" for s in sockets.values()}

    if everyone is None:
        parents = {rel.rsplit("/", 1)[0] for rel in found if "/" in rel}
        for rel, entry in sorted(found.items()):
            if rel in expected or (entry.kind == "dir" and (rel in allowed_dirs or rel in parents)):
                continue  # a folder holding entries is judged by them
            bad = check_relative_name(rel)
            if bad is None:
                what = "symbolic link" if entry.kind == "symlink" else entry.kind
                bad = f"unexpected {what} {rel!r}"
                if entry.kind == "symlink" and rel in allowed_dirs:
                    bad = f"{rel} is a symbolic link, not a folder"
            owner = _owner(rel, staged)
            if owner is None and rel in allowed_dirs:
                for case in staged:  # a socket that is not a folder: every case lacks that output
                    problems.setdefault(case.case, bad)
            elif owner is None:
                if notes is not None and len(notes) < 20:
                    notes.append(f"ignored: {bad}")
            else:
                problems.setdefault(owner.case, bad)

    results = []
    for case in staged:
        t_case = time.perf_counter()
        reason = everyone or problems.get(case.case)
        images: dict[str, np.ndarray] = {}
        if reason is None:
            try:
                for key, socket in sockets.items():
                    rel = f"{IMAGES}/{socket}/{case.file_name}"
                    entry = found.get(rel)
                    if entry is None:
                        raise ContractError(f"missing {rel}")
                    if entry.kind != "file":
                        what = "a symbolic link" if entry.kind == "symlink" else f"a {entry.kind}"
                        raise ContractError(f"{rel} is {what}, not a regular file")
                    if entry.nlink != 1:
                        raise ContractError(f"{rel} is a hard link ({entry.nlink} links)")
                    limit = max_file_bytes(case.shape)
                    if entry.size > limit:
                        raise ContractError(f"{rel} is {entry.size} bytes, over the limit of {limit} for a "
                                            f"{case.shape[0]}x{case.shape[1]} image")
                    data = _read_regular(output_dir / rel, entry, limit)
                    images[key] = _decode_plane(data, rel, case.shape, task)
                _write_case(predictions, task, case, images)
            except (ContractError, OSError) as exc:
                reason = one_line(exc)
        if reason is not None:
            _remove_case(predictions, task, case)
        results.append(CaseResult(case.case, SUCCEEDED if reason is None else INVALID_OUTPUT, reason,
                                  durations={"ingest": round(time.perf_counter() - t_case, 4)}))
    if results:  # the walk and checks shared by all cases, spread evenly
        shared = (time.perf_counter() - t0 - sum(r.durations["ingest"] for r in results)) / len(results)
        for r in results:
            r.durations["ingest"] = round(r.durations["ingest"] + max(shared, 0.0), 4)
    return results

