"""Small hand-built LMC splits and predictions for tests (no optics: random smooth images)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile
from scipy import ndimage

from vsbench.harness.omeio import PlaneMeta, write_plane
from vsbench.harness.predict import prediction_path
from vsbench.harness.split import Split, input_name, target_name, write_best_z, write_manifest

ORGANELLES = ("nucleus", "mitochondria", "tubulin", "actin")
# (image id, modality, organelles with ground truth, slices as (image_z, best_z))
DEFAULT_FIELDS = [
    (0, "BF", ("nucleus", "mitochondria"), [(3, 3), (5, 3), (0, 3)]),
    (1, "PC", ("nucleus", "tubulin"), [(4, 4), (6, 4)]),
    (2, "DIC", ("mitochondria", "actin"), [(2, 2), (1, 2)]),
]


def smooth_image(rng: np.random.Generator, shape, dtype=np.uint16, scale=3000.0) -> np.ndarray:
    img = ndimage.gaussian_filter(rng.random(shape), 3) * scale + rng.random(shape) * scale * 0.05
    return img.astype(dtype)


def make_split(root: Path, shape=(48, 40), seed: int = 0, fields=DEFAULT_FIELDS) -> Path:
    rng = np.random.default_rng(seed)
    rows = []
    for image_id, modality, organelles, slices in fields:
        for organelle in organelles:
            write_plane(root / "ground_truth" / target_name(image_id, organelle), smooth_image(rng, shape),
                        PlaneMeta(0.1, 0.1, organelle))
        for image_z, best_z in slices:
            name = input_name(image_id, modality, image_z)
            write_plane(root / "inputs" / name, smooth_image(rng, shape), PlaneMeta(0.1, 0.1, modality))
            rows.append((name, modality, image_z, best_z))
    write_best_z(root / "ground_truth" / "best_z.csv", rows)
    write_manifest(root, "lmc", {"generator": "tests.splitfactory"})
    return root


def make_predictions(split_root: Path, out: Path, seed: int = 1, dtype=np.float32) -> Path:
    """Noisy copies of the ground truth (or random images where there is none)."""
    rng = np.random.default_rng(seed)
    split = Split(split_root)
    for case in split.cases():
        shape = tifffile.imread(split.input_path(case)).shape
        for organelle in ORGANELLES:
            gt_path = split.target_path(case, organelle)
            if gt_path.exists():
                gt = tifffile.imread(gt_path).astype(np.float64)
                pred = gt * rng.uniform(0.5, 2) + rng.normal(0, gt.std(), gt.shape)
            else:
                pred = rng.random(shape) * 100
            write_plane(prediction_path(out, organelle, case.name), pred.astype(dtype))
    return out
