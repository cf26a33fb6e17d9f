"""Training of the Patch-GAN virtual stainer (Model 1) on an adipocyte training split.

Least-squares conditional GAN, as ``shared/reference/adipocyte.md`` §3.3 / §3.7 describe the submitted code:

* discriminator loss ``½ [MSE(D(y, x), 1) + MSE(D(G(x), x), 0)]``;
* generator loss ``(1 - β) MSE(D(G(x), x), 1) + β MAE(G(x), y)`` with the MAE on raw 16-bit intensities
  (``β = config.mae_weight``);
* one Adam per network, ``lr`` and ``betas`` from the :class:`~vsbench.algorithms.patchgan.config.PatchGANConfig`;
  each step updates D once, then G once.

Data. Every training image set is loaded once: its 7 brightfield planes are first aligned to the fluorescence
with :func:`vsbench.harness.alignment.apply_alignment`, using the seed's Table 1 site model for the split's
magnification (``alignment="default"``; the same correction the predictor applies at inference, from the set's
site), or not at all (``alignment="none"``). A batch is ``config.batch_size`` random ``config.crop`` squares
(random set, position, flips and a multiple of 90° rotation) and is reused for ``reuse`` consecutive updates,
as the reference reuses its augmented crops. Left out of this version (issue 4 §2): the 724-px crops with
free rotation, scale 0.95-1.05, shear ±0.025 and elastic deformation, and the stage-2 models.

Determinism and resume. The networks are initialised from ``torch.manual_seed(seed)``; the crops of batch ``k``
come from ``numpy.random.default_rng([seed, k])``, a function of the seed and the batch index only, so a run
resumed from a checkpoint continues exactly as an uninterrupted one (on CPU). A checkpoint
(``OUT/checkpoint.pt``, replaced atomically) holds both networks, both optimisers, the step, the config, the
seed and the alignment; ``OUT/losses.csv`` has one row per epoch (``steps_per_epoch`` updates) with the mean
losses, the training MAE and the wall time.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from vsbench.algorithms.adipocyte_base import CHANNELS, AdipocyteTrainingExample
from vsbench.algorithms.patchgan.config import PatchGANConfig, build_networks, get_config

__all__ = [
    "CHECKPOINT", "LOSSES_CSV", "ALIGNMENTS", "TrainingData", "align_planes", "load_training_data", "sample_batch",
    "discriminator_loss", "generator_loss", "Trainer", "train", "load_checkpoint", "config_from_checkpoint",
]

CHECKPOINT = "checkpoint.pt"
LOSSES_CSV = "losses.csv"
ALIGNMENTS = ("default", "none")
CSV_FIELDS = ("epoch", "step", "d_loss", "g_loss", "g_adv", "g_mae", "seconds")


def align_planes(planes: np.ndarray, key: str, magnification: str, alignment: str) -> np.ndarray:
    """The (7, H, W) brightfield ``planes`` of set ``key`` as float32, aligned to the fluorescence.

    ``alignment="default"``: the seed's Table 1 site model for ``magnification`` and the site in ``key``
    (:func:`vsbench.harness.alignment.default_alignment`); ``"none"``: unchanged."""
    if alignment not in ALIGNMENTS:
        raise ValueError(f"alignment must be one of {', '.join(ALIGNMENTS)}, not {alignment!r}")
    x = np.asarray(planes, dtype=np.float32)
    if alignment == "none":
        return x
    from vsbench.harness.adipocyte_split import parse_set_key
    from vsbench.harness.alignment import apply_alignment, default_alignment

    _, site = parse_set_key(key)
    dx, dy, scale = default_alignment(magnification, site)
    return apply_alignment(x, dx, dy, scale)


@dataclass
class TrainingData:
    """The aligned inputs ``(7, H, W)`` and targets ``(3, H, W)`` (float32, raw intensities) of every set."""

    inputs: list[np.ndarray]
    targets: list[np.ndarray]
    magnification: str

    def __len__(self) -> int:
        return len(self.inputs)


def load_training_data(examples: Iterable[AdipocyteTrainingExample], alignment: str = "default") -> TrainingData:
    """Load and align every example that has all of :data:`CHANNELS` (:class:`ValueError` if none has)."""
    inputs, targets, mags = [], [], set()
    for ex in examples:
        if not all(c in ex.targets for c in CHANNELS):
            continue
        inputs.append(align_planes(ex.case.planes, ex.case.key, ex.case.magnification, alignment))
        targets.append(np.stack([ex.targets[c] for c in CHANNELS]).astype(np.float32))
        mags.add(ex.case.magnification)
    if not inputs:
        raise ValueError("patchgan: no training set with ground truth for all of " + ", ".join(CHANNELS))
    if len(mags) > 1:
        raise ValueError(f"patchgan: training sets of several magnifications {sorted(mags)}; train one per "
                         "magnification")
    return TrainingData(inputs, targets, mags.pop())


def sample_batch(data: TrainingData, crop: int, batch_size: int, rng: np.random.Generator
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` random ``crop`` x ``crop`` squares (set, position, flips, k·90° rotation): (x, y) tensors."""
    xs, ys = [], []
    for _ in range(batch_size):
        i = int(rng.integers(len(data)))
        x, y = data.inputs[i], data.targets[i]
        h, w = x.shape[1:]
        if h < crop or w < crop:
            raise ValueError(f"patchgan: training image {h}x{w} is smaller than the crop {crop}")
        r, c = int(rng.integers(h - crop + 1)), int(rng.integers(w - crop + 1))
        pair = np.concatenate([x[:, r:r + crop, c:c + crop], y[:, r:r + crop, c:c + crop]])
        if rng.uniform() < 0.5:
            pair = pair[:, :, ::-1]
        pair = np.rot90(pair, int(rng.integers(4)), axes=(1, 2))
        xs.append(pair[:x.shape[0]])
        ys.append(pair[x.shape[0]:])
    return torch.from_numpy(np.ascontiguousarray(xs)), torch.from_numpy(np.ascontiguousarray(ys))


def discriminator_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """``½ [MSE(D(y, x), 1) + MSE(D(G(x), x), 0)]`` (least-squares GAN)."""
    return 0.5 * (F.mse_loss(d_real, torch.ones_like(d_real)) + F.mse_loss(d_fake, torch.zeros_like(d_fake)))


def generator_loss(d_fake: torch.Tensor, fake: torch.Tensor, target: torch.Tensor, beta: float
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(total, adversarial, mae)``: total = ``(1 - β) MSE(D(G(x), x), 1) + β MAE(G(x), y)`` (raw intensities)."""
    adv = F.mse_loss(d_fake, torch.ones_like(d_fake))
    mae = F.l1_loss(fake, target)
    return (1 - beta) * adv + beta * mae, adv, mae


def config_from_checkpoint(state: dict) -> PatchGANConfig:
    """The :class:`PatchGANConfig` a checkpoint was trained with."""
    fields = {f.name for f in dataclasses.fields(PatchGANConfig)}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in state["config"].items() if k in fields}
    return PatchGANConfig(**values)


def load_checkpoint(path: Path) -> dict:
    """The dict saved by :class:`Trainer` (``path``: the file or its directory)."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no patchgan checkpoint")
    return torch.load(path, map_location="cpu", weights_only=False)


class Trainer:
    """Model 1 (generator + discriminator) with its optimisers, trained step by step; see the module docstring."""

    def __init__(self, config: PatchGANConfig | str, seed: int = 0, reuse: int = 4, alignment: str = "default"):
        self.config = get_config(config) if isinstance(config, str) else config
        if alignment not in ALIGNMENTS:
            raise ValueError(f"alignment must be one of {', '.join(ALIGNMENTS)}, not {alignment!r}")
        if reuse < 1:
            raise ValueError(f"reuse must be >= 1, got {reuse}")
        self.seed, self.reuse, self.alignment = seed, reuse, alignment
        self.magnification: str | None = None
        torch.manual_seed(seed)
        nets = build_networks(self.config)
        self.generator: nn.Module = nets["generator"]
        self.discriminator: nn.Module = nets["discriminator"]
        cfg = self.config
        self.g_opt = torch.optim.Adam(self.generator.parameters(), lr=cfg.lr, betas=cfg.adam_betas)
        self.d_opt = torch.optim.Adam(self.discriminator.parameters(), lr=cfg.lr, betas=cfg.adam_betas)
        self.step = 0
        self._batch: tuple[int, tuple[torch.Tensor, torch.Tensor]] | None = None

    def batch(self, data: TrainingData) -> tuple[torch.Tensor, torch.Tensor]:
        """The crops of the current step: batch ``step // reuse``, drawn from ``default_rng([seed, index])``."""
        index = self.step // self.reuse
        if self._batch is None or self._batch[0] != index:
            rng = np.random.default_rng([self.seed, index])
            self._batch = (index, sample_batch(data, self.config.crop, self.config.batch_size, rng))
        return self._batch[1]

    def train_step(self, data: TrainingData) -> dict[str, float]:
        """One discriminator update, then one generator update; returns the losses."""
        x, y = self.batch(data)
        self.generator.train()
        self.discriminator.train()
        fake = self.generator(x)
        d_loss = discriminator_loss(self.discriminator(y, x), self.discriminator(fake.detach(), x))
        self.d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        self.d_opt.step()
        g_loss, adv, mae = generator_loss(self.discriminator(fake, x), fake, y, self.config.mae_weight)
        self.g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        self.g_opt.step()
        self.step += 1
        return {"d_loss": d_loss.item(), "g_loss": g_loss.item(), "g_adv": adv.item(), "g_mae": mae.item()}

    def state_dict(self) -> dict:
        return {
            "format": "vsbench-patchgan-1",
            "config": self.config.to_dict(),
            "seed": self.seed,
            "reuse": self.reuse,
            "alignment": self.alignment,
            "magnification": self.magnification,
            "channels": list(CHANNELS),
            "step": self.step,
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "g_opt": self.g_opt.state_dict(),
            "d_opt": self.d_opt.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.g_opt.load_state_dict(state["g_opt"])
        self.d_opt.load_state_dict(state["d_opt"])
        self.step = int(state["step"])
        self.magnification = state.get("magnification")
        self._batch = None

    def save(self, out_dir: Path) -> Path:
        """Write ``out_dir/checkpoint.pt`` atomically (temporary file, then rename)."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / CHECKPOINT
        tmp = out_dir / f".{CHECKPOINT}.{os.getpid()}.tmp"
        torch.save(self.state_dict(), tmp)
        tmp.replace(path)
        return path

    @classmethod
    def from_checkpoint(cls, path: Path) -> Trainer:
        state = load_checkpoint(path)
        trainer = cls(config_from_checkpoint(state), seed=state["seed"], reuse=state["reuse"],
                      alignment=state["alignment"])
        trainer.load_state_dict(state)
        return trainer


def _append_csv(path: Path, row: dict) -> None:
    new = not path.is_file()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        if new:
            writer.writeheader()
        writer.writerow(row)


def train(config: PatchGANConfig | str, train_data: TrainingData | Sequence[AdipocyteTrainingExample] | Path | str,
          out_dir: Path | str, steps: int = 1000, seed: int = 0, *, steps_per_epoch: int = 100, reuse: int = 4,
          alignment: str = "default", progress: bool = False,
          callback: Callable[[int, dict[str, float]], None] | None = None) -> Trainer:
    """Train Model 1 of ``config`` until ``steps`` updates in all, resuming from ``out_dir/checkpoint.pt``.

    ``train_data``: a split folder (or :class:`~vsbench.harness.split.Split`), training examples, or loaded
    :class:`TrainingData`. A checkpoint is written after every epoch of ``steps_per_epoch`` updates and at the
    end, with a row of mean losses in ``out_dir/losses.csv``. On resume, the checkpoint's config, seed, reuse and
    alignment are used (a different ``config`` or ``seed`` is an error). ``progress``: a tqdm bar with the
    losses. ``callback(step, losses)`` is called after every update. Returns the trainer.
    """
    out_dir = Path(out_dir)
    cfg = get_config(config) if isinstance(config, str) else config
    path = out_dir / CHECKPOINT
    if path.is_file():
        trainer = Trainer.from_checkpoint(path)
        if trainer.config.to_dict() != cfg.to_dict() or trainer.seed != seed:
            raise ValueError(f"{path} was trained with config {trainer.config.name!r} and seed {trainer.seed}, "
                             f"not {cfg.name!r} and seed {seed}; choose another --out")
    else:
        trainer = Trainer(cfg, seed=seed, reuse=reuse, alignment=alignment)
    if trainer.step >= steps:
        return trainer
    data = _as_training_data(train_data, trainer.alignment)
    trainer.magnification = data.magnification
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=steps, initial=trainer.step, desc=f"train patchgan {cfg.name}", unit="step")
    sums: dict[str, float] = {}
    n = 0
    t0 = time.perf_counter()
    try:
        while trainer.step < steps:
            losses = trainer.train_step(data)
            if not all(math.isfinite(v) for v in losses.values()):
                raise FloatingPointError(f"patchgan: non-finite loss at step {trainer.step}: {losses}")
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + v
            n += 1
            if callback is not None:
                callback(trainer.step, losses)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(d=f"{losses['d_loss']:.3f}", g=f"{losses['g_adv']:.3f}", mae=f"{losses['g_mae']:.0f}")
            if trainer.step % steps_per_epoch == 0 or trainer.step == steps:
                row = {"epoch": math.ceil(trainer.step / steps_per_epoch), "step": trainer.step,
                       **{k: f"{v / n:.6g}" for k, v in sums.items()},
                       "seconds": f"{time.perf_counter() - t0:.2f}"}
                trainer.save(out_dir)
                _append_csv(out_dir / LOSSES_CSV, row)
                sums, n, t0 = {}, 0, time.perf_counter()
    finally:
        if bar is not None:
            bar.close()
    return trainer


def _as_training_data(train_data, alignment: str) -> TrainingData:
    if isinstance(train_data, TrainingData):
        return train_data
    if isinstance(train_data, (str, Path)) or hasattr(train_data, "manifest"):
        from vsbench.harness.predict_adipocyte import adipocyte_training_examples
        from vsbench.harness.split import Split

        split = train_data if hasattr(train_data, "manifest") else Split(Path(train_data))
        return load_training_data(adipocyte_training_examples(split), alignment)
    return load_training_data(train_data, alignment)
