"""The Light My Cells 2024 winner's VQGAN specialists (Le & Lundberg, ``trangle1302/lmc_GenCellPaint``).

:mod:`.networks`: encoder, decoder, vector quantizer, :class:`VQModel` and the PatchGAN discriminator in PyTorch,
exact to the published parameter counts (58,088,415 per specialist); :mod:`.config`: the ``paper`` and ``tiny``
configurations per organelle and :func:`model_card`; :mod:`.data`: the winner's preprocessing and augmentation;
:mod:`.train`: one specialist's training; :mod:`.predictor`: the four LMC specialists behind the predict
interface (``vqgan-lmc-tiny``); :mod:`.adipocyte`: the same for the adipocyte channels (``adipocyte-vqgan-tiny``).
"""

from vsbench.algorithms.vqgan.config import (
    CONFIGS,
    VQGANConfig,
    build_networks,
    config_names,
    get_config,
    model_card,
)
from vsbench.algorithms.vqgan.networks import (
    Decoder,
    Encoder,
    NLayerDiscriminator,
    VectorQuantizer,
    VQModel,
    codebook_usage,
    count_parameters,
)

__all__ = [
    "CONFIGS", "Decoder", "Encoder", "NLayerDiscriminator", "VQGANConfig", "VQModel", "VectorQuantizer",
    "build_networks", "codebook_usage", "config_names", "count_parameters", "get_config", "model_card",
]
