"""CellProfiler module steps, run with CellProfiler's own library (``cellprofiler-library-nightly``).

Each function is one CellProfiler module with the settings a ``.cppipe`` file spells out, on 2-D float
images in CellProfiler's [0, 1] scale and 2-D integer label matrices. The image processing and the
measurements are CellProfiler's code (``cellprofiler_library``); this module only translates settings
and shapes, so that a pipeline reads like its ``.cppipe``. Where the library has no module function,
the step is built from the library's primitives and says so:

- MeasureObjectIntensity: ``cellprofiler_library.modules._measureobjectintensity`` imports
  ``cellprofiler_core`` (the GUI-era package that does not install here), so the three features the
  pipelines export (IntegratedIntensity, MeanIntensity, StdIntensity) are computed with the library's
  own ``measure_integrated_intensity`` / ``measure_mean_intensity`` / ``measure_std_intensity``,
  exactly as that module does.
- The per-image ``Mean_`` / ``StDev_`` aggregates of ExportToSpreadsheet live in cellprofiler_core
  (``Measurements.compute_aggregate_measurements``): non-finite values dropped, then ``numpy.mean``
  and ``numpy.std`` (population); an empty object set gives NaN. Re-implemented in :func:`aggregate`.
"""

from __future__ import annotations

import warnings

import numpy as np

# CellProfiler's library validates arguments with pydantic and warns about numpy aliases; import
# lazily-heavy modules once here so every step shares them.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from cellprofiler_library.functions import measurement as _m
    from cellprofiler_library.modules import identifyprimaryobjects, identifysecondaryobjects, measureobjectsizeshape
    from cellprofiler_library.modules._combineobjects import combineobjects
    from cellprofiler_library.modules._enhanceorsuppressfeatures import enhance_or_suppress_features
    from cellprofiler_library.modules._filterobjects import filter_objects
    from cellprofiler_library.modules._imagemath import image_math
    from cellprofiler_library.modules._measuregranularity import measure_granularity
    from cellprofiler_library.modules._smooth import smooth
    from cellprofiler_library.opts.enhanceorsuppressfeatures import EnhanceMethod, OperationMethod, SpeckleAccuracy
    from cellprofiler_library.opts.filterobjects import FilterMethod, FilterMode
    from cellprofiler_library.opts.identifyprimaryobjects import FillHolesMethod, UnclumpMethod, WatershedMethod
    from cellprofiler_library.opts.imagemath import Operator
    from cellprofiler_library.opts.smooth import SmoothingMethod
    from cellprofiler_library.opts.threshold import Assignment, Method, Scope

UINT16_MAX = 65535  # NamesAndTypes "Set intensity range from: Image bit-depth" (16-bit -> /65535)
SHAPE_FEATURES = ("Area", "Compactness", "FormFactor", "MeanRadius", "Perimeter", "Solidity")
INTENSITY_FEATURES = ("IntegratedIntensity", "MeanIntensity", "StdIntensity")

__all__ = [
    "aggregate", "combine_merge", "enhance_dark_holes", "enhance_speckles", "filter_border", "filter_limits",
    "granularity", "identify_primary", "identify_secondary_propagation", "image_math_op", "object_intensity",
    "object_size_shape", "rescale_stretch", "smooth_circular_average", "smooth_median", "to_cp_scale",
]


def to_cp_scale(image: np.ndarray) -> np.ndarray:
    """A uint16 image as CellProfiler loads it ("Image bit-depth": divided by 65535), float64."""
    if image.dtype != np.uint16:
        raise ValueError(f"expected a uint16 image (the challenge's 16-bit TIFFs), got {image.dtype}")
    return image.astype(np.float64) / UINT16_MAX


def rescale_stretch(image: np.ndarray) -> np.ndarray:
    """RescaleIntensity, "Stretch each image to use the full intensity range": (x - min) / (max - min);
    a constant image is left as it is. The library's ``stretch_rescale`` does the same through
    skimage's ``rescale_intensity`` but finds min and max with Python's builtin ``min``/``max``
    (seconds on a 5.5 Mpx image), hence this vectorised equivalent, tested against it."""
    lo, hi = float(image.min()), float(image.max())
    if hi == lo:  # CellProfiler's stretch of a constant image leaves it unchanged
        return image.astype(np.float64, copy=True)
    return (image - lo) / (hi - lo)


def image_math_op(operation: str, images: list[np.ndarray], factors: list[float] | None = None,
                  addend: float = 0.0) -> np.ndarray:
    """ImageMath with "Set values < 0 to 0", "> 1 to 1" and "replace invalid values with 0" all Yes
    (as every ImageMath of the adipocyte pipelines). Each image is multiplied by its factor first, and
    "Average" divides by the sum of the factors, as CellProfiler does."""
    factors = list(factors or [1.0] * len(images))
    operands = [np.asarray(im, np.float64) * f for im, f in zip(images, factors, strict=True)]
    out, _ = image_math(
        opval=Operator(operation), operands=operands, masks=None, output_pixel_data=operands[0].copy(),
        output_mask=None, ignore_mask=False, image_factors=factors, exponent=1.0, after_factor=1.0,
        addend=addend, truncate_low=True, truncate_high=True, replace_nan=True)
    return out


def enhance_speckles(image: np.ndarray, feature_size: int) -> np.ndarray:
    """EnhanceOrSuppressFeatures, Enhance, Speckles, "Fast"; CellProfiler passes radius = feature size / 2."""
    return enhance_or_suppress_features(
        image, np.ones(image.shape, bool), radius=feature_size / 2, method=OperationMethod.ENHANCE,
        enhance_method=EnhanceMethod.SPECKLES, speckle_accuracy=SpeckleAccuracy.FAST)


def enhance_dark_holes(image: np.ndarray, hole_sizes: tuple[int, int]) -> np.ndarray:
    """EnhanceOrSuppressFeatures, Enhance, Dark holes with the "Range of hole sizes" setting.

    The library's ``enhance_dark_holes`` step for step (erode the inverted image by disk(1) once per
    radius, reconstruct it, keep the largest difference between successive reconstructions over the
    radii in range), with skimage's reconstruction replaced by the exact numba one of
    :mod:`vsbench.metrics._morphology` (same values, about 50 s less per 2154 x 2554 image; tested
    against the library's function)."""
    import skimage.morphology

    from vsbench.metrics._morphology import reconstruction_dilation_cross

    min_radius = max(1, int(hole_sizes[0] / 2))  # as the library and CellProfiler's module compute them
    max_radius = int((hole_sizes[1] + 1) / 2)
    footprint = skimage.morphology.disk(1)
    inverted = image.max() - image
    previous = inverted
    eroded = inverted
    result = np.zeros(image.shape)
    for i in range(max_radius + 1):
        eroded = skimage.morphology.erosion(eroded, footprint)
        reconstructed = reconstruction_dilation_cross(eroded, inverted)
        if i >= min_radius:
            result = np.maximum(result, previous - reconstructed)
        previous = reconstructed
    return result


def enhance_dark_holes_library(image: np.ndarray, hole_sizes: tuple[int, int]) -> np.ndarray:
    """The same through the library's own function (slow; kept to test :func:`enhance_dark_holes`)."""
    return enhance_or_suppress_features(
        image, np.ones(image.shape, bool), method=OperationMethod.ENHANCE, enhance_method=EnhanceMethod.DARK_HOLES,
        dark_hole_radius_min=int(hole_sizes[0]), dark_hole_radius_max=int(hole_sizes[1]))


def smooth_median(image: np.ndarray, artifact_diameter: float) -> np.ndarray:
    """Smooth, Median Filter, "Typical artifact diameter"."""
    return smooth(image, None, False, artifact_diameter, SmoothingMethod.MEDIAN_FILTER, None, True)


def smooth_circular_average(image: np.ndarray, artifact_diameter: float) -> np.ndarray:
    """Smooth, Circular Average Filter, "Typical artifact diameter"."""
    return smooth(image, None, False, artifact_diameter, SmoothingMethod.CIRCULAR_AVERAGE_FILTER, None, True)


def identify_primary(image: np.ndarray, *, diameter: tuple[int, int], discard_outside_diameter: bool,
                     unclump: str, watershed: str, smoothing_filter_size: float | None,
                     maxima_distance: float | None, scope: str, threshold_smoothing: float,
                     correction: float, bounds: tuple[float, float], window: int = 50) -> np.ndarray:
    """IdentifyPrimaryObjects with Minimum Cross-Entropy thresholding, "Discard objects touching the
    border" No, fill holes "After both thresholding and declumping", low-resolution maxima Yes, no
    object-count limit ("Continue"). ``smoothing_filter_size`` / ``maxima_distance`` None = "Automatically
    calculate". Returns the label matrix (consecutive labels)."""
    labels = identifyprimaryobjects(
        image, mask=None, threshold_method=Method.MINIMUM_CROSS_ENTROPY, threshold_scope=Scope(scope),
        assign_middle_to_foreground=Assignment.FOREGROUND, threshold_correction_factor=correction,
        threshold_min=bounds[0], threshold_max=bounds[1], window_size=window, threshold_smoothing=threshold_smoothing,
        exclude_size=discard_outside_diameter, min_size=diameter[0], max_size=diameter[1],
        exclude_border_objects=False, unclump_method=UnclumpMethod(unclump),
        watershed_method=WatershedMethod(watershed),
        fill_holes_method=FillHolesMethod.THRESHOLDING, smoothing_filter_size=smoothing_filter_size,
        automatic_suppression=maxima_distance is None,
        maxima_suppression_size=7.0 if maxima_distance is None else float(maxima_distance), low_res_maxima=True)
    return np.asarray(labels, dtype=np.int32)


def identify_secondary_propagation(image: np.ndarray, seeds: np.ndarray, *, threshold_smoothing: float,
                                   correction: float, bounds: tuple[float, float], window: int,
                                   regularization: float, fill_holes: bool = True) -> np.ndarray:
    """IdentifySecondaryObjects, Propagation, adaptive Minimum Cross-Entropy threshold, no edge discard.
    (The .cppipe's "Three classes" setting applies to Otsu only; MCE ignores it in CellProfiler.)"""
    if seeds.max() == 0:  # propagation from no seed gives no object; the library would fail on it
        return np.zeros(seeds.shape, np.int32)
    labels = identifysecondaryobjects(
        image, seeds, threshold_method=Method.MINIMUM_CROSS_ENTROPY, threshold_scope=Scope.ADAPTIVE,
        assign_middle_to_foreground=Assignment.FOREGROUND, threshold_correction_factor=correction,
        threshold_min=bounds[0], threshold_max=bounds[1], window_size=window, threshold_smoothing=threshold_smoothing,
        fill_holes=fill_holes, discard_edge=False, regularization_factor=regularization)
    return np.asarray(labels, dtype=np.int32)


def _relabel(labels: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Keep the (1-based) object numbers in ``keep``, renumbered 1..n in increasing order."""
    lut = np.zeros(int(labels.max()) + 1, np.int32)
    keep = np.unique(np.asarray(keep, np.int64))
    keep = keep[keep > 0]
    lut[keep] = np.arange(1, keep.size + 1, dtype=np.int32)
    return lut[labels]


def filter_limits(labels: np.ndarray, limits: list[tuple[np.ndarray, float | None, float | None]]) -> np.ndarray:
    """FilterObjects, mode Measurements, method Limits: keep the objects whose every measurement lies in
    [min, max] (None = no limit). ``limits`` holds (per-object values, min, max)."""
    n = int(labels.max())
    if n == 0:
        return labels.astype(np.int32, copy=True)
    groups = [{"values": np.asarray(v, np.float64), "min_limit": lo, "max_limit": hi} for v, lo, hi in limits]
    out, _, _ = filter_objects(labels, FilterMode.MEASUREMENTS, filter_choice=FilterMethod.LIMITS, limit_groups=groups)
    return np.asarray(out, np.int32)


def filter_border(labels: np.ndarray, relabel_with: list[np.ndarray] = ()) -> tuple[np.ndarray, list[np.ndarray]]:
    """FilterObjects, mode "Image or mask border": drop the objects touching the image border. Objects
    in ``relabel_with`` (same numbering, e.g. the nuclei seeding the cells) are relabelled alongside
    ("Select additional object to relabel")."""
    if labels.max() == 0:
        return labels.astype(np.int32, copy=True), [r.astype(np.int32, copy=True) for r in relabel_with]
    out, extra, _ = filter_objects(labels, FilterMode.BORDER,
                                   additional_objects=[(r, None, False) for r in relabel_with])
    return np.asarray(out, np.int32), [np.asarray(e, np.int32) for e in extra]


def combine_merge(initial: np.ndarray, other: np.ndarray) -> np.ndarray:
    """CombineObjects, "Merge": overlapping objects join the initial set's object; then relabelled."""
    merged = combineobjects("merge", initial.astype(np.int64, copy=True), other.astype(np.int64, copy=True), 2)
    present = np.unique(merged)
    return _relabel(merged, present)


def object_size_shape(labels: np.ndarray, name: str = "objects") -> dict[str, np.ndarray]:
    """MeasureObjectSizeShape without Zernike or advanced features; the six exported AreaShape features."""
    if labels.max() == 0:
        return {f: np.zeros(0) for f in SHAPE_FEATURES}
    meas = measureobjectsizeshape(labels.reshape((1, 1, 1, 1) + labels.shape), name,
                                  calculate_advanced=False, calculate_zernikes=False)
    return {f: np.asarray(meas.get_measurement(name, f"AreaShape_{f}"), np.float64) for f in SHAPE_FEATURES}


def object_intensity(labels: np.ndarray, image: np.ndarray) -> dict[str, np.ndarray]:
    """MeasureObjectIntensity's IntegratedIntensity, MeanIntensity and StdIntensity per object, built from
    the library's own measurement primitives (see the module docstring)."""
    n = int(labels.max())
    if n == 0:
        return {f: np.zeros(0) for f in INTENSITY_FEATURES}
    inside = labels > 0
    limg = image[inside]
    llabels = labels[inside]
    lindexes = np.arange(1, n + 1, dtype=np.int32)
    integrated = np.asarray(_m.measure_integrated_intensity(limg, llabels, lindexes), np.float64)
    count = np.asarray(_m.measure_object_area_occupied(limg, llabels, lindexes), np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = _m.measure_mean_intensity(integrated, count)
    std = np.asarray(_m.measure_std_intensity(limg, llabels, lindexes, mean), np.float64)
    return {"IntegratedIntensity": integrated, "MeanIntensity": np.asarray(mean, np.float64), "StdIntensity": std}


def granularity(image: np.ndarray, image_name: str, *, subsample: float, background_subsample: float,
                radius: int, spectrum: int) -> dict[str, float]:
    """MeasureGranularity on the whole image ("Measure within objects?" No): Granularity_<k>_<image>."""
    meas = measure_granularity(image_name, image, np.ones(image.shape, bool), subsample, background_subsample,
                               int(radius), [], int(spectrum))
    return {f"Granularity_{k}_{image_name}": float(meas.get_measurement("Image", f"Granularity_{k}_{image_name}"))
            for k in range(1, spectrum + 1)}


def aggregate(values: np.ndarray) -> tuple[float, float]:
    """ExportToSpreadsheet's per-image Mean_ and StDev_ of an object measurement (cellprofiler_core
    ``compute_aggregate_measurements``): non-finite values dropped, numpy mean and population std; NaN
    for an empty object set."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std())
