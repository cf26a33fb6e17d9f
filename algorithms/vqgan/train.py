"""Training of the VQGAN specialists (Light My Cells 2024 winner): one paired VQGAN per organelle.

What is trained (``shared/reference/lmc.md`` §3.1-3.2). For one organelle, a :class:`~vsbench.algorithms.vqgan.
networks.VQModel` that maps a transmitted-light slice ``x`` (BF, PC or DIC, any z; replicated to 3 channels) to
that organelle's best-focus fluorescence ``y`` (replicated to 3 channels): a *paired* VQGAN, not an autoencoder
of ``y``; and its PatchGAN discriminator, which sees ``y`` or ``ŷ`` alone (``disc_conditional`` False).

Data (:class:`SpecialistData`, :meth:`Trainer.batch`). Every field of view that has the organelle: its slices
and its target, each rescaled to uint8 once (2 / 99.8 percentiles, clipped: :func:`~vsbench.algorithms.vqgan.
data.rescale_to_uint8`). A micro-batch is ``config.batch_size`` samples, each a random field, then a random
z-slice of it (one TL slice per sample, the target is the field's fluorescence, §3.2), augmented by
:func:`~vsbench.algorithms.vqgan.data.training_pair` (rot90, flip, random resized crop, the whole field resized
to ``config.resolution``), in [-1, 1].

Adipocyte (:mod:`.adipocyte`). The same training for a channel of the adipocyte task (``config.task``
"adipocyte"): a field's one input "slice" is a ``3 x H x W`` uint8 stack of brightfield planes (each rescaled on
its own), used as the 3 input channels (:func:`~vsbench.algorithms.vqgan.data.training_pair`), and the targets
are rescaled with one dataset-level window, :attr:`SpecialistData.target_window`, which the checkpoint keeps
(``target_window``; ``None`` for LMC) so that inference can map outputs back to raw intensities.

Loss (taming's ``VQLPIPSWithDiscriminator`` as lmc.md §3.1 states it; every constant from the config, which
takes them from the reference's yaml):

* ``rec_loss`` = ``pixel_weight`` (1) x mean |y - ŷ| (L1, ``pixel_loss: l1``); with a perceptual hook and
  ``perceptual_weight`` > 0, ``+ perceptual_weight x P(y, ŷ)`` per sample (off: see below); ``nll`` = its mean;
* ``g_loss`` = -mean D(ŷ) (the hinge generator term);
* ``d_weight`` = clamp(‖∇_last nll‖ / (‖∇_last g_loss‖ + 1e-4), 0, 1e4) x ``disc_weight`` (0.75 nucleus, 0.8
  the others), ``last`` = the decoder's final conv weight (:attr:`VQModel.last_layer`), gradients by
  ``torch.autograd.grad(..., retain_graph=True)``, the result detached (:func:`adaptive_weight`);
* ``disc_factor`` = ``config.disc_factor`` (1) from step ``config.disc_start`` (0 in the paper) on, 0 before
  (:func:`disc_factor`);
* autoencoder loss = nll + d_weight x disc_factor x g_loss + ``codebook_weight`` (1) x the quantizer's loss
  (taming's legacy weighting, beta 0.25: :class:`~vsbench.algorithms.vqgan.networks.VectorQuantizer`);
* discriminator loss = disc_factor x 0.5 (mean relu(1 - D(y)) + mean relu(1 + D(ŷ))) (:func:`hinge_d_loss`),
  D called on the real and the fake batch separately (its BatchNorm sees each batch on its own).

Optimisers: two Adams, betas (0.5, 0.9), lr = :attr:`VQGANConfig.learning_rate` (the base rate scaled by
accumulation x GPUs x batch, ``--scale_lr``), no scheduler, no EMA: one for the autoencoder (encoder, decoder,
quantizer, quant convs), one for the discriminator. A step does what PyTorch Lightning's two ``optimizer_idx``
passes do: the autoencoder pass (forward, loss, backward with the discriminator frozen, Adam step), then the
discriminator pass, which runs the autoencoder forward again (no gradient) with its *updated* weights, as
Lightning calls ``training_step`` afresh for each optimiser, and steps the discriminator's Adam. With
``accumulate_grad_batches`` = a > 1 (``paper``: 2), a step is a micro-batches: each pass's loss is divided by a
and the optimisers step after the last micro-batch, so the discriminator passes of the earlier micro-batches
see the not-yet-updated autoencoder, as in Lightning. The discriminator loss before ``disc_start`` is 0 and
still "stepped" (Adam with zero gradients leaves the weights unchanged but counts the step), as the reference.

LPIPS. The reference's April 2024 submission added LPIPS-VGG (weight 1). It is off here (``perceptual_weight``
0): the seed paper presents the scheme without it ("without a perceptual loss pretrained on natural images",
§2.3) and counts 58.1M trainable parameters without the 14.7M VGG, and no pretrained network can be downloaded
here anyway. :class:`Trainer` takes an optional ``perceptual`` callable ``P(y, ŷ) -> B`` (or ``B x 1 x 1 x 1``)
used only when the config's ``perceptual_weight`` is positive; none is shipped.

Validation (:func:`validation_rec_loss`). ``val_rec_loss``: the mean L1 over every slice of every validation
field, pushed through the inference path: :func:`~vsbench.algorithms.vqgan.data.preprocess` (uint8 rescale,
linear resize to ``resolution``, 3 channels in [-1, 1]; the stored uint8 slices go through its resize and
scaling, which equals ``preprocess`` of the raw slice), the model in eval mode (quantised decode), compared in
[-1, 1] at ``resolution`` (no clipping, as the reference's ``val/rec_loss``) with the target rescaled to uint8
and resized the same way, replicated to 3 channels. Slices count equally. ``best.pt`` keeps the lowest
(the reference monitors ``val/rec_loss``).

Determinism and resume. Weights are initialised from ``torch.manual_seed(seed)``; micro-batch ``m`` (``m = k
x a + j`` for micro-batch ``j`` of step ``k``; ``m = k`` without accumulation) draws everything from
``numpy.random.default_rng([seed, m])``; nothing else is random (dropout 0, deterministic quantiser). So a run
resumed from ``OUT/checkpoint.pt`` (written atomically after every epoch of ``steps_per_epoch`` steps and at
the end, with both networks, both optimisers, the step, the config, the seed and the organelle) repeats an
uninterrupted one bit for bit on CPU. ``OUT/losses.csv`` has one row per epoch: the mean losses, codebook usage
(fraction of codes used in a step's batch) and perplexity, the seconds, and ``val_rec_loss`` with validation
data. Resuming with another config or seed is an error.

Threads: :func:`train` runs with one torch thread by default (``threads``), restoring the setting after: on a
2-core machine shared with another job, two threads were up to 35x slower (:mod:`vsbench.algorithms.unet`).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from vsbench.algorithms.base import ORGANELLES, TrainingExample
from vsbench.algorithms.export import float32_weights, require_training_state
from vsbench.algorithms.vqgan.config import CONFIGS, VQGANConfig, build_networks, get_config
from vsbench.algorithms.vqgan.data import input_to_uint8, rescale_to_uint8, resize, training_pair
from vsbench.algorithms.vqgan.networks import VQModel, codebook_usage

__all__ = [
    "FORMAT", "CHECKPOINT", "BEST", "LOSSES_CSV", "CSV_FIELDS", "THREADS", "SpecialistData", "specialist_data",
    "specialist_data_from_split", "sample_batch", "adaptive_weight", "hinge_d_loss", "disc_factor", "Trainer",
    "validation_rec_loss", "train", "load_checkpoint", "config_from_checkpoint", "load_specialist",
    "specialist_from_state",
    "checkpoint_digest",
]

FORMAT = "vsbench-vqgan-1"
CHECKPOINT = "checkpoint.pt"
BEST = "best.pt"  # the epoch with the lowest val_rec_loss (with val_data)
LOSSES_CSV = "losses.csv"
THREADS = 1  # torch threads while training (module docstring)
GRAD_EPS = 1e-4  # adaptive weight: |grad nll| / (|grad g| + 1e-4)
D_WEIGHT_MAX = 1e4  # ... clamped to [0, 1e4]
LOSS_KEYS = ("loss", "rec_loss", "codebook_loss", "g_loss", "d_weight", "disc_factor", "disc_loss", "logits_real",
             "logits_fake")
CSV_FIELDS = ("epoch", "step", *LOSS_KEYS, "usage", "perplexity", "seconds", "val_rec_loss")


# ---------------------------------------------------------------------------------------------------------- data

@dataclass
class SpecialistData:
    """The training fields of one organelle's specialist, rescaled to uint8 (2 / 99.8 percentiles, clipped).

    ``inputs[i]``: the transmitted-light slices of field ``i`` (every z), 2-D uint8, or ``3 x H x W`` uint8
    stacks (the adipocyte task's brightfield planes, :mod:`.adipocyte`); ``targets[i]``: its organelle image, 2-D
    uint8 of the same H x W; ``names[i]``: the field's slice names (for messages); ``target_window``: the raw
    ``(low, high)`` every target was rescaled from, when one window serves the whole data set (adipocyte), else
    ``None`` (LMC: each target has its own percentile window)."""

    organelle: str
    inputs: list[list[np.ndarray]]
    targets: list[np.ndarray]
    names: list[list[str]] = field(default_factory=list)
    target_window: tuple[float, float] | None = None

    def __len__(self) -> int:
        return len(self.targets)

    @property
    def n_slices(self) -> int:
        return sum(len(s) for s in self.inputs)


def specialist_data(examples: Iterable[TrainingExample], organelle: str) -> SpecialistData:
    """The fields of ``examples`` that have ``organelle``, grouped (slices of one field share its target arrays,
    as :func:`vsbench.harness.predict.training_examples` yields them) and rescaled to uint8.

    :class:`ValueError` if ``organelle`` is unknown, no example has it, or a slice is neither 2-D nor ``3 x H x W``
    or differs in H x W from its target."""
    if organelle not in ORGANELLES:
        raise ValueError(f"vqgan: unknown organelle {organelle!r}; choose from {', '.join(ORGANELLES)}")
    index: dict[int, int] = {}
    alive = []  # the source target arrays, held so that their ids (the keys of ``index``) are not reused
    inputs: list[list[np.ndarray]] = []
    targets: list[np.ndarray] = []
    names: list[list[str]] = []
    for ex in examples:
        target = ex.targets.get(organelle)
        if target is None:
            continue
        key = id(target)
        if key not in index:
            t = np.asarray(target)
            if t.ndim != 2:
                raise ValueError(f"vqgan: {ex.case.name}: {organelle} ground truth is not 2-D (shape {t.shape})")
            index[key] = len(targets)
            alive.append(target)
            targets.append(rescale_to_uint8(t))
            inputs.append([])
            names.append([])
        i = index[key]
        image = np.asarray(ex.case.image)  # a 2-D slice, or a 3 x H x W stack (each channel rescaled on its own)
        if image.shape[-2:] != targets[i].shape or image.ndim not in (2, 3):
            raise ValueError(f"vqgan: {ex.case.name}: input shape {image.shape} != {organelle} ground truth shape "
                             f"{targets[i].shape}")
        inputs[i].append(input_to_uint8(image))
        names[i].append(ex.case.name)
    if not targets:
        raise ValueError(f"vqgan: no training example has {organelle} ground truth")
    return SpecialistData(organelle, inputs, targets, names)


def specialist_data_from_split(split_path: Path | str, organelle: str) -> SpecialistData:
    """:func:`specialist_data` of every input of an LMC training split folder (with its ground truth)."""
    from vsbench.harness.predict import training_examples
    from vsbench.harness.split import Split

    split = split_path if hasattr(split_path, "manifest") else Split(Path(split_path))
    if split.task != "lmc":
        raise ValueError(f"vqgan: {split.root} is an {split.task} split, not lmc")
    return specialist_data(training_examples(split), organelle)


def sample_batch(data: SpecialistData, size: int, batch_size: int, rng: np.random.Generator
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, y)``, each ``batch_size x 3 x size x size`` in [-1, 1]: per sample a random field, a random z-slice of
    it, :func:`~vsbench.algorithms.vqgan.data.training_pair` with ``rng``."""
    xs, ys = [], []
    for _ in range(batch_size):
        i = int(rng.integers(len(data)))
        z = int(rng.integers(len(data.inputs[i])))
        x, y = training_pair(data.inputs[i][z], data.targets[i], size, rng)
        xs.append(x)
        ys.append(y)
    return torch.stack(xs), torch.stack(ys)


def _model_input(image_u8: np.ndarray, size: int) -> torch.Tensor:
    """A uint8 (already rescaled) slice or ``3 x H x W`` stack as ``1 x 3 x size x size`` in [-1, 1]: the part of
    :func:`~vsbench.algorithms.vqgan.data.preprocess` after its uint8 rescale (so ``_model_input(
    rescale_to_uint8(raw)) == preprocess(raw)``)."""
    small = resize(torch.from_numpy(np.asarray(image_u8).astype(np.float32)), (size, size))
    return (small / 127.5 - 1.0).expand(1, 3, size, size).contiguous()


# ---------------------------------------------------------------------------------------------------------- loss

def adaptive_weight(nll: torch.Tensor, g_loss: torch.Tensor, last_layer: torch.Tensor,
                    disc_weight: float) -> torch.Tensor:
    """``clamp(|grad_last nll| / (|grad_last g_loss| + 1e-4), 0, 1e4) * disc_weight``, detached (taming's
    ``calculate_adaptive_weight``; ``last_layer``: the decoder's final conv weight). Both graphs are kept."""
    nll_grad = torch.autograd.grad(nll, last_layer, retain_graph=True)[0]
    g_grad = torch.autograd.grad(g_loss, last_layer, retain_graph=True)[0]
    ratio = torch.linalg.vector_norm(nll_grad) / (torch.linalg.vector_norm(g_grad) + GRAD_EPS)
    return torch.clamp(ratio, 0.0, D_WEIGHT_MAX).detach() * disc_weight


def hinge_d_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """``0.5 * (mean relu(1 - D(real)) + mean relu(1 + D(fake)))``."""
    return 0.5 * (F.relu(1.0 - logits_real).mean() + F.relu(1.0 + logits_fake).mean())


def disc_factor(config: VQGANConfig, step: int) -> float:
    """``config.disc_factor`` from step ``config.disc_start`` on, 0 before (taming's ``adopt_weight``)."""
    return 0.0 if step < config.disc_start else float(config.disc_factor)


# ------------------------------------------------------------------------------------------------------- trainer

def config_from_checkpoint(state: dict) -> VQGANConfig:
    """The :class:`VQGANConfig` a checkpoint was trained with (``published`` from the named config, if any)."""
    names = {f.name for f in dataclasses.fields(VQGANConfig)} - {"published"}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in state["config"].items() if k in names}
    base = CONFIGS.get(values.get("name", ""))
    return VQGANConfig(**values, published=dict(base.published) if base is not None else {})


def load_checkpoint(path: Path | str) -> dict:
    """The dict saved by :class:`Trainer` (``path``: the file or its directory)."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no vqgan checkpoint")
    state = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"{path}: not a vqgan checkpoint (format {found!r}, expected {FORMAT!r})")
    return state


class Trainer:
    """One organelle's VQModel and discriminator with their Adams, trained step by step (module docstring).

    ``perceptual``: an optional ``P(y, ŷ)`` per-sample perceptual distance, used only when
    ``config.perceptual_weight > 0`` (which then requires it); not saved in checkpoints."""

    def __init__(self, config: VQGANConfig | str, seed: int = 0,
                 perceptual: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None):
        self.config = get_config(config) if isinstance(config, str) else config
        cfg = self.config
        if cfg.pixel_loss != "l1" or cfg.disc_loss != "hinge" or cfg.disc_conditional:
            raise ValueError(f"vqgan {cfg.name}: only pixel_loss 'l1', disc_loss 'hinge' and an unconditional "
                             "discriminator are implemented")
        if cfg.perceptual_weight > 0 and perceptual is None:
            raise ValueError(f"vqgan {cfg.name}: perceptual_weight {cfg.perceptual_weight} needs a perceptual "
                             "loss (none ships: LPIPS is off, see the module docstring)")
        self.seed, self.perceptual = seed, perceptual
        torch.manual_seed(seed)
        nets = build_networks(cfg)
        self.model: VQModel = nets["vqmodel"]
        self.discriminator: nn.Module = nets["discriminator"]
        self.ae_opt = torch.optim.Adam(self.model.parameters(), lr=cfg.learning_rate, betas=cfg.adam_betas)
        self.d_opt = torch.optim.Adam(self.discriminator.parameters(), lr=cfg.learning_rate, betas=cfg.adam_betas)
        self.step = 0
        self.best_val_rec_loss: float | None = None
        self.target_window: tuple[float, float] | None = None  # adipocyte: the data's, for inference

    @property
    def organelle(self) -> str:
        return self.config.organelle

    def batch(self, data: SpecialistData, micro: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, y)`` of micro-batch ``micro`` of the current step, from ``default_rng([seed, step * a + micro])``
        (``a`` = ``accumulate_grad_batches``): a function of the seed and the step only."""
        cfg = self.config
        rng = np.random.default_rng([self.seed, self.step * cfg.accumulate_grad_batches + micro])
        return sample_batch(data, cfg.resolution, cfg.batch_size, rng)

    def _rec_loss(self, y: torch.Tensor, yhat: torch.Tensor) -> torch.Tensor:
        rec = self.config.pixel_weight * (y - yhat).abs()
        if self.perceptual is not None and self.config.perceptual_weight > 0:
            p = self.perceptual(y, yhat).reshape(-1, 1, 1, 1)
            rec = rec + self.config.perceptual_weight * p
        return rec.mean()

    def train_step(self, data: SpecialistData) -> dict[str, float]:
        """One autoencoder update, then one discriminator update (over ``accumulate_grad_batches`` micro-batches);
        returns the losses (means over the micro-batches), ``usage`` and ``perplexity`` of the step's codes."""
        if data.organelle != self.organelle:
            raise ValueError(f"vqgan: data of {data.organelle}, but this is the {self.organelle} specialist")
        cfg = self.config
        acc = cfg.accumulate_grad_batches
        factor = disc_factor(cfg, self.step)
        self.model.train()
        self.discriminator.train()
        sums = dict.fromkeys(LOSS_KEYS, 0.0)
        codes = []
        self.ae_opt.zero_grad(set_to_none=True)
        self.d_opt.zero_grad(set_to_none=True)
        for j in range(acc):
            x, y = self.batch(data, j)
            # autoencoder pass (optimizer_idx 0): the discriminator frozen
            self.discriminator.requires_grad_(False)
            try:
                yhat, qloss, indices = self.model(x)
                nll = self._rec_loss(y, yhat)
                g_loss = -self.discriminator(yhat).mean()
                d_weight = adaptive_weight(nll, g_loss, self.model.last_layer, cfg.disc_weight)
                loss = nll + d_weight * factor * g_loss + cfg.codebook_weight * qloss
                (loss / acc).backward()
            finally:
                self.discriminator.requires_grad_(True)
            if j == acc - 1:
                self.ae_opt.step()
            # discriminator pass (optimizer_idx 1): the autoencoder's forward again, as its own training_step
            with torch.no_grad():
                fake = self.model(x)[0]
            logits_real = self.discriminator(y)
            logits_fake = self.discriminator(fake)
            d_loss = factor * hinge_d_loss(logits_real, logits_fake)
            (d_loss / acc).backward()
            if j == acc - 1:
                self.d_opt.step()
            values = {"loss": loss, "rec_loss": nll, "codebook_loss": qloss, "g_loss": g_loss, "d_weight": d_weight,
                      "disc_factor": factor, "disc_loss": d_loss, "logits_real": logits_real.mean(),
                      "logits_fake": logits_fake.mean()}
            for k, v in values.items():
                sums[k] += float(v.detach() if isinstance(v, torch.Tensor) else v) / acc
            codes.append(indices)
        self.step += 1
        usage, perplexity = codebook_usage(torch.cat([c.reshape(-1) for c in codes]), cfg.n_embed)
        return {**sums, "usage": usage, "perplexity": perplexity}

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """The model (eval mode) on a ``B x 3 x R x R`` batch in [-1, 1]: the quantised reconstruction."""
        self.model.eval()
        return self.model(x)[0]

    def state_dict(self) -> dict:
        return {
            "format": FORMAT,
            "config": self.config.to_dict(),
            "seed": self.seed,
            "organelle": self.organelle,
            "step": self.step,
            "best_val_rec_loss": self.best_val_rec_loss,
            "target_window": None if self.target_window is None else [float(v) for v in self.target_window],
            "model": self.model.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "ae_opt": self.ae_opt.state_dict(),
            "d_opt": self.d_opt.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        if state.get("format") != FORMAT:
            raise ValueError(f"not a vqgan training state (format {state.get('format')!r}, expected {FORMAT!r})")
        require_training_state(state)
        self.model.load_state_dict(state["model"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.ae_opt.load_state_dict(state["ae_opt"])
        self.d_opt.load_state_dict(state["d_opt"])
        self.step = int(state["step"])
        self.best_val_rec_loss = state.get("best_val_rec_loss")
        window = state.get("target_window")  # absent in checkpoints from before the adipocyte task
        self.target_window = None if window is None else (float(window[0]), float(window[1]))

    def save(self, out_dir: Path | str, name: str = CHECKPOINT) -> Path:
        """Write ``out_dir/<name>`` (default ``checkpoint.pt``) atomically (temporary file, then rename)."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / name
        tmp = out_dir / f".{name}.{os.getpid()}.tmp"
        torch.save(self.state_dict(), tmp)
        tmp.replace(path)
        return path

    @classmethod
    def from_checkpoint(cls, path: Path | str) -> Trainer:
        """A trainer restored from a checkpoint file (or its folder)."""
        state = load_checkpoint(path)
        trainer = cls(config_from_checkpoint(state), seed=state["seed"])
        trainer.load_state_dict(state)
        return trainer


@torch.no_grad()
def validation_rec_loss(model: VQModel, data: SpecialistData, resolution: int) -> float:
    """Mean L1 in [-1, 1] at ``resolution`` over every slice of ``data``, through the inference path (module
    docstring); the model is left in eval mode."""
    model.eval()
    total, n = 0.0, 0
    for slices, target in zip(data.inputs, data.targets, strict=True):
        y = _model_input(target, resolution)
        x = torch.cat([_model_input(s, resolution) for s in slices])
        yhat = model(x)[0]
        total += float((yhat - y).abs().mean(dim=(1, 2, 3)).sum())
        n += len(slices)
    return total / n


# --------------------------------------------------------------------------------------------------------- train

def _append_csv(path: Path, row: dict, fields: Sequence[str]) -> None:
    new = not path.is_file()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(fields), extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow(row)


def _as_data(data, organelle: str, task: str = "lmc", window: tuple[float, float] | None = None) -> SpecialistData:
    """``data`` as :class:`SpecialistData`; adipocyte targets on ``window`` if given (validation: the training
    data's window), else on the data's own."""
    if isinstance(data, SpecialistData):
        if data.organelle != organelle:
            raise ValueError(f"vqgan: data of {data.organelle}, but the config trains the {organelle} specialist")
        if window is not None and data.target_window is not None and tuple(data.target_window) != tuple(window):
            raise ValueError(f"vqgan: validation targets on window {data.target_window}, training targets on "
                             f"{window}; build the validation data with the training window")
        return data
    if task == "adipocyte":
        from vsbench.algorithms.vqgan.adipocyte import (
            adipocyte_specialist_data,
            adipocyte_specialist_data_from_split,
        )

        if isinstance(data, (str, Path)) or hasattr(data, "manifest"):
            return adipocyte_specialist_data_from_split(data, organelle, window=window)
        return adipocyte_specialist_data(data, organelle, window=window)
    if isinstance(data, (str, Path)) or hasattr(data, "manifest"):
        return specialist_data_from_split(data, organelle)
    return specialist_data(data, organelle)


def train(config: VQGANConfig | str, data_or_split: SpecialistData | Iterable[TrainingExample] | Path | str,
          out_dir: Path | str, steps: int, seed: int = 0, *, steps_per_epoch: int = 100,
          val_data: SpecialistData | Iterable[TrainingExample] | Path | str | None = None, progress: bool = False,
          callback: Callable[[int, dict[str, float]], None] | None = None,
          threads: int | None = THREADS) -> Trainer:
    """Train ``config``'s organelle specialist to ``steps`` updates in all, resuming from ``out_dir/checkpoint.pt``.

    ``data_or_split``, ``val_data``: :class:`SpecialistData` (of ``config.organelle``), training examples, or a
    split folder (or :class:`~vsbench.harness.split.Split`) of ``config.task``. The data's ``target_window`` (if
    any) is kept in the checkpoint (adipocyte validation targets use it too); resuming with data of another window
    is an error. After every epoch of ``steps_per_epoch`` updates and at the end: ``out_dir/checkpoint.pt``
    (atomic) and a row of ``out_dir/losses.csv`` (mean losses, usage, perplexity, seconds, and with ``val_data``
    :func:`validation_rec_loss`; ``out_dir/best.pt`` keeps the lowest).
    A different ``config`` or ``seed`` than the checkpoint's is an error. ``progress``: a tqdm bar.
    ``callback(step, losses)`` after every update. A non-finite loss raises :class:`FloatingPointError`.
    ``threads``: torch threads while training (``None``: leave the setting), restored after."""
    out_dir = Path(out_dir)
    cfg = get_config(config) if isinstance(config, str) else config
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
    trainer = _resume_or_start(out_dir, cfg, seed)
    if trainer.step >= steps:
        return trainer
    data = _as_data(data_or_split, cfg.organelle, cfg.task)
    # adipocyte validation targets on the training window: val_rec_loss then measures what inference outputs
    val = _as_data(val_data, cfg.organelle, cfg.task, data.target_window) if val_data is not None else None
    if trainer.step > 0 and trainer.target_window != data.target_window:
        raise ValueError(f"{out_dir / CHECKPOINT} was trained on targets of window {trainer.target_window}, "
                         f"this data has {data.target_window}; choose another output folder")
    trainer.target_window = data.target_window
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        _run(trainer, data, val, out_dir, steps, steps_per_epoch, progress, callback)
    finally:
        torch.set_num_threads(previous)
    return trainer


def _resume_or_start(out_dir: Path, cfg: VQGANConfig, seed: int) -> Trainer:
    path = out_dir / CHECKPOINT
    if not path.is_file():
        return Trainer(cfg, seed)
    trainer = Trainer.from_checkpoint(path)
    if trainer.config.to_dict() != cfg.to_dict() or trainer.seed != seed:
        raise ValueError(f"{path} was trained with config {trainer.config.name!r} ({trainer.organelle}) and seed "
                         f"{trainer.seed}, not {cfg.name!r} ({cfg.organelle}) and seed {seed}; choose another "
                         "output folder")
    return trainer


def _run(trainer: Trainer, data: SpecialistData, val: SpecialistData | None, out_dir: Path, steps: int,
         steps_per_epoch: int, progress: bool, callback: Callable[[int, dict[str, float]], None] | None) -> None:
    cfg = trainer.config
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=steps, initial=trainer.step, desc=f"train vqgan {cfg.name} {cfg.organelle}", unit="step")
    sums: dict[str, float] = {}
    n = 0
    last_val = ""
    t0 = time.perf_counter()
    try:
        while trainer.step < steps:
            losses = trainer.train_step(data)
            if not all(math.isfinite(v) for v in losses.values()):
                bad = {k: v for k, v in losses.items() if not math.isfinite(v)}
                raise FloatingPointError(f"vqgan {cfg.organelle}: non-finite loss at step {trainer.step}: {bad}")
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
                    score = validation_rec_loss(trainer.model, val, cfg.resolution)
                    row["val_rec_loss"] = f"{score:.6g}"
                    last_val = f"{score:.4f}"
                    if trainer.best_val_rec_loss is None or score < trainer.best_val_rec_loss:
                        trainer.best_val_rec_loss = score
                        trainer.save(out_dir, BEST)
                trainer.save(out_dir)
                _append_csv(out_dir / LOSSES_CSV, row, CSV_FIELDS)
                sums, n, t0 = {}, 0, time.perf_counter()
            if bar is not None:
                bar.update(1)
                bar.set_postfix(rec=f"{losses['rec_loss']:.4f}", usage=f"{losses['usage']:.3f}",
                                ppl=f"{losses['perplexity']:.1f}", **({"val_rec": last_val} if last_val else {}))
    finally:
        if bar is not None:
            bar.close()


# ----------------------------------------------------------------------------------------------------- inference

def load_specialist(checkpoint: Path | str) -> tuple[VQModel, VQGANConfig, str, int]:
    """``(model in eval mode, config, organelle, step)`` of a checkpoint file (``checkpoint.pt``, ``best.pt``) or
    its folder (``checkpoint.pt``); only the VQModel is built (no discriminator, no optimisers)."""
    state = load_checkpoint(checkpoint)
    model, cfg = specialist_from_state(state)
    return model, cfg, state["organelle"], int(state["step"])


def specialist_from_state(state: dict) -> tuple[VQModel, VQGANConfig]:
    """``(model in eval mode, config)`` of a checkpoint dict (:func:`load_checkpoint`): a training checkpoint or a
    weights-only export (:mod:`vsbench.algorithms.export`; float16 weights cast back to float32); only the VQModel."""
    cfg = config_from_checkpoint(state)
    model = build_networks(cfg)["vqmodel"]
    model.load_state_dict(float32_weights(state["model"]))
    model.eval()
    return model, cfg


def checkpoint_digest(path: Path | str) -> str:
    """sha256 of a checkpoint file (a folder: its ``checkpoint.pt``)."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()
