"""The VQGAN specialists (Light My Cells 2024 winner) configured for the Adipocyte task (``adipocyte-vqgan-tiny``).

What is the same as for LMC (:mod:`.train`, :mod:`.predictor`). Three specialists, one per channel of
:data:`~vsbench.algorithms.adipocyte_base.CHANNELS` (``nuclei``, ``lipids``, ``cytoplasm``), each a VQGAN exactly
as the winner's per organelle: the same networks, L1 + codebook + hinge-GAN losses with the adaptive weight, the
same trainer, augmentation (rot90, flip, random resized crop) and the whole field of view resized to the model's
resolution (64 for ``tiny``, 256 for ``paper``) and back. Config (:func:`~.config.get_config` with a channel
name, ``task="adipocyte"``): disc weight 0.8 for every channel; ``tiny`` keeps its own learning rate; ``paper``
uses the nucleus's base lr (4e-6) for ``nuclei`` and 1e-6 for ``lipids`` and ``cytoplasm`` (scaled by
``--scale_lr``): the winner has no adipocyte settings, these are choices made here.

Input: three brightfield planes (:data:`INPUT_PLANES`, Z02, Z04, Z06) as the VQGAN's 3 input channels, which
are 3 copies of one transmitted-light slice for LMC. Z04 is the centre of the 7-plane stack and Z02 / Z06 lie
two planes below and above: lipid droplets, the dominant brightfield feature, are nearly invisible phase
objects in focus and show as bright or dark lensing rings out of focus, so the defocused planes carry most of
the signal (the observation :mod:`vsbench.harness.alignment` uses for registration: ``Z(f+1) - Z(f-1)``); a
symmetric pair keeps both signs of the defocus, and the centre plane keeps in-focus detail (nuclear and cell
outlines). Each plane is percentile-rescaled (2 / 99.8, clipped) to uint8 on its own and mapped to [-1, 1], as
the winner rescaled every channel (:func:`~.data.input_to_uint8`). No brightfield-to-fluorescence alignment is
applied (the winner had none; the Patch-GAN predictor's site alignment is not used).

Targets: rescaled to uint8 with ONE DATASET-LEVEL window per channel, ``(low, high)`` = the 2nd / 99.8th
percentile of all training target pixels of that channel (:func:`target_window`, exact ``np.percentile`` of the
pooled pixels, computed from a 65,536-bin histogram), not per image as for LMC. The window is stored in each
specialist's checkpoint (``target_window`` in the trainer state; absent / ``None`` for LMC) and inference maps
the model's uint16 output ``u`` (:func:`~.data.postprocess`: clip to [-1, 1], ``(y + 1) / 2 * 65535``, channel
mean, resized back) to raw intensities ``raw = low + u / 65535 * (high - low)``, rounded and clipped to uint16
(:func:`to_raw`). Why: the adipocyte metric (``adipocyte.md`` §1.3) compares RAW 16-bit intensities (pixel MAE
divided by the target median), so predictions must come back in the target scale; a per-image window, as LMC's,
would need the unknown target's percentiles at inference. With a dataset-level window the brightness of a
target relative to the data set is part of what is learnt. Raw values below ``low`` or above ``high`` cannot be
predicted (clipped at training, as the winner clips), and the target's 256 uint8 levels quantise the training
signal to ``(high - low) / 255``.

Predictor (:class:`VQGANAdipocyte`, ``adipocyte-vqgan-tiny``): ``checkpoint=ROOT`` loads ``ROOT/<channel>``
for the three channels once (``best.pt`` if there, else ``checkpoint.pt``; a missing specialist is an error that
names it: :func:`~.predictor.load_specialists`); ``fit(examples)`` trains three ``tiny`` specialists of
:data:`~.predictor.DEFAULT_STEPS` updates each (in ``work_dir/<channel>``, resumed if there, else in a temporary
folder), with one torch thread (:data:`~.predictor.THREADS`). ``predict(case)``: the three planes, preprocessed
once, each specialist, :func:`to_raw` with its window: one uint16 image of ``case.shape`` per channel.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from vsbench.algorithms.adipocyte_base import CHANNELS, TASK, AdipocyteCase, AdipocyteTrainingExample
from vsbench.algorithms.vqgan.data import PERCENTILES, UINT16_MAX, input_to_uint8, window_to_uint8
from vsbench.algorithms.vqgan.predictor import (
    DEFAULT_STEPS,
    THREADS,
    fit_specialists,
    load_specialists,
    run_specialists,
    torch_threads,
)
from vsbench.algorithms.vqgan.train import SpecialistData

__all__ = [
    "INPUT_PLANES", "PLANE_INDICES", "VQGANAdipocyte", "input_planes", "target_window", "to_raw",
    "adipocyte_specialist_data", "adipocyte_specialist_data_from_split",
]

INPUT_PLANES = ("Z02", "Z04", "Z06")  # the VQGAN's 3 input channels: the centre plane and two planes either side
PLANE_INDICES = tuple(int(p[1:]) - 1 for p in INPUT_PLANES)  # 0-based indices into the (7, H, W) planes


def input_planes(planes: np.ndarray) -> np.ndarray:
    """The ``3 x H x W`` uint8 model input of a case's ``7 x H x W`` planes: :data:`INPUT_PLANES`, each rescaled
    (2 / 99.8 percentiles, clipped) on its own."""
    return input_to_uint8(np.asarray(planes)[list(PLANE_INDICES)])


def target_window(targets: Iterable[np.ndarray], percentiles: tuple[float, float] = PERCENTILES
                  ) -> tuple[float, float]:
    """``(low, high)``: the percentiles of all pixels of ``targets`` (uint16) pooled, equal to ``np.percentile``
    of their concatenation (linear interpolation), from a histogram (no copy of the pixels)."""
    counts = np.zeros(UINT16_MAX + 1, np.int64)
    for t in targets:
        t = np.asarray(t)
        if t.dtype != np.uint16:
            t = np.clip(np.rint(t), 0, UINT16_MAX).astype(np.uint16)
        counts += np.bincount(t.ravel(), minlength=UINT16_MAX + 1)
    n = int(counts.sum())
    if n == 0:
        raise ValueError("target_window: no target pixels")
    cum = np.cumsum(counts)

    def kth(k: int) -> float:  # the k-th (0-based) smallest pixel value
        return float(np.searchsorted(cum, k, side="right"))

    window = []
    for q in percentiles:
        pos = q / 100.0 * (n - 1)
        lo = int(np.floor(pos))
        a, b = kth(lo), kth(min(lo + 1, n - 1))
        window.append(a + (pos - lo) * (b - a))
    return window[0], window[1]


def to_raw(u: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """The model's uint16 output ``u`` (0..65535) in raw target intensities: ``low + u / 65535 * (high - low)``,
    rounded, clipped to 0..65535, uint16."""
    low, high = window
    raw = low + np.asarray(u, np.float64) / UINT16_MAX * (high - low)
    return np.clip(np.rint(raw), 0, UINT16_MAX).astype(np.uint16)


def adipocyte_specialist_data(examples: Iterable[AdipocyteTrainingExample], channel: str,
                              window: tuple[float, float] | None = None) -> SpecialistData:
    """The training data of ``channel``'s specialist: per example that has the channel, one input "slice", the
    ``3 x H x W`` uint8 :func:`input_planes`, and its target rescaled to uint8 on the data set's
    :func:`target_window` (or ``window``, e.g. the training window for validation data), which the result
    carries as ``target_window``.

    :class:`ValueError` if ``channel`` is unknown, no example has it, or a target is not 2-D of the planes'
    shape."""
    if channel not in CHANNELS:
        raise ValueError(f"vqgan: unknown adipocyte channel {channel!r}; choose from {', '.join(CHANNELS)}")
    chosen = []
    for ex in examples:
        target = ex.targets.get(channel)
        if target is None:
            continue
        target = np.asarray(target)
        if target.shape != ex.case.shape:
            raise ValueError(f"vqgan: {ex.case.key}: {channel} ground truth shape {target.shape} != input shape "
                             f"{ex.case.shape}")
        chosen.append((ex, target))
    if not chosen:
        raise ValueError(f"vqgan: no training example has {channel} ground truth")
    if window is None:
        window = target_window(t for _, t in chosen)
    window = (float(window[0]), float(window[1]))
    return SpecialistData(
        channel,
        inputs=[[input_planes(ex.case.planes)] for ex, _ in chosen],
        targets=[window_to_uint8(t, *window) for _, t in chosen],
        names=[[ex.case.key] for ex, _ in chosen],
        target_window=window,
    )


def adipocyte_specialist_data_from_split(split_path, channel: str,
                                         window: tuple[float, float] | None = None) -> SpecialistData:
    """:func:`adipocyte_specialist_data` of every image set of an adipocyte training split folder (or
    :class:`~vsbench.harness.split.Split`)."""
    from vsbench.harness.predict_adipocyte import adipocyte_training_examples
    from vsbench.harness.split import Split

    split = split_path if hasattr(split_path, "manifest") else Split(Path(split_path))
    if split.task != TASK:
        raise ValueError(f"vqgan: {split.root} is an {split.task} split, not {TASK}")
    return adipocyte_specialist_data(adipocyte_training_examples(split), channel, window)


def _how(channel: str, folder: Path) -> str:
    return (f"VQGANAdipocyte(work_dir=...).fit(examples), or vsbench.algorithms.vqgan.train.train(get_config("
            f"'tiny', organelle='{channel}'), SPLIT, '{folder}', STEPS)")


class VQGANAdipocyte:
    """Three VQGAN specialists: brightfield Z02 / Z04 / Z06 -> nuclei, lipids, cytoplasm (uint16, raw scale)."""

    name = "adipocyte-vqgan-tiny"
    task = TASK

    def __init__(self, checkpoint: Path | str | None = None, config: str = "tiny", steps: int = DEFAULT_STEPS,
                 seed: int = 0, work_dir: Path | str | None = None, progress: bool = False, threads: int = THREADS,
                 device: str | None = None):
        """``device``: where the specialists run (default CUDA when there is a GPU, else the CPU)."""
        self.config_name, self.steps, self.seed, self.progress, self.threads = config, steps, seed, progress, threads
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.work_dir = Path(work_dir) if work_dir is not None else None
        self.models: dict[str, torch.nn.Module] = {}
        self.resolution: dict[str, int] = {}
        self.windows: dict[str, tuple[float, float]] = {}
        self.provenance: dict = {"config": config, "trained": "in-process by fit()", "seed": seed, "steps": steps,
                                 "input_planes": list(INPUT_PLANES)}
        if checkpoint is not None:
            self.load(checkpoint)

    @property
    def fitted(self) -> bool:
        """True once all three specialists are loaded: the harness then needs no training split."""
        return set(self.models) == set(CHANNELS)

    def load(self, root: Path | str) -> None:
        """Load the three specialists ``ROOT/<channel>`` (module docstring), each once."""
        loaded = load_specialists(root, CHANNELS, self.device, how=_how)
        for s in loaded.values():
            if getattr(s.config, "task", None) != TASK or s.target_window is None:
                raise ValueError(f"{s.record['checkpoint']}: not an adipocyte specialist (task "
                                 f"{getattr(s.config, 'task', None)!r}, no target window)")
        record = {c: {**s.record, "target_window": list(s.target_window)} for c, s in loaded.items()}
        names = {r["config"] for r in record.values()}
        self.models = {c: s.model for c, s in loaded.items()}
        self.resolution = {c: int(s.config.resolution) for c, s in loaded.items()}
        self.windows = {c: s.target_window for c, s in loaded.items()}
        self.name = f"adipocyte-vqgan-{names.pop()}" if len(names) == 1 else "adipocyte-vqgan-mixed"
        self.provenance = {"checkpoint": str(Path(root).resolve()), "input_planes": list(INPUT_PLANES),
                           "specialists": record}

    def fit(self, examples: Iterable[AdipocyteTrainingExample]) -> None:
        """Train a ``config`` specialist per channel for ``steps`` updates (no-op once loaded), checkpointing to
        ``work_dir/<channel>`` (resumed if there) or to a temporary folder, then load them."""
        if self.fitted:
            return
        examples = list(examples)
        fit_specialists(self, CHANNELS, lambda channel: adipocyte_specialist_data(examples, channel))

    @torch.no_grad()
    def predict(self, case: AdipocyteCase) -> dict[str, np.ndarray]:
        """One uint16 image of ``case.shape`` per channel, in the raw target intensity scale."""
        if not self.fitted:
            raise RuntimeError(f"{self.name}: call fit() or load a checkpoint before predict()")
        x = np.asarray(case.planes)[list(PLANE_INDICES)]  # raw: preprocess rescales each plane (= input_planes)
        with torch_threads(self.threads):
            out = run_specialists(self.models, self.resolution, x, self.device)
        return {c: to_raw(out[c], self.windows[c]) for c in CHANNELS}
