"""The VQGAN specialists behind the LMC predict interface (``vqgan-lmc-tiny``): one model per organelle.

A checkpoint root holds one folder per organelle, each written by ``vsbench train vqgan --organelle O --out
ROOT/O`` (:mod:`vsbench.algorithms.vqgan.train`). :class:`VQGANSpecialists` loads all four once, when it is
built (the winner's container reloaded four 722 MB checkpoints for every image; see
``tests/benchmarks/test_bench_vqgan.py``); a missing specialist is an error that names it, never a blank image.
In each folder the best validation checkpoint (``best.pt``, lowest ``val_rec_loss``, what the reference
monitored) is used when it exists, else the last one (``checkpoint.pt``).

Prediction, as the winner's inference script (``shared/reference/lmc.md`` §3.3, :mod:`.data`): an all-zero input
is written unchanged for every organelle; otherwise the slice is rescaled to uint8 (2 / 99.8 %), resized to the
model's resolution (256 for ``paper``), replicated to 3 channels in [-1, 1]; per organelle encode -> quantize ->
decode, clip to [-1, 1], to uint16, mean of the 3 channels, resized back to the input size. The input is
preprocessed once for all organelles.

In-process training (``fit``, the registry's ``vqgan-lmc-tiny``): the ``tiny`` config, one specialist per
organelle present in the training data, :data:`DEFAULT_STEPS` updates each.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from vsbench.algorithms.base import ORGANELLES, Case, TrainingExample
from vsbench.algorithms.vqgan.data import is_blank, postprocess, preprocess

__all__ = ["VQGANSpecialists", "DEFAULT_STEPS", "THREADS", "specialist_checkpoint"]

DEFAULT_STEPS = 600  # per organelle, in-process
THREADS = 1  # torch threads while fitting and predicting: 2 threads on a busy 2-core machine were far slower
BEST, LAST = "best.pt", "checkpoint.pt"


def specialist_checkpoint(root: Path | str, organelle: str) -> Path:
    """``ROOT/<organelle>/best.pt`` if it exists, else ``ROOT/<organelle>/checkpoint.pt``; a
    :class:`FileNotFoundError` naming the missing specialist otherwise."""
    folder = Path(root) / organelle
    for name in (BEST, LAST):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"no {organelle} specialist in {root} (expected {folder}/{LAST}); train one with "
                            f"'vsbench train vqgan --task lmc --organelle {organelle} --out {folder}'")


class VQGANSpecialists:
    """Four VQGAN specialists: one transmitted-light slice -> nucleus, mitochondria, tubulin, actin (uint16)."""

    name = "vqgan-lmc-tiny"

    def __init__(self, checkpoint: Path | str | None = None, config: str = "tiny", steps: int = DEFAULT_STEPS,
                 seed: int = 0, work_dir: Path | str | None = None, progress: bool = False, threads: int = THREADS,
                 device: str | None = None):
        """``device``: where the specialists run (default CUDA when there is a GPU, else the CPU)."""
        self.config_name, self.steps, self.seed, self.progress, self.threads = config, steps, seed, progress, threads
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.work_dir = Path(work_dir) if work_dir is not None else None
        self.models: dict[str, torch.nn.Module] = {}
        self.resolution: dict[str, int] = {}
        self.provenance: dict = {"config": config, "trained": "in-process by fit()", "seed": seed, "steps": steps}
        if checkpoint is not None:
            self.load(checkpoint)

    @property
    def fitted(self) -> bool:
        """True once all four specialists are loaded: the harness then needs no training split."""
        return set(self.models) == set(ORGANELLES)

    def load(self, root: Path | str) -> None:
        """Load the four specialists of ``root`` (see the module docstring), each once."""
        from vsbench.algorithms.vqgan.train import checkpoint_digest, load_specialist

        paths = {o: specialist_checkpoint(root, o) for o in ORGANELLES}  # every one present before loading any
        models, resolution, record = {}, {}, {}
        for organelle, path in paths.items():
            model, config, trained_for, step = load_specialist(path)
            if trained_for != organelle:
                raise ValueError(f"{path} is a {trained_for} specialist, not {organelle}")
            models[organelle], resolution[organelle] = model.eval().to(self.device), int(config.resolution)
            record[organelle] = {"checkpoint": str(path.resolve()), "config": config.name, "step": step,
                                 "checkpoint_sha256": checkpoint_digest(path)}
        names = {r["config"] for r in record.values()}
        self.models, self.resolution = models, resolution
        self.name = f"vqgan-lmc-{names.pop()}" if len(names) == 1 else "vqgan-lmc-mixed"
        self.provenance = {"checkpoint": str(Path(root).resolve()), "specialists": record}

    def fit(self, examples: Iterable[TrainingExample]) -> None:
        """Train a ``config`` specialist per organelle for ``steps`` updates (no-op once loaded), checkpointing
        to ``work_dir/<organelle>`` (resumed if there) or to a temporary folder, then load them."""
        if self.fitted:
            return
        from vsbench.algorithms.vqgan.config import get_config
        from vsbench.algorithms.vqgan.train import specialist_data, train

        examples = list(examples)
        threads = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            with tempfile.TemporaryDirectory(prefix="vsbench-vqgan-") as tmp:
                root = self.work_dir or Path(tmp)
                for organelle in ORGANELLES:
                    data = specialist_data(examples, organelle)  # ValueError naming the organelle if it has none
                    train(get_config(self.config_name, organelle=organelle), data, root / organelle, self.steps,
                          self.seed, progress=self.progress)
                provenance = self.provenance
                self.load(root)
                if self.work_dir is None:
                    self.provenance = {**provenance, "specialists": self.provenance["specialists"],
                                       "checkpoint": "in-process by fit(), not kept"}
        finally:
            torch.set_num_threads(threads)

    @torch.no_grad()
    def predict(self, case: Case) -> dict[str, np.ndarray]:
        """One uint16 image of ``case.image.shape`` per organelle (the input itself for an all-zero input)."""
        if not self.fitted:
            raise RuntimeError(f"{self.name}: call fit() or load a checkpoint before predict()")
        image = np.asarray(case.image)
        if image.ndim != 2:
            raise ValueError(f"{self.name}: {case.name}: expected a 2-D slice, got shape {image.shape}")
        if is_blank(image):
            return {o: image.copy() for o in ORGANELLES}
        threads = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            inputs: dict[int, torch.Tensor] = {}
            out = {}
            for organelle in ORGANELLES:
                size = self.resolution[organelle]
                if size not in inputs:
                    inputs[size] = preprocess(image, size).to(self.device)
                y, _, _ = self.models[organelle](inputs[size])
                out[organelle] = postprocess(y.cpu(), image.shape)
            return out
        finally:
            torch.set_num_threads(threads)
