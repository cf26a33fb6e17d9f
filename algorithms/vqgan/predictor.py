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

Shared with the adipocyte specialists (:mod:`.adipocyte`): :func:`specialist_checkpoint`,
:func:`load_specialists`, :func:`run_specialists` and :func:`torch_threads`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vsbench.algorithms.base import ORGANELLES, Case, TrainingExample
from vsbench.algorithms.vqgan.data import is_blank, postprocess, preprocess

__all__ = ["VQGANSpecialists", "fit_specialists", "DEFAULT_STEPS", "THREADS", "specialist_checkpoint",
           "LoadedSpecialist", "load_specialists", "torch_threads", "run_specialists"]

DEFAULT_STEPS = 600  # per organelle, in-process
THREADS = 1  # torch threads while fitting and predicting: 2 threads on a busy 2-core machine were far slower
BEST, LAST = "best.pt", "checkpoint.pt"


def specialist_checkpoint(root: Path | str, organelle: str, how: str | None = None) -> Path:
    """``ROOT/<organelle>/best.pt`` if it exists, else ``ROOT/<organelle>/checkpoint.pt``; a
    :class:`FileNotFoundError` naming the missing specialist otherwise (``how``: how to train one, default the
    LMC command line)."""
    folder = Path(root) / organelle
    for name in (BEST, LAST):
        if (folder / name).is_file():
            return folder / name
    how = how or f"'vsbench train vqgan --task lmc --organelle {organelle} --out {folder}'"
    raise FileNotFoundError(f"no {organelle} specialist in {root} (expected {folder}/{LAST}); train one with {how}")


@dataclass
class LoadedSpecialist:
    """One specialist as :func:`load_specialists` loads it: the VQModel (eval mode, on its device), its config,
    the provenance record (checkpoint, config, step, sha256) and the checkpoint's ``target_window`` (or None)."""

    model: torch.nn.Module
    config: object  # VQGANConfig (not imported here: torch-heavy modules load lazily)
    record: dict
    target_window: tuple[float, float] | None


def load_specialists(root: Path | str, names: Iterable[str], device: torch.device | str = "cpu",
                     how: Callable[[str, Path], str] | None = None) -> dict[str, LoadedSpecialist]:
    """The specialists ``ROOT/<name>`` (:func:`specialist_checkpoint`) for every name, every checkpoint found
    before any is loaded; :class:`ValueError` if a folder holds another name's specialist. ``how(name,
    folder)``: the training hint of a missing one's error."""
    from vsbench.algorithms.vqgan.train import checkpoint_digest, load_checkpoint, specialist_from_state

    names = list(names)
    paths = {n: specialist_checkpoint(root, n, how(n, Path(root) / n) if how else None) for n in names}
    loaded = {}
    for name, path in paths.items():
        state = load_checkpoint(path)
        if state["organelle"] != name:
            raise ValueError(f"{path} is a {state['organelle']} specialist, not {name}")
        model, config = specialist_from_state(state)
        window = state.get("target_window")
        record = {"checkpoint": str(path.resolve()), "config": config.name, "step": int(state["step"]),
                  "checkpoint_sha256": checkpoint_digest(path)}
        if state.get("exported_from"):  # a weights-only export: the training checkpoint it came from
            record["exported_from"] = dict(state["exported_from"])
        loaded[name] = LoadedSpecialist(model.eval().to(device), config, record,
                                        None if window is None else (float(window[0]), float(window[1])))
    return loaded


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """torch uses ``n`` threads inside the block (``None``: unchanged); the setting is restored after."""
    previous = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def fit_specialists(predictor, targets: Sequence[str], make_data: Callable[[str], object]) -> None:
    """Train a ``predictor.config_name`` specialist per target (``make_data(target)``: its training data; a
    :class:`ValueError` naming the target if there is none) for ``predictor.steps`` updates, checkpointing to
    ``predictor.work_dir/<target>`` (resumed if there) or to a temporary folder, then ``predictor.load`` them."""
    from vsbench.algorithms.vqgan.config import get_config
    from vsbench.algorithms.vqgan.train import train

    with torch_threads(predictor.threads), tempfile.TemporaryDirectory(prefix="vsbench-vqgan-") as tmp:
        root = predictor.work_dir or Path(tmp)
        for target in targets:
            train(get_config(predictor.config_name, organelle=target), make_data(target), root / target,
                  predictor.steps, predictor.seed, progress=predictor.progress)
        provenance = predictor.provenance
        predictor.load(root)
        if predictor.work_dir is None:
            predictor.provenance = {**provenance, "specialists": predictor.provenance["specialists"],
                                    "checkpoint": "in-process by fit(), not kept"}


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
        loaded = load_specialists(root, ORGANELLES, self.device)  # every one present before loading any
        record = {o: s.record for o, s in loaded.items()}
        names = {r["config"] for r in record.values()}
        self.models = {o: s.model for o, s in loaded.items()}
        self.resolution = {o: int(s.config.resolution) for o, s in loaded.items()}
        self.name = f"vqgan-lmc-{names.pop()}" if len(names) == 1 else "vqgan-lmc-mixed"
        self.provenance = {"checkpoint": str(Path(root).resolve()), "specialists": record}

    def fit(self, examples: Iterable[TrainingExample]) -> None:
        """Train a ``config`` specialist per organelle for ``steps`` updates (no-op once loaded), checkpointing
        to ``work_dir/<organelle>`` (resumed if there) or to a temporary folder, then load them."""
        if self.fitted:
            return
        from vsbench.algorithms.vqgan.train import specialist_data

        examples = list(examples)
        fit_specialists(self, ORGANELLES, lambda organelle: specialist_data(examples, organelle))

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
        with torch_threads(self.threads):
            return run_specialists(self.models, self.resolution, image, self.device)


@torch.no_grad()
def run_specialists(models: dict[str, torch.nn.Module], resolution: dict[str, int], image: np.ndarray,
                    device: torch.device | str = "cpu") -> dict[str, np.ndarray]:
    """Every model on ``image`` (a 2-D slice or a ``3 x H x W`` stack): :func:`~.data.preprocess` once per
    resolution, the model, :func:`~.data.postprocess` to uint16 (0..65535) of the image's H x W."""
    image = np.asarray(image)
    inputs: dict[int, torch.Tensor] = {}
    out = {}
    for name, model in models.items():
        size = resolution[name]
        if size not in inputs:
            inputs[size] = preprocess(image, size).to(device)
        y, _, _ = model(inputs[size])
        out[name] = postprocess(y.cpu(), image.shape[-2:])
    return out
