"""Training of the Patch-GAN virtual stainer (Model 1 and the stage-2 models) on a training split.

Least-squares conditional GAN, as ``shared/reference/adipocyte.md`` §3.3 / §3.7 describe the submitted code:

* discriminator loss ``½ [MSE(D(y, x), 1) + MSE(D(G(x), x), 0)]``;
* generator loss ``(1 - β) MSE(D(G(x), x), 1) + β MAE(G(x), y)`` with the MAE on raw 16-bit intensities
  (``β = config.mae_weight``);
* one Adam per network, ``lr`` and ``betas`` from the :class:`~vsbench.algorithms.patchgan.config.PatchGANConfig`;
  each step updates D once, then G once.

Stage 2 (§3.1; ``config.stage2``, at 20x nuclei and cytoplasm): after Model 1, one Patch-GAN per listed channel
is trained with the same losses and hyper-parameters; its generator takes the brightfield and Model 1's three
outputs (10 channels, Model 1 frozen) and gives the one channel; its discriminator sees that channel and the
brightfield. Each lives in ``OUT/stage2_<channel>/``.

Data. Every training image set is loaded once: its 7 brightfield planes are first aligned to the fluorescence
with :func:`vsbench.harness.alignment.apply_alignment`, using the seed's Table 1 site model for the split's
magnification (``alignment="default"``; the same correction the predictor applies at inference, from the set's
site), or not at all (``alignment="none"``). A batch is ``config.batch_size`` random crops of
``config.crop_before_augmentation`` px (724, the reference's 512·√2) loaded together and reused for
``config.crop_reuse`` updates (16, the notebooks' ``updates_per_reload``); every update augments them anew
(:mod:`vsbench.algorithms.patchgan.augment`: flip, rotation, scale 0.95-1.05, shear ±0.025, elastic α ≤ 80
σ 7, centre crop to ``config.crop``). ``config.augmentation = "flips"`` (the ``tiny`` CPU config) uses crops of
``config.crop`` with flips and k·90° rotations only, drawn once per load: the same batch for ``crop_reuse``
updates, which converged faster in a short CPU run than fresh flips every update. Images that lack some target
channels (LMC fields) carry a ``present`` mask: the MAE leaves those channels out, and the discriminator's "real"
input shows the generator's own output there.

Validation. With ``val_data``, every epoch ends with the pooled pixel MAE (the organisers' definition,
:func:`validation_mae`) of the network on the whole validation images, in ``losses.csv`` and on the bar; the
state of the best epoch so far is kept in ``OUT/best.pt`` (the report chose its models by validation scores,
§3.6), which ``vsbench predict --checkpoint OUT/best.pt`` loads.

Determinism and resume. The networks are initialised from ``torch.manual_seed(seed)`` (stage-2 models from
``seed + 1 + channel index``); the crops of load ``k`` come from ``numpy.random.default_rng([seed, k])`` and
the augmentation of step ``s`` from ``default_rng([seed, k, s])``, functions of the seed and the step only,
so a run resumed from a checkpoint continues exactly as an uninterrupted one (on CPU). A checkpoint
(``OUT/checkpoint.pt``, replaced atomically) holds both networks, both optimisers, the step, the config, the
seed and the alignment; ``OUT/losses.csv`` has one row per epoch (``steps_per_epoch`` updates) with the mean
losses, the validation MAE and the wall time.
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
from vsbench.algorithms.export import require_training_state
from vsbench.algorithms.patchgan.augment import augment_batch, random_crop
from vsbench.algorithms.patchgan.config import PatchGANConfig, build_networks, build_stage2_networks, get_config
from vsbench.algorithms.patchgan.networks import PAD_MULTIPLE, pad_to_multiple

__all__ = [
    "CHECKPOINT", "BEST", "LOSSES_CSV", "ALIGNMENTS", "TrainingData", "align_planes", "load_training_data",
    "sample_crops", "flips_and_rotations", "masked_mae", "discriminator_loss", "generator_loss", "Trainer",
    "validation_mae", "train", "load_checkpoint", "config_from_checkpoint",
]

FORMAT = "vsbench-patchgan-2"
CHECKPOINT = "checkpoint.pt"
BEST = "best.pt"  # the epoch with the lowest validation MAE (with --val)
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
    """The inputs ``(C_in, H, W)`` and targets ``(C_out, H, W)`` (float32) of every training image.

    ``present[i]``: which of ``channels`` image ``i`` has ground truth for (``None``: all of them; the LMC
    fields carry only some organelles). ``keys``: the image names, for messages."""

    inputs: list[np.ndarray]
    targets: list[np.ndarray]
    magnification: str | None
    channels: tuple[str, ...] = CHANNELS
    present: list[np.ndarray] | None = None
    keys: list[str] | None = None

    def __len__(self) -> int:
        return len(self.inputs)

    def present_mask(self, i: int) -> np.ndarray:
        return np.ones(len(self.channels), bool) if self.present is None else np.asarray(self.present[i], bool)


def load_training_data(examples: Iterable[AdipocyteTrainingExample], alignment: str = "default") -> TrainingData:
    """Load and align every example that has all of :data:`CHANNELS` (:class:`ValueError` if none has)."""
    inputs, targets, keys, mags = [], [], [], set()
    for ex in examples:
        if not all(c in ex.targets for c in CHANNELS):
            continue
        inputs.append(align_planes(ex.case.planes, ex.case.key, ex.case.magnification, alignment))
        targets.append(np.stack([ex.targets[c] for c in CHANNELS]).astype(np.float32))
        keys.append(ex.case.key)
        mags.add(ex.case.magnification)
    if not inputs:
        raise ValueError("patchgan: no training set with ground truth for all of " + ", ".join(CHANNELS))
    if len(mags) > 1:
        raise ValueError(f"patchgan: training sets of several magnifications {sorted(mags)}; train one per "
                         "magnification")
    return TrainingData(inputs, targets, mags.pop(), keys=keys)


def sample_crops(data: TrainingData, size: int, batch_size: int, rng: np.random.Generator
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` random ``size`` x ``size`` windows of random images: ``(B x (C_in + C_out) x size x size``
    stacks of input and target, ``B x C_out`` mask of the targets present)."""
    stacks, masks = [], []
    for _ in range(batch_size):
        i = int(rng.integers(len(data)))
        stacks.append(random_crop(np.concatenate([data.inputs[i], data.targets[i]]), size, rng))
        masks.append(data.present_mask(i))
    return torch.from_numpy(np.ascontiguousarray(stacks)), torch.from_numpy(np.stack(masks))


def flips_and_rotations(stacks: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Each stack of ``B x C x S x S`` flipped left-right with probability ½ and rotated by k·90°."""
    out = []
    for stack in stacks:
        if rng.uniform() < 0.5:
            stack = stack.flip(-1)
        out.append(torch.rot90(stack, int(rng.integers(4)), dims=(1, 2)))
    return torch.stack(out).contiguous()


def masked_mae(fake: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean |fake - target| over the channels ``mask`` (``B x C`` bool) marks present; all if ``mask`` is None."""
    if mask is None or bool(mask.all()):
        return F.l1_loss(fake, target)
    weight = mask[:, :, None, None].to(fake.dtype).expand_as(fake)
    return ((fake - target).abs() * weight).sum() / weight.sum().clamp_min(1.0)


def discriminator_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """``½ [MSE(D(y, x), 1) + MSE(D(G(x), x), 0)]`` (least-squares GAN)."""
    return 0.5 * (F.mse_loss(d_real, torch.ones_like(d_real)) + F.mse_loss(d_fake, torch.zeros_like(d_fake)))


def generator_loss(d_fake: torch.Tensor, fake: torch.Tensor, target: torch.Tensor, beta: float,
                   mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(total, adversarial, mae)``: total = ``(1 - β) MSE(D(G(x), x), 1) + β MAE(G(x), y)`` (raw intensities;
    the MAE over the target channels ``mask`` marks present)."""
    adv = F.mse_loss(d_fake, torch.ones_like(d_fake))
    mae = masked_mae(fake, target, mask)
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
    """One generator and its discriminator, with their optimisers, trained step by step (module docstring).

    ``stage2=None``: Model 1 (``C_in`` inputs -> every channel). ``stage2="nuclei"`` (a channel of the config):
    the second-stage model of that channel, whose generator takes ``[x, stage1(x)]`` (``C_in + C_out`` inputs)
    and gives the one refined channel, and whose discriminator sees that channel and ``x``; ``stage1`` is the
    trained Model 1 generator, frozen."""

    def __init__(self, config: PatchGANConfig | str, seed: int = 0, reuse: int | None = None,
                 alignment: str = "default", stage2: str | None = None, stage1: nn.Module | None = None):
        self.config = get_config(config) if isinstance(config, str) else config
        cfg = self.config
        if alignment not in ALIGNMENTS:
            raise ValueError(f"alignment must be one of {', '.join(ALIGNMENTS)}, not {alignment!r}")
        reuse = cfg.crop_reuse if reuse is None else reuse
        if reuse < 1:
            raise ValueError(f"reuse must be >= 1, got {reuse}")
        if stage2 is not None and (stage2 not in cfg.channels or stage1 is None):
            raise ValueError(f"stage 2 needs a channel of {list(cfg.channels)} and the stage-1 generator, "
                             f"got {stage2!r}")
        self.seed, self.reuse, self.alignment, self.stage2 = seed, reuse, alignment, stage2
        self.magnification: str | None = None
        torch.manual_seed(seed if stage2 is None else seed + 1 + cfg.channels.index(stage2))
        if stage2 is None:
            nets = build_networks(cfg)
            self.generator: nn.Module = nets["generator"]
            self.discriminator: nn.Module = nets["discriminator"]
            self.stage1 = None
        else:
            self.generator, self.discriminator = build_stage2_networks(cfg)
            self.stage1 = stage1.eval().requires_grad_(False)
        self.g_opt = torch.optim.Adam(self.generator.parameters(), lr=cfg.lr, betas=cfg.adam_betas)
        self.d_opt = torch.optim.Adam(self.discriminator.parameters(), lr=cfg.lr, betas=cfg.adam_betas)
        self.step = 0
        self.best_val_mae: float | None = None  # lowest validation MAE so far (its weights in best.pt)
        self._crops: tuple[int, tuple[torch.Tensor, torch.Tensor]] | None = None

    def batch(self, data: TrainingData) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(x, y, mask)`` of the current step.

        ``paper`` augmentation: the crops (``crop_before_augmentation`` px) of load ``step // reuse`` come from
        ``default_rng([seed, load])`` and each step augments them anew with ``default_rng([seed, load, step])``.
        ``flips``: the crops (``crop`` px), flipped and rotated by k·90° once per load, are the whole batch of
        every step of that load. Both are functions of the seed and the step only, so a resumed run repeats an
        uninterrupted one."""
        cfg = self.config
        load = self.step // self.reuse
        if self._crops is None or self._crops[0] != load:
            rng = np.random.default_rng([self.seed, load])
            size = cfg.crop_before_augmentation if cfg.augmentation == "paper" else cfg.crop
            crops, mask = sample_crops(data, size, cfg.batch_size, rng)
            if cfg.augmentation == "flips":
                crops = flips_and_rotations(crops, rng)
            self._crops = (load, (crops, mask))
        stacks, mask = self._crops[1]
        if cfg.augmentation == "paper":
            stacks = augment_batch(stacks, cfg.crop, np.random.default_rng([self.seed, load, self.step]))
        n_in = stacks.shape[1] - len(data.channels)
        return stacks[:, :n_in], stacks[:, n_in:], mask

    def _generator_input_and_target(self, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor
                                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.stage2 is None:
            return x, y, mask
        i = self.config.channels.index(self.stage2)
        with torch.no_grad():
            first = self.stage1(x)
        return torch.cat([x, first], dim=1), y[:, i:i + 1], mask[:, i:i + 1]

    def train_step(self, data: TrainingData) -> dict[str, float]:
        """One discriminator update, then one generator update; returns the losses.

        Target channels an image lacks (``mask`` False) are replaced by the generator's own output in the "real"
        pair, so the discriminator learns nothing from them, and left out of the MAE."""
        x, y, mask = self.batch(data)
        gin, y, mask = self._generator_input_and_target(x, y, mask)
        self.generator.train()
        self.discriminator.train()
        fake = self.generator(gin)
        real = y if bool(mask.all()) else torch.where(mask[:, :, None, None], y, fake.detach())
        d_loss = discriminator_loss(self.discriminator(real, x), self.discriminator(fake.detach(), x))
        self.d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        self.d_opt.step()
        g_loss, adv, mae = generator_loss(self.discriminator(fake, x), fake, y, self.config.mae_weight, mask)
        self.g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        self.g_opt.step()
        self.step += 1
        return {"d_loss": d_loss.item(), "g_loss": g_loss.item(), "g_adv": adv.item(), "g_mae": mae.item()}

    @torch.no_grad()
    def predict_full(self, x: np.ndarray) -> np.ndarray:
        """The trained network on one whole ``(C_in, H, W)`` image (padded to the generator's multiple): Model 1's
        ``(C_out, H, W)``, or the stage-2 model's ``(1, H, W)``."""
        self.generator.eval()
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None]
        h, w = t.shape[-2:]
        multiple = max(PAD_MULTIPLE, 2 ** (self.config.depth - 1))
        t = pad_to_multiple(t, multiple)
        gin = t if self.stage2 is None else torch.cat([t, self.stage1(t)], dim=1)
        return self.generator(gin)[0, :, :h, :w].numpy()

    def state_dict(self) -> dict:
        return {
            "format": FORMAT,
            "config": self.config.to_dict(),
            "seed": self.seed,
            "reuse": self.reuse,
            "alignment": self.alignment,
            "magnification": self.magnification,
            "channels": list(self.config.channels),
            "stage2": self.stage2,
            "step": self.step,
            "best_val_mae": self.best_val_mae,
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "g_opt": self.g_opt.state_dict(),
            "d_opt": self.d_opt.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        require_training_state(state)
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.g_opt.load_state_dict(state["g_opt"])
        self.d_opt.load_state_dict(state["d_opt"])
        self.step = int(state["step"])
        self.best_val_mae = state.get("best_val_mae")
        self.magnification = state.get("magnification")
        self._crops = None

    def save(self, out_dir: Path, name: str = CHECKPOINT) -> Path:
        """Write ``out_dir/<name>`` (default ``checkpoint.pt``) atomically (temporary file, then rename)."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / name
        tmp = out_dir / f".{name}.{os.getpid()}.tmp"
        torch.save(self.state_dict(), tmp)
        tmp.replace(path)
        return path

    @classmethod
    def from_checkpoint(cls, path: Path, stage1: nn.Module | None = None) -> Trainer:
        """A trainer restored from a checkpoint (a stage-2 one needs its trained ``stage1`` generator)."""
        state = load_checkpoint(path)
        trainer = cls(config_from_checkpoint(state), seed=state["seed"], reuse=state["reuse"],
                      alignment=state["alignment"], stage2=state.get("stage2"), stage1=stage1)
        trainer.load_state_dict(state)
        return trainer


def validation_mae(trainer: Trainer, data: TrainingData) -> dict[str, float]:
    """The pooled pixel MAE (``metrics.adipocyte``, §1.3: channel MAE / median of the channel's targets, then the
    mean over channels) of the trainer's network on the whole images of ``data``, per channel and ``"mean"``.
    Predictions are rounded and clipped to uint16 when the targets are raw intensities, as ``predict`` writes
    them; a channel is scored on the images that have it."""
    from vsbench.metrics.adipocyte import PixelMAEAccumulator

    channels = data.channels if trainer.stage2 is None else (trainer.stage2,)
    index = [data.channels.index(c) for c in channels]
    accs = {c: PixelMAEAccumulator((c,)) for c in channels}
    scored: set[str] = set()
    for i, (x, y) in enumerate(zip(data.inputs, data.targets, strict=True)):
        out = trainer.predict_full(x)
        if trainer.config.target_scale is None:
            out = np.clip(np.rint(out), 0, 65535).astype(np.uint16)
        present = data.present_mask(i)
        for j, (c, k) in enumerate(zip(channels, index, strict=True)):
            if present[k]:
                target = y[k].astype(np.uint16) if trainer.config.target_scale is None else y[k]
                accs[c].add(c, target, out[j])
                scored.add(c)
    per_channel = {c: acc.result()["pixel_mae"] for c, acc in accs.items() if c in scored}
    return {**per_channel, "mean": float(np.mean(list(per_channel.values())))} if per_channel else {}


def _append_csv(path: Path, row: dict, fields: Sequence[str]) -> None:
    new = not path.is_file()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(fields), extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow(row)


def train(config: PatchGANConfig | str, train_data: TrainingData | Sequence[AdipocyteTrainingExample] | Path | str,
          out_dir: Path | str, steps: int = 1000, seed: int = 0, *, steps_per_epoch: int = 100,
          reuse: int | None = None, alignment: str = "default",
          val_data: TrainingData | Sequence[AdipocyteTrainingExample] | Path | str | None = None,
          stage2_steps: int | None = None, progress: bool = False,
          callback: Callable[[int, dict[str, float]], None] | None = None) -> Trainer:
    """Train every network of ``config``, resuming from the checkpoints in ``out_dir``; returns Model 1's trainer.

    Model 1 is trained to ``steps`` updates in all (``out_dir/checkpoint.pt``, ``out_dir/losses.csv``); then, for
    each channel ``c`` of ``config.stage2``, its second-stage model to ``stage2_steps`` (default ``steps``) updates
    on the frozen Model 1 (``out_dir/stage2_<c>/``; ``trainer.stage2_trainers[c]``).

    ``train_data``, ``val_data``: a split folder (or :class:`~vsbench.harness.split.Split`), training examples,
    or loaded :class:`TrainingData`. A checkpoint is written after every epoch of ``steps_per_epoch`` updates
    and at the end, with a row of mean losses in ``losses.csv``, and, with ``val_data``, the validation pixel
    MAE (:func:`validation_mae`) of the whole validation images. On resume, the checkpoint's config, seed,
    reuse and alignment are used (a different ``config`` or ``seed`` is an error). ``progress``: a tqdm bar with
    the losses and the last validation MAE. ``callback(step, losses)`` is called after every update.
    """
    out_dir = Path(out_dir)
    cfg = get_config(config) if isinstance(config, str) else config
    trainer = _resume_or_start(out_dir, cfg, seed, lambda: Trainer(cfg, seed, reuse, alignment))
    data = val = None
    if trainer.step < steps:
        data = _as_training_data(train_data, trainer.alignment)
        val = _as_training_data(val_data, trainer.alignment) if val_data is not None else None
        _run(trainer, data, val, out_dir, steps, steps_per_epoch, progress, callback)
    trainer.stage2_trainers = {}
    for c in cfg.stage2:
        sub = out_dir / f"stage2_{c}"
        t2 = _resume_or_start(sub, cfg, seed, lambda c=c: Trainer(cfg, seed, reuse, trainer.alignment, c,
                                                                  trainer.generator),
                              stage1=trainer.generator)
        target = stage2_steps if stage2_steps is not None else steps
        if t2.step < target:
            if data is None:
                data = _as_training_data(train_data, trainer.alignment)
                val = _as_training_data(val_data, trainer.alignment) if val_data is not None else None
            _run(t2, data, val, sub, target, steps_per_epoch, progress, callback)
        trainer.stage2_trainers[c] = t2
    return trainer


def _resume_or_start(out_dir: Path, cfg: PatchGANConfig, seed: int, start: Callable[[], Trainer],
                     stage1: nn.Module | None = None) -> Trainer:
    path = out_dir / CHECKPOINT
    if not path.is_file():
        return start()
    trainer = Trainer.from_checkpoint(path, stage1=stage1)
    if trainer.config.to_dict() != cfg.to_dict() or trainer.seed != seed:
        raise ValueError(f"{path} was trained with config {trainer.config.name!r} and seed {trainer.seed}, "
                         f"not {cfg.name!r} and seed {seed}; choose another --out")
    return trainer


def _run(trainer: Trainer, data: TrainingData, val: TrainingData | None, out_dir: Path, steps: int,
         steps_per_epoch: int, progress: bool, callback: Callable[[int, dict[str, float]], None] | None) -> None:
    trainer.magnification = data.magnification
    channels = data.channels if trainer.stage2 is None else (trainer.stage2,)
    fields = [*CSV_FIELDS, "val_mae", *(f"val_{c}" for c in channels)]
    what = "" if trainer.stage2 is None else f" stage 2 {trainer.stage2}"
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=steps, initial=trainer.step, desc=f"train patchgan {trainer.config.name}{what}", unit="step")
    sums: dict[str, float] = {}
    n = 0
    last_val = ""
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
            if trainer.step % steps_per_epoch == 0 or trainer.step == steps:
                row = {"epoch": math.ceil(trainer.step / steps_per_epoch), "step": trainer.step,
                       **{k: f"{v / n:.6g}" for k, v in sums.items()},
                       "seconds": f"{time.perf_counter() - t0:.2f}"}
                if val is not None:
                    scores = validation_mae(trainer, val)
                    row.update({"val_mae": f"{scores['mean']:.6g}",
                                **{f"val_{c}": f"{v:.6g}" for c, v in scores.items() if c != "mean"}})
                    last_val = f"{scores['mean']:.3f}"
                    if trainer.best_val_mae is None or scores["mean"] < trainer.best_val_mae:
                        trainer.best_val_mae = scores["mean"]
                        trainer.save(out_dir, BEST)
                trainer.save(out_dir)
                _append_csv(out_dir / LOSSES_CSV, row, fields)
                sums, n, t0 = {}, 0, time.perf_counter()
            if bar is not None:
                bar.update(1)
                bar.set_postfix(d=f"{losses['d_loss']:.3f}", g=f"{losses['g_adv']:.3f}", mae=f"{losses['g_mae']:.0f}",
                                **({"val_mae": last_val} if last_val else {}))
    finally:
        if bar is not None:
            bar.close()


def _as_training_data(train_data, alignment: str) -> TrainingData:
    if isinstance(train_data, TrainingData):
        return train_data
    if isinstance(train_data, (str, Path)) or hasattr(train_data, "manifest"):
        from vsbench.harness.predict_adipocyte import adipocyte_training_examples
        from vsbench.harness.split import Split

        split = train_data if hasattr(train_data, "manifest") else Split(Path(train_data))
        return load_training_data(adipocyte_training_examples(split), alignment)
    return load_training_data(train_data, alignment)
