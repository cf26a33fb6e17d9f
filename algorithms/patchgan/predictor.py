"""The Patch-GAN virtual stainer behind the adipocyte predict interface (``adipocyte-patchgan-tiny``).

:class:`PatchGANPredictor` is either loaded once from a checkpoint folder written by
:func:`vsbench.algorithms.patchgan.train.train` (``PatchGANPredictor(checkpoint=DIR)``; its ``fit`` then does
nothing), or trained in-process by ``fit(examples)`` (the registry's ``adipocyte-patchgan-tiny``: the ``tiny``
config, seed 0, :data:`DEFAULT_EPOCHS` passes over the training pixels but at most :data:`DEFAULT_STEPS` updates,
about 4 minutes on a 2-core CPU; crops shrink to fit smaller training images, see :meth:`training_plan`).

A checkpoint folder holds Model 1 (``checkpoint.pt``) and, for configs with a second stage, one
``stage2_<channel>/checkpoint.pt`` per refined channel; :func:`load_generator` composes them (channels without a
stage-2 model keep Model 1's output) and :func:`checkpoint_digest` names the weights in the prediction record.
Loaded from a checkpoint, the predictor is named after its config (``adipocyte-patchgan-paper-20x`` ...).

``predict``: the 7 brightfield planes get the alignment the model was trained with (the Table 1 site model of
the set's site by default), the whole image is reflect-padded at the bottom / right to a multiple of
:data:`PAD_MULTIPLE` (32, as the original; or the generator's own multiple if larger), the generator runs once
on it (batch 1), the output is cropped back to the input size, rounded and clipped to 0..65535, uint16, in the
raw intensity scale of the targets.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from vsbench.algorithms.adipocyte_base import CHANNELS, TASK, AdipocyteCase, AdipocyteTrainingExample
from vsbench.algorithms.export import float32_weights
from vsbench.algorithms.patchgan.config import PatchGANConfig, build_networks, build_stage2_networks, get_config
from vsbench.algorithms.patchgan.networks import PAD_MULTIPLE, CompositeGenerator, pad_to_multiple
from vsbench.algorithms.patchgan.train import (
    CHECKPOINT,
    TrainingData,
    align_planes,
    config_from_checkpoint,
    load_checkpoint,
    load_training_data,
    train,
)

__all__ = ["PatchGANPredictor", "DEFAULT_STEPS", "load_generator", "checkpoint_provenance", "checkpoint_digest"]

DEFAULT_STEPS = 2500  # at most; about 4 minutes on a 2-core CPU
DEFAULT_EPOCHS = 10.0  # passes over the training pixels (8 sets of 512²: 2,560 steps, so the cap applies)
ALIGNMENT = "default"
UINT16_MAX = 65535


def load_generator(checkpoint: Path | str) -> tuple[CompositeGenerator, str, int]:
    """``(inference model, alignment, step)`` of a checkpoint folder (or file); see :meth:`PatchGANPredictor.load`.

    A training checkpoint or a weights-only export (:mod:`vsbench.algorithms.export`; float16 weights are cast
    back to float32); the model's ``exported_from`` is the export's origin record (``None`` for a training one)."""
    files = checkpoint_files(checkpoint)
    state = load_checkpoint(files[0])
    cfg = config_from_checkpoint(state)
    stage1 = build_networks(dataclasses.replace(cfg, stage2=()))["generator"]
    stage1.load_state_dict(float32_weights(state["generator"]))
    stage2 = {}
    for sub in files[1:]:
        c = sub.parent.name.removeprefix("stage2_")
        if c in cfg.stage2:
            generator, _ = build_stage2_networks(cfg)
            generator.load_state_dict(float32_weights(load_checkpoint(sub)["generator"]))
            stage2[c] = generator
    model = CompositeGenerator(stage1, stage2, cfg.channels).eval()
    model.config_name = cfg.name
    model.exported_from = state.get("exported_from")
    return model, state["alignment"], int(state["step"])


def checkpoint_provenance(checkpoint: Path | str, config_name: str, step: int,
                          exported_from: dict | None = None) -> dict:
    """What a prediction record says of a loaded model: folder, config, step and :func:`checkpoint_digest`; for
    a weights-only export also ``exported_from`` (the training checkpoint's name, sha256 and folder digest)."""
    record = {"checkpoint": str(Path(checkpoint).resolve()), "config": config_name, "step": step,
              "checkpoint_sha256": checkpoint_digest(checkpoint)}
    if exported_from:
        record["exported_from"] = dict(exported_from)
    return record


def checkpoint_files(checkpoint: Path | str) -> list[Path]:
    """The files an inference model is loaded from: Model 1's (``DIR/checkpoint.pt``, or the file given, e.g.
    ``DIR/best.pt``), then, in channel-name order, each ``DIR/stage2_<channel>/`` file of the same name (else
    that folder's ``checkpoint.pt``)."""
    path = Path(checkpoint)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no patchgan checkpoint")
    stage2 = []
    for sub in sorted(p for p in path.parent.glob("stage2_*") if p.is_dir()):
        chosen = sub / path.name if (sub / path.name).is_file() else sub / CHECKPOINT
        if chosen.is_file():
            stage2.append(chosen)
    return [path, *stage2]


def checkpoint_digest(checkpoint: Path | str) -> str:
    """sha256 over :func:`checkpoint_files` (names relative to the folder, then contents), so a prediction record
    names the exact weights."""
    files = checkpoint_files(checkpoint)
    folder = files[0].parent
    digest = hashlib.sha256()
    for f in files:
        digest.update(str(f.relative_to(folder)).encode() + b"\0")
        with f.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


class PatchGANPredictor:
    """Model 1 of a Patch-GAN config: 7 brightfield planes -> nuclei, lipids, cytoplasm (uint16)."""

    name = "adipocyte-patchgan-tiny"
    task = TASK

    def __init__(self, checkpoint: Path | str | None = None, config: str = "tiny", steps: int = DEFAULT_STEPS,
                 epochs: float = DEFAULT_EPOCHS, seed: int = 0, work_dir: Path | str | None = None,
                 progress: bool = False, device: str | None = None):
        """``device``: where the loaded generator runs (default CUDA when there is a GPU, else the CPU);
        ``fit`` trains as before and then moves the loaded result there."""
        self.config_name, self.steps, self.epochs, self.seed, self.progress = config, steps, epochs, seed, progress
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.work_dir = Path(work_dir) if work_dir is not None else None
        self.generator: torch.nn.Module | None = None
        self.alignment = "default"
        self.step = 0
        self.provenance: dict = {"config": config, "trained": "in-process by fit()", "seed": seed}
        if checkpoint is not None:
            self.load(checkpoint)

    @property
    def fitted(self) -> bool:
        """True once trained or loaded: the harness then needs no training split."""
        return self.generator is not None

    def load(self, checkpoint: Path | str) -> None:
        """Load the inference model from a checkpoint folder written by ``vsbench train patchgan`` (or its
        ``checkpoint.pt``): Model 1, plus the second-stage model of each channel that has a ``stage2_<channel>``
        subfolder (the other channels keep Model 1's output, as the original's ``load_model``)."""
        self.generator, self.alignment, self.step = load_generator(checkpoint)
        self.generator.to(self.device)
        self.name = f"adipocyte-patchgan-{self.generator.config_name}"
        self.provenance = checkpoint_provenance(checkpoint, self.generator.config_name, self.step,
                                                self.generator.exported_from)

    def training_plan(self, data: TrainingData) -> tuple[PatchGANConfig, int]:
        """The config and step count ``fit`` trains ``data`` with.

        The crop is ``config.crop``, or the largest multiple of 32 that fits the smallest training image. The
        steps: ``epochs`` passes over the training pixels in distinct crops (``epochs * pixels / (batch_size *
        crop²)`` batches, each used for ``reuse`` updates), at most ``steps``."""
        cfg = get_config(self.config_name)
        side = min(min(x.shape[1:]) for x in data.inputs)
        crop = min(cfg.crop, side // PAD_MULTIPLE * PAD_MULTIPLE)
        if crop < PAD_MULTIPLE:
            raise ValueError(f"{self.name}: training images of {side} px a side; need at least {PAD_MULTIPLE}")
        cfg = dataclasses.replace(cfg, crop=crop)
        pixels = sum(x.shape[1] * x.shape[2] for x in data.inputs)
        batches = math.ceil(self.epochs * pixels / (cfg.batch_size * crop * crop))
        return cfg, max(1, min(self.steps, batches * cfg.crop_reuse))

    def fit(self, examples: Iterable[AdipocyteTrainingExample]) -> None:
        """Train for :meth:`training_plan`'s steps (no-op if loaded from a checkpoint).

        Checkpoints go to ``work_dir`` (resumed if it holds one of the same config and seed), else to a
        temporary folder removed afterwards."""
        if self.generator is not None:
            return
        data = load_training_data(examples, ALIGNMENT)
        cfg, steps = self.training_plan(data)
        if self.work_dir is not None:
            train(cfg, data, self.work_dir, steps, self.seed, alignment=ALIGNMENT, progress=self.progress)
            self.load(self.work_dir)
            return
        with tempfile.TemporaryDirectory(prefix="vsbench-patchgan-") as tmp:
            train(cfg, data, Path(tmp), steps, self.seed, alignment=ALIGNMENT, progress=self.progress)
            self.load(Path(tmp))
            self.provenance = {**self.provenance, "checkpoint": "in-process by fit(), not kept", "seed": self.seed}

    @torch.no_grad()
    def predict(self, case: AdipocyteCase) -> dict[str, np.ndarray]:
        """One uint16 image of ``case.shape`` per channel, in the raw target intensity scale."""
        if self.generator is None:
            raise RuntimeError(f"{self.name}: call fit() or load a checkpoint before predict()")
        planes = align_planes(case.planes, case.key, case.magnification, self.alignment)
        x = torch.from_numpy(planes)[None].to(self.device)
        multiple = max(PAD_MULTIPLE, 2 ** (self.generator.stage1.depth - 1))
        h, w = case.shape
        y = self.generator(pad_to_multiple(x, multiple))[0, :, :h, :w].cpu().numpy()
        out = np.clip(np.rint(y), 0, UINT16_MAX).astype(np.uint16)
        return {c: out[i] for i, c in enumerate(CHANNELS)}
