"""Solution 1: the two-stage Patch-GAN virtual stainer of the Soft Matter Lab (GU) team.

:mod:`.networks`: the generator, discriminator and composite (stage 1 + stage 2) networks in PyTorch,
exact to the published parameter counts; :mod:`.config`: the paper-20x/40x/60x and tiny configurations
and :func:`model_card` (``vsbench model info patchgan --config NAME``).
"""

from vsbench.algorithms.patchgan.config import (
    CONFIGS,
    PatchGANConfig,
    build_networks,
    composite_generator,
    config_names,
    get_config,
    model_card,
)
from vsbench.algorithms.patchgan.networks import (
    CHANNELS,
    CompositeGenerator,
    PatchGANDiscriminator,
    PatchGANGenerator,
    ScalarTanhNorm,
    ScaleLayer,
    count_parameters,
)

__all__ = [
    "CHANNELS", "CONFIGS", "CompositeGenerator", "PatchGANConfig", "PatchGANDiscriminator", "PatchGANGenerator",
    "ScalarTanhNorm", "ScaleLayer", "build_networks", "composite_generator", "config_names", "count_parameters",
    "get_config", "model_card",
]
