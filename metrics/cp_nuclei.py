"""Single-organelle CellProfiler measurements of a nucleus fluorescence image (LMC nucleus channel).

:func:`nucleus_features` runs a three-module CellProfiler pipeline, through CellProfiler's own library
(:mod:`vsbench.metrics.cellprofiler`), on one 2-D nucleus image and returns the per-image values that
ExportToSpreadsheet would write: ``Count_nuclei`` and the ``Mean_nuclei_...`` object means
(:data:`NUCLEUS_FEATURES`). :func:`nucleus_feature_errors` compares the features of a prediction with
those of its ground truth as relative errors, the ``CP_`` metrics of ``vsbench evaluate --cellprofiler``
(:data:`CP_METRICS`).

Pipeline (settings are CellProfiler's defaults unless listed):

0. **Scale to [0, 1]** (stands in for NamesAndTypes' intensity scaling):
   ``x' = clip((x - p0.1) / (p99.9 - p0.1), 0, 1)`` with p0.1 and p99.9 the 0.1th and 99.9th
   percentiles of the image itself. CellProfiler expects images in [0, 1] (threshold bounds,
   intensity features), but LMC images are uint8, uint16 or float of arbitrary scale and a model's
   prediction has a scale of its own -- the LMC metrics percentile-normalise every image for the same
   reason (2 / 99.8, unclipped, ``metrics/lmc.py``). Dividing by the bit depth, as CellProfiler does,
   would make the features depend on that arbitrary scale; per-image percentiles make them invariant to
   ``x -> a*x + b`` (a > 0) and to the pixel type, so a prediction is judged on the nuclei it draws,
   not on its brightness. The range is wider than the LMC one (0.1 / 99.9 rather than 2 / 99.8) so
   that only outlier pixels saturate (nuclei often cover far more than 0.2 % of a field), and it is
   clipped because CellProfiler's modules assume [0, 1]. An image whose two percentiles are equal has
   no contrast: it has no nuclei (Count 0), and CellProfiler is not run on it.
1. **IdentifyPrimaryObjects** ``nuclei``: global Minimum Cross-Entropy threshold (smoothing scale
   1.3488, correction factor 1, bounds [0, 1]), declumping and dividing lines by "Shape", smoothing
   filter and maxima distance "Automatically calculated", holes filled, objects outside the typical
   diameter discarded, objects touching the border kept (a field of view cuts nuclei at its edge in
   the ground truth and in the prediction alike). Typical diameter: nuclei are 5-30 µm across, so
   ``round(5 / s) .. round(30 / s)`` pixels for a pixel size of ``s`` µm; when the pixel size is
   unknown, 10-100 px (a wide range: 5-30 µm nuclei at 0.3-0.5 µm/px; CellProfiler's default is 10-40 px).
2. **MeasureObjectSizeShape** of ``nuclei`` (no Zernike or advanced features).
3. **MeasureObjectIntensity** of ``nuclei`` on the [0, 1] image of step 0.

Per-image aggregates follow ExportToSpreadsheet: ``Mean_`` of the per-object values, NaN for an empty
object set (CellProfiler's own convention), ``Count_nuclei`` 0 then.

Errors (:func:`nucleus_feature_errors`): relative absolute error per feature, ``|p - t| / |t|``
(count: ``/ max(t, 1)``), never NaN (both empty -> 0, one empty -> 1), and ``CP_mae``, their mean; all lower is
better (declared on :func:`nucleus_feature_errors`, see :func:`vsbench.metrics.higher_is_better`).

In ``vsbench evaluate --task lmc --cellprofiler`` both the target and the prediction use the target
file's OME pixel size, and the target's features are measured once per file content and kept in
:data:`TARGET_FEATURES` (keyed by the sha256 the split manifest records).
"""

from __future__ import annotations

import importlib.metadata
import math
import threading
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

import numpy as np

from vsbench.metrics import metric

T = TypeVar("T")

PIPELINE_VERSION = "lmc-nucleus-cp/1"
LIBRARY = "cellprofiler-library-nightly"
OBJECT = "nuclei"
NUCLEUS_DIAMETER_UM = (5.0, 30.0)  # typical nucleus diameter range, micrometres
DEFAULT_DIAMETER_PX = (10, 100)  # used when the pixel size is unknown
PERCENTILES = (0.1, 99.9)  # step 0: the image's own percentiles mapped to 0 and 1 (clipped)
THRESHOLD_SMOOTHING = 1.3488  # CellProfiler's default threshold smoothing scale
MISSING_OBJECTS_ERROR = 1.0  # error of a mean feature when exactly one of the two images has no nuclei

SHAPE_FEATURES = ("Area", "Perimeter", "FormFactor", "Solidity", "Compactness", "MeanRadius")
INTENSITY_FEATURES = ("MeanIntensity", "IntegratedIntensity", "StdIntensity")
COUNT_FEATURE = f"Count_{OBJECT}"
NUCLEUS_FEATURES: tuple[str, ...] = (
    COUNT_FEATURE,
    *(f"Mean_{OBJECT}_AreaShape_{f}" for f in SHAPE_FEATURES),
    *(f"Mean_{OBJECT}_Intensity_{f}" for f in INTENSITY_FEATURES),
)
# metric name (as carried by the LMC evaluation) of each feature's relative error
FEATURE_METRICS: dict[str, str] = {
    COUNT_FEATURE: "CP_count_error",
    **{f"Mean_{OBJECT}_AreaShape_{f}": f"CP_{f.lower()}_error" for f in SHAPE_FEATURES},
    **{f"Mean_{OBJECT}_Intensity_{f}": f"CP_{f.lower()}_error" for f in INTENSITY_FEATURES},
}
MEAN_ERROR_METRIC = "CP_mae"  # mean of the per-feature errors (the "cp_nucleus_mae")
CP_METRICS: tuple[str, ...] = (*FEATURE_METRICS.values(), MEAN_ERROR_METRIC)

__all__ = [
    "CP_METRICS", "FEATURE_METRICS", "NUCLEUS_FEATURES", "FeatureCache", "diameter_range", "library_version",
    "normalise", "nucleus_feature_errors", "nucleus_features", "provenance",
]


def library_version() -> str:
    """The installed version of CellProfiler's library (``cellprofiler-library-nightly``)."""
    return importlib.metadata.version(LIBRARY)


def diameter_range(pixel_size_um: float | None) -> tuple[int, int]:
    """IdentifyPrimaryObjects' typical diameter in pixels: 5-30 µm at ``pixel_size_um`` µm per pixel,
    :data:`DEFAULT_DIAMETER_PX` when the pixel size is unknown (None, zero, negative or not finite)."""
    if pixel_size_um is None or not math.isfinite(pixel_size_um) or pixel_size_um <= 0:
        return DEFAULT_DIAMETER_PX
    lo = max(1, round(NUCLEUS_DIAMETER_UM[0] / pixel_size_um))
    hi = max(lo + 1, round(NUCLEUS_DIAMETER_UM[1] / pixel_size_um))
    return lo, hi


def normalise(image: np.ndarray) -> np.ndarray | None:
    """Step 0: ``clip((x - p0.1) / (p99.9 - p0.1), 0, 1)`` in float64; None when the two percentiles are
    equal (no contrast, hence no nuclei)."""
    x = np.asarray(image, dtype=np.float64)
    lo, hi = np.percentile(x, PERCENTILES)
    if not hi > lo:
        return None
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0)


def _check(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 2 or image.size == 0:
        raise ValueError(f"expected a non-empty 2-D nucleus image, got shape {image.shape}")
    if image.dtype.kind not in "uifb":
        raise ValueError(f"expected a numeric image, got pixel type {image.dtype}")
    if image.dtype.kind == "f" and not np.isfinite(image).all():
        raise ValueError("the nucleus image holds NaN or infinite values")
    return image


def _empty_features() -> dict[str, float]:
    return {name: (0.0 if name == COUNT_FEATURE else float("nan")) for name in NUCLEUS_FEATURES}


def nucleus_features(image: np.ndarray, pixel_size_um: float | None = None) -> dict[str, float]:
    """Run the nucleus pipeline (module docstring) on one 2-D nucleus fluorescence image.

    Returns :data:`NUCLEUS_FEATURES` in that order: ``Count_nuclei`` (number of identified nuclei, as a
    float) and ``Mean_nuclei_AreaShape_*`` / ``Mean_nuclei_Intensity_*``, the mean over nuclei of
    CellProfiler's per-object measurement (areas, perimeters and radii in pixels; intensities on the
    [0, 1] scale of step 0). Means are NaN when no nucleus is found, as in CellProfiler's export.
    ``pixel_size_um`` (µm per pixel) sets the typical diameter, see :func:`diameter_range`.
    """
    from vsbench.metrics import cellprofiler as cp  # CellProfiler's library: imported when first measured

    image = _check(image)
    scaled = normalise(image)
    if scaled is None:
        return _empty_features()
    labels = cp.identify_primary(
        scaled, diameter=diameter_range(pixel_size_um), discard_outside_diameter=True, unclump="Shape",
        watershed="Shape", smoothing_filter_size=None, maxima_distance=None, scope="Global",
        threshold_smoothing=THRESHOLD_SMOOTHING, correction=1.0, bounds=(0.0, 1.0))
    n = int(np.count_nonzero(np.bincount(labels.ravel())[1:])) if labels.size else 0
    if n == 0:
        return _empty_features()
    out = {COUNT_FEATURE: float(n)}
    shape = cp.object_size_shape(labels, OBJECT)
    for f in SHAPE_FEATURES:
        out[f"Mean_{OBJECT}_AreaShape_{f}"] = cp.aggregate(shape[f])[0]
    intensity = cp.object_intensity(labels, scaled)
    for f in INTENSITY_FEATURES:
        out[f"Mean_{OBJECT}_Intensity_{f}"] = cp.aggregate(intensity[f])[0]
    return {name: out[name] for name in NUCLEUS_FEATURES}


def _relative_error(target: float, predicted: float) -> float:
    """``|p - t| / |t|`` for a mean feature, with the rules of :func:`nucleus_feature_errors`."""
    t_missing, p_missing = not math.isfinite(target), not math.isfinite(predicted)
    if t_missing and p_missing:
        return 0.0
    if t_missing or p_missing:
        return MISSING_OBJECTS_ERROR
    if target == 0.0:
        return 0.0 if predicted == 0.0 else MISSING_OBJECTS_ERROR
    return abs(predicted - target) / abs(target)


@metric(*CP_METRICS, higher_is_better=False)  # relative errors: 0 is perfect
def nucleus_feature_errors(target_features: Mapping[str, float],
                           predicted_features: Mapping[str, float]) -> dict[str, float]:
    """Relative errors of a prediction's nucleus features against its ground truth's; never NaN.

    For ``Count_nuclei``: ``|n_pred - n_target| / max(n_target, 1)`` (0 when both are empty; a
    prediction with nuclei where the truth has none scores its count). For every ``Mean_nuclei_*``
    feature: ``|p - t| / |t|``, with the *missing-objects* rule for the NaN that CellProfiler writes
    for an empty object set: both empty -> 0, exactly one empty -> 1.0 (:data:`MISSING_OBJECTS_ERROR`,
    the error of predicting 0 for a positive value); a target of exactly 0 (e.g. StdIntensity of
    saturated nuclei) gives 0 if the prediction is 0 too, else 1.0.

    Returns the metrics :data:`CP_METRICS`: one ``CP_<feature>_error`` per feature
    (:data:`FEATURE_METRICS`) and ``CP_mae``, the mean of those errors.
    """
    missing = [f for f in NUCLEUS_FEATURES if f not in target_features or f not in predicted_features]
    if missing:
        raise KeyError(f"nucleus features missing: {missing}")
    out: dict[str, float] = {}
    for feature, name in FEATURE_METRICS.items():
        t, p = float(target_features[feature]), float(predicted_features[feature])
        if feature == COUNT_FEATURE:
            t, p = (0.0 if not math.isfinite(v) else v for v in (t, p))
            out[name] = abs(p - t) / max(t, 1.0)
        else:
            out[name] = _relative_error(t, p)
    out[MEAN_ERROR_METRIC] = float(np.mean(list(out.values())))
    return out


def provenance() -> dict:
    """What a metrics.json records about these metrics: names, pipeline and library version."""
    return {
        "pipeline": PIPELINE_VERSION,
        "metrics": list(CP_METRICS),
        "features": list(NUCLEUS_FEATURES),
        "percentiles": list(PERCENTILES),
        "nucleus_diameter_um": list(NUCLEUS_DIAMETER_UM),
        "default_diameter_px": list(DEFAULT_DIAMETER_PX),
        "library": LIBRARY,
        "library_version": library_version(),
    }


class FeatureCache(Generic[T]):
    """Values computed once per ground-truth file content (its sha256) and kept for the life of the
    process; thread-safe, and a key is computed by one thread at a time (the others wait for it)."""

    def __init__(self) -> None:
        self._items: dict[str, T] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, sha256: str, compute: Callable[[], T]) -> T:
        """The cached value for the file with this ``sha256``, from ``compute()`` on the first call."""
        with self._lock:
            if sha256 in self._items:
                return self._items[sha256]
            key_lock = self._locks.setdefault(sha256, threading.Lock())
        with key_lock:
            with self._lock:
                if sha256 in self._items:
                    return self._items[sha256]
            value = compute()
            with self._lock:
                self._items[sha256] = value
                self._locks.pop(sha256, None)
            return value

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        """Forget every value."""
        with self._lock:
            self._items.clear()


# The process-wide cache the LMC evaluation uses: target sha256 -> (pixel size in µm or None, features)
TARGET_FEATURES: FeatureCache[tuple[float | None, dict[str, float]]] = FeatureCache()
