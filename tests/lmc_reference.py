"""The straightforward composition of the Light My Cells metrics, written from the organisers'
definitions (shared/reference/lmc.md §1): numpy percentiles, scipy ``pearsonr``, scikit-image
``structural_similarity`` and scikit-learn's MAE and pairwise distances. It is slow and exists
only so tests and benchmarks can check :mod:`vsbench.metrics.lmc` against it."""

from __future__ import annotations

import warnings

import numpy as np
from scipy.stats import pearsonr
from skimage.metrics import structural_similarity
from sklearn.metrics import mean_absolute_error
from sklearn.metrics.pairwise import cosine_distances, euclidean_distances

METRICS = {
    "nucleus": ["MAE", "PCC", "SSIM", "E_dist", "C_dist"],
    "mitochondria": ["MAE", "PCC", "SSIM", "E_dist", "C_dist"],
    "actin": ["PCC", "SSIM"],
    "tubulin": ["PCC", "SSIM"],
}


def normalize(img: np.ndarray) -> np.ndarray:
    low = np.percentile(img, 2, keepdims=True)
    high = np.percentile(img, 99.8, keepdims=True)
    if low == high:
        return img
    return (img - low) / (high - low)


def reference_metrics(gt: np.ndarray, pred: np.ndarray, metrics=METRICS["nucleus"]) -> dict:
    if gt.shape != pred.shape:
        raise ValueError("shape mismatch")
    g = normalize(gt)
    p = normalize(pred)
    out = {}
    for m in metrics:
        if m == "PCC":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r = pearsonr(g.ravel(), p.ravel())[0]
            out[m] = 0.0 if np.isnan(r) else float(r)
        elif m == "SSIM":
            rng = max(p.max() - p.min(), g.max() - g.min())
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out[m] = float(structural_similarity(g, p, data_range=rng))
        elif m == "MAE":
            out[m] = float(mean_absolute_error(g, p))
        elif m == "E_dist":
            out[m] = float(euclidean_distances(g.reshape(1, -1), p.reshape(1, -1))[0, 0])
        elif m == "C_dist":
            out[m] = float(abs(cosine_distances(g.reshape(1, -1), p.reshape(1, -1))[0, 0]))
    return out


def reference_evaluation(split_dir, pred_dir) -> dict:
    """The organisers' evaluation loop over a vsbench split, straightforwardly: per-image metrics
    with :func:`reference_metrics`, then plain means per organelle, per modality and per
    z-deviation (|image_z - best_z| from the best-focus CSV)."""
    import csv
    from pathlib import Path

    import tifffile

    split_dir, pred_dir = Path(split_dir), Path(pred_dir)
    with open(split_dir / "ground_truth" / "best_z.csv") as fh:
        best = {r["name"]: r for r in csv.DictReader(fh)}
    results, per = [], {}
    for inp in sorted((split_dir / "inputs").iterdir()):
        image_id = inp.name.split("_")[1]
        row = best[inp.name]
        dev = abs(int(row["image_z"]) - int(row["best_z"]))
        entry = {"image": inp.name}
        for organelle in METRICS:
            gt_path = split_dir / "ground_truth" / f"image_{image_id}_{organelle.capitalize()}.ome.tiff"
            if not gt_path.exists():
                entry[organelle] = {}
                continue
            gt = tifffile.imread(gt_path)
            pred = tifffile.imread(pred_dir / f"{organelle}-fluorescence-ome-tiff" / inp.name)
            entry[organelle] = reference_metrics(gt, pred, METRICS[organelle])
            for m, v in entry[organelle].items():
                for key in (("all", organelle, m), ("mod", row["modality"], organelle, m), ("dev", organelle, dev, m)):
                    per.setdefault(key, []).append(v)
        results.append(entry)
    means = {k: float(np.mean(v)) for k, v in per.items()}
    return {"results": results, "means": means}
