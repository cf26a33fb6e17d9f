"""Baselines that anchor every leaderboard: a real model must beat them.

Trivial ones (no learning): the input slice itself, its inverse, a blurred copy. The training-set
mean image (learns only an average). And one small learned model, a ridge regression on a bank of
multi-scale filters of the input, per modality and organelle: cheap to fit on a CPU in seconds,
and the floor any deep model should clear.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import numpy as np
from scipy import ndimage

from vsbench.algorithms.base import ORGANELLES, Case, TrainingExample


def normalise(image: np.ndarray, pmin: float = 2.0, pmax: float = 99.8) -> np.ndarray:
    """2 / 99.8 percentile normalisation to float32 (the winner's and organisers' choice)."""
    image = np.asarray(image, dtype=np.float32)
    low, high = np.percentile(image, (pmin, pmax))
    if high <= low:
        return np.zeros_like(image)
    return (image - low) / (high - low)


class InputBaseline:
    """Predicts the input slice itself for every organelle."""

    name = "input"

    def predict(self, case: Case) -> dict[str, np.ndarray]:
        x = normalise(case.image)
        return {o: x for o in ORGANELLES}


class InvertedInputBaseline:
    """Predicts the inverted input slice (dark objects become bright)."""

    name = "inverted"

    def predict(self, case: Case) -> dict[str, np.ndarray]:
        x = 1.0 - normalise(case.image)
        return {o: x for o in ORGANELLES}


class BlurredInputBaseline:
    """Predicts a Gaussian-blurred input slice (sigma in pixels)."""

    name = "blurred"

    def __init__(self, sigma: float = 4.0):
        self.sigma = sigma

    def predict(self, case: Case) -> dict[str, np.ndarray]:
        x = ndimage.gaussian_filter(normalise(case.image), self.sigma)
        return {o: x for o in ORGANELLES}


class TrainMeanBaseline:
    """Predicts the mean normalised training target of each organelle, resampled to the input."""

    name = "train-mean"
    grid = 128  # targets are averaged on a fixed grid, so fields of any size can be mixed

    def __init__(self) -> None:
        self.means: dict[str, np.ndarray] = {}

    def fit(self, examples: Iterable[TrainingExample]) -> None:
        sums: dict[str, np.ndarray] = {}
        counts: dict[str, int] = defaultdict(int)
        previous: dict[str, np.ndarray] = {}
        for ex in examples:
            for organelle, target in ex.targets.items():
                if previous.get(organelle) is target:  # consecutive slices of one field share one target
                    continue
                previous[organelle] = target
                t = _resample(normalise(target), (self.grid, self.grid))
                sums[organelle] = sums.get(organelle, 0) + t
                counts[organelle] += 1
        self.means = {o: sums[o] / counts[o] for o in sums}

    def predict(self, case: Case) -> dict[str, np.ndarray]:
        shape = case.image.shape
        flat = np.ones(shape, np.float32)
        return {o: _resample(self.means[o], shape) if o in self.means else flat for o in ORGANELLES}


def _resample(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    factors = (shape[0] / image.shape[0], shape[1] / image.shape[1])
    out = ndimage.zoom(image, factors, order=1, grid_mode=True, mode="nearest")
    return out[: shape[0], : shape[1]].astype(np.float32)


def filter_bank(image: np.ndarray) -> np.ndarray:
    """Features per pixel (H, W, F): multi-scale smoothing, Laplacian of Gaussian, gradient
    magnitude and local texture energy of the normalised input."""
    x = normalise(image)
    feats = [x]
    for s in (1.0, 2.0, 4.0, 8.0, 16.0):
        feats.append(ndimage.gaussian_filter(x, s))
    for s in (1.0, 2.0, 4.0):
        log = ndimage.gaussian_laplace(x, s)
        feats.append(log)
        feats.append(ndimage.gaussian_filter(log * log, 2 * s))  # texture energy at this scale
    for s in (1.0, 2.0, 4.0):
        feats.append(ndimage.gaussian_gradient_magnitude(x, s))
    return np.stack(feats, axis=-1)


class FilterBankRegression:
    """Ridge regression from a filter bank of the input to each organelle, per modality.

    Fitted on a random sample of pixels of every training slice (all z-planes, so it learns the
    average over defocus). A modality-agnostic model covers (modality, organelle) pairs that the
    training split does not have.
    """

    name = "filterbank"

    def __init__(self, pixels_per_slice: int = 2000, ridge: float = 1e-3, seed: int = 0):
        self.pixels_per_slice = pixels_per_slice
        self.ridge = ridge
        self.seed = seed
        self.models: dict[tuple[str | None, str], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def fit(self, examples: Iterable[TrainingExample]) -> None:
        rng = np.random.default_rng(self.seed)
        xs: dict[tuple[str | None, str], list] = defaultdict(list)
        ys: dict[tuple[str | None, str], list] = defaultdict(list)
        normalised: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # organelle -> (target, normalised), last field
        for ex in examples:
            if not ex.targets:
                continue
            feats = filter_bank(ex.case.image)
            flat = feats.reshape(-1, feats.shape[-1])
            idx = rng.choice(flat.shape[0], size=min(self.pixels_per_slice, flat.shape[0]), replace=False)
            for organelle, target in ex.targets.items():
                if organelle not in normalised or normalised[organelle][0] is not target:
                    normalised[organelle] = (target, normalise(target).ravel())
                y = normalised[organelle][1][idx]
                for key in ((ex.case.modality, organelle), (None, organelle)):
                    xs[key].append(flat[idx])
                    ys[key].append(y)
        if not xs:
            raise ValueError("filterbank: the training split has no ground truth to learn from")
        self.models = {key: self._solve(np.concatenate(xs[key]), np.concatenate(ys[key])) for key in xs}

    def _solve(self, x: np.ndarray, y: np.ndarray):
        x = x.astype(np.float64)
        mean, std = x.mean(0), x.std(0) + 1e-8
        z = (x - mean) / std
        z = np.hstack([z, np.ones((z.shape[0], 1))])
        gram = z.T @ z + self.ridge * z.shape[0] * np.eye(z.shape[1])
        w = np.linalg.solve(gram, z.T @ y.astype(np.float64))
        return mean, std, w

    def predict(self, case: Case) -> dict[str, np.ndarray]:
        if not self.models:
            raise RuntimeError("filterbank: call fit() before predict()")
        feats = filter_bank(case.image)
        out = {}
        for organelle in ORGANELLES:
            model = self.models.get((case.modality, organelle)) or self.models.get((None, organelle))
            if model is None:
                out[organelle] = np.zeros(case.image.shape, np.float32)
                continue
            mean, std, w = model
            z = (feats - mean.astype(np.float32)) / std.astype(np.float32)
            out[organelle] = (z @ w[:-1].astype(np.float32) + np.float32(w[-1])).astype(np.float32)
        return out
