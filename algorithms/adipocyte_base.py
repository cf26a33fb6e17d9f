"""The predict interface of the Adipocyte Cell Imaging Challenge task (``adipocyte``).

An :class:`AdipocyteCase` is one image set (one site of one well) as a model sees it: the 7
brightfield planes Z01..Z07 (raw uint16 intensities, in that order) and the magnification of the
split; never its fluorescence. A predictor returns one uint16 (H, W) image per channel of
:data:`CHANNELS`, **in the intensity scale of the targets**: the challenge scores the raw 16-bit
values (pixel MAE divided by the target median, ``adipocyte.md`` §1.3), so unlike LMC there is no
freedom of scale or dtype. :func:`check_outputs` enforces this contract; the runner
(:mod:`vsbench.harness.predict_adipocyte`) records a set whose outputs break it as failed.

The protocols mirror :mod:`vsbench.algorithms.base`: a predictor has ``name``, ``task = "adipocyte"``
and ``predict``; one that learns also has ``fit``, called once with every training example before
any ``predict``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from vsbench.harness.adipocyte_split import CHANNELS, N_PLANES, TASK

__all__ = [
    "CHANNELS", "N_PLANES", "TASK", "AdipocyteCase", "AdipocyteTrainingExample", "AdipocytePredictor",
    "AdipocyteTrainable", "check_outputs",
]


@dataclass(frozen=True)
class AdipocyteCase:
    """One image set to predict.

    ``key``: the set's identity, ``<well>_F<site:03d>`` (e.g. ``B03_F001``). ``planes``: (7, H, W)
    uint16, brightfield Z01..Z07. ``magnification``: ``20x``, ``40x`` or ``60x``.
    """

    key: str
    planes: np.ndarray
    magnification: str

    def __post_init__(self) -> None:
        planes = self.planes
        if not isinstance(planes, np.ndarray) or planes.ndim != 3 or planes.shape[0] != N_PLANES:
            shape = getattr(planes, "shape", None)
            raise ValueError(f"{self.key}: planes must be a ({N_PLANES}, H, W) array, not shape {shape}")
        if planes.dtype != np.uint16:
            raise ValueError(f"{self.key}: planes must be uint16, not {planes.dtype}")

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) of every plane, and of every output image."""
        return self.planes.shape[1], self.planes.shape[2]


@dataclass(frozen=True)
class AdipocyteTrainingExample:
    """An image set with its ground truth: channel key -> uint16 (H, W) fluorescence image.

    ``targets`` holds the channels present in the training split (all of :data:`CHANNELS` in a complete
    split); a learner ignores a channel an example lacks.
    """

    case: AdipocyteCase
    targets: dict[str, np.ndarray] = field(default_factory=dict)


@runtime_checkable
class AdipocytePredictor(Protocol):
    """An algorithm of the ``adipocyte`` task."""

    name: str
    task: str  # always "adipocyte"; the CLI refuses to run it on a split of another task

    def predict(self, case: AdipocyteCase) -> dict[str, np.ndarray]:
        """One uint16 array of ``case.shape`` per channel in :data:`CHANNELS`, in the target intensity scale."""
        ...


@runtime_checkable
class AdipocyteTrainable(Protocol):
    """A predictor that learns (:class:`vsbench.algorithms.base.Trainable`, for adipocyte examples)."""

    def fit(self, examples: Iterable[AdipocyteTrainingExample]) -> None:
        """Learn from training examples; called once before any ``predict``."""
        ...


def check_outputs(outputs: Mapping[str, np.ndarray], shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """The outputs of :data:`CHANNELS` if they keep the contract, else :class:`ValueError` (one line).

    Each channel must be present, have ``shape`` and dtype uint16; a float output with NaN or inf is
    reported as such (before its dtype). Extra keys are ignored.
    """
    if not isinstance(outputs, Mapping):
        raise ValueError(f"predict returned {type(outputs).__name__}, not a dict of channel -> image")
    checked = {}
    for channel in CHANNELS:
        if channel not in outputs:
            raise ValueError(f"no output for {channel}")
        arr = np.asarray(outputs[channel])
        if arr.shape != tuple(shape):
            raise ValueError(f"{channel} output shape {arr.shape} != input shape {tuple(shape)}")
        if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
            raise ValueError(f"{channel} output has non-finite values (NaN or inf)")
        if arr.dtype != np.uint16:
            raise ValueError(f"{channel} output dtype {arr.dtype}, expected uint16 (raw 16-bit intensities "
                             "in the target scale)")
        checked[channel] = arr
    return checked
