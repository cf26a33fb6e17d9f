"""The Adipocyte Cell Imaging Challenge's CellProfiler pipeline, re-created with CellProfiler's library.

The organisers scored predictions by running a 56-module CellProfiler 4.0 pipeline per magnification
(``aidotse/adipocyte_cell_challenge: cellprofiler_pipelines/Adipocyte_pipeline_{20x_ver3,40x_ver2,
60x_ver3}.cppipe``; ``adipocyte.md`` §1.6) on the three fluorescence channels of every image set and
comparing the 99 per-image features of ``Adipocytes_Image.csv``. :func:`adipocyte_features` runs the
same modules in the same order with the same settings (:class:`PipelineSettings`, one per
magnification, every value read from those files), through :mod:`vsbench.metrics.cellprofiler`.

Modules that produce no exported measurement are left out: GrayToColor, OverlayOutlines, SaveImages
(JPEG overlays), MeasureImageIntensity (module 37, not exported), the rescaled Hoechst image (module 5,
unused), and ExpandOrShrinkObjects + MaskImage (modules 48-49): their output ``Defect_image_masked`` is
never read, because module 50 thresholds ``Droplet_defects_rescaled`` (the unmasked image) in all three
pipelines. So the droplet-defect image is *not* masked by the shrunken droplets, whatever the module
notes say; we follow what the pipelines compute.

Module order (numbers as in the .cppipe):
 8 IdentifyPrimaryObjects Hoechst -> nuclei; 9-10 size/shape and Hoechst intensity of nuclei;
11 FilterObjects -> Nuclei_filtered (FormFactor in [0, 1], Area >= 50, MeanIntensity_Hoechst in [0, 0.04]);
12 ImageMath lipids_cytoplasm (Add; 60x: Average with CellTrackerRed x3);
13 IdentifySecondaryObjects Propagation -> cell_bodies; 14 FilterObjects border -> cells_no_edge,
   relabelling Nuclei_filtered -> nuclei_no_edge; 19-20 size/shape and intensity (Bodipy,
   CellTrackerRed, Hoechst) of cells_no_edge and nuclei_no_edge;
 6 Bodipy_rescaled; 21-28 droplet segmentation image; 29 lipid_droplets; 30 big_droplets;
31 CombineObjects Merge; 35 FilterObjects border -> Lipids_no_edge; 36, 38 size/shape and Bodipy
   intensity; 39 MeasureGranularity Bodipy;
40-47, 50-51 defect image -> Defect_image_rescaled; 52 its intensity in Lipids_no_edge;
53 FilterObjects IntegratedIntensity_Defect_image_rescaled >= 10 (40x/60x: 20) -> Defective_lipid_droplets.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np

from vsbench.metrics import cellprofiler as cp
from vsbench.metrics.adipocyte import ADIPOCYTE_FEATURES

PIPELINE_VERSION = "adipocyte-cppipe-20x_ver3-40x_ver2-60x_ver3/1"
OBJECTS = ("nuclei_no_edge", "Lipids_no_edge", "cells_no_edge")
COUNTS = ("Count_nuclei", "Count_nuclei_no_edge", "Count_Lipids_no_edge", "Count_Defective_lipid_droplets",
          "Count_cells_no_edge")
OBJECT_IMAGES = {  # measured intensities per exported object set (MeasureObjectIntensity modules 20, 38, 52)
    "nuclei_no_edge": ("Hoechst", "Bodipy", "CellTrackerRed"),
    "Lipids_no_edge": ("Bodipy", "Defect_image_rescaled"),
    "cells_no_edge": ("Bodipy", "CellTrackerRed"),
}


def _exported_names() -> tuple[str, ...]:
    """The 99 features this pipeline exports, built from its object and image lists."""
    names = [f"Granularity_{k}_Bodipy" for k in range(1, 17)] + list(COUNTS)
    for agg in ("Mean", "StDev"):
        for obj in OBJECTS:
            names += [f"{agg}_{obj}_Intensity_{f}_{img}" for f in cp.INTENSITY_FEATURES for img in OBJECT_IMAGES[obj]]
            names += [f"{agg}_{obj}_AreaShape_{f}" for f in cp.SHAPE_FEATURES]
    return tuple(names)


FEATURES = ADIPOCYTE_FEATURES  # the metric's column order
assert set(_exported_names()) == set(FEATURES) and len(FEATURES) == 99  # adipocyte.md §1.2


@dataclass(frozen=True)
class PipelineSettings:
    """The settings that differ between the three .cppipe files (module numbers in brackets)."""

    nuclei_diameter: tuple[int, int]  # [8] typical diameter, px
    nuclei_smoothing_filter: int  # [8] declumping: size of smoothing filter
    nuclei_maxima_distance: int  # [8] suppress local maxima closer than
    nuclei_threshold_bounds: tuple[float, float]  # [8]
    nuclei_window: int  # [8] adaptive window
    cells_image_operation: str  # [12] "Add" or "Average"
    cells_ctr_factor: float  # [12] CellTrackerRed factor
    droplets_threshold_bounds: tuple[float, float]  # [29] small droplets
    big_droplets_diameter: tuple[int, int]  # [30]
    defect_addend: float  # [50] "Add to result"
    defect_min_integrated: float  # [53] min IntegratedIntensity_Defect_image_rescaled


SETTINGS = {
    "20x": PipelineSettings((20, 80), 60, 25, (0.02, 1.0), 67, "Add", 1.0, (0.05, 1.0), (20, 100), -0.3, 10.0),
    "40x": PipelineSettings((30, 150), 60, 25, (0.01, 1.0), 67, "Add", 1.0, (0.2, 1.0), (30, 150), -0.4, 20.0),
    "60x": PipelineSettings((50, 200), 80, 35, (0.01, 1.0), 93, "Average", 3.0, (0.05, 1.0), (30, 150), -0.5, 20.0),
}
# Settings shared by all three files
NUCLEI_THRESHOLD_SMOOTHING = 5.0  # [8] adaptive MCE, smoothing scale 5, correction 1
NUCLEI_FILTER = {"FormFactor": (0.0, 1.0), "Area": (50.0, None), "MeanIntensity_Hoechst": (0.0, 0.04)}  # [11]
CELLS_THRESHOLD = {"threshold_smoothing": 1.34, "correction": 0.70, "bounds": (0.0, 1.0), "window": 185,
                   "regularization": 0.1}  # [13]
SPECKLE_SIZE = 10  # [21], [40]
SMALL_DROPLET_MEDIAN = 2  # [22]
LARGE_DROPLET_CIRCULAR = 10  # [24]
LARGE_DROPLET_ADDEND = -0.4  # [26]
SMALL_DROPLETS = {"diameter": (3, 20), "smoothing_filter": 3, "maxima_distance": 3, "threshold_smoothing": 3.0,
                  "correction": 1.0}  # [29] global MCE, intensity declumping, no size discard
BIG_DROPLETS = {"smoothing_filter": 5, "threshold_smoothing": 1.3488, "correction": 2.0,
                "bounds": (0.2, 1.0)}  # [30] global MCE, automatic maxima distance
GRANULARITY = {"subsample": 0.25, "background_subsample": 0.25, "radius": 10, "spectrum": 16}  # [39]
DEFECT_SPECKLE_FACTOR = 2.0  # [42] Average(Bodipy_rescaled x1, Enhance_speckles_rescale x2)
DARK_HOLE_SIZES = (3, 10)  # [44]
DEFECT_BODIPY_FACTOR = 5.0  # [46] Multiply(Bodipy_rescaled x5, Enhance_holes_step2_rescaled)


@dataclass
class AdipocyteMeasurement:
    """One image set through the pipeline: the 99 features (NaN where CellProfiler writes NaN: an empty
    object set) and the label matrices of the exported object sets."""

    features: dict[str, float]
    labels: dict[str, np.ndarray]


def settings_dict(magnification: str) -> dict:
    return {"pipeline": PIPELINE_VERSION, "magnification": magnification, **asdict(SETTINGS[magnification])}


def _count(labels: np.ndarray) -> int:
    return int(np.count_nonzero(np.bincount(labels.ravel())[1:]))


def _check(images: dict[str, np.ndarray]) -> None:
    shapes = {im.shape for im in images.values()}
    if len(shapes) != 1:
        raise ValueError(f"the three channels differ in shape: {sorted(shapes)}")
    for name, im in images.items():
        if im.ndim != 2:
            raise ValueError(f"{name}: expected a 2-D image, got shape {im.shape}")


def adipocyte_features(hoechst: np.ndarray, bodipy: np.ndarray, celltracker: np.ndarray, magnification: str,
                       keep_labels: bool = False) -> AdipocyteMeasurement:
    """Run the organisers' pipeline for ``magnification`` on one image set of uint16 images
    (C01 Hoechst nuclei, C02 Bodipy lipids, C03 CellTrackerRed cytoplasm) and return its 99 features."""
    if magnification not in SETTINGS:
        raise ValueError(f"magnification must be one of {sorted(SETTINGS)}, got {magnification!r}")
    _check({"C01": hoechst, "C02": bodipy, "C03": celltracker})
    # CellProfiler's own divisions (FormFactor of a zero-perimeter object, ...) give inf/NaN by design
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return _run(hoechst, bodipy, celltracker, magnification, keep_labels)


def _run(hoechst, bodipy, celltracker, magnification, keep_labels) -> AdipocyteMeasurement:
    s = SETTINGS[magnification]
    img = {"Hoechst": cp.to_cp_scale(hoechst), "Bodipy": cp.to_cp_scale(bodipy),
           "CellTrackerRed": cp.to_cp_scale(celltracker)}
    img["Bodipy_rescaled"] = cp.rescale_stretch(img["Bodipy"])  # [6]

    # ---- nuclei and cells [8]-[20] ----
    nuclei = cp.identify_primary(
        img["Hoechst"], diameter=s.nuclei_diameter, discard_outside_diameter=True, unclump="Shape",
        watershed="Shape", smoothing_filter_size=s.nuclei_smoothing_filter, maxima_distance=s.nuclei_maxima_distance,
        scope="Adaptive", threshold_smoothing=NUCLEI_THRESHOLD_SMOOTHING, correction=1.0,
        bounds=s.nuclei_threshold_bounds, window=s.nuclei_window)
    shape = cp.object_size_shape(nuclei)
    mean_hoechst = cp.object_intensity(nuclei, img["Hoechst"])["MeanIntensity"]
    nuclei_filtered = cp.filter_limits(nuclei, [
        (shape["FormFactor"], *NUCLEI_FILTER["FormFactor"]), (shape["Area"], *NUCLEI_FILTER["Area"]),
        (mean_hoechst, *NUCLEI_FILTER["MeanIntensity_Hoechst"])])
    lipids_cytoplasm = cp.image_math_op(s.cells_image_operation, [img["Bodipy"], img["CellTrackerRed"]],
                                        [1.0, s.cells_ctr_factor])
    cell_bodies = cp.identify_secondary_propagation(lipids_cytoplasm, nuclei_filtered, **CELLS_THRESHOLD)
    cells_no_edge, (nuclei_no_edge,) = cp.filter_border(cell_bodies, [nuclei_filtered])

    # ---- lipid droplets [21]-[39] ----
    small = cp.rescale_stretch(cp.smooth_median(cp.enhance_speckles(img["Bodipy"], SPECKLE_SIZE),
                                                SMALL_DROPLET_MEDIAN))
    large = cp.rescale_stretch(cp.smooth_circular_average(img["Bodipy"], LARGE_DROPLET_CIRCULAR))
    large_thresholded = cp.image_math_op("None", [large], addend=LARGE_DROPLET_ADDEND)
    droplet_image = cp.rescale_stretch(cp.image_math_op("Average", [img["Bodipy_rescaled"], small,
                                                                    large_thresholded]))
    lipid_droplets = cp.identify_primary(
        droplet_image, diameter=SMALL_DROPLETS["diameter"], discard_outside_diameter=False, unclump="Intensity",
        watershed="Intensity", smoothing_filter_size=SMALL_DROPLETS["smoothing_filter"],
        maxima_distance=SMALL_DROPLETS["maxima_distance"], scope="Global",
        threshold_smoothing=SMALL_DROPLETS["threshold_smoothing"], correction=SMALL_DROPLETS["correction"],
        bounds=s.droplets_threshold_bounds)
    big_droplets = cp.identify_primary(
        large_thresholded, diameter=s.big_droplets_diameter, discard_outside_diameter=False, unclump="Intensity",
        watershed="Intensity", smoothing_filter_size=BIG_DROPLETS["smoothing_filter"], maxima_distance=None,
        scope="Global", threshold_smoothing=BIG_DROPLETS["threshold_smoothing"],
        correction=BIG_DROPLETS["correction"], bounds=BIG_DROPLETS["bounds"])
    droplets = cp.combine_merge(big_droplets, lipid_droplets)
    lipids_no_edge, _ = cp.filter_border(droplets)

    # ---- droplet defects [40]-[53] ----
    speckles = cp.rescale_stretch(cp.enhance_speckles(img["Bodipy_rescaled"], SPECKLE_SIZE))
    step1 = cp.rescale_stretch(cp.image_math_op("Average", [img["Bodipy_rescaled"], speckles],
                                                [1.0, DEFECT_SPECKLE_FACTOR]))
    step2 = cp.rescale_stretch(cp.enhance_dark_holes(step1, DARK_HOLE_SIZES))
    defects = cp.rescale_stretch(cp.image_math_op("Multiply", [img["Bodipy_rescaled"], step2],
                                                  [DEFECT_BODIPY_FACTOR, 1.0]))
    img["Defect_image_rescaled"] = cp.rescale_stretch(cp.image_math_op("None", [defects], addend=s.defect_addend))

    # ---- measurements ----
    objects = {"nuclei_no_edge": nuclei_no_edge, "Lipids_no_edge": lipids_no_edge, "cells_no_edge": cells_no_edge}
    per_object = {}
    for obj, labels in objects.items():
        values = {f"AreaShape_{k}": v for k, v in cp.object_size_shape(labels, obj).items()}
        for image_name in OBJECT_IMAGES[obj]:
            for k, v in cp.object_intensity(labels, img[image_name]).items():
                values[f"Intensity_{k}_{image_name}"] = v
        per_object[obj] = values
    defect_integrated = per_object["Lipids_no_edge"]["Intensity_IntegratedIntensity_Defect_image_rescaled"]
    n_defective = int(np.count_nonzero(defect_integrated >= s.defect_min_integrated))

    features = cp.granularity(img["Bodipy"], "Bodipy", **GRANULARITY)
    features.update({
        "Count_nuclei": _count(nuclei),
        "Count_nuclei_no_edge": _count(nuclei_no_edge),
        "Count_Lipids_no_edge": _count(lipids_no_edge),
        "Count_Defective_lipid_droplets": n_defective,
        "Count_cells_no_edge": _count(cells_no_edge),
    })
    for obj, values in per_object.items():
        for feat, v in values.items():
            mean, std = cp.aggregate(v)
            features[f"Mean_{obj}_{feat}"] = mean
            features[f"StDev_{obj}_{feat}"] = std
    features = {name: float(features[name]) for name in FEATURES}
    labels = {"nuclei": nuclei, **objects} if keep_labels else {}
    return AdipocyteMeasurement(features, labels)
