"""Import a Light My Cells training download into a vsbench split.

The training download (``lmc.md`` §2.1) is ``SRC/Study_<k>/`` folders of one-plane OME-TIFFs:
``image_<N>_<BF|PC|DIC>_z<k>.ome.tiff`` (a transmitted-light z-stack per field of view) and
``image_<N>_<Nucleus|Mitochondria|Tubulin|Actin>.ome.tiff`` (its best-focus fluorescence targets).
Files may also lie directly in ``SRC`` and may end in ``.ome.tif``. :func:`import_lmc` writes the
split layout of :mod:`vsbench.harness.split`: ``OUT/inputs/``, ``OUT/ground_truth/`` (with
``best_z.csv``) and ``OUT/manifest.json``.

What is skipped, and reported in the manifest's ``info["skipped"]`` (one ``{"file", "reason"}``
per source file) rather than stopping the import:

* files that :func:`~vsbench.harness.omeio.read_plane` cannot read (garbage, truncated, not 2-D);
* files that hold no signal (every pixel equal, e.g. all zero), and so a field of view whose every
  file is empty, as ``Study_29/image_2542`` (the 2024 winner excluded it), which is also skipped by
  name in case it is not exactly constant;
* targets whose shape differs from the field's inputs, and a field whose slices differ in shape;
* a field left with no usable input, or with no usable target.

The import fails (:class:`LMCImportError`, a ``ValueError``, with a one-line message) when two source
files would get the same name in the split (image numbers are unique across studies in the real
data), when the best-focus CSV is malformed or misses an input, when no best-focus source is given,
and when nothing usable remains. The output folder is written under a temporary name and renamed
at the end, so a failed import leaves nothing behind.

The training files do not say which slice is in focus, so ``best_z`` (needed for the z-deviation
tables of the evaluation) comes from a CSV or from :func:`estimate_best_z`; see :func:`import_lmc`.
"""

from __future__ import annotations

import csv
import errno
import os
import re
import shutil
import sys
import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage
from tqdm import tqdm

from vsbench.harness.omeio import ImageReadError, read_plane
from vsbench.harness.split import (
    BEST_Z_CSV,
    GROUND_TRUTH,
    INPUTS,
    LMC_INPUT_RE,
    LMC_MODALITIES,
    LMC_ORGANELLE_FILES,
    LMC_TARGET_RE,
    input_name,
    target_name,
    write_best_z,
    write_manifest,
)

IMPORTER = "vsbench.import_lmc"
# Fields known to be unusable in the real training data: (study, image number) -> reason.
KNOWN_BAD = {("Study_29", 2542): "known bad field: empty on all channels (excluded by the 2024 winner)"}
_ORGANELLE_KEYS = {v: k for k, v in LMC_ORGANELLE_FILES.items()}  # "Nucleus" -> "nucleus"
_FIELD_RE = re.compile(r"^image_(\d+)$")
_MAX_LISTED = 5  # names quoted in one error message


class LMCImportError(ValueError):
    """The source folder or the best-focus CSV cannot be imported (one-line message)."""


# --------------------------------------------------------------------------------------------------
# best-focus estimation


FOCUS_SIGMA_PX = 1.0  # Gaussian pre-smoothing of the focus measure, in pixels
FLAT_LOG_RANGE = 0.1  # a stack whose focus measure varies by less than ~10% shows no focus signal
VALLEY_MIN_DEPTH = (0.02, 0.05)  # a BF contrast valley: this deep in log units and relative to the range
ESTIMATOR_METHOD = (f"variance of the Laplacian of a Gaussian (sigma {FOCUS_SIGMA_PX:g} px) per slice; "
                    "PC/DIC: maximum of the 1-2-1 smoothed log curve; BF: deepest valley of the log curve "
                    "between higher slices on both sides, else its maximum")


def focus_measure(image: np.ndarray) -> float:
    """Variance of the Laplacian of ``G(sigma=FOCUS_SIGMA_PX) * image``, the slice divided by its mean.

    Scale-free, so that illumination changes through the stack do not matter. The high spatial
    frequencies it weights are where in-focus detail is (PC, DIC) and, in bright field, where the
    phase contrast that appears out of focus is least shifted by weak absorption (the shift of the
    contrast minimum of a weak object's spatial frequency f scales as 1/f^2).
    """
    img = np.asarray(image, dtype=np.float32)
    mean = float(img.mean(dtype=np.float64))
    img = img / mean if mean > 0 else img - mean
    return float(np.var(ndimage.laplace(ndimage.gaussian_filter(img, FOCUS_SIGMA_PX)), dtype=np.float64))


def _smooth(curve: np.ndarray) -> np.ndarray:
    padded = np.concatenate([curve[:1], curve, curve[-1:]])
    return 0.25 * padded[:-2] + 0.5 * padded[1:-1] + 0.25 * padded[2:]


def _valley(curve: np.ndarray) -> tuple[int, float]:
    """The interior index lying deepest below the highest point on each side, and that depth."""
    left = np.maximum.accumulate(curve)
    right = np.maximum.accumulate(curve[::-1])[::-1]
    best, depth = 0, 0.0
    for i in range(1, len(curve) - 1):
        d = float(min(left[i - 1], right[i + 1]) - curve[i])
        if d > depth:
            best, depth = i, d
    return best, depth


def best_z_from_curve(curve: Sequence[float], modality: str) -> tuple[int, str]:
    """Best-focus index from the :func:`focus_measure` of each slice (ordered by z), and a note:
    ``"ok"``, ``"flat"`` (no focus signal: the middle slice is returned), ``"no valley"`` (BF
    without a contrast minimum: the sharpest slice is returned) or ``"edge"`` (the estimate is the
    first or last slice, so best focus may lie outside the stack)."""
    if modality not in LMC_MODALITIES:
        raise ValueError(f"unknown modality {modality!r} (expected one of {', '.join(LMC_MODALITIES)})")
    values = np.asarray(curve, dtype=np.float64)
    n = len(values)
    if n == 0:
        raise ValueError("empty stack")
    if n == 1:
        return 0, "ok"
    log = np.log(np.maximum(values, 1e-30))
    span = float(log.max() - log.min())
    if not np.isfinite(span) or span < FLAT_LOG_RANGE:
        return (n - 1) // 2, "flat"
    note = "ok"
    i = -1
    if modality == "BF":
        i, depth = _valley(log)
        if depth < max(VALLEY_MIN_DEPTH[0], VALLEY_MIN_DEPTH[1] * span):
            i, note = -1, "no valley"
    if i < 0:
        i = int(np.argmax(_smooth(log)))
    if note == "ok" and i in (0, n - 1):
        note = "edge"
    return i, note


def estimate_best_z(stack: Sequence[np.ndarray], modality: str) -> int:
    """Index (into ``stack``, ordered by z) of the best-focus slice of a transmitted-light z-stack.

    Every slice gets one focus measure, :func:`focus_measure` (variance of the Laplacian of a
    Gaussian of the mean-normalised slice). PC and DIC images are sharpest in focus: the estimate
    is the maximum of the measure's log along z, smoothed by a 1-2-1 kernel. An unstained cell in
    bright field is nearly invisible exactly in focus, its contrast growing on both sides
    (Selinummi et al. 2009): the BF estimate is the slice lying deepest below higher slices on both
    sides (unsmoothed: smoothing moves the minimum of an asymmetric valley). Where a BF stack has no
    such valley (strongly absorbing structures make BF sharpest in focus) the maximum is taken as
    for PC and DIC; a stack whose measure varies by less than ~10% shows no focus at all and gets
    its middle slice. :func:`best_z_from_curve` also returns which case applied.

    Accuracy, |estimate - true| in planes, on :func:`vsbench.harness.synth_lmc.synthesize_lmc`
    training stacks (11-13 planes 0.5-1 µm apart; 52 fields per modality over five seeds, 128-512
    px): BF mean 0.58 (54% exact, at most 3), PC 0.77 (27% exact, at most 2), DIC 1.06 (6% exact,
    at most 2); always taking the middle slice gives 1.5-1.6, and taking the sharpest slice in BF
    2.7-3.3. The errors are nearly all one-sided: synth_lmc puts ``best_z`` 1-2 µm above the
    coverslip, drawn at random independently of the specimen, while its sharpest structures (stress
    fibres, mitochondria) lie within 1 µm of it; the estimates sit 0.6-1.0 µm above the coverslip on
    average. The random part of that convention (about ±0.5 µm) no image-based estimate can
    recover; its mean offset could be subtracted, but it belongs to the synthetic model, so no
    correction is applied. On an earlier, thin-specimen version of synth_lmc the same estimator was
    exact on every PC stack and at most 1 plane off on BF and DIC (means 0.06 and 0.13). With the
    same rules, the other measures tried (normalised variance, band-pass energy at several scales,
    Tenengrad, Laplacian variance at sigma 0.7-2 px) were at best 0.1 plane better on one modality
    and worse on another. Real stacks are not synthetic ones: treat the result as an estimate, and
    prefer a CSV of best focus where one exists.
    """
    return best_z_from_curve([focus_measure(s) for s in stack], modality)[0]


# --------------------------------------------------------------------------------------------------
# the best-focus CSV


@dataclass
class BestZTable:
    """Best focus from a CSV: per input file (canonical name) and/or per field (image number)."""

    per_input: dict[str, int] = field(default_factory=dict)
    per_field: dict[int, int] = field(default_factory=dict)
    layout: str = ""

    def lookup(self, name: str, image_id: int) -> int | None:
        if name in self.per_input:
            return self.per_input[name]
        return self.per_field.get(image_id)


def _canonical(name: str) -> str:
    """``image_3_BF_z0.ome.tif`` or ``image_3_BF_z0`` -> ``image_3_BF_z0.ome.tiff``."""
    if name.endswith(".ome.tif"):
        return name + "f"
    return name if name.endswith(".ome.tiff") else name + ".ome.tiff"


_LAYOUTS = ({"name", "modality", "image_z", "best_z"}, {"name", "best_z"}, {"image_id", "best_z"},
            {"image", "best_z"})
_EXPECTED = ("expected columns name,modality,image_z,best_z (one row per input slice, like the organisers' "
             "BESTZZ csv) or image_id,best_z / image,best_z / name,best_z (one row per field of view)")


def _int(text: str, what: str, where: str) -> int:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value.is_integer() and value >= 0):
        raise LMCImportError(f"{where}: {what} {text!r} is not a non-negative integer")
    return int(value)


def read_best_z_table(path: Path) -> BestZTable:
    """Parse a best-focus CSV in one of the layouts documented in :func:`import_lmc`."""
    path = Path(path)
    if not path.is_file():
        raise LMCImportError(f"{path}: best-focus CSV not found")
    table = BestZTable()

    def put(store: dict, key, value: int, where: str) -> None:
        if store.get(key, value) != value:
            raise LMCImportError(f"{where}: {key} is given best_z {store[key]} and {value}")
        store[key] = value

    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = [c.strip() for c in next(reader, [])]
        cols = set(header)
        if len(cols) != len(header) or cols not in _LAYOUTS:
            shown = ",".join(header) or "(none)"
            raise LMCImportError(f"{path.name}: unrecognised columns {shown}; {_EXPECTED}")
        key_col = next(c for c in ("name", "image_id", "image") if c in cols)
        per_input_only = "image_z" in cols
        for line, values in enumerate(reader, start=2):
            where = f"{path.name} line {line}"
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(header):
                raise LMCImportError(f"{where}: {len(values)} fields, the header has {len(header)}")
            row = {c: v.strip() for c, v in zip(header, values, strict=True)}
            best = _int(row["best_z"], "best_z", where)
            key = row[key_col]
            m_input = LMC_INPUT_RE.match(_canonical(key)) if key_col == "name" else None
            m_field = None if per_input_only else _FIELD_RE.match(key)
            if m_input:
                if per_input_only and (row["modality"] != m_input["modality"]
                                       or _int(row["image_z"], "image_z", where) != int(m_input["z"])):
                    raise LMCImportError(f"{where}: modality,image_z {row['modality']},{row['image_z']} "
                                         f"disagree with the name {key}")
                put(table.per_input, _canonical(key), best, where)
            elif key_col == "image_id":
                image_id = int(m_field[1]) if m_field else _int(key, "image_id", where)
                put(table.per_field, image_id, best, where)
            elif m_field:
                put(table.per_field, int(m_field[1]), best, where)
            else:
                want = "image_<N>" if key_col == "image" else "an input file name image_<N>_<BF|PC|DIC>_z<k>"
                want += "" if key_col == "image" or per_input_only else " or a field image_<N>"
                raise LMCImportError(f"{where}: {key_col} {key!r} is not {want}")
    if not table.per_input and not table.per_field:
        raise LMCImportError(f"{path.name}: no rows")
    table.layout = ("per-input" if not table.per_field else "per-field" if not table.per_input
                    else "per-input and per-field")
    return table


# --------------------------------------------------------------------------------------------------
# scanning and checking the source


@dataclass
class _Source:
    path: Path
    rel: str  # path relative to SRC, for messages and the manifest
    study: str
    image_id: int
    name: str  # canonical split name
    modality: str | None = None  # inputs
    z: int | None = None  # inputs
    organelle: str | None = None  # targets (lower-case key)
    # filled while checking
    shape: tuple[int, ...] | None = None
    empty: str = ""  # "all-zero" / "constant" when the plane holds no signal
    channel: str | None = None
    focus: float | None = None  # focus_measure, inputs when estimating best focus

    @property
    def is_input(self) -> bool:
        return self.modality is not None


def _scan(src: Path) -> tuple[list[_Source], list[str]]:
    """Every LMC-named file of SRC and SRC/Study_*/; and the TIFF-like names that are not LMC names."""
    if not src.is_dir():
        raise LMCImportError(f"{src}: source folder not found")
    folders = [(src, src.name if src.name.startswith("Study_") else "")]
    folders += [(d, d.name) for d in sorted(src.iterdir()) if d.is_dir() and d.name.startswith("Study_")]
    sources, unrecognised = [], []
    by_name: dict[str, _Source] = {}
    study_of: dict[int, tuple[str, str]] = {}
    for folder, study in folders:
        for path in sorted(folder.iterdir()):
            if not path.is_file():
                continue
            rel = path.relative_to(src).as_posix()
            m_in, m_gt = LMC_INPUT_RE.match(path.name), LMC_TARGET_RE.match(path.name)
            if m_in:
                image_id, z = int(m_in["id"]), int(m_in["z"])
                s = _Source(path, rel, study, image_id, input_name(image_id, m_in["modality"], z),
                            modality=m_in["modality"], z=z)
            elif m_gt:
                image_id, organelle = int(m_gt["id"]), _ORGANELLE_KEYS[m_gt["organelle"]]
                s = _Source(path, rel, study, image_id, target_name(image_id, organelle), organelle=organelle)
            else:
                if path.name.lower().endswith((".tif", ".tiff")):
                    unrecognised.append(rel)
                continue
            if s.name in by_name:
                raise LMCImportError(f"{by_name[s.name].rel} and {rel} would both be {s.name} in the split "
                                     "(image numbers must be unique across studies)")
            if study_of.setdefault(image_id, (study, rel))[0] != study:
                first = study_of[image_id][1]
                raise LMCImportError(f"image number {image_id} occurs in two studies ({first} and {rel}); "
                                     "image numbers must be unique across studies")
            by_name[s.name] = s
            sources.append(s)
    if not sources:
        raise LMCImportError(f"{src}: no Light My Cells files (expected Study_*/image_<N>_<BF|PC|DIC>_z<k>"
                             ".ome.tiff and image_<N>_<Organelle>.ome.tiff, or those files directly)")
    return sources, unrecognised


def _check_file(s: _Source, measure: bool) -> str | None:
    """Read and validate one file, filling its fields; the reason to skip it, if any."""
    try:
        image, meta = read_plane(s.path)
    except ImageReadError as exc:
        return f"unreadable: {exc}"
    s.shape, s.channel = image.shape, meta.channel
    lo, hi = image.min(), image.max()
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "non-finite pixel values"
    if lo == hi:
        s.empty = "all-zero" if hi == 0 else "constant"
        return f"{s.empty}: no signal"
    if measure and s.is_input:
        s.focus = focus_measure(image)
    return None


def _check_field(files: list[_Source], skip: dict[str, str], measure: bool, bar: tqdm) -> None:
    """Check every file of one field of view; add ``rel -> reason`` to ``skip`` for what cannot be used."""
    bad = KNOWN_BAD.get((files[0].study, files[0].image_id))
    if bad:
        skip.update((s.rel, bad) for s in files)
        bar.update(len(files))
        return
    reasons = {}
    for s in files:
        reasons[s.rel] = _check_file(s, measure)
        bar.update(1)
    readable = [s for s in files if s.shape is not None]
    if readable and all(s.empty for s in readable):
        reasons.update((s.rel, "empty field: every file holds no signal") for s in readable)
    usable = [s for s in files if reasons[s.rel] is None]
    shapes = {s.shape for s in usable if s.is_input}
    if len(shapes) > 1:
        shown = ", ".join("x".join(map(str, sh)) for sh in sorted(shapes))
        reasons.update((s.rel, f"field's slices differ in shape ({shown})") for s in usable)
    elif shapes:
        (shape,) = shapes
        for s in usable:
            if not s.is_input and s.shape != shape:
                reasons[s.rel] = f"shape {s.shape} differs from the field's inputs {shape}"
    usable = [s for s in files if reasons[s.rel] is None]
    if usable and not any(s.is_input for s in usable):
        reasons.update((s.rel, "field has no usable transmitted-light input") for s in usable)
    elif usable and all(s.is_input for s in usable):
        reasons.update((s.rel, "field has no usable ground truth") for s in usable)
    skip.update((rel, r) for rel, r in reasons.items() if r is not None)


def _place(src: Path, dst: Path, link: bool) -> str:
    """Copy or hard-link; returns how ("link" or "copy")."""
    if link:
        try:
            os.link(src, dst)
            return "link"
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES):
                raise
    shutil.copyfile(src, dst)
    return "copy"


# --------------------------------------------------------------------------------------------------
# the import


def import_lmc(src: Path, out: Path, best_z_csv: Path | None = None, estimate_best_z: bool = False,
               link: bool = False, progress: bool = True) -> dict:
    """Import the Light My Cells training layout at ``src`` as a split at ``out``; returns its manifest.

    ``out`` must not exist or be an empty folder. Inputs go to ``out/inputs/`` and targets to
    ``out/ground_truth/`` under their canonical ``.ome.tiff`` names, copied, or hard-linked with
    ``link=True`` (copied where a link is impossible, e.g. across devices). What is skipped and why
    is described in the module docstring and listed in the manifest's ``info["skipped"]``.

    Best focus (``ground_truth/best_z.csv``) comes from exactly one of:

    ``best_z_csv``
        a CSV with a header row, in one of these layouts:

        * ``name,modality,image_z,best_z``: one row per input slice, ``name`` being its file name
          (``image_12_BF_z3.ome.tiff``), like the organisers' ``BESTZZ_Phase_1.csv``;
        * ``image_id,best_z`` (``12``), ``image,best_z`` (``image_12``) or ``name,best_z``: one row per
          field of view, applied to all its slices; ``name,best_z`` rows may also name single inputs.

        Every imported input must be covered (a missing row is an error); rows for files that are
        not imported are ignored. A ``best_z`` outside the z range of its stack is allowed but listed
        in ``info["best_z_outside_stack"]``.
    ``estimate_best_z=True``
        :func:`estimate_best_z` on each field's stack of usable slices (one estimate per field and
        modality; see that function for its accuracy on synthetic data). It is recorded as an
        estimate in ``info["best_z"]``, and stacks where it is doubtful (no focus signal, no BF
        valley, best focus at the first or last slice) in ``info["best_z_estimate_notes"]``. It costs
        about 0.25 s per 2048 x 2048 slice on one core, on top of reading.

    ``info`` records: ``importer``, ``source``, ``studies``, ``counts``, ``best_z`` (``"csv"`` or
    ``"estimated: <method>"``), ``skipped``, ``unrecognised_files``, ``modality_mismatch`` (inputs whose
    OME channel name disagrees with the modality in the file name; the file name wins) and ``link``.
    """
    src, out = Path(src), Path(out)
    if best_z_csv is not None and estimate_best_z:
        raise LMCImportError("give either a best-focus CSV or estimate_best_z, not both")
    if best_z_csv is None and not estimate_best_z:
        raise LMCImportError("the Light My Cells training files do not say which slice is in focus: pass "
                             "a CSV of it (--best-z CSV, columns name,modality,image_z,best_z or "
                             "image_id,best_z) or estimate it from each z-stack (--estimate-best-z)")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise LMCImportError(f"{out}: already exists and is not an empty folder")
    table = read_best_z_table(best_z_csv) if best_z_csv is not None else None
    sources, unrecognised = _scan(src)

    fields: dict[int, list[_Source]] = defaultdict(list)
    for s in sources:
        fields[s.image_id].append(s)
    skip: dict[str, str] = {}
    with tqdm(total=len(sources), desc="check lmc", unit="file", disable=not progress,
              file=sys.stderr) as bar:
        for image_id in sorted(fields):
            _check_field(fields[image_id], skip, estimate_best_z, bar)
    kept = [s for s in sources if s.rel not in skip]
    if not kept:
        raise LMCImportError(f"{src}: no usable field of view ({len(skip)} file(s) skipped, e.g. "
                             f"{next(iter(skip.items()))[0]}: {next(iter(skip.items()))[1]})")

    # best focus for every kept input
    stacks: dict[tuple[int, str], list[_Source]] = defaultdict(list)
    for s in kept:
        if s.is_input:
            stacks[(s.image_id, s.modality)].append(s)
    z_range = {k: (min(s.z for s in fields[k[0]] if s.modality == k[1]),
                   max(s.z for s in fields[k[0]] if s.modality == k[1])) for k in stacks}
    best: dict[str, int] = {}
    outside, notes = [], []
    if table is not None:
        missing = []
        for key, stack in stacks.items():
            for s in stack:
                b = table.lookup(s.name, s.image_id)
                if b is None:
                    missing.append(s.name)
                    continue
                best[s.name] = b
                lo, hi = z_range[key]
                if not lo <= b <= hi and s is stack[0]:
                    outside.append({"field": s.image_id, "modality": s.modality, "best_z": b,
                                    "z_range": [lo, hi]})
        if missing:
            raise LMCImportError(f"{Path(best_z_csv).name}: no best_z for {len(missing)} input(s), e.g. "
                                 f"{', '.join(sorted(missing)[:_MAX_LISTED])}")
        how = "csv"
    else:
        for stack in stacks.values():
            stack.sort(key=lambda s: s.z)
            i, note = best_z_from_curve([s.focus for s in stack], stack[0].modality)
            for s in stack:
                best[s.name] = stack[i].z
            if note != "ok":
                notes.append({"field": stack[0].image_id, "modality": stack[0].modality, "best_z": stack[i].z,
                              "slices": len(stack), "note": note})
        how = f"estimated: {ESTIMATOR_METHOD}"

    # write under a temporary name, then rename
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = out.parent / f".{out.name}.importing-{os.getpid()}"
    if stage.exists():
        shutil.rmtree(stage)
    try:
        (stage / INPUTS).mkdir(parents=True)
        (stage / GROUND_TRUTH).mkdir()
        placed = defaultdict(int)
        verb = "link" if link else "copy"
        for s in tqdm(kept, desc=f"{verb} lmc", unit="file", disable=not progress, file=sys.stderr):
            placed[_place(s.path, stage / (INPUTS if s.is_input else GROUND_TRUTH) / s.name, link)] += 1
        rows = [(s.name, s.modality, s.z, best[s.name]) for s in kept if s.is_input]
        write_best_z(stage / GROUND_TRUTH / BEST_Z_CSV, rows)
        info = _info(src, sources, kept, skip, unrecognised, stacks, how, placed, link)
        if table is not None:
            info["best_z_csv"] = {"path": str(Path(best_z_csv).resolve()), "layout": table.layout}
            info["best_z_outside_stack"] = outside
        else:
            info["best_z_estimate_notes"] = notes
        manifest = write_manifest(stage, "lmc", info)
        if out.exists():
            out.rmdir()
        stage.rename(out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    if skip:
        n_fields = _skipped_fields(sources, kept, skip)
        warnings.warn(f"import_lmc: skipped {len(skip)} file(s), {n_fields} whole field(s) of view; "
                      f"see info.skipped in {out / 'manifest.json'}", stacklevel=2)
    return manifest


def _skipped_fields(sources, kept, skip) -> int:
    return len({s.image_id for s in sources if s.rel in skip} - {s.image_id for s in kept})


def _info(src, sources, kept, skip, unrecognised, stacks, how, placed, link) -> dict:
    kept_inputs = [s for s in kept if s.is_input]
    mismatch = [{"file": s.rel, "name_modality": s.modality, "ome_channel": s.channel}
                for s in kept_inputs if s.channel and s.channel.strip().upper() != s.modality]
    per_modality = defaultdict(lambda: {"fields": 0, "inputs": 0})
    for (_, modality), stack in stacks.items():
        per_modality[modality]["fields"] += 1
        per_modality[modality]["inputs"] += len(stack)
    per_organelle = defaultdict(int)
    for s in kept:
        if not s.is_input:
            per_organelle[s.organelle] += 1
    return {
        "importer": IMPORTER,
        "source": str(src.resolve()),
        "studies": sorted({s.study for s in kept if s.study}),
        "counts": {
            "source_files": len(sources),
            "fields": len({s.image_id for s in kept}),
            "inputs": len(kept_inputs),
            "targets": len(kept) - len(kept_inputs),
            "per_modality": dict(sorted(per_modality.items())),
            "per_organelle": dict(sorted(per_organelle.items())),
            "skipped_files": len(skip),
            "skipped_fields": _skipped_fields(sources, kept, skip),
        },
        "best_z": how,
        "skipped": [{"file": rel, "reason": reason} for rel, reason in sorted(skip.items())],
        "unrecognised_files": sorted(unrecognised),
        "modality_mismatch": mismatch,
        "link": {"requested": link, "linked": placed.get("link", 0), "copied": placed.get("copy", 0)},
    }
