"""A small learned model: a 2-D U-Net from one transmitted-light slice to four organelles.

``TinyUNet`` is the smallest deep model worth the name, sized to train on one CPU thread in about a
minute on the demo data (6 fields x 11-13 planes of 256 px): enough to show that learning beats the
trivial baselines, not a contender for the challenge.

Network (``UNet2d``). Input: the percentile-normalised slice (``modality_input`` adds a one-hot of
BF, PC, DIC; off by default: on the synthetic data it lowered nucleus and mitochondria PCC and made
tubulin, which one training field carries, swing with the seed). A 2x2 space-to-depth stem
(``pixel_unshuffle``) puts the U-Net at half resolution, which makes a step 3.5 times cheaper than a
full-resolution one: more steps in the same minute beat full-resolution features. Encoder of
``len(widths)`` levels, each two 3x3 convolutions with GroupNorm and ReLU, 2x2 max-pooling between
levels; decoder with bilinear upsampling, skip concatenation and the same double convolution; a 1x1
convolution to 2x2 sub-pixels of the four organelles (``ORGANELLES`` order), reassembled at full
resolution by ``pixel_shuffle``. GroupNorm, not BatchNorm: batches are small and predict runs on
whole fields. With the defaults: 227,664 weights, convolutional receptive field about 200 px
(GroupNorm adds statistics of the whole crop or field), inputs mirror-padded to a multiple of 16.

Training. Every example is loaded into memory once, inputs and targets percentile-normalised with
``normalise`` (the targets of a field once, shared by its slices). Random crops of ``crop`` px (a
field smaller than that is mirrored out to it), random flips and rot90, batches of ``batch``; Adam
with a one-cycle learning rate. No field has all four organelles: the loss is the MSE of each
organelle over the crops whose field has its ground truth, averaged over the organelles present in
the batch (``balance``), so the rare ones (tubulin, actin) are not drowned by the nucleus. ``epochs``
counts passes over the training pixels (``steps`` overrides it): training time scales with the data.
Deterministic for a ``seed``: crops come from a seeded numpy generator, the weights from
``torch.manual_seed``; deterministic algorithms and ``threads`` (default 1) torch threads while
fitting and predicting, the process's settings restored after. One thread because the machine is
shared: with 2 threads and another busy process, a step was 8 times slower.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from vsbench.algorithms.base import ORGANELLES, Case, TrainingExample
from vsbench.algorithms.baselines import normalise

MODALITIES = ("BF", "PC", "DIC")


def _block(cin: int, cout: int, groups: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.GroupNorm(min(groups, cout), cout), nn.ReLU(True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.GroupNorm(min(groups, cout), cout), nn.ReLU(True),
    )


class UNet2d(nn.Module):
    """A plain U-Net behind a ``stem`` x ``stem`` space-to-depth stem; ``factor`` (``stem`` times
    2 ** (levels - 1)) must divide the input's height and width."""

    def __init__(self, in_channels: int, out_channels: int, widths=(16, 32, 48, 64), groups: int = 4,
                 stem: int = 1):
        super().__init__()
        self.stem = stem
        self.down = nn.ModuleList()
        cin = in_channels * stem * stem
        for w in widths:
            self.down.append(_block(cin, w, groups))
            cin = w
        self.up = nn.ModuleList(
            _block(widths[i + 1] + widths[i], widths[i], groups) for i in range(len(widths) - 1)
        )
        self.head = nn.Conv2d(widths[0], out_channels * stem * stem, 1)
        self.factor = stem * 2 ** (len(widths) - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stem > 1:
            x = F.pixel_unshuffle(x, self.stem)
        skips = []
        for i, block in enumerate(self.down):
            if i:
                x = F.max_pool2d(x, 2)
            x = block(x)
            skips.append(x)
        for i in reversed(range(len(self.up))):
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = self.up[i](torch.cat([x, skips[i]], dim=1))
        x = self.head(x)
        return F.pixel_shuffle(x, self.stem) if self.stem > 1 else x


def _modality_planes(modality: str | None, shape: tuple[int, int]) -> np.ndarray:
    planes = np.zeros((len(MODALITIES), *shape), np.float32)
    if modality in MODALITIES:
        planes[MODALITIES.index(modality)] = 1.0
    return planes


class TinyUNet:
    """A small 2-D U-Net (0.23 M weights) trained on random crops with a per-organelle masked MSE."""

    name = "tiny-unet"

    def __init__(
        self,
        epochs: float = 15.0,
        steps: int | None = None,
        seed: int = 0,
        crop: int = 96,
        batch: int = 8,
        lr: float = 3e-3,
        widths: tuple[int, ...] = (16, 32, 48, 64),
        modality_input: bool = False,
        balance: bool = True,
        stem: int = 2,
        channels_last: bool = True,
        threads: int = 1,
        verbose: bool = False,
    ):
        self.epochs = epochs
        self.steps = steps
        self.seed = seed
        self.crop = crop
        self.batch = batch
        self.lr = lr
        self.widths = tuple(widths)
        self.modality_input = modality_input
        self.balance = balance
        self.stem = stem
        self.channels_last = channels_last
        self.threads = threads
        self.verbose = verbose
        self.model: UNet2d | None = None
        self.history: list[float] = []  # mean training loss per 50 steps

    def _input(self, image: np.ndarray, modality: str | None) -> np.ndarray:
        if not self.modality_input:
            return image[None]
        return np.concatenate([image[None], _modality_planes(modality, image.shape)])

    # ---- data -----------------------------------------------------------------------------------

    def _load(self, examples: Iterable[TrainingExample]):

        inputs, fields, field_of = [], [], []
        field_index: dict[tuple[int, ...], int] = {}
        alive = []  # the fields' target arrays, held so that their ids, the keys, are not reused
        for ex in examples:
            if not ex.targets:
                continue
            key = tuple(sorted(id(t) for t in ex.targets.values()))  # slices of one field share targets
            if key not in field_index:
                first = next(iter(ex.targets.values()))
                target = np.zeros((len(ORGANELLES), *first.shape), np.float32)
                mask = np.zeros(len(ORGANELLES), np.float32)
                for organelle, t in ex.targets.items():
                    if organelle in ORGANELLES:
                        target[ORGANELLES.index(organelle)] = normalise(t)
                        mask[ORGANELLES.index(organelle)] = 1.0
                field_index[key] = len(fields)
                alive.append(tuple(ex.targets.values()))
                fields.append((target, mask))
            target = fields[field_index[key]][0]
            if ex.case.image.shape != target.shape[1:]:
                raise ValueError(f"tiny-unet: {ex.case.name}: input shape {ex.case.image.shape} "
                                 f"!= ground truth shape {target.shape[1:]}")
            x = self._input(normalise(ex.case.image), ex.case.modality)
            inputs.append(x)
            field_of.append(field_index[key])
        if not inputs:
            raise ValueError("tiny-unet: the training split has no ground truth to learn from")
        pixels = np.array([x.shape[1] * x.shape[2] for x in inputs], np.float64)
        # fields smaller than a crop are mirrored out to it
        c = self.crop
        for i, x in enumerate(inputs):
            pads = ((0, 0), (0, max(0, c - x.shape[1])), (0, max(0, c - x.shape[2])))
            inputs[i] = np.pad(x, pads, mode="symmetric")
        for i, (target, mask) in enumerate(fields):
            pads = ((0, 0), (0, max(0, c - target.shape[1])), (0, max(0, c - target.shape[2])))
            fields[i] = (np.pad(target, pads, mode="symmetric"), mask)
        return inputs, fields, np.asarray(field_of), pixels

    def _batch(self, rng: np.random.Generator, inputs, fields, field_of, weights):
        c = self.crop
        xs, ys, ms = [], [], []
        for i in rng.choice(len(inputs), size=self.batch, p=weights):
            x = inputs[i]
            target, mask = fields[field_of[i]]
            r0 = int(rng.integers(0, x.shape[1] - c + 1))
            c0 = int(rng.integers(0, x.shape[2] - c + 1))
            xc = x[:, r0:r0 + c, c0:c0 + c]
            yc = target[:, r0:r0 + c, c0:c0 + c]
            k = int(rng.integers(4))
            flip = bool(rng.integers(2))
            xc, yc = np.rot90(xc, k, axes=(1, 2)), np.rot90(yc, k, axes=(1, 2))
            if flip:
                xc, yc = xc[:, :, ::-1], yc[:, :, ::-1]
            xs.append(np.ascontiguousarray(xc))
            ys.append(np.ascontiguousarray(yc))
            ms.append(mask)
        return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys)), torch.from_numpy(np.stack(ms))

    # ---- fit / predict --------------------------------------------------------------------------

    def fit(self, examples: Iterable[TrainingExample]) -> None:
        t0 = time.perf_counter()
        inputs, fields, field_of, pixels = self._load(examples)
        weights = pixels / pixels.sum()  # every pixel equally likely to be in a crop
        steps = self.steps
        if steps is None:
            steps = max(1, math.ceil(self.epochs * pixels.sum() / (self.batch * self.crop**2)))

        threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
        torch.set_num_threads(self.threads)
        torch.use_deterministic_algorithms(True)
        try:
            torch.manual_seed(self.seed)
            rng = np.random.default_rng(self.seed)
            in_channels = 1 + len(MODALITIES) * self.modality_input
            model = UNet2d(in_channels, len(ORGANELLES), self.widths, stem=self.stem)
            if self.channels_last:
                model = model.to(memory_format=torch.channels_last)
            opt = torch.optim.Adam(model.parameters(), lr=self.lr)
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=self.lr, total_steps=steps, pct_start=0.1)
            model.train()
            self.history = []
            running = 0.0
            for step in range(steps):
                x, y, m = self._batch(rng, inputs, fields, field_of, weights)
                if self.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                pred = model(x)
                per = ((pred - y) ** 2).mean(dim=(2, 3))  # (batch, organelle)
                if self.balance:  # mean per organelle over the crops that have it, then over organelles
                    present = m.sum(0)
                    per_org = (per * m).sum(0) / present.clamp(min=1)
                    loss = per_org[present > 0].mean()
                else:
                    loss = (per * m).sum() / m.sum().clamp(min=1)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                running += float(loss.detach())
                if (step + 1) % 50 == 0 or step + 1 == steps:
                    self.history.append(running / (step % 50 + 1))
                    running = 0.0
                    if self.verbose:
                        print(f"tiny-unet step {step + 1}/{steps} loss {self.history[-1]:.4f} "
                              f"({time.perf_counter() - t0:.0f} s)", flush=True)
            model.eval()
            self.model = model
        finally:
            torch.set_num_threads(threads)
            torch.use_deterministic_algorithms(deterministic)
        self.fit_seconds = time.perf_counter() - t0
        self.steps_run = steps

    def predict(self, case: Case) -> dict[str, np.ndarray]:
        if self.model is None:
            raise RuntimeError("tiny-unet: call fit() before predict()")

        h, w = case.image.shape
        x = self._input(normalise(case.image), case.modality)
        f = self.model.factor
        ph, pw = (-h) % f, (-w) % f
        x = np.pad(x, ((0, 0), (0, ph), (0, pw)), mode="symmetric")
        threads = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            with torch.no_grad():
                out = self.model(torch.from_numpy(np.ascontiguousarray(x))[None])[0, :, :h, :w].numpy()
        finally:
            torch.set_num_threads(threads)
        return {o: np.ascontiguousarray(out[i], dtype=np.float32) for i, o in enumerate(ORGANELLES)}
