"""The Adipocyte Cell Imaging Challenge score (AstraZeneca / AI Sweden, 2020), as pure functions.

Definitions (``shared/reference/adipocyte.md`` §1.2-1.4, read from the organisers'
``evaluation_code/hackathon_evaluation_metrics.ipynb``):

* **Feature MAE** (§1.2): for each of the 99 CellProfiler image features ``j``,
  ``MAE_j = mean_i |pred_ij - targ_ij| / median_i(targ_ij)`` over the image sets ``i`` of a
  magnification (both tables divided by the *target* median); ``feature MAE = mean_j MAE_j``.
* **Pixel MAE** (§1.3): for each channel ``c`` (C01 nuclei, C02 lipids, C03 cytoplasm),
  ``MAE_c = mean |pred - targ| / median(targ)`` over *all* pixels of *all* image sets of the
  magnification, on raw intensities cast to float32; ``pixel MAE = mean_c MAE_c``.
* **Combination** (§1.4): ``MAE_m = (feature MAE + pixel MAE) / 2`` per magnification, and
  ``MAE_tot = sum_m n_m MAE_m / sum_m n_m`` with ``n_m`` the number of image sets.

Numerics. Pixel differences are taken on float32-cast values, as the organisers do after stacking
(``.astype('float32')``), but summed in float64 (or exactly, in integers, when both images are 8/16-bit
integers: their float32 difference is then exact); the organisers' float32 ``np.mean`` of 5.5 Mpx x N
values differs from this by ~1e-7 relative. The pooled target median of integer images in
``[0, 65535]`` comes from a running histogram and equals ``np.median`` of the pooled pixels exactly
(the mean of the two middle values for an even count). Float targets (and integers outside
``[0, 65535]``) cannot be histogrammed exactly, so :class:`PixelMAEAccumulator` keeps a float32 copy
of them until :meth:`~PixelMAEAccumulator.result` (memory: 4 bytes per target pixel).

Degenerate cases, where the organisers' code returned NaN / inf or raised. Each is handled by a
fixed rule and every rule that fires is reported in the result's ``"rules"`` list (a list of dicts
with a ``"rule"`` key naming one of the constants below), so the caller can record it; no result
ever contains NaN or inf.

a. ``RULE_EMPTY_OBJECTS`` (``"empty_objects_zero"``): a NaN in a ``Mean_<obj>_<feat>`` or
   ``StDev_<obj>_<feat>`` column is the aggregate of an empty object set (CellProfiler found no
   object) and is taken as 0, the measurement of nothing, consistent with ``Count = 0``. Applied in
   both tables (whatever the count column says) and counted per feature and per table.
   ``RULE_NONFINITE`` (``"nonfinite_zero"``): any other non-finite feature value (a NaN in a
   ``Granularity_``/``Count_`` column, or +-inf anywhere) is also replaced by 0 and counted
   separately. Normalisers are computed on the substituted target table.
b. Normaliser of a feature (``feature_normalisers``, over *all* target sets of the split): the
   target median (``RULE_MEDIAN``, ``"median"``, the organisers' definition); if that is 0 (e.g.
   ``Count_Defective_lipid_droplets`` is 0 in most targets), the mean of ``|target|`` over the split
   (``RULE_MEAN_ABS``, ``"mean_abs"``); if that is also 0 (all targets are 0), 1 (``RULE_UNIT``,
   ``"unit"``), so the feature's error is the raw mean absolute difference. The same chain applies
   to a pixel channel whose pooled target median is 0. ``"median"`` is the default and is not
   listed in ``"rules"``; the other two are. (A negative median is used as it is: the error divides
   ``|pred - targ|`` by its absolute value, exactly as the organisers' formula does.)
c. Rows are matched by image-set key (the DataFrame index, e.g. ``"B03_F001"``), not by row order
   as the organisers did. Prediction rows with no target row are ignored and listed
   (``RULE_UNMATCHED_PREDICTIONS``); target rows with no prediction row are listed
   (``RULE_MISSING_PREDICTIONS``) and excluded from the mean (the caller records them as errors).
   A duplicate key in either table, a feature missing from either table, or no matched row at all
   is a ``ValueError``. Columns besides the features and the organisers' dropped meta columns
   (``ImageNumber``, ``Metadata_Well``, ``Metadata_FoV``) are ignored and listed
   (``RULE_IGNORED_COLUMNS``).

Pixel inputs that cannot be scored (shapes that differ, non-finite values, nothing added) raise
``ValueError``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from vsbench.metrics import metric

# --- the 99 features (adipocyte.md §1.2) --------------------------------------------------------

GRANULARITY_FEATURES = tuple(f"Granularity_{k}_Bodipy" for k in range(1, 17))
COUNT_FEATURES = (
    "Count_nuclei",
    "Count_nuclei_no_edge",
    "Count_Lipids_no_edge",
    "Count_Defective_lipid_droplets",
    "Count_cells_no_edge",
)
AREASHAPE_FEATURES = ("Area", "Compactness", "FormFactor", "MeanRadius", "Perimeter", "Solidity")
INTENSITY_MEASUREMENTS = ("MeanIntensity", "IntegratedIntensity", "StdIntensity")
OBJECT_INTENSITY_IMAGES: dict[str, tuple[str, ...]] = {
    "nuclei_no_edge": ("Hoechst", "Bodipy", "CellTrackerRed"),
    "Lipids_no_edge": ("Bodipy", "Defect_image_rescaled"),
    "cells_no_edge": ("Bodipy", "CellTrackerRed"),
}
AGGREGATES = ("Mean", "StDev")


def _object_features() -> tuple[str, ...]:
    names = []
    for agg in AGGREGATES:
        for obj, images in OBJECT_INTENSITY_IMAGES.items():
            names += [f"{agg}_{obj}_Intensity_{m}_{img}" for m in INTENSITY_MEASUREMENTS for img in images]
            names += [f"{agg}_{obj}_AreaShape_{f}" for f in AREASHAPE_FEATURES]
    return tuple(names)


#: The 99 exported CellProfiler image features, in this fixed order: ``Granularity_1..16_Bodipy``;
#: the 5 counts; then for ``Mean_`` and then ``StDev_``: ``nuclei_no_edge`` (intensity measurement
#: Mean/Integrated/Std x image Hoechst/Bodipy/CellTrackerRed, then the 6 AreaShape features),
#: ``Lipids_no_edge`` (x Bodipy/Defect_image_rescaled, AreaShape), ``cells_no_edge``
#: (x Bodipy/CellTrackerRed, AreaShape).
ADIPOCYTE_FEATURES: tuple[str, ...] = GRANULARITY_FEATURES + COUNT_FEATURES + _object_features()
assert len(ADIPOCYTE_FEATURES) == 99 and len(set(ADIPOCYTE_FEATURES)) == 99  # adipocyte.md §1.2

#: Columns of ``Adipocytes_Image.csv`` the organisers dropped before scoring.
META_COLUMNS = ("ImageNumber", "Metadata_Well", "Metadata_FoV")

#: Channels of an image set, and their names (adipocyte.md §2.1).
CHANNELS = ("C01", "C02", "C03")
CHANNEL_NAMES = {"C01": "nuclei", "C02": "lipids", "C03": "cytoplasm"}
_CHANNEL_ALIASES = {**{c: c for c in CHANNELS}, **{v: k for k, v in CHANNEL_NAMES.items()}}

RULE_MEDIAN = "median"
RULE_MEAN_ABS = "mean_abs"
RULE_UNIT = "unit"
RULE_EMPTY_OBJECTS = "empty_objects_zero"
RULE_NONFINITE = "nonfinite_zero"
RULE_UNMATCHED_PREDICTIONS = "unmatched_predictions_ignored"
RULE_MISSING_PREDICTIONS = "missing_predictions_excluded"
RULE_IGNORED_COLUMNS = "ignored_columns"

_HIST_BINS = 65536
_CHUNK = 1 << 18  # pixels per block: keeps the temporaries in cache (about 2x faster than whole images)
_EXACT_INT = frozenset(np.dtype(t) for t in (np.uint8, np.uint16, np.int8, np.int16))


def _normaliser(median: float, mean_abs: float) -> tuple[float, str]:
    """The normaliser rule chain of rule b: median, else mean |target|, else 1."""
    if median != 0:
        return median, RULE_MEDIAN
    if mean_abs != 0:
        return mean_abs, RULE_MEAN_ABS
    return 1.0, RULE_UNIT


def _normaliser_rules(normalisers: Mapping[str, Mapping[str, Any]], what: str) -> list[dict[str, Any]]:
    rules = []
    for rule in (RULE_MEAN_ABS, RULE_UNIT):
        names = [k for k, v in normalisers.items() if v["rule"] == rule]
        if names:
            rules.append({"rule": rule, what: names})
    return rules


# --- pixel MAE (adipocyte.md §1.3) --------------------------------------------------------------


@dataclass
class _ChannelState:
    abs_sum_int: int = 0  # exact part: pairs of 8/16-bit integer images
    abs_sum_float: float = 0.0  # float64 accumulation of float32 differences
    n_pixels: int = 0
    n_sets: int = 0
    hist: np.ndarray = field(default_factory=lambda: np.zeros(_HIST_BINS, np.int64))
    kept: list[np.ndarray] = field(default_factory=list)  # float32 targets that cannot be histogrammed


def _histogrammable(target: np.ndarray) -> bool:
    if target.dtype.kind not in "ui":
        return False
    if target.dtype in (np.dtype(np.uint8), np.dtype(np.uint16)) or target.size == 0:
        return True
    return bool(target.min() >= 0 and target.max() < _HIST_BINS)


def _abs_diff_block(t: np.ndarray, p: np.ndarray) -> tuple[int, float]:
    """Sum of ``|float32(p) - float32(t)|`` over one block: exact int, or float64 sum."""
    if t.dtype in _EXACT_INT and p.dtype in _EXACT_INT:
        # |values| < 2^16: the float32 difference is exact, so the integer one equals it
        if t.dtype == p.dtype and t.dtype.kind == "u":
            return int((np.maximum(t, p) - np.minimum(t, p)).sum(dtype=np.uint64)), 0.0
        d = np.subtract(t, p, dtype=np.int32)
        np.abs(d, out=d)
        return int(d.sum(dtype=np.int64)), 0.0
    d = t.astype(np.float32) - p.astype(np.float32)
    np.abs(d, out=d)
    return 0, float(d.sum(dtype=np.float64))


def _histogram_median(hist: np.ndarray) -> float:
    """``np.median`` of the values a histogram counts (bins = integer values), exactly."""
    cum = np.cumsum(hist)
    n = int(cum[-1])
    lo = int(np.searchsorted(cum, (n - 1) // 2, side="right"))
    hi = int(np.searchsorted(cum, n // 2, side="right"))
    return (lo + hi) / 2  # exact: both are integers below 2^16


class PixelMAEAccumulator:
    """Streaming pooled pixel MAE of one magnification (adipocyte.md §1.3).

    Add every image set, one channel at a time, with :meth:`add` (or all channels with
    :meth:`add_set`); only running sums, a uint16 target histogram per channel and, for non-integer
    targets, a float32 copy of the target pixels are kept. :meth:`result` gives the same value as
    :func:`pixel_mae` on all the sets at once.

    Parameters
    ----------
    channels : sequence of str, optional
        The channels to score; default ``CHANNELS`` (``"C01"``, ``"C02"``, ``"C03"``). The names
        ``"nuclei"``, ``"lipids"``, ``"cytoplasm"`` are accepted as aliases.
    """

    def __init__(self, channels: Sequence[str] = CHANNELS) -> None:
        keys = [self._key(c) for c in channels]
        if not keys or len(set(keys)) != len(keys):
            raise ValueError(f"channels must be distinct and non-empty, got {list(channels)}")
        self._state = {c: _ChannelState() for c in keys}

    @staticmethod
    def _key(channel: str) -> str:
        return _CHANNEL_ALIASES.get(channel, channel)

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(self._state)

    def add(self, channel: str, target: np.ndarray, prediction: np.ndarray) -> None:
        """Add one image set's ``channel``: target and prediction images of the same shape."""
        key = self._key(channel)
        if key not in self._state:
            raise ValueError(f"unknown channel {channel!r}; expected one of {list(self._state)}")
        target = np.asarray(target)
        prediction = np.asarray(prediction)
        if target.shape != prediction.shape:
            raise ValueError(f"shape mismatch in {key}: target {target.shape} vs prediction {prediction.shape}")
        for role, arr in (("target", target), ("prediction", prediction)):
            if arr.dtype.kind not in "uifb":
                raise ValueError(f"{key} {role} has unsupported dtype {arr.dtype}")
        st = self._state[key]
        t_flat, p_flat = target.ravel(), prediction.ravel()
        hist_ok = _histogrammable(target)
        int_sum, float_sum = 0, 0.0
        hist = np.zeros(_HIST_BINS, np.int64) if hist_ok else None
        for start in range(0, t_flat.size, _CHUNK):
            tb, pb = t_flat[start : start + _CHUNK], p_flat[start : start + _CHUNK]
            i, f = _abs_diff_block(tb, pb)
            int_sum += i
            float_sum += f
            if hist is not None:
                if not np.can_cast(tb.dtype, np.intp, "safe"):
                    tb = tb.astype(np.intp)
                hist += np.bincount(tb, minlength=_HIST_BINS)
        if not math.isfinite(float_sum):
            raise ValueError(f"{key}: non-finite pixel values (NaN / inf in target or prediction, or float32 overflow)")
        # commit only after every check passed, so a rejected set leaves the state unchanged
        st.abs_sum_int += int_sum
        st.abs_sum_float += float_sum
        st.n_pixels += t_flat.size
        st.n_sets += 1
        if hist is not None:
            st.hist += hist
        else:
            st.kept.append(t_flat.astype(np.float32))

    def add_set(
        self, target: Mapping[str, np.ndarray] | np.ndarray, prediction: Mapping[str, np.ndarray] | np.ndarray
    ) -> None:
        """Add one image set: a mapping channel -> image, or an array of shape ``(n_channels, H, W)``
        in the order of :attr:`channels`."""
        targets = self._split_set(target, "target")
        predictions = self._split_set(prediction, "prediction")
        for c in self._state:
            self.add(c, targets[c], predictions[c])

    def _split_set(self, image_set: Mapping[str, np.ndarray] | np.ndarray, role: str) -> dict[str, np.ndarray]:
        if isinstance(image_set, Mapping):
            found = {self._key(k): v for k, v in image_set.items()}
            missing = [c for c in self._state if c not in found]
            if missing:
                raise ValueError(f"{role} image set lacks channel(s) {missing}")
            return found
        arr = np.asarray(image_set)
        if arr.ndim < 1 or arr.shape[0] != len(self._state):
            raise ValueError(f"{role} image set of shape {arr.shape}: expected ({len(self._state)}, H, W)")
        return dict(zip(self._state, arr, strict=True))

    def merge(self, other: PixelMAEAccumulator) -> PixelMAEAccumulator:
        """Add everything ``other`` holds (e.g. one image set scored in a worker process); returns self."""
        if other.channels != self.channels:
            raise ValueError(f"cannot merge accumulators of channels {other.channels} into {self.channels}")
        for c, st in self._state.items():
            o = other._state[c]
            st.abs_sum_int += o.abs_sum_int
            st.abs_sum_float += o.abs_sum_float
            st.n_pixels += o.n_pixels
            st.n_sets += o.n_sets
            st.hist += o.hist
            st.kept.extend(o.kept)
        return self

    def result(self, given_normalisers: Mapping[str, float] | None = None) -> dict[str, Any]:
        """The pooled pixel MAE of everything added.

        ``given_normalisers`` {channel: value} replaces the pooled target medians of these sets (rule
        ``"given"``): a subset of a split (e.g. one z-deviation) is scored with the split's medians.

        Returns
        -------
        dict
            ``per_channel`` {channel: MAE_c}, ``pixel_mae`` (mean over channels), ``n_sets``,
            ``target_median`` {channel: pooled median}, ``normalisers`` {channel: {"value", "rule"}},
            ``n_pixels`` {channel: int} and ``rules`` (the normaliser fall-backs that fired).
        """
        counts = {c: st.n_sets for c, st in self._state.items()}
        if min(counts.values()) == 0:
            raise ValueError(f"no image set added for channel(s) {[c for c, n in counts.items() if n == 0]}")
        if len(set(counts.values())) != 1:
            raise ValueError(f"channels have different numbers of image sets: {counts}")
        per_channel, medians, normalisers, n_pixels = {}, {}, {}, {}
        for c, st in self._state.items():
            if st.n_pixels == 0:
                raise ValueError(f"{c}: no pixels added")
            if st.kept:
                values = np.concatenate([np.repeat(np.arange(_HIST_BINS, dtype=np.float32), st.hist), *st.kept])
                median = float(np.median(values))
                mean_abs = float(np.abs(values).sum(dtype=np.float64)) / st.n_pixels
            else:
                median = _histogram_median(st.hist)
                mean_abs = float(np.dot(np.arange(_HIST_BINS, dtype=np.float64), st.hist)) / st.n_pixels
            value, rule = _normaliser(median, mean_abs)
            if given_normalisers is not None:
                value, rule = float(given_normalisers[self._key(c)]), "given"
            mae = (st.abs_sum_int + st.abs_sum_float) / st.n_pixels
            per_channel[c] = float(mae / abs(value))
            medians[c] = median
            normalisers[c] = {"value": float(value), "rule": rule}
            n_pixels[c] = st.n_pixels
        total = float(np.mean(list(per_channel.values())))
        if not math.isfinite(total):
            raise ValueError("pixel MAE overflowed")
        return {
            "per_channel": per_channel,
            "pixel_mae": total,
            "n_sets": next(iter(counts.values())),
            "target_median": medians,
            "normalisers": normalisers,
            "n_pixels": n_pixels,
            "rules": _normaliser_rules(normalisers, "channels"),
        }


def channel_pixel_mae(
    targets: Sequence[np.ndarray] | np.ndarray, predictions: Sequence[np.ndarray] | np.ndarray
) -> float:
    """Pooled, median-normalised pixel MAE of one channel (adipocyte.md §1.3).

    ``mean(|float32(pred) - float32(targ)|) / median(targ)``, both over all pixels of all images,
    as ``get_pixelwise_mean_absolute_error`` in the organisers' ``hackathon_evaluation_metrics.ipynb``
    does for one channel. A zero pooled median falls back to the mean of ``|targ|``, then to 1
    (module docstring, rule b).

    Parameters
    ----------
    targets, predictions : sequence of ndarray, or ndarray
        The channel's target and predicted images of every image set, pairwise of equal shape
        (a single array counts as one image).

    Returns
    -------
    float
    """
    targets = [targets] if isinstance(targets, np.ndarray) else list(targets)
    predictions = [predictions] if isinstance(predictions, np.ndarray) else list(predictions)
    if len(targets) != len(predictions):
        raise ValueError(f"{len(targets)} target images vs {len(predictions)} predictions")
    acc = PixelMAEAccumulator(channels=("C01",))
    for t, p in zip(targets, predictions, strict=True):
        acc.add("C01", t, p)
    return acc.result()["per_channel"]["C01"]


@metric("pixel_mae", higher_is_better=False, titles={"pixel_mae": "pixel MAE"})
def pixel_mae(
    targets: Sequence[Mapping[str, np.ndarray] | np.ndarray],
    predictions: Sequence[Mapping[str, np.ndarray] | np.ndarray],
    *,
    channels: Sequence[str] = CHANNELS,
) -> dict[str, Any]:
    """Pixel MAE of one magnification (adipocyte.md §1.3): mean over channels of :func:`channel_pixel_mae`.

    Parameters
    ----------
    targets, predictions : sequence of image sets
        Matched by position. An image set is a mapping channel -> 2-D image (``"C01"`` or
        ``"nuclei"`` ...) or an array of shape ``(len(channels), H, W)``.
    channels : sequence of str, optional
        Default ``CHANNELS``.

    Returns
    -------
    dict
        As :meth:`PixelMAEAccumulator.result`.
    """
    if len(targets) != len(predictions):
        raise ValueError(f"{len(targets)} target image sets vs {len(predictions)} prediction sets")
    acc = PixelMAEAccumulator(channels)
    for t, p in zip(targets, predictions, strict=True):
        acc.add_set(t, p)
    return acc.result()


# --- CellProfiler feature MAE (adipocyte.md §1.2) -------------------------------------------------


def _check_table(table: pd.DataFrame, role: str, features: Sequence[str]) -> list[str]:
    """Validate keys and columns; return the ignored (non-feature, non-meta) columns."""
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"{role} must be a pandas DataFrame, got {type(table).__name__}")
    if table.index.has_duplicates:
        dups = sorted({str(k) for k in table.index[table.index.duplicated()]})
        raise ValueError(f"duplicate image-set keys in {role}: {dups[:10]}")
    missing = [f for f in features if f not in table.columns]
    if missing:
        raise ValueError(f"{role} lack feature column(s) {missing[:10]}" + (" ..." if len(missing) > 10 else ""))
    wanted = set(features) | set(META_COLUMNS)
    return [str(c) for c in table.columns if c not in wanted]


def _values(table: pd.DataFrame, role: str, features: Sequence[str]) -> np.ndarray:
    try:
        return table.loc[:, list(features)].to_numpy(dtype=np.float64, copy=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"non-numeric values in the {role} feature columns: {exc}") from None


def _substitute(values: np.ndarray, features: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Rule a, in place: non-finite -> 0. Returns per-feature counts (empty-object NaNs, others)."""
    bad = ~np.isfinite(values)
    aggregate = np.array([f.startswith(("Mean_", "StDev_")) for f in features])
    empty = np.isnan(values) & aggregate[None, :]
    values[bad] = 0.0
    return empty.sum(axis=0), (bad & ~empty).sum(axis=0)


def _substitution_rules(table: str, features: Sequence[str], empty: np.ndarray, other: np.ndarray) -> list[dict]:
    rules = []
    for rule, counts in ((RULE_EMPTY_OBJECTS, empty), (RULE_NONFINITE, other)):
        if counts.any():
            per = {f: int(n) for f, n in zip(features, counts, strict=True) if n}
            rules.append({"rule": rule, "table": table, "n_values": int(counts.sum()), "features": per})
    return rules


def feature_normalisers(
    targets: pd.DataFrame, *, features: Sequence[str] = ADIPOCYTE_FEATURES
) -> dict[str, dict[str, Any]]:
    """Per-feature normalisers of a split: the target median, with the rule-b fall-backs.

    Computed over *all* target image sets of the split (after rule a: non-finite -> 0), so every
    submission is scored with the same normalisers whatever rows it predicts. The organisers'
    ``median_targ = df_targ.median()`` (adipocyte.md §1.2, ``hackathon_evaluation_metrics.ipynb``).

    Parameters
    ----------
    targets : DataFrame
        The target ``Adipocytes_Image.csv`` table of the split, indexed by image-set key.
    features : sequence of str, optional
        Default ``ADIPOCYTE_FEATURES``.

    Returns
    -------
    dict
        ``{feature: {"value": float, "rule": "median" | "mean_abs" | "unit", "median": float,
        "n_sets": int, "n_substituted": int}}``.
    """
    _check_table(targets, "targets", features)
    if len(targets) == 0:
        raise ValueError("the target table is empty")
    values = _values(targets, "targets", features)
    empty, other = _substitute(values, features)
    medians = np.median(values, axis=0)
    mean_abs = np.mean(np.abs(values), axis=0)
    out = {}
    for j, name in enumerate(features):
        value, rule = _normaliser(float(medians[j]), float(mean_abs[j]))
        if not math.isfinite(value):
            raise ValueError(f"normaliser of {name} overflowed")
        out[name] = {
            "value": float(value),
            "rule": rule,
            "median": float(medians[j]),
            "n_sets": len(targets),
            "n_substituted": int(empty[j] + other[j]),
        }
    return out


def _coerce_normalisers(normalisers: Mapping[str, Any], features: Sequence[str]) -> dict[str, dict[str, Any]]:
    out = {}
    for name in features:
        if name not in normalisers:
            raise ValueError(f"normalisers lack feature {name!r}")
        entry = normalisers[name]
        entry = dict(entry) if isinstance(entry, Mapping) else {"value": entry, "rule": RULE_MEDIAN}
        value = float(entry["value"])
        if not math.isfinite(value) or value == 0:
            raise ValueError(f"normaliser of {name!r} must be finite and non-zero, got {value}")
        entry["value"] = value
        entry.setdefault("rule", RULE_MEDIAN)
        out[name] = entry
    return out


@metric("feature_mae", higher_is_better=False, titles={"feature_mae": "feature MAE"})
def feature_mae(
    targets: pd.DataFrame,
    predictions: pd.DataFrame,
    *,
    normalisers: Mapping[str, Any] | None = None,
    features: Sequence[str] = ADIPOCYTE_FEATURES,
) -> dict[str, Any]:
    """Median-normalised CellProfiler-feature MAE of one magnification (adipocyte.md §1.2).

    ``MAE_j = mean_i |pred_ij / n_j - targ_ij / n_j|`` over the matched image sets ``i``, where
    ``n_j`` is the target median of feature ``j`` over the split; ``feature_mae = mean_j MAE_j``
    (unweighted), as ``get_featurewise_mean_absolute_error`` in the organisers'
    ``hackathon_evaluation_metrics.ipynb``, with the degenerate-case rules a-c of the module
    docstring.

    Parameters
    ----------
    targets, predictions : DataFrame
        ``Adipocytes_Image.csv`` tables indexed by image-set key (e.g. ``"B03_F001"``), one column
        per feature; ``ImageNumber``, ``Metadata_Well``, ``Metadata_FoV`` are dropped.
    normalisers : mapping, optional
        From :func:`feature_normalisers` (``{feature: {"value": ..., "rule": ...}}`` or
        ``{feature: float}``); default: computed from ``targets`` (all its rows).
    features : sequence of str, optional
        Default ``ADIPOCYTE_FEATURES``.

    Returns
    -------
    dict
        ``feature_mae``, ``per_feature`` {feature: MAE_j}, ``normalisers``, ``n_sets`` (matched sets),
        ``substitutions`` {"targets": {feature: n}, "predictions": {feature: n}} (rule a, over the
        matched rows), ``missing_predictions`` and ``unmatched_predictions`` (keys, as str), and
        ``rules`` (the list of rules that fired, each a dict with a ``"rule"`` key).
    """
    features = list(features)
    ignored = _check_table(targets, "targets", features)
    ignored_pred = _check_table(predictions, "predictions", features)
    if normalisers is None:
        norms = feature_normalisers(targets, features=features)
    else:
        norms = _coerce_normalisers(normalisers, features)
    matched_mask = targets.index.isin(predictions.index)
    keys = targets.index[matched_mask]
    missing = [str(k) for k in targets.index[~matched_mask]]
    unmatched = [str(k) for k in predictions.index[~predictions.index.isin(targets.index)]]
    if len(keys) == 0:
        raise ValueError("no prediction row matches a target row (rows are matched by image-set key, the index)")
    t = _values(targets.loc[keys], "targets", features)
    p = _values(predictions.loc[keys], "predictions", features)
    t_empty, t_other = _substitute(t, features)
    p_empty, p_other = _substitute(p, features)
    scale = np.array([norms[f]["value"] for f in features], dtype=np.float64)
    per_feature = np.mean(np.abs(p / scale - t / scale), axis=0)
    total = float(np.mean(per_feature))
    if not math.isfinite(total):
        raise ValueError("feature MAE overflowed")

    rules: list[dict[str, Any]] = []
    rules += _substitution_rules("targets", features, t_empty, t_other)
    rules += _substitution_rules("predictions", features, p_empty, p_other)
    rules += _normaliser_rules(norms, "features")
    if missing:
        rules.append({"rule": RULE_MISSING_PREDICTIONS, "keys": missing})
    if unmatched:
        rules.append({"rule": RULE_UNMATCHED_PREDICTIONS, "keys": unmatched})
    for role, cols in (("targets", ignored), ("predictions", ignored_pred)):
        if cols:
            rules.append({"rule": RULE_IGNORED_COLUMNS, "table": role, "columns": cols})
    return {
        "feature_mae": total,
        "per_feature": {f: float(v) for f, v in zip(features, per_feature, strict=True)},
        "normalisers": norms,
        "n_sets": len(keys),
        "substitutions": {
            "targets": {f: int(n) for f, n in zip(features, t_empty + t_other, strict=True) if n},
            "predictions": {f: int(n) for f, n in zip(features, p_empty + p_other, strict=True) if n},
        },
        "missing_predictions": missing,
        "unmatched_predictions": unmatched,
        "rules": rules,
    }


# --- combination (adipocyte.md §1.4) --------------------------------------------------------------

_COMPONENTS = ("feature_mae", "pixel_mae", "mae")


def _finite(value: Any, what: str) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{what} is not finite: {value}")
    return value


@metric("mae", higher_is_better=False, titles={"mae": "combined MAE"})
def combined_mae(feature_mae: float, pixel_mae: float) -> float:
    """Score of one magnification: ``np.average([mae_cp, mae_pix])`` (adipocyte.md §1.4,
    ``hackathon_evaluation_metrics.ipynb``), i.e. ``(feature_mae + pixel_mae) / 2``."""
    return (_finite(feature_mae, "feature MAE") + _finite(pixel_mae, "pixel MAE")) / 2


def weighted_total(per_magnification: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Image-set-weighted total over magnifications (adipocyte.md §1.4, the notebook's markdown):
    ``MAE_tot = sum_m n_m MAE_m / sum_m n_m``, for each of feature, pixel and combined MAE.

    Parameters
    ----------
    per_magnification : mapping
        ``{magnification: {"n_sets": int, "feature_mae": float, "pixel_mae": float, "mae": float}}``;
        ``"mae"`` (combined) defaults to :func:`combined_mae` of the other two when both are given.
        A component that is absent (or None) for some magnification is not totalled.

    Returns
    -------
    dict
        ``feature_mae``, ``pixel_mae``, ``mae`` (float, or None when some magnification lacks the
        component), ``n_sets`` (sum), ``weights`` {magnification: n_m / sum n} and ``missing``
        {component: [magnifications lacking it]} (only the incomplete components).
    """
    if not per_magnification:
        raise ValueError("no magnification given")
    entries: dict[str, dict[str, float]] = {}
    weights: dict[str, int] = {}
    for mag, entry in per_magnification.items():
        n = entry.get("n_sets")
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"{mag}: n_sets must be a non-negative integer, got {n!r}")
        weights[mag] = int(n)
        vals = {k: _finite(entry[k], f"{mag} {k}") for k in _COMPONENTS if entry.get(k) is not None}
        if "mae" not in vals and "feature_mae" in vals and "pixel_mae" in vals:
            vals["mae"] = combined_mae(vals["feature_mae"], vals["pixel_mae"])
        entries[mag] = vals
    total_n = sum(weights.values())
    if total_n == 0:
        raise ValueError("the magnifications hold no image set (sum of n_sets is 0)")
    out: dict[str, Any] = {}
    missing: dict[str, list[str]] = {}
    for comp in _COMPONENTS:
        lacking = [m for m, vals in entries.items() if comp not in vals]
        if lacking:
            out[comp] = None
            missing[comp] = lacking
        else:
            out[comp] = sum(weights[m] * entries[m][comp] for m in entries) / total_n
    out["n_sets"] = total_n
    out["weights"] = {m: n / total_n for m, n in weights.items()}
    out["missing"] = missing
    return out
