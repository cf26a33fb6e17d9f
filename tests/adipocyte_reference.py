"""The Adipocyte Cell Imaging Challenge score computed the organisers' way (shared/reference/adipocyte.md
§1.2-1.4): pandas tables divided by the target column medians and scikit-learn's MAE for the
CellProfiler features; all images stacked as float32, flattened, scikit-learn's MAE and ``np.median``
for the pixels. Written from the definitions, slow, and without any degenerate-case handling (a NaN
or a zero median gives what pandas / sklearn give); it exists only so tests and benchmarks can check
:mod:`vsbench.metrics.adipocyte` against it. Rows are matched by order, as the organisers did.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import mean_absolute_error

DROPPED = ["Metadata_Well", "ImageNumber", "Metadata_FoV"]


def reference_feature_mae(df_targ: pd.DataFrame, df_pred: pd.DataFrame) -> tuple[float, pd.Series]:
    """(feature MAE, per-feature MAE) of two tables whose rows correspond by position."""
    df_targ = df_targ.drop(columns=[c for c in DROPPED if c in df_targ.columns])
    df_pred = df_pred.drop(columns=[c for c in DROPPED if c in df_pred.columns])
    median_targ = df_targ.median()
    df_targ = df_targ / median_targ
    df_pred = df_pred[df_targ.columns] / median_targ
    per_feature = mean_absolute_error(df_pred, df_targ, multioutput="raw_values")
    return float(np.average(per_feature)), pd.Series(per_feature, index=df_targ.columns)


def reference_pixel_mae(target_sets: list[np.ndarray], prediction_sets: list[np.ndarray]) -> tuple[float, list[float]]:
    """(pixel MAE, per-channel MAE) of image sets given as ``(n_channels, H, W)`` arrays."""
    targ = np.stack(target_sets).astype("float32")
    pred = np.stack(prediction_sets).astype("float32")
    per_channel = []
    for c in range(targ.shape[1]):
        t = targ[:, c]
        p = pred[:, c]
        per_channel.append(float(mean_absolute_error(t.flatten(), p.flatten()) / np.median(t)))
    return float(np.mean(per_channel)), per_channel


def reference_total(per_magnification: dict[str, tuple[float, int]]) -> float:
    """``(n20 MAE20 + n40 MAE40 + n60 MAE60) / n_tot`` from {mag: (MAE, n)}."""
    n_tot = sum(n for _, n in per_magnification.values())
    return sum(mae * n for mae, n in per_magnification.values()) / n_tot
