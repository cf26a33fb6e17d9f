"""The committed tiny checkpoints of the two reference solutions (``make demo``; README.md in this folder).

Weights-only exports (:mod:`vsbench.algorithms.export`) of CPU-trained ``tiny`` models, loadable as
``vsbench predict --algorithm NAME --checkpoint PATH`` or ``make_algorithm(NAME, checkpoint=path(NAME))``:

* ``vqgan-lmc-tiny``: ``vqgan-lmc-tiny/<organelle>/checkpoint.pt``, the four Light My Cells specialists;
* ``adipocyte-patchgan-tiny``: ``patchgan-adipocyte-tiny/checkpoint.pt``, the 20x Patch-GAN Model 1.

No torch import here: the demo can name the folders without loading anything.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["ROOT", "DEMO_CHECKPOINTS", "path"]

ROOT = Path(__file__).resolve().parent
# registry algorithm name -> the checkpoint folder its predictor loads
DEMO_CHECKPOINTS: dict[str, Path] = {
    "vqgan-lmc-tiny": ROOT / "vqgan-lmc-tiny",
    "adipocyte-patchgan-tiny": ROOT / "patchgan-adipocyte-tiny",
}


def path(name: str) -> Path:
    """The committed checkpoint folder of ``name``: an algorithm name (``vqgan-lmc-tiny``,
    ``adipocyte-patchgan-tiny``) or a folder name (``patchgan-adipocyte-tiny``); :class:`KeyError` otherwise."""
    if name in DEMO_CHECKPOINTS:
        return DEMO_CHECKPOINTS[name]
    for folder in DEMO_CHECKPOINTS.values():
        if folder.name == name:
            return folder
    known = sorted({*DEMO_CHECKPOINTS, *(f.name for f in DEMO_CHECKPOINTS.values())})
    raise KeyError(f"no committed checkpoint {name!r}; known: {', '.join(known)}")
