"""The Patch-GAN virtual stainer on Light My Cells (``patchgan-lmc-tiny``): one slice -> four organelles.

Channels. The generator of an LMC config (``lmc-tiny``, ``paper-lmc``: ``in_channels=1``,
``channels=ORGANELLES``) maps ``B x 1 x H x W`` to ``B x 4 x H x W``:

* input channel 0: the transmitted-light slice (BF, PC or DIC, any z), percentile-normalised per image with
  :func:`vsbench.algorithms.baselines.normalise` (2 / 99.8 %, float32). LMC slices differ in dtype and
  intensity scale between modalities and microscopes (8-bit PC next to 16-bit BF...), so they are brought to
  about [0, 1] first; the network's own first layer then applies its scalar tanh normalisation
  ``tanh((x - mean) / std)``, one mean and std over the whole batch tensor (as the Keras original; at
  inference the batch is the one whole, padded image), which alone would leave the scale of each image
  depending on the rest of its batch;
* output channel k: organelle ``ORGANELLES[k]``, i.e. 0 nucleus, 1 mitochondria, 2 tubulin, 3 actin.

Targets. Each organelle image is percentile-normalised the same way and multiplied by ``config.target_scale``
(4000), so it lives in the range of the generator's last layer, the ScaleLayer ``clip(y * A * 1750 + B * 750,
0, 10000)`` built for raw 16-bit adipocyte intensities. It is also clipped to that range, [0, 10000]: the
generator can never produce the few negative values (pixels under the 2nd percentile) or values above 10000,
so they would be an MAE floor nobody can reach and a give-away for the discriminator. The targets of a field
are computed once and shared (same arrays) by all its z-slices.

Missing organelles. An LMC field has ground truth for only some organelles. A missing one gets a zero target
image and ``present[k] = False``: :func:`vsbench.algorithms.patchgan.train.masked_mae` leaves it out of the
generator's MAE, and in the discriminator's "real" pair it is replaced by the generator's own output, so the
discriminator learns nothing from it (:meth:`vsbench.algorithms.patchgan.train.Trainer.train_step`).

Prediction. The normalised slice is reflect-padded at the bottom / right to a multiple of 32 (or the
generator's own multiple if larger), run once (batch 1), cropped back, and divided by ``target_scale``:
float32 maps in the normalised target scale (the LMC metrics percentile-normalise predictions anyway).

Training budget (:data:`DEFAULT_STEPS`), measured on the demo's synthetic split (``synthesize_lmc`` with 6
training fields of 256 px, 72 slices) on a 2-core CPU: an update of ``lmc-tiny`` (crops of 182 px augmented to
128, batches of 2) takes 0.13 s with one torch thread, so the 1,500 default updates take about 3.3 minutes;
``vsbench predict --train`` on that split (fit, then 36 test slices) took 227 s of wall time. One thread
(:data:`THREADS`), as :class:`~vsbench.algorithms.unet.TinyUNet`: two were no faster alone (0.15 s per update)
and 35 times slower (4.8 s) while another process kept a core busy.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from vsbench.algorithms.base import ORGANELLES, Case, TrainingExample
from vsbench.algorithms.baselines import normalise
from vsbench.algorithms.patchgan.config import LMC_TARGET_SCALE, PatchGANConfig, get_config
from vsbench.algorithms.patchgan.networks import PAD_MULTIPLE, pad_to_multiple
from vsbench.algorithms.patchgan.predictor import checkpoint_provenance, load_generator
from vsbench.algorithms.patchgan.train import TrainingData, config_from_checkpoint, load_checkpoint, train

__all__ = [
    "DEFAULT_STEPS", "THREADS", "PatchGANLMCPredictor", "lmc_training_data", "lmc_training_data_from_split",
]

DEFAULT_STEPS = 1500  # about 3.3 minutes on a 2-core CPU (module docstring)
THREADS = 1  # torch threads while fitting and predicting (module docstring: why one)
ALIGNMENT = "none"  # LMC inputs and targets are registered; the adipocyte site models do not apply
TARGET_MAX = 10000.0  # the ScaleLayer's upper clip


def lmc_training_data(examples: Iterable[TrainingExample], target_scale: float = LMC_TARGET_SCALE) -> TrainingData:
    """The :class:`TrainingData` of LMC training examples, as the module docstring describes it.

    ``inputs[i]``: the percentile-normalised slice of example ``i``, ``(1, H, W)`` float32; ``targets[i]``:
    ``(4, H, W)`` float32 in ``ORGANELLES`` order, the percentile-normalised organelle images times
    ``target_scale``, clipped to [0, 10000], zeros where the field lacks the organelle; ``present[i]``: ``(4,)``
    bool, which organelles the field has. Slices of one field (examples whose target dicts hold the same
    arrays, as :func:`vsbench.harness.predict.training_examples` yields them) share one target array and mask.
    Examples without any known organelle are skipped; :class:`ValueError` if none is left, or if a slice and its
    ground truth (or two ground-truth images of a field) differ in shape."""
    inputs: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    present: list[np.ndarray] = []
    keys: list[str] = []
    fields: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}
    alive = []  # the fields' source arrays, held so that their ids (the keys of ``fields``) are not reused
    for ex in examples:
        known = {o: t for o, t in ex.targets.items() if o in ORGANELLES}
        if not known:
            continue
        key = tuple(sorted(id(t) for t in known.values()))
        if key not in fields:
            fields[key] = _field_targets(ex.case.name, known, target_scale)
            alive.append(tuple(known.values()))
        target, mask = fields[key]
        image = np.asarray(ex.case.image)
        if image.shape != target.shape[1:]:
            raise ValueError(f"patchgan-lmc: {ex.case.name}: input shape {image.shape} != ground truth shape "
                             f"{target.shape[1:]}")
        inputs.append(normalise(image)[None])
        targets.append(target)
        present.append(mask)
        keys.append(ex.case.name)
    if not inputs:
        raise ValueError("patchgan-lmc: no training example has ground truth for any of " + ", ".join(ORGANELLES))
    return TrainingData(inputs, targets, None, channels=ORGANELLES, present=present, keys=keys)


def _field_targets(name: str, known: dict[str, np.ndarray], target_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """``((4, H, W) float32 targets, (4,) bool mask)`` of one field's ground truth (``name``: for messages)."""
    shapes = {o: np.shape(t) for o, t in known.items()}
    if len(set(shapes.values())) > 1 or len(next(iter(shapes.values()))) != 2:
        raise ValueError(f"patchgan-lmc: {name}: ground-truth images of different shapes or not 2-D: {shapes}")
    shape = next(iter(shapes.values()))
    target = np.zeros((len(ORGANELLES), *shape), np.float32)
    mask = np.zeros(len(ORGANELLES), bool)
    for organelle, image in known.items():
        k = ORGANELLES.index(organelle)
        target[k] = np.clip(normalise(image) * np.float32(target_scale), 0.0, TARGET_MAX)
        mask[k] = True
    return target, mask


def lmc_training_data_from_split(split_path: Path | str, target_scale: float = LMC_TARGET_SCALE) -> TrainingData:
    """:func:`lmc_training_data` of every input of an LMC training split folder (with its ground truth)."""
    from vsbench.harness.predict import training_examples
    from vsbench.harness.split import Split

    split = Split(Path(split_path))
    if split.task != "lmc":
        raise ValueError(f"patchgan-lmc: {split.root} is an {split.task} split, not lmc")
    return lmc_training_data(training_examples(split), target_scale)


class PatchGANLMCPredictor:
    """Patch-GAN (Soft Matter Lab cGAN, lmc-tiny): one transmitted-light slice -> four organelles."""

    name = "patchgan-lmc-tiny"

    def __init__(self, checkpoint: Path | str | None = None, config: str = "lmc-tiny", steps: int = DEFAULT_STEPS,
                 seed: int = 0, work_dir: Path | str | None = None, progress: bool = False,
                 threads: int = THREADS, device: str | None = None):
        """``checkpoint``: a folder (or ``checkpoint.pt``) written by :func:`~vsbench.algorithms.patchgan.train.
        train` on LMC data, loaded now (``fit`` then does nothing). Else ``fit`` trains ``config`` (a name or a
        :class:`PatchGANConfig` with ``task="lmc"``) for ``steps`` updates from ``seed``, checkpointing to
        ``work_dir`` (resumed if it holds a run of the same config and seed) or to a temporary folder.
        ``threads``: torch threads while fitting and predicting, the process's setting restored after.
        ``device``: where the loaded generator runs (default CUDA when there is a GPU, else the CPU); ``fit``
        trains as before and then moves the loaded result there."""
        self.config = get_config(config) if isinstance(config, str) else config
        if self.config.task != "lmc" or self.config.in_channels != 1 or self.config.channels != ORGANELLES:
            raise ValueError(f"{self.name}: config {self.config.name!r} is not an LMC config (1 input, "
                             f"outputs {', '.join(ORGANELLES)})")
        self.steps, self.seed, self.progress, self.threads = steps, seed, progress, threads
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.work_dir = Path(work_dir) if work_dir is not None else None
        self.generator: torch.nn.Module | None = None
        self.target_scale = float(self.config.target_scale or LMC_TARGET_SCALE)
        self.step = 0
        self.provenance: dict = {"config": self.config.name, "trained": "in-process by fit()", "seed": seed}
        if checkpoint is not None:
            self.load(checkpoint)

    def load(self, checkpoint: Path | str) -> None:
        """Load the generator (once; kept for every later ``predict``) and its target scale from a checkpoint."""
        model, _, step = load_generator(checkpoint)
        if model.channels != ORGANELLES or model.stage1.in_channels != 1:
            raise ValueError(f"{self.name}: {checkpoint} is not an LMC checkpoint (channels {list(model.channels)}, "
                             f"{model.stage1.in_channels} input channel(s))")
        cfg = config_from_checkpoint(load_checkpoint(checkpoint))
        self.generator, self.step = model.to(self.device), step
        self.target_scale = float(cfg.target_scale or LMC_TARGET_SCALE)
        self.name = f"patchgan-{cfg.name}"  # patchgan-lmc-tiny, patchgan-paper-lmc
        self.provenance = checkpoint_provenance(checkpoint, cfg.name, step)

    @property
    def fitted(self) -> bool:
        """True once trained or loaded: the harness then needs no training split."""
        return self.generator is not None

    def training_plan(self, data: TrainingData) -> PatchGANConfig:
        """The config ``fit`` trains with: ``self.config``, its crop shrunk to the largest multiple of 32 that fits
        the smallest training image (and the crop before augmentation to ``ceil(crop * sqrt 2)``) when an image
        is smaller than ``config.crop``."""
        cfg = self.config
        side = min(min(x.shape[1:]) for x in data.inputs)
        if side >= cfg.crop:
            return cfg
        crop = side // PAD_MULTIPLE * PAD_MULTIPLE
        if crop < PAD_MULTIPLE:
            raise ValueError(f"{self.name}: training images of {side} px a side; need at least {PAD_MULTIPLE}")
        return dataclasses.replace(cfg, crop=crop, crop_before_augmentation=math.ceil(crop * math.sqrt(2)))

    def fit(self, examples: Iterable[TrainingExample]) -> None:
        """Train on ``examples`` (:func:`lmc_training_data`), unless a checkpoint is loaded; then load the result."""
        if self.generator is not None:
            return
        data = lmc_training_data(examples, self.target_scale)
        cfg = self.training_plan(data)
        threads = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            if self.work_dir is not None:
                train(cfg, data, self.work_dir, self.steps, self.seed, alignment=ALIGNMENT, progress=self.progress)
                self.load(self.work_dir)
                return
            with tempfile.TemporaryDirectory(prefix="vsbench-patchgan-lmc-") as tmp:
                train(cfg, data, Path(tmp), self.steps, self.seed, alignment=ALIGNMENT, progress=self.progress)
                self.load(Path(tmp))
                self.provenance = {**self.provenance, "checkpoint": "in-process by fit(), not kept", "seed": self.seed}
        finally:
            torch.set_num_threads(threads)

    @torch.no_grad()
    def predict(self, case: Case) -> dict[str, np.ndarray]:
        """One float32 map of ``case.image.shape`` per organelle: generator output / ``target_scale``."""
        if self.generator is None:
            raise RuntimeError(f"{self.name}: call fit() or load a checkpoint before predict()")
        image = np.asarray(case.image)
        if image.ndim != 2:
            raise ValueError(f"{self.name}: {case.name}: expected a 2-D slice, got shape {image.shape}")
        h, w = image.shape
        x = torch.from_numpy(normalise(image))[None, None].to(self.device)
        multiple = max(PAD_MULTIPLE, 2 ** (self.generator.stage1.depth - 1))
        threads = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            y = self.generator(pad_to_multiple(x, multiple))[0, :, :h, :w].cpu().numpy()
        finally:
            torch.set_num_threads(threads)
        y = y / np.float32(self.target_scale)
        return {o: np.ascontiguousarray(y[k], dtype=np.float32) for k, o in enumerate(ORGANELLES)}
