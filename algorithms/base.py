"""The one predict interface every virtual-staining algorithm sits behind.

A :class:`Case` is what a container sees on grand-challenge: one 2-D transmitted-light slice and
the metadata of its OME-TIFF (modality, pixel size); never its best focus or ground truth. A
predictor returns one 2-D array per organelle, the same shape as the input; any dtype and scale
will do, since the LMC metrics percentile-normalise every prediction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

ORGANELLES = ("nucleus", "mitochondria", "tubulin", "actin")


@dataclass(frozen=True)
class Case:
    name: str  # input file name
    image: np.ndarray  # 2-D transmitted-light slice, raw intensities
    modality: str | None = None  # BF, PC or DIC, from the OME Channel name
    pixel_size_um: float | None = None


@dataclass(frozen=True)
class TrainingExample:
    case: Case
    targets: dict[str, np.ndarray] = field(default_factory=dict)  # organelle -> fluorescence image


@runtime_checkable
class Predictor(Protocol):
    name: str

    def predict(self, case: Case) -> dict[str, np.ndarray]:
        """One 2-D array per organelle in ``ORGANELLES``, each of ``case.image.shape``."""
        ...


@runtime_checkable
class Trainable(Protocol):
    def fit(self, examples: Iterable[TrainingExample]) -> None:
        """Learn from training examples; called once before any ``predict``."""
        ...
