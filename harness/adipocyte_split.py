"""Reading an Adipocyte Cell Imaging Challenge split: CV7000 file names and image sets.

A split of the task ``adipocyte`` (written by :mod:`vsbench.harness.synth_adipocyte` or
:mod:`vsbench.harness.import_adipocyte`) holds one magnification::

    SPLIT/inputs/AssayPlate_Greiner_#655090_<well>_T0001F<site:03d>L01A04Z<zz:02d>C04.tif   zz = 01..07
    SPLIT/ground_truth/AssayPlate_Greiner_#655090_<well>_T0001F<site:03d>L01A0<c>Z01C0<c>.tif   c = 1, 2, 3
    SPLIT/manifest.json   task "adipocyte"; info["magnification"] (20x/40x/60x), info["image_sets"]

The unit of work is an *image set*, one field of view (site) of one well: 7 brightfield planes in,
3 fluorescence channels out (C01 nuclei, C02 lipid droplets, C03 cytoplasm; ``adipocyte.md`` §2).
Its identity everywhere (predictions, metrics, tables) is :attr:`AdipocyteSet.key`, ``<well>_F<site:03d>``,
e.g. ``B03_F001``. A split without ``ground_truth/`` is valid: it can be predicted but not scored.

``d`` and ``z_shift`` come from the manifest's ``info["image_sets"]`` (matched by well and site):
``z_shift`` is the offset in planes of the 7-plane input window from the window centred on best focus,
``d = |z_shift|``. Imported real data records ``d = 0`` ("as acquired", see
:mod:`vsbench.harness.import_adipocyte`); a split whose manifest lacks them gives ``None``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vsbench.harness.split import GROUND_TRUTH, Split, SplitError

TASK = "adipocyte"
MAGNIFICATIONS = ("20x", "40x", "60x")
CHANNELS = ("nuclei", "lipids", "cytoplasm")  # ground-truth channel keys, in CV7000 channel order
CHANNEL_NUMBERS = {"nuclei": 1, "lipids": 2, "cytoplasm": 3}  # key -> CV7000 channel (= action) number
CHANNEL_KEYS = {v: k for k, v in CHANNEL_NUMBERS.items()}  # CV7000 channel number -> key
BF_CHANNEL = 4  # brightfield: action A04, channel C04
N_PLANES = 7  # brightfield planes Z01..Z07 per image set
PLANES = tuple(range(1, N_PLANES + 1))

FILE_PATTERN = "AssayPlate_Greiner_#655090_{well}_T0001F{site:03d}L01A{action:02d}Z{z:02d}C{ch:02d}.tif"
CV7000_RE = re.compile(
    r"^AssayPlate_Greiner_#655090_(?P<well>[A-P]\d{2})_T0001F(?P<site>\d{3})L01"
    r"A(?P<action>\d{2})Z(?P<z>\d{2})C(?P<channel>\d{2})\.tif$"
)
SET_KEY_RE = re.compile(r"^(?P<well>[A-P]\d{2})_F(?P<site>\d{3})$")


def parse_cv7000_name(name: str) -> tuple[str, int, int, int, int]:
    """``(well, site, action, z, channel)`` of a CV7000 file name; :class:`SplitError` if it is not one."""
    m = CV7000_RE.match(name)
    if not m:
        raise SplitError(f"{name}: not a CV7000 image name "
                         "(AssayPlate_Greiner_#655090_<well>_T0001F<site>L01A<aa>Z<zz>C<cc>.tif)")
    return m["well"], int(m["site"]), int(m["action"]), int(m["z"]), int(m["channel"])


def bf_name(well: str, site: int, z: int) -> str:
    """CV7000 name of brightfield plane ``z`` (1..7) of an image set."""
    return FILE_PATTERN.format(well=well, site=site, action=BF_CHANNEL, z=z, ch=BF_CHANNEL)


def fl_name(well: str, site: int, channel: int) -> str:
    """CV7000 name of fluorescence channel number ``channel`` (1 nuclei, 2 lipids, 3 cytoplasm), plane Z01."""
    return FILE_PATTERN.format(well=well, site=site, action=channel, z=1, ch=channel)


def target_name(well: str, site: int, channel_key: str) -> str:
    """CV7000 name of the ground truth ``channel_key`` (one of :data:`CHANNELS`) of an image set."""
    if channel_key not in CHANNEL_NUMBERS:
        raise KeyError(f"{channel_key!r}: not an adipocyte channel (one of {', '.join(CHANNELS)})")
    return fl_name(well, site, CHANNEL_NUMBERS[channel_key])


def set_key(well: str, site: int) -> str:
    """The identity of an image set: ``<well>_F<site:03d>``, e.g. ``B03_F001``."""
    return f"{well}_F{site:03d}"


def parse_set_key(key: str) -> tuple[str, int]:
    """``(well, site)`` of a set key such as ``B03_F001``; :class:`SplitError` if malformed."""
    m = SET_KEY_RE.match(key)
    if not m:
        raise SplitError(f"{key!r}: not an image-set key (<well>_F<site:03d>, e.g. B03_F001)")
    return m["well"], int(m["site"])


@dataclass(frozen=True)
class AdipocyteSet:
    """One image set (well, site) of an adipocyte split: 7 brightfield planes in, fluorescence out.

    ``inputs`` are the file names (in ``inputs/``) of planes Z01..Z07 in that order; ``targets`` maps each
    ground-truth channel present in ``ground_truth/`` (all of :data:`CHANNELS` in a complete split, none in
    a split without ground truth) to its file name. ``d``/``z_shift``: see the module docstring.
    """

    well: str
    site: int
    magnification: str
    d: int | None
    z_shift: int | None
    inputs: tuple[str, ...]
    targets: dict[str, str] = field(default_factory=dict, hash=False)

    @property
    def key(self) -> str:
        """``<well>_F<site:03d>``, the set's identity everywhere."""
        return set_key(self.well, self.site)

    def input_paths(self, split: Split) -> list[Path]:
        """Paths of the 7 brightfield planes, Z01..Z07."""
        return [split.inputs_dir / name for name in self.inputs]

    def target_path(self, split: Split, channel_key: str) -> Path:
        """Path of ground-truth ``channel_key`` (it exists only if ``channel_key in self.targets``)."""
        return split.ground_truth_dir / target_name(self.well, self.site, channel_key)


def split_magnification(split: Split) -> str:
    """``info["magnification"]`` of the manifest; :class:`SplitError` if missing or not 20x/40x/60x."""
    info = split.manifest.get("info")
    mag = info.get("magnification") if isinstance(info, dict) else None
    if mag is None:
        raise SplitError(f"{split.root}: manifest info has no 'magnification' (one of {', '.join(MAGNIFICATIONS)})")
    if mag not in MAGNIFICATIONS:
        raise SplitError(f"{split.root}: manifest magnification {mag!r} is not one of {', '.join(MAGNIFICATIONS)}")
    return mag


def _z_windows(split: Split) -> dict[tuple[str, int], tuple[int | None, int | None]]:
    """(well, site) -> (d, z_shift) from the manifest's ``info["image_sets"]`` (absent values: None)."""
    info = split.manifest.get("info")
    rows = info.get("image_sets") if isinstance(info, dict) else None
    out: dict[tuple[str, int], tuple[int | None, int | None]] = {}
    if not isinstance(rows, list):
        return out
    for row in rows:
        if not isinstance(row, dict) or "well" not in row or "site" not in row:
            raise SplitError(f"{split.root}: manifest info.image_sets holds an entry without well and site")
        values = []
        for name in ("d", "z_shift"):
            v = row.get(name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
                raise SplitError(f"{split.root}: manifest info.image_sets {row['well']} site {row['site']}: "
                                 f"{name} must be an integer, not {v!r}")
            values.append(v)
        d, z_shift = values
        if d is None and z_shift is not None:
            d = abs(z_shift)
        out[(str(row["well"]), int(row["site"]))] = (d, z_shift)
    return out


def adipocyte_sets(split: Split) -> list[AdipocyteSet]:
    """Every image set of an adipocyte split, sorted by (well, site).

    Every file in ``inputs/`` must be a brightfield plane (C04, Z01..Z07) with a CV7000 name, and each
    (well, site) must have all 7 planes. ``ground_truth/`` is optional; its ``.tif`` files must be
    fluorescence channels C01..C03 (plane Z01) of sets that have inputs (other files there are ignored).
    Raises :class:`SplitError` (one line, naming the file or set) otherwise, and when the task is not
    ``adipocyte`` or the manifest lacks a valid magnification.
    """
    if split.task != TASK:
        raise SplitError(f"{split.root}: task is {split.task!r}, not {TASK!r}")
    magnification = split_magnification(split)
    planes: dict[tuple[str, int], dict[int, str]] = defaultdict(dict)
    for path in sorted(split.inputs_dir.iterdir()):
        if not path.is_file():
            continue
        well, site, action, z, channel = parse_cv7000_name(path.name)
        if channel != BF_CHANNEL or action != BF_CHANNEL or z not in PLANES:
            raise SplitError(f"inputs/{path.name}: not a brightfield plane (A04, C04, Z01..Z{N_PLANES:02d})")
        planes[(well, site)][z] = path.name
    for (well, site), zs in planes.items():
        missing = [z for z in PLANES if z not in zs]
        if missing:
            raise SplitError(f"image set {set_key(well, site)}: inputs/ lacks brightfield plane(s) "
                             f"{', '.join(f'Z{z:02d}' for z in missing)} (needs Z01..Z{N_PLANES:02d} of C04)")

    targets: dict[tuple[str, int], dict[str, str]] = defaultdict(dict)
    gt_dir = split.root / GROUND_TRUTH
    if gt_dir.is_dir():
        for path in sorted(gt_dir.iterdir()):
            if not path.is_file() or path.suffix.lower() != ".tif":
                continue
            well, site, action, z, channel = parse_cv7000_name(path.name)
            if channel not in CHANNEL_KEYS or action != channel or z != 1:
                raise SplitError(f"ground_truth/{path.name}: not a fluorescence target (A0c, Z01, C0c with c = 1..3)")
            if (well, site) not in planes:
                raise SplitError(f"ground_truth/{path.name}: image set {set_key(well, site)} has no inputs")
            targets[(well, site)][CHANNEL_KEYS[channel]] = path.name

    windows = _z_windows(split)
    sets = []
    for well, site in sorted(planes):
        d, z_shift = windows.get((well, site), (None, None))
        found = targets.get((well, site), {})
        sets.append(AdipocyteSet(
            well=well, site=site, magnification=magnification, d=d, z_shift=z_shift,
            inputs=tuple(planes[(well, site)][z] for z in PLANES),
            targets={c: found[c] for c in CHANNELS if c in found},
        ))
    return sets


def read_uint16_plane(path: Path) -> np.ndarray:
    """One 2-D uint16 plane from a TIFF; :class:`ValueError` (one line naming the file) otherwise."""
    import tifffile

    try:
        image = tifffile.imread(path)
    except Exception as exc:  # tifffile raises many kinds on a truncated or foreign file
        raise ValueError(f"{Path(path).name}: unreadable TIFF ({type(exc).__name__})") from None
    image = np.squeeze(np.asarray(image))
    if image.ndim != 2:
        raise ValueError(f"{Path(path).name}: expected one 2-D plane, found shape {image.shape}")
    if image.dtype != np.uint16:
        raise ValueError(f"{Path(path).name}: expected uint16 (raw 16-bit intensities), found {image.dtype}")
    return image
