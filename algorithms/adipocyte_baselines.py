"""Baselines of the adipocyte task: what any virtual-staining model of it must beat.

``adipocyte-train-median`` predicts, per channel, a constant image: the median of every training
target pixel. That is the normaliser of the challenge's pixel MAE (``adipocyte.md`` §1.3) and the
constant that minimises the absolute error on the training pixels, so it is the floor of the median-normalised pixel MAE
for a model that ignores its input.

``adipocyte-ridge`` is a per-channel linear model on a bank of filters of the brightfield stack:
the multi-scale features of :func:`vsbench.algorithms.baselines.filter_bank` of the middle plane, of
the mean and the spread over the 7 planes and of the differences of planes symmetric about focus
(lipid droplets, strong lenses, change contrast through focus; :func:`feature_images`). Fitted on a
seeded random sample of pixels of every training set, in units of the training median of each
channel, by iteratively reweighted least squares towards the least absolute error (the metric is an
MAE), with a ridge penalty whose strength is picked by cross-validation over image sets, the
intercept-only model (the train median) included, so a channel the brightfield does not predict
(nuclei, nearly invisible) falls back to the floor. Output rounded, clipped to the range of the
training targets, uint16. Deterministic; fits in seconds on CPU for a few 256² sets.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from scipy import linalg

from vsbench.algorithms.adipocyte_base import CHANNELS, TASK, AdipocyteCase, AdipocyteTrainingExample
from vsbench.algorithms.baselines import filter_bank, normalise

UINT16_MAX = 65535


class _HistogramMedian:
    """Exact median of a stream of uint16 images (a 65536-bin histogram: constant memory)."""

    def __init__(self) -> None:
        self.counts = np.zeros(UINT16_MAX + 1, np.int64)

    def add(self, image: np.ndarray) -> None:
        image = np.asarray(image)
        if image.dtype != np.uint16:
            raise ValueError(f"training targets must be uint16, not {image.dtype}")
        self.counts += np.bincount(image.ravel(), minlength=UINT16_MAX + 1)

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    def median(self) -> float:
        """``np.median`` of every value added (the mean of the two middle values for an even count)."""
        n = self.n
        if n == 0:
            raise ValueError("no values")
        cum = np.cumsum(self.counts)
        lo = int(np.searchsorted(cum, (n - 1) // 2 + 1))  # value at 0-based rank (n - 1) // 2
        hi = int(np.searchsorted(cum, n // 2 + 1))  # value at 0-based rank n // 2
        return (lo + hi) / 2


def _constant(value: float, shape: tuple[int, int]) -> np.ndarray:
    return np.full(shape, np.uint16(np.clip(np.rint(value), 0, UINT16_MAX)), np.uint16)


class AdipocyteTrainMedian:
    """Constant image per channel: the median of all training target pixels (the metric's normaliser)."""

    name = "adipocyte-train-median"
    task = TASK

    def __init__(self) -> None:
        self.medians: dict[str, float] = {}

    def fit(self, examples: Iterable[AdipocyteTrainingExample]) -> None:
        """``medians[c]`` = ``np.median`` of every pixel of every training target of channel ``c``."""
        hists = {c: _HistogramMedian() for c in CHANNELS}
        for ex in examples:
            for channel, target in ex.targets.items():
                if channel in hists:
                    hists[channel].add(target)
        missing = [c for c in CHANNELS if hists[c].n == 0]
        if missing:
            raise ValueError(f"{self.name}: the training split has no ground truth for {', '.join(missing)}")
        self.medians = {c: hists[c].median() for c in CHANNELS}

    def predict(self, case: AdipocyteCase) -> dict[str, np.ndarray]:
        """``medians[c]`` rounded to the nearest integer, as a uint16 image of ``case.shape``."""
        if not self.medians:
            raise RuntimeError(f"{self.name}: call fit() before predict()")
        return {c: _constant(self.medians[c], case.shape) for c in CHANNELS}


def feature_images(planes: np.ndarray) -> list[np.ndarray]:
    """The 2-D images of a (7, H, W) brightfield stack that :func:`filter_bank` turns into features.

    The stack is normalised jointly (2 / 99.8 percentiles over all planes, so the contrast between planes
    survives); the images are the middle plane Z04, the mean and the standard deviation over planes, and the
    differences of the planes symmetric about Z04 (Z07 - Z01, Z06 - Z02, Z05 - Z03: a lipid droplet, a
    strong lens, is dark below focus and bright above it, so these fill its disk).
    """
    x = normalise(planes)
    n = x.shape[0]
    return [x[n // 2], x.mean(0), x.std(0)] + [x[n - 1 - i] - x[i] for i in range(n // 2)]


def stack_features(planes: np.ndarray) -> np.ndarray:
    """All features per pixel (H, W, F) of a (7, H, W) brightfield stack: :func:`filter_bank` of every
    :func:`feature_images` image, concatenated (F = 6 x 15). Memory: F float32 images."""
    return np.concatenate([filter_bank(image) for image in feature_images(planes)], axis=-1)


def _irls(z: np.ndarray, y: np.ndarray, ridge: float | None, iterations: int) -> np.ndarray:
    """Weights of ``y ~ z`` (z's last column is the constant): ridge, then IRLS towards least absolute error.

    ``ridge=None``: the intercept-only model, the median of ``y`` (the least-absolute-error constant).
    """
    n, f = z.shape
    w = np.zeros(f)
    if ridge is None:
        w[-1] = np.median(y)
        return w
    penalty = ridge * n * np.eye(f)
    penalty[-1, -1] = 0.0  # the intercept is not shrunk
    weights = np.ones(n)
    z32 = z.astype(np.float32)  # the Gram matrix in float32 (2x faster), solved in float64
    for _ in range(iterations + 1):
        zw = z32 * weights[:, None].astype(np.float32)
        gram = (z32.T @ zw).astype(np.float64)
        # scipy's positive-definite solve: numpy's threaded LAPACK is 50x slower on these small systems
        w = linalg.solve(gram + penalty, zw.T.astype(np.float64) @ y, assume_a="pos")
        weights = 1.0 / np.maximum(np.abs(y - z @ w), 1e-3)
        weights *= n / weights.sum()  # keeps the ridge penalty on the scale of the first solve
    return w


class AdipocyteRidge:
    """Per-channel robust ridge regression on a filter bank of the 7 brightfield planes (strength by CV)."""

    name = "adipocyte-ridge"
    task = TASK

    def __init__(self, pixels_per_set: int = 4000, ridges: tuple[float, ...] = (1e-3, 1e-2, 1e-1),
                 l1_iterations: int = 10, folds: int = 4, cv_pixels_per_set: int = 1000, cv_l1_iterations: int = 5,
                 seed: int = 0):
        self.pixels_per_set = pixels_per_set
        self.ridges = ridges
        self.l1_iterations = l1_iterations
        self.folds = folds
        self.cv_pixels_per_set = cv_pixels_per_set
        self.cv_l1_iterations = cv_l1_iterations
        self.seed = seed
        self.mean = self.std = np.zeros(0)  # feature standardisation
        # channel -> (weights with the intercept last, in units of the training median)
        self.weights: dict[str, np.ndarray] = {}
        self.medians: dict[str, float] = {}  # training median per channel (the unit of the weights)
        self.ranges: dict[str, tuple[int, int]] = {}  # smallest and largest training value per channel
        self.chosen: dict[str, float | None] = {}  # ridge strength picked by CV (None: intercept only)

    def fit(self, examples: Iterable[AdipocyteTrainingExample]) -> None:
        """Fit one model per channel on ``pixels_per_set`` seeded random pixels of every example.

        The ridge strength of each channel is chosen among ``ridges`` and the intercept-only model (the
        training median) by the least absolute error in ``folds``-fold cross-validation over image sets
        (on the first ``cv_pixels_per_set`` sampled pixels of each set, ``cv_l1_iterations`` IRLS steps);
        with one set, ``ridges[0]``. Every example must have all of :data:`CHANNELS` (:class:`ValueError`).
        """
        rng = np.random.default_rng(self.seed)
        xs: list[np.ndarray] = []
        ys: dict[str, list[np.ndarray]] = {c: [] for c in CHANNELS}
        hists = {c: _HistogramMedian() for c in CHANNELS}
        ranges = {c: (UINT16_MAX, 0) for c in CHANNELS}
        for ex in examples:
            present = [c for c in CHANNELS if c in ex.targets]
            if len(present) != len(CHANNELS):
                missing = ", ".join(c for c in CHANNELS if c not in present)
                raise ValueError(f"{self.name}: training set {ex.case.key} has no ground truth for {missing}")
            h, w = ex.case.shape
            idx = rng.choice(h * w, size=min(self.pixels_per_set, h * w), replace=False)
            xs.append(np.concatenate([filter_bank(image).reshape(h * w, -1)[idx]
                                      for image in feature_images(ex.case.planes)], axis=1))
            for channel in CHANNELS:
                target = ex.targets[channel]
                hists[channel].add(target)
                lo, hi = ranges[channel]
                ranges[channel] = (min(lo, int(target.min())), max(hi, int(target.max())))
                ys[channel].append(target.ravel()[idx].astype(np.float64))
        if not xs:
            raise ValueError(f"{self.name}: the training split has no ground truth to learn from")
        x = np.concatenate(xs).astype(np.float64)
        self.mean, self.std = x.mean(0), x.std(0) + 1e-8
        z = np.hstack([(x - self.mean) / self.std, np.ones((x.shape[0], 1))])
        sets = np.concatenate([np.full(len(a), i) for i, a in enumerate(xs)])
        rank = np.concatenate([np.arange(len(a)) for a in xs])  # position in the set's (random) sample
        self.weights, self.medians, self.ranges, self.chosen = {}, {}, ranges, {}
        for channel in CHANNELS:
            self.medians[channel] = max(hists[channel].median(), 1.0)
            y = np.concatenate(ys[channel]) / self.medians[channel]
            self.chosen[channel] = self._choose(z, y, sets, rank, len(xs))
            self.weights[channel] = _irls(z, y, self.chosen[channel], self.l1_iterations)

    def _choose(self, z: np.ndarray, y: np.ndarray, sets: np.ndarray, rank: np.ndarray, n_sets: int) -> float | None:
        if n_sets < 2:
            return self.ridges[0]
        use = rank < self.cv_pixels_per_set
        z, y, fold = z[use], y[use], sets[use] % min(self.folds, n_sets)
        candidates: list[float | None] = [*self.ridges, None]
        errors = []
        for ridge in candidates:
            error = 0.0
            for k in np.unique(fold):
                w = _irls(z[fold != k], y[fold != k], ridge, self.cv_l1_iterations)
                error += float(np.abs(y[fold == k] - z[fold == k] @ w).sum())
            errors.append(error)
        return candidates[int(np.argmin(errors))]

    def predict(self, case: AdipocyteCase) -> dict[str, np.ndarray]:
        """uint16 per channel: the linear model times the training median, rounded and clipped to the
        range of the training targets. Peak memory: 15 feature images (one filter bank at a time)."""
        if not self.weights:
            raise RuntimeError(f"{self.name}: call fit() before predict()")
        w = np.stack([self.weights[c] for c in CHANNELS], axis=1)  # (F + 1, 3)
        acc = np.zeros((*case.shape, len(CHANNELS)), np.float64)
        start = 0
        for image in feature_images(case.planes):
            feats = filter_bank(image)
            stop = start + feats.shape[-1]
            scale = (w[start:stop] / self.std[start:stop, None]).astype(np.float32)
            acc += feats @ scale
            acc -= self.mean[start:stop] @ (w[start:stop] / self.std[start:stop, None])
            start = stop
        if start != len(self.mean):
            raise RuntimeError(f"{self.name}: {start} features, fitted on {len(self.mean)}")
        acc += w[-1]
        out = {}
        for i, channel in enumerate(CHANNELS):
            lo, hi = self.ranges[channel]
            out[channel] = np.clip(np.rint(acc[..., i] * self.medians[channel]), lo, hi).astype(np.uint16)
        return out
