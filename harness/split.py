"""The held-out split on disk: the harness's contract with data.

::

    SPLIT/
      inputs/image_<N>_<BF|PC|DIC>_z<k>.ome.tiff    what an algorithm may see: one 2-D TL slice per case
      ground_truth/image_<N>_<Organelle>.ome.tiff   never shown to algorithms
      ground_truth/best_z.csv                        name,modality,image_z,best_z (name = input file name)
      manifest.json                                  task, every file with its sha256, split hash

``split_hash`` is the sha256 of the sorted ``path<TAB>sha256`` lines of every file, and
``inputs_hash`` the same over ``inputs/`` only: predictions depend only on the inputs, so a cache
of predictions is keyed by ``inputs_hash`` while a score is tied to ``split_hash``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

MANIFEST = "manifest.json"
INPUTS = "inputs"
GROUND_TRUTH = "ground_truth"
BEST_Z_CSV = "best_z.csv"
FORMAT_VERSION = 1

LMC_MODALITIES = ("BF", "PC", "DIC")
# organelle key (lower case, as in the output interface slugs) -> file-name spelling (lmc.md §2.1)
LMC_ORGANELLE_FILES = {"nucleus": "Nucleus", "mitochondria": "Mitochondria", "tubulin": "Tubulin", "actin": "Actin"}
LMC_INPUT_RE = re.compile(r"^image_(?P<id>\d+)_(?P<modality>BF|PC|DIC)_z(?P<z>\d+)\.ome\.tiff?$")
LMC_TARGET_RE = re.compile(r"^image_(?P<id>\d+)_(?P<organelle>Nucleus|Mitochondria|Tubulin|Actin)\.ome\.tiff?$")


class SplitError(ValueError):
    """A split directory that does not follow the layout."""


@dataclass(frozen=True)
class LMCCase:
    """One job: one transmitted-light slice of one field of view."""

    name: str  # input file name, the case's identity everywhere
    image_id: int
    modality: str
    image_z: int
    best_z: int | None = None

    @property
    def z_deviation(self) -> int | None:
        """|image_z - best_z|, the distance of the input slice from best focus (lmc.md §1.3)."""
        return None if self.best_z is None else abs(self.image_z - self.best_z)


def parse_input_name(name: str) -> tuple[int, str, int]:
    m = LMC_INPUT_RE.match(name)
    if not m:
        raise SplitError(f"{name}: not an LMC input name (image_<N>_<BF|PC|DIC>_z<k>.ome.tiff)")
    return int(m["id"]), m["modality"], int(m["z"])


def input_name(image_id: int, modality: str, z: int) -> str:
    return f"image_{image_id}_{modality}_z{z}.ome.tiff"


def target_name(image_id: int, organelle: str) -> str:
    return f"image_{image_id}_{LMC_ORGANELLE_FILES[organelle]}.ome.tiff"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _digest(entries: Iterable[dict]) -> str:
    h = hashlib.sha256()
    for e in sorted(entries, key=lambda e: e["path"]):
        h.update(f"{e['path']}\t{e['sha256']}\n".encode())
    return h.hexdigest()


def write_best_z(path: Path, rows: Iterable[tuple[str, str, int, int]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["name", "modality", "image_z", "best_z"])
        for row in sorted(rows):
            w.writerow(row)


def read_best_z(path: Path) -> dict[str, tuple[str, int, int]]:
    """``name -> (modality, image_z, best_z)`` from a best-focus CSV."""
    out = {}
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"name", "modality", "image_z", "best_z"} - set(reader.fieldnames or ())
        if missing:
            raise SplitError(f"{path.name}: missing column(s) {sorted(missing)}")
        for i, row in enumerate(reader, start=2):
            try:
                out[row["name"]] = (row["modality"], int(row["image_z"]), int(row["best_z"]))
            except (TypeError, ValueError):
                raise SplitError(f"{path.name} line {i}: image_z and best_z must be integers") from None
    return out


def write_manifest(root: Path, task: str, info: dict | None = None) -> dict:
    """Hash every file under ``root`` and write ``manifest.json``; returns the manifest."""
    root = Path(root)
    files = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != MANIFEST):
        rel = path.relative_to(root).as_posix()
        files.append({"path": rel, "sha256": sha256_file(path), "bytes": path.stat().st_size})
    manifest = {
        "format_version": FORMAT_VERSION,
        "task": task,
        "split_hash": _digest(files),
        "inputs_hash": _digest(f for f in files if f["path"].startswith(INPUTS + "/")),
        "n_inputs": sum(f["path"].startswith(INPUTS + "/") for f in files),
        "info": info or {},
        "files": files,
    }
    (root / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


class Split:
    """A split directory opened for reading; validates the layout on open."""

    def __init__(self, root: Path | str):
        self.root = Path(root)
        if not self.root.is_dir():
            raise SplitError(f"{self.root}: split directory not found")
        mpath = self.root / MANIFEST
        if not mpath.is_file():
            raise SplitError(f"{self.root}: no {MANIFEST} (not a vsbench split; create one with 'vsbench data')")
        try:
            self.manifest = json.loads(mpath.read_text())
        except json.JSONDecodeError as exc:
            raise SplitError(f"{mpath}: invalid JSON ({exc.msg} at line {exc.lineno})") from None
        for key in ("task", "split_hash", "files"):
            if key not in self.manifest:
                raise SplitError(f"{mpath}: missing '{key}'")
        if not self.inputs_dir.is_dir():
            raise SplitError(f"{self.root}: no {INPUTS}/ directory")

    @property
    def task(self) -> str:
        return self.manifest["task"]

    @property
    def split_hash(self) -> str:
        return self.manifest["split_hash"]

    @property
    def inputs_dir(self) -> Path:
        return self.root / INPUTS

    @property
    def ground_truth_dir(self) -> Path:
        return self.root / GROUND_TRUTH

    def input_path(self, case: LMCCase) -> Path:
        return self.inputs_dir / case.name

    def target_path(self, case: LMCCase, organelle: str) -> Path:
        return self.ground_truth_dir / target_name(case.image_id, organelle)

    def organelles(self, case: LMCCase) -> list[str]:
        """Organelles with a ground-truth image for this case's field of view."""
        return [o for o in LMC_ORGANELLE_FILES if self.target_path(case, o).is_file()]

    def cases(self) -> list[LMCCase]:
        """Every input, with best_z from ``ground_truth/best_z.csv`` when that file exists."""
        best = {}
        csv_path = self.ground_truth_dir / BEST_Z_CSV
        if csv_path.is_file():
            best = read_best_z(csv_path)
        cases = []
        for path in sorted(self.inputs_dir.iterdir()):
            if not path.is_file():
                continue
            image_id, modality, z = parse_input_name(path.name)
            row = best.get(path.name)
            cases.append(LMCCase(path.name, image_id, modality, z, row[2] if row else None))
        return sorted(cases, key=lambda c: (c.image_id, c.modality, c.image_z))

    def verify(self) -> list[str]:
        """Files whose content no longer matches the manifest (or that vanished or appeared)."""
        problems = []
        listed = {f["path"]: f["sha256"] for f in self.manifest["files"]}
        for rel, digest in listed.items():
            path = self.root / rel
            if not path.is_file():
                problems.append(f"{rel}: missing")
            elif sha256_file(path) != digest:
                problems.append(f"{rel}: sha256 differs from manifest")
        for path in self.root.rglob("*"):
            rel = path.relative_to(self.root).as_posix()
            if path.is_file() and rel != MANIFEST and rel not in listed:
                problems.append(f"{rel}: not in manifest")
        return problems
