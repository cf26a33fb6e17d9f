"""Names of the in-process algorithms, imported only when asked for (torch is slow to import)."""

from __future__ import annotations

import importlib

from vsbench.algorithms.base import Predictor

_ENTRIES = {
    "input": "vsbench.algorithms.baselines:InputBaseline",
    "inverted": "vsbench.algorithms.baselines:InvertedInputBaseline",
    "blurred": "vsbench.algorithms.baselines:BlurredInputBaseline",
    "train-mean": "vsbench.algorithms.baselines:TrainMeanBaseline",
    "filterbank": "vsbench.algorithms.baselines:FilterBankRegression",
    "tiny-unet": "vsbench.algorithms.unet:TinyUNet",
}


def algorithm_names() -> list[str]:
    return list(_ENTRIES)


def algorithm_class(name: str) -> type:
    try:
        module, cls = _ENTRIES[name].split(":")
    except KeyError:
        raise ValueError(f"unknown algorithm {name!r}; known: {', '.join(_ENTRIES)}") from None
    return getattr(importlib.import_module(module), cls)


def make_algorithm(name: str) -> Predictor:
    """A fresh instance of the named algorithm with its default settings."""
    return algorithm_class(name)()
