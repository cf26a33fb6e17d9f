"""Import the Adipocyte Cell Imaging Challenge's raw data (one magnification) into a vsbench split.

The challenge shipped one folder of Yokogawa CV7000 TIFFs per magnification (e.g. ``20x images/``,
``40x_hold_out/``; ``adipocyte.md`` §2)::

    AssayPlate_Greiner_#655090_<well>_T0001F<site:03d>L01A04Z<zz:02d>C04.tif   brightfield, zz = 01..07
    AssayPlate_Greiner_#655090_<well>_T0001F<site:03d>L01A0<c>Z01C0<c>.tif     fluorescence, c = 1, 2, 3

:func:`import_adipocyte` searches ``SRC`` recursively, groups the files by image set (well, site) and
copies them byte for byte, under the same names, into the split layout read by
:mod:`vsbench.harness.adipocyte_split`: brightfield to ``OUT/inputs/``, fluorescence to
``OUT/ground_truth/``, and ``OUT/manifest.json`` (task ``adipocyte``).

* The magnification is ``magnification`` when given, else inferred from a folder name that contains
  ``20x``, ``40x`` or ``60x`` (the folders between ``SRC`` and the files, then ``SRC`` and its parents,
  nearest first); if no folder name says it, the import fails asking for ``--magnification``. Folders
  below ``SRC`` that name different magnifications are an error (import one magnification at a time).
* A set is imported when it has all 7 brightfield planes (C04, Z01..Z07) and the 3 fluorescence
  channels (C01 nuclei, C02 lipids, C03 cytoplasm). Incomplete sets are skipped, with a warning and a
  ``{"set", "reason"}`` entry in ``info["skipped"]``. Exception: when ``SRC`` holds no fluorescence file
  at all, the brightfield planes alone are imported (a split to predict, not to score; ``info
  ["ground_truth"]`` is false).
* Files whose names are not CV7000 image names, or that are not one of the channels/planes above,
  are ignored and listed in ``info["ignored_files"]`` (with a warning).
* Every file of an imported set must be a readable single-plane uint16 TIFF, and all 10 of a set must
  have the same shape; otherwise the import fails with a one-line :class:`AdipocyteImportError`
  naming the file. So does a file name found twice below ``SRC``.

**z-window.** ``info["image_sets"]`` records ``d = 0``, ``z_shift = 0`` and ``z_source = "as
acquired"`` for every set: the input window is the 7 planes as acquired by the microscope (focused by
its autofocus), i.e. the challenge's own window. ``d = 0`` therefore means "as acquired", not a
measured distance from best focus as in synthetic splits.

``OUT`` must not exist, be an empty folder, or be an earlier import (which is replaced). The split is
written under a temporary name next to ``OUT`` and renamed at the end, so a failed import leaves
nothing behind.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
import tifffile
from tqdm import tqdm

from vsbench.harness.adipocyte_split import (
    BF_CHANNEL,
    CHANNEL_KEYS,
    CHANNEL_NUMBERS,
    CHANNELS,
    MAGNIFICATIONS,
    PLANES,
    TASK,
    parse_cv7000_name,
    parse_set_key,
    set_key,
)
from vsbench.harness.split import GROUND_TRUTH, INPUTS, MANIFEST, SplitError, write_manifest

IMPORTER = "vsbench.import_adipocyte"
Z_SOURCE = "as acquired"
_MAG_RE = re.compile(r"(?<![0-9])(20|40|60)x(?![a-z0-9])", re.IGNORECASE)
_MAX_LISTED = 5  # items quoted in one message
_MAX_IGNORED_RECORDED = 200  # ignored file names kept in the manifest


class AdipocyteImportError(ValueError):
    """The source folder cannot be imported (one-line message)."""


def magnifications_in(name: str) -> set[str]:
    """Magnifications (``"20x"``...) that a folder name mentions, e.g. ``{"40x"}`` for ``40x_hold_out``."""
    return {f"{m}x" for m in _MAG_RE.findall(name)}


def _listed(items: list[str]) -> str:
    more = f" and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else ""
    return ", ".join(items[:_MAX_LISTED]) + more


def _scan(src: Path):
    """Image sets found below ``src``: (well, site) -> {"planes": {z: path}, "targets": {key: path}}; ignored."""
    sets: dict[tuple[str, int], dict[str, dict]] = defaultdict(lambda: {"planes": {}, "targets": {}})
    seen: dict[str, Path] = {}
    ignored: list[str] = []
    for path in sorted(src.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(src).as_posix()
        try:
            well, site, action, z, channel = parse_cv7000_name(path.name)
        except SplitError:
            ignored.append(rel)
            continue
        if channel == BF_CHANNEL and action == BF_CHANNEL and z in PLANES:
            slot, key = "planes", z
        elif channel in CHANNEL_KEYS and action == channel and z == 1:
            slot, key = "targets", CHANNEL_KEYS[channel]
        else:
            ignored.append(rel)
            continue
        if path.name in seen:
            raise AdipocyteImportError(f"{path.name}: found twice, in {seen[path.name].relative_to(src).parent} "
                                       f"and {path.relative_to(src).parent} (import one folder of one "
                                       "magnification at a time)")
        seen[path.name] = path
        sets[(well, site)][slot][key] = path
    return dict(sets), ignored


def _magnification(src: Path, files: list[Path], given: str | None) -> str:
    inside = set()
    for path in files:
        for part in path.relative_to(src).parent.parts:
            inside |= magnifications_in(part)
    if len(inside) > 1:
        raise AdipocyteImportError(f"{src}: holds folders of several magnifications ({', '.join(sorted(inside))}); "
                                   "import one magnification's folder at a time")
    if given is not None:
        if given not in MAGNIFICATIONS:
            raise AdipocyteImportError(f"magnification must be one of {', '.join(MAGNIFICATIONS)}, not {given!r}")
        if inside and inside != {given}:
            warnings.warn(f"import_adipocyte: magnification {given} given, but the folders say "
                          f"{next(iter(inside))}", stacklevel=3)
        return given
    if inside:
        return next(iter(inside))
    resolved = src.resolve()
    for folder in [resolved, *resolved.parents]:
        found = magnifications_in(folder.name)
        if len(found) == 1:
            return next(iter(found))
        if len(found) > 1:
            break
    raise AdipocyteImportError(f"{src}: cannot tell the magnification from the folder names (none says "
                               "20x, 40x or 60x); give it with --magnification 20x|40x|60x")


def _read_checked(path: Path, rel: str) -> tuple[int, int]:
    """Shape of a readable single-plane uint16 TIFF; :class:`AdipocyteImportError` otherwise."""
    try:
        img = tifffile.imread(path)
    except Exception as exc:  # tifffile raises many types on garbage
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AdipocyteImportError(f"{rel}: not a readable TIFF ({msg})") from None
    if img.ndim != 2:
        raise AdipocyteImportError(f"{rel}: not a single 2-D plane (shape {'x'.join(map(str, img.shape))})")
    if img.dtype != np.uint16:
        raise AdipocyteImportError(f"{rel}: pixel type {img.dtype}, expected uint16")
    return int(img.shape[0]), int(img.shape[1])


def _is_earlier_import(out: Path) -> bool:
    try:
        return json.loads((out / MANIFEST).read_text())["info"]["importer"] == IMPORTER
    except (OSError, ValueError, KeyError, TypeError):
        return False


def import_adipocyte(src: Path, out: Path, magnification: str | None = None, sets: list[str] | None = None,
                     progress: bool = False) -> Path:
    """Import the CV7000 TIFFs below ``src`` (one magnification) as an adipocyte split at ``out``; returns ``out``.

    ``magnification``: ``"20x"``, ``"40x"`` or ``"60x"``; ``None`` infers it from the folder names.
    ``sets``: keys such as ``"B03_F001"`` restricting the import to those image sets (each must exist
    in ``src``). What is imported, skipped (warned about and listed in ``info["skipped"]``) and refused
    (:class:`AdipocyteImportError`, one line) is described in the module docstring. The manifest's
    ``info`` holds ``source`` ("import"), ``importer``, ``magnification``, ``source_dir``,
    ``ground_truth``, ``image_sets`` (well, site, d = 0, z_shift = 0, z_source "as acquired", shape),
    ``skipped`` and ``ignored_files``.
    """
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise AdipocyteImportError(f"{src}: source folder not found")
    src_r, out_r = src.resolve(), out.resolve()
    if out_r == src_r or src_r in out_r.parents or out_r in src_r.parents:
        raise AdipocyteImportError(f"{out}: the split folder must lie outside the source folder {src} and not "
                                   "contain it")
    replace = False
    if out.exists():
        if not out.is_dir():
            raise AdipocyteImportError(f"{out}: exists and is not a folder")
        if _is_earlier_import(out):
            replace = True
        elif any(out.iterdir()):
            raise AdipocyteImportError(f"{out}: exists, is not empty and is not a split written by {IMPORTER}")

    found, ignored = _scan(src)
    if not found:
        raise AdipocyteImportError(f"{src}: no CV7000 image files found "
                                   "(AssayPlate_Greiner_#655090_<well>_T0001F<site>L01A<aa>Z<zz>C<cc>.tif)")
    all_files = [p for entry in found.values() for slot in entry.values() for p in slot.values()]
    mag = _magnification(src, all_files, magnification)
    with_gt = any(entry["targets"] for entry in found.values())

    if sets is not None:
        wanted = {parse_set_key(k.strip()) for k in sets if k.strip()}
        if not wanted:
            raise AdipocyteImportError("sets: no image-set key given (e.g. B03_F001)")
        unknown = sorted(set_key(*k) for k in wanted - set(found))
        if unknown:
            raise AdipocyteImportError(f"{src}: no files of image set(s) {_listed(unknown)} "
                                       f"(found: {_listed(sorted(set_key(*k) for k in found))})")
        found = {k: v for k, v in found.items() if k in wanted}

    kept, skipped = [], []
    for (well, site), entry in sorted(found.items()):
        reasons = []
        missing_z = [f"Z{z:02d}" for z in PLANES if z not in entry["planes"]]
        if missing_z:
            reasons.append(f"missing brightfield (C04) plane(s) {', '.join(missing_z)}")
        missing_c = [f"{c} (C{CHANNEL_NUMBERS[c]:02d})" for c in CHANNELS if c not in entry["targets"]]
        if with_gt and missing_c:
            reasons.append(f"missing fluorescence {', '.join(missing_c)}")
        if reasons:
            skipped.append({"set": set_key(well, site), "reason": "; ".join(reasons)})
        else:
            kept.append((well, site))
    if not kept:
        first = skipped[0]
        raise AdipocyteImportError(f"{src}: no complete image set ({len(skipped)} skipped, e.g. {first['set']}: "
                                   f"{first['reason']})")

    out.parent.mkdir(parents=True, exist_ok=True)
    stage = out.parent / f".{out.name}.importing-{os.getpid()}"
    if stage.exists():
        shutil.rmtree(stage)
    table = []
    try:
        (stage / INPUTS).mkdir(parents=True)
        if with_gt:
            (stage / GROUND_TRUTH).mkdir()
        for well, site in tqdm(kept, desc=f"import adipocyte {mag}", unit="set", disable=not progress,
                               file=sys.stderr):
            entry = found[(well, site)]
            files = [(p, INPUTS) for _, p in sorted(entry["planes"].items())]
            files += [(entry["targets"][c], GROUND_TRUTH) for c in CHANNELS if c in entry["targets"]]
            shape = None
            for path, folder in files:
                rel = path.relative_to(src).as_posix()
                this = _read_checked(path, rel)
                if shape is None:
                    shape = this
                elif this != shape:
                    raise AdipocyteImportError(f"{rel}: shape {this[0]}x{this[1]} differs from the other images "
                                               f"of set {set_key(well, site)} ({shape[0]}x{shape[1]})")
                shutil.copyfile(path, stage / folder / path.name)
            table.append({"well": well, "site": site, "d": 0, "z_shift": 0, "z_source": Z_SOURCE,
                          "shape": list(shape)})
        info = {
            "source": "import",
            "importer": IMPORTER,
            "magnification": mag,
            "source_dir": str(src_r),
            "ground_truth": with_gt,
            "z_window": "d = 0 and z_shift = 0 mean 'as acquired': the 7 planes the microscope took",
            "image_sets": table,
            "skipped": skipped,
            "ignored_files": ignored[:_MAX_IGNORED_RECORDED],
            "n_ignored_files": len(ignored),
        }
        write_manifest(stage, TASK, info)
        if replace:
            shutil.rmtree(out)
        elif out.exists():
            out.rmdir()
        stage.rename(out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise

    if skipped:
        reasons = [f"{s['set']} ({s['reason']})" for s in skipped]
        warnings.warn(f"import_adipocyte: skipped {len(skipped)} incomplete image set(s): {_listed(reasons)}",
                      stacklevel=2)
    if ignored:
        warnings.warn(f"import_adipocyte: ignored {len(ignored)} file(s) that are not adipocyte images: "
                      f"{_listed(ignored)}", stacklevel=2)
    if not with_gt:
        warnings.warn(f"import_adipocyte: {src} holds no fluorescence images; imported the brightfield inputs "
                      "only (a split to predict, not to score)", stacklevel=2)
    return out
