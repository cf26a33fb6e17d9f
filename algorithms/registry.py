"""Names of the in-process algorithms, imported only when asked for (torch is slow to import)."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

from vsbench.algorithms.adipocyte_base import AdipocytePredictor
from vsbench.algorithms.base import Predictor

_ENTRIES = {
    "input": "vsbench.algorithms.baselines:InputBaseline",
    "inverted": "vsbench.algorithms.baselines:InvertedInputBaseline",
    "blurred": "vsbench.algorithms.baselines:BlurredInputBaseline",
    "train-mean": "vsbench.algorithms.baselines:TrainMeanBaseline",
    "filterbank": "vsbench.algorithms.baselines:FilterBankRegression",
    "tiny-unet": "vsbench.algorithms.unet:TinyUNet",
    "patchgan-lmc-tiny": "vsbench.algorithms.patchgan.lmc:PatchGANLMCPredictor",
    "vqgan-lmc-tiny": "vsbench.algorithms.vqgan.predictor:VQGANSpecialists",
    "adipocyte-train-median": "vsbench.algorithms.adipocyte_baselines:AdipocyteTrainMedian",
    "adipocyte-ridge": "vsbench.algorithms.adipocyte_baselines:AdipocyteRidge",
    "adipocyte-patchgan-tiny": "vsbench.algorithms.patchgan.predictor:PatchGANPredictor",
    "adipocyte-vqgan-tiny": "vsbench.algorithms.vqgan.adipocyte:VQGANAdipocyte",
}
# The task (split manifest "task") each algorithm predicts; "lmc" unless listed. Kept here, not read from
# the classes, so listing and dispatching never import an algorithm's module.
_TASKS = {
    "adipocyte-train-median": "adipocyte",
    "adipocyte-ridge": "adipocyte",
    "adipocyte-patchgan-tiny": "adipocyte",
    "adipocyte-vqgan-tiny": "adipocyte",
}


def algorithm_names(task: str | None = "lmc") -> list[str]:
    """Names of the algorithms of ``task`` (default ``lmc``, what callers from before other tasks expect);
    ``task=None``: every algorithm."""
    return [name for name in _ENTRIES if task is None or algorithm_task(name) == task]


def algorithm_task(name: str) -> str:
    """The task (``lmc``, ``adipocyte``) the named algorithm predicts; :class:`ValueError` if unknown."""
    if name not in _ENTRIES:
        raise ValueError(f"unknown algorithm {name!r}; known: {', '.join(_ENTRIES)}")
    return _TASKS.get(name, "lmc")


def algorithm_class(name: str) -> type:
    try:
        module, cls = _ENTRIES[name].split(":")
    except KeyError:
        raise ValueError(f"unknown algorithm {name!r}; known: {', '.join(_ENTRIES)}") from None
    return getattr(importlib.import_module(module), cls)


def learns(name: str) -> bool:
    """Whether the named algorithm learns from data (has ``fit``): it needs a training split or trained weights."""
    return hasattr(algorithm_class(name), "fit")


def loads_checkpoints(name: str) -> bool:
    """Whether the named algorithm can be loaded from a checkpoint (its constructor takes ``checkpoint``)."""
    return "checkpoint" in inspect.signature(algorithm_class(name)).parameters


def make_algorithm(name: str, checkpoint: str | Path | None = None) -> Predictor | AdipocytePredictor:
    """A fresh instance of the named algorithm with its default settings, or loaded from ``checkpoint`` (a
    folder written by ``vsbench train``) for the algorithms that take one."""
    cls = algorithm_class(name)
    if checkpoint is None:
        return cls()
    if not loads_checkpoints(name):
        raise ValueError(f"algorithm '{name}' does not load checkpoints")
    return cls(checkpoint=checkpoint)
