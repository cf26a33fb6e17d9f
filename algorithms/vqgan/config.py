"""Configurations of the Light My Cells 2024 winner's VQGAN specialists, and the model card of one specialist.

``paper``: one organelle model of ``trangle1302/lmc_GenCellPaint`` (``shared/reference/lmc.md`` §3.1-3.2; seed
paper §2.3-2.4). The architecture is the same for the four organelles (ch 128, ch_mult (1, 2, 4), 2 residual
blocks, 8192 x 3 codebook, beta 0.25 with taming's legacy weighting, PatchGAN 3 layers / 64 filters); what
differs per organelle (:func:`get_config` ``organelle=``):

* discriminator weight: 0.75 for the nucleus, 0.8 for mitochondria, tubulin and actin (lmc.md §3.1);
* ``base_learning_rate``: nucleus 4e-6, actin 2e-6, mitochondria and tubulin 1e-6 (lmc.md §3.1; the same in
  seed §2.4). The reference's ``main.py --scale_lr`` (default on) multiplies it by accumulate_grad_batches (2)
  x n_gpus (1) x batch_size (16): :attr:`VQGANConfig.learning_rate` (nucleus 1.28e-4, actin 6.4e-5,
  mitochondria / tubulin 3.2e-5). The seed paper quotes the *base* rates, so "learning rate of 4.0e-06" is
  before scaling;
* ``max_epochs``: 200 for nucleus / mitochondria, 1000 for actin / tubulin (lmc.md §3.1).

Loss settings (lmc.md §3.1): L1 pixel loss weight 1, codebook weight 1, hinge discriminator loss, ``disc_start``
0, ``disc_factor`` 1, the adaptive discriminator weight ``clamp(|grad nll| / (|grad g| + 1e-4), 0, 1e4) x
disc_weight`` at ``VQModel.last_layer``. Perceptual weight **0**: the April submission used LPIPS-VGG (weight
1.0), but the seed paper presents the scheme without a perceptual loss ("Without a perceptual loss pretrained
on natural images ... the model is not restricted to 3-channel inputs/outputs", §2.3) and counts 58.1M
trainable parameters, and LPIPS needs ImageNet-pretrained VGG weights we do not ship; so LPIPS is off here.

Data (lmc.md §3.2): every channel percentile-rescaled 2 / 99.8 (clipped) to [0, 1], then [-1, 1]; the
transmitted-light slice and the target replicated to 3 channels; RandomRotate90, horizontal flip (p 0.5),
RandomResizedCrop(scale 0.70-0.95, p 0.5), then the whole field of view resized to 256 x 256.

``tiny``: the same family scaled down to train on a CPU in minutes (tests, demos): ch 16, ch_mult (1, 2, 2),
1 residual block per level, GroupNorm with 8 groups (32 does not divide 16-channel blocks), a 256 x 3 codebook,
64 x 64 images (latent 16 x 16 x 3), discriminator 2 layers / 16 filters, batch 4, no gradient accumulation,
effective lr 4e-4 (chosen for a short run, not from the paper). 241,294 autoencoder + 42,961 discriminator
parameters. Measured on 2 CPU cores shared with another job, one torch thread: forward + backward of autoencoder
and discriminator at batch 4 about 130 ms; a whole GAN update (adaptive weight, both Adam steps) about 150 ms,
so 5 minutes are about 2,000 updates. On synthetic blobs (ring-contrast input -> blob target) 600 updates (90 s)
took the held-out L1 from 0.33 (best constant) to 0.09, codebook usage 9 %, perplexity 4.4.

Adipocyte (``task="adipocyte"``, :mod:`.adipocyte`): one specialist per channel (``organelle`` ``nuclei``,
``lipids`` or ``cytoplasm``), the same networks and losses; the 3 input channels are three brightfield planes.
The winner has no adipocyte settings: disc weight 0.8 for all three (the winner's value for every organelle but
the nucleus); ``tiny`` keeps its own lr; ``paper`` takes the nucleus's base lr (4e-6) for ``nuclei`` and
1e-6 (mitochondria / tubulin) for ``lipids`` and ``cytoplasm``, both scaled by ``--scale_lr`` as above, and 200
epochs (nucleus / mitochondria): choices made here, not the winner's (:data:`ADIPOCYTE_BASE_LEARNING_RATE`).

What "total" counts (:func:`model_card`): the trainable parameters of one specialist: encoder, decoder,
quantizer (codebook ``n_embed x embed_dim`` plus ``quant_conv`` and ``post_quant_conv``) and discriminator;
58,088,415 for ``paper`` (seed: "58.1 million trainable parameters"). The four specialists have 4 x that.
"""

from __future__ import annotations

import dataclasses
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch
from torch import nn

from vsbench.algorithms.adipocyte_base import CHANNELS as ADIPOCYTE_CHANNELS
from vsbench.algorithms.base import ORGANELLES
from vsbench.algorithms.vqgan.networks import (
    Decoder,
    Encoder,
    NLayerDiscriminator,
    VectorQuantizer,
    VQModel,
    count_parameters,
)

__all__ = [
    "VQGANConfig", "CONFIGS", "DISC_WEIGHT", "BASE_LEARNING_RATE", "MAX_EPOCHS", "ADIPOCYTE_CHANNELS",
    "ADIPOCYTE_DISC_WEIGHT", "ADIPOCYTE_BASE_LEARNING_RATE", "ADIPOCYTE_MAX_EPOCHS", "config_names", "get_config",
    "build_networks", "model_card",
]

# lmc.md §3.1 (configs/lmc_bf_<Organelle>.yaml)
DISC_WEIGHT = {"nucleus": 0.75, "mitochondria": 0.8, "tubulin": 0.8, "actin": 0.8}
BASE_LEARNING_RATE = {"nucleus": 4e-6, "mitochondria": 1e-6, "tubulin": 1e-6, "actin": 2e-6}
MAX_EPOCHS = {"nucleus": 200, "mitochondria": 200, "tubulin": 1000, "actin": 1000}
# adipocyte channels (task "adipocyte"): not the winner's (it has none), see the module docstring
ADIPOCYTE_DISC_WEIGHT = {"nuclei": 0.8, "lipids": 0.8, "cytoplasm": 0.8}
ADIPOCYTE_BASE_LEARNING_RATE = {"nuclei": 4e-6, "lipids": 1e-6, "cytoplasm": 1e-6}
ADIPOCYTE_MAX_EPOCHS = {"nuclei": 200, "lipids": 200, "cytoplasm": 200}


@dataclass(frozen=True)
class VQGANConfig:
    name: str
    description: str
    organelle: str = "nucleus"  # one specialist per organelle (adipocyte: per channel)
    task: str = "lmc"  # or "adipocyte" (organelle: nuclei, lipids or cytoplasm)
    # architecture (ddconfig, lmc.md §3.1)
    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 2, 4)
    num_res_blocks: int = 2
    attn_resolutions: tuple[int, ...] = ()  # the mid-block attention is always there
    resolution: int = 256
    in_channels: int = 3  # the transmitted-light slice, replicated 3 times
    out_ch: int = 3  # the organelle, replicated 3 times; inference averages the 3 outputs
    z_channels: int = 3
    double_z: bool = False
    dropout: float = 0.0
    norm_groups: int = 32
    # quantizer
    n_embed: int = 8192
    embed_dim: int = 3
    beta: float = 0.25
    legacy_beta: bool = True  # taming VectorQuantizer2's default, not overridden by the reference
    # loss (VQLPIPSWithDiscriminator, lmc.md §3.1)
    pixel_loss: str = "l1"
    pixel_weight: float = 1.0
    codebook_weight: float = 1.0
    perceptual_weight: float = 0.0  # LPIPS off (the reference used 1.0 with LPIPS-VGG; see the module docstring)
    disc_loss: str = "hinge"
    disc_weight: float = 0.75  # per organelle: DISC_WEIGHT
    disc_start: int = 0  # the step from which the discriminator trains and its loss counts
    disc_factor: float = 1.0
    disc_num_layers: int = 3
    disc_ndf: int = 64
    disc_in_channels: int = 3
    disc_conditional: bool = False
    # optimiser (Adam for the autoencoder and for the discriminator, no scheduler, no EMA)
    adam_betas: tuple[float, float] = (0.5, 0.9)
    base_learning_rate: float = 4e-6  # per organelle: BASE_LEARNING_RATE
    scale_lr: bool = True  # main.py --scale_lr: lr = accumulate_grad_batches x n_gpus x batch_size x base
    accumulate_grad_batches: int = 2
    n_gpus: int = 1
    batch_size: int = 16
    max_epochs: int = 200  # per organelle: MAX_EPOCHS
    limit_train_batches: int = 4500
    # data (ldm/data/bf3.py, lmc.md §3.2)
    percentile_low: float = 2.0
    percentile_high: float = 99.8
    crop_scale: tuple[float, float] = (0.70, 0.95)  # RandomResizedCrop area fraction
    crop_p: float = 0.5
    size: int = 256  # the whole field of view resized to size x size
    val_fraction: float = 0.05  # stratified by study
    published: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        allowed = ADIPOCYTE_CHANNELS if self.task == "adipocyte" else ORGANELLES
        if self.organelle not in allowed:
            raise ValueError(f"{self.name}: organelle must be one of {allowed}, not {self.organelle!r}")
        if self.size != self.resolution:
            raise ValueError(f"{self.name}: size {self.size} != resolution {self.resolution}")
        f = 2 ** (len(self.ch_mult) - 1)
        if self.resolution % f:
            raise ValueError(f"{self.name}: resolution {self.resolution} is not a multiple of {f}")
        if not 0 < self.crop_scale[0] <= self.crop_scale[1] <= 1:
            raise ValueError(f"{self.name}: bad crop_scale {self.crop_scale}")

    @property
    def downsampling(self) -> int:
        """Spatial factor between image and latent (4 for the paper)."""
        return 2 ** (len(self.ch_mult) - 1)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """``(embed_dim, h, w)`` of the quantised latent of a ``resolution``-square image."""
        r = self.resolution // self.downsampling
        return self.embed_dim, r, r

    @property
    def learning_rate(self) -> float:
        """The effective Adam learning rate: ``accumulate_grad_batches x n_gpus x batch_size x base`` with
        ``scale_lr`` (the reference's default), else ``base_learning_rate``."""
        if not self.scale_lr:
            return self.base_learning_rate
        return self.accumulate_grad_batches * self.n_gpus * self.batch_size * self.base_learning_rate

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("published")
        d = {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}
        d["learning_rate"] = self.learning_rate
        return d


# seed paper §2.3; winner's README as quoted in lmc.md §3.1
_PUBLISHED = {
    "source": "seed paper §2.3 (total); lmc_GenCellPaint README via lmc.md §3.1 (encoder, decoder, quantizer)",
    "total": 58_100_000, "encoder": 22_300_000, "decoder": 33_000_000, "quantizer": 24_600,
    "quant_conv": 12, "post_quant_conv": 12,
    "readme_total_with_lpips": 72_800_000, "readme_loss": 17_500_000, "readme_lpips_non_trainable": 14_700_000,
}

CONFIGS: dict[str, VQGANConfig] = {
    c.name: c for c in (
        VQGANConfig("paper", "Le & Lundberg's VQGAN specialist (LMC 2024 winner): one per organelle, "
                    "transmitted light -> organelle, 256 x 256, 64 x 64 x 3 latent, 8192 codes",
                    published=dict(_PUBLISHED)),
        VQGANConfig("tiny", "the paper's VQGAN scaled down to train on a CPU in minutes (tests, demos)",
                    ch=16, ch_mult=(1, 2, 2), num_res_blocks=1, norm_groups=8, resolution=64, size=64,
                    n_embed=256, disc_num_layers=2, disc_ndf=16, batch_size=4, accumulate_grad_batches=1,
                    base_learning_rate=1e-4, max_epochs=1, limit_train_batches=2000),
    )
}
_PER_ORGANELLE = {"tiny": False, "paper": True}  # tiny keeps its own lr for every organelle


def config_names() -> list[str]:
    return list(CONFIGS)


def get_config(name: str, organelle: str = "nucleus") -> VQGANConfig:
    """The config ``name`` for one organelle's specialist (``paper``: that organelle's disc weight, base
    learning rate and epochs; ``tiny``: the organelle's disc weight, its own learning rate). An adipocyte channel
    (``nuclei``, ``lipids``, ``cytoplasm``) gives that channel's specialist with ``task="adipocyte"``."""
    try:
        base = CONFIGS[name]
    except KeyError:
        raise ValueError(f"unknown vqgan config {name!r}; choose from {', '.join(CONFIGS)}") from None
    if organelle in ADIPOCYTE_CHANNELS:
        disc, lr, epochs = ADIPOCYTE_DISC_WEIGHT, ADIPOCYTE_BASE_LEARNING_RATE, ADIPOCYTE_MAX_EPOCHS
        changes: dict = {"task": "adipocyte"}
    elif organelle in ORGANELLES:
        disc, lr, epochs, changes = DISC_WEIGHT, BASE_LEARNING_RATE, MAX_EPOCHS, {"task": "lmc"}
    else:
        raise ValueError(f"unknown organelle {organelle!r}; choose from {', '.join(ORGANELLES)} (lmc) or "
                         f"{', '.join(ADIPOCYTE_CHANNELS)} (adipocyte)")
    changes.update(organelle=organelle, disc_weight=disc[organelle])
    if _PER_ORGANELLE.get(name, True):
        changes.update(base_learning_rate=lr[organelle], max_epochs=epochs[organelle])
    return dataclasses.replace(base, **changes)


def build_networks(config: VQGANConfig | str, device: torch.device | str | None = None) -> dict[str, nn.Module]:
    """One specialist, freshly initialised: ``{"vqmodel": VQModel, "discriminator": NLayerDiscriminator}``, plus
    the VQModel's parts under ``encoder``, ``decoder``, ``quantizer`` (the codebook) and ``quant_convs``
    (``quant_conv`` and ``post_quant_conv``), for counting. ``device="meta"`` builds them without memory."""
    cfg = get_config(config) if isinstance(config, str) else config
    arch = dict(ch=cfg.ch, ch_mult=cfg.ch_mult, num_res_blocks=cfg.num_res_blocks,
                attn_resolutions=cfg.attn_resolutions, dropout=cfg.dropout, resolution=cfg.resolution,
                z_channels=cfg.z_channels, norm_groups=cfg.norm_groups)
    with torch.device(device) if device is not None else nullcontext():
        encoder = Encoder(in_channels=cfg.in_channels, double_z=cfg.double_z, **arch)
        decoder = Decoder(out_ch=cfg.out_ch, **arch)
        quantizer = VectorQuantizer(cfg.n_embed, cfg.embed_dim, cfg.beta, legacy=cfg.legacy_beta)
        model = VQModel(encoder, decoder, quantizer, cfg.z_channels)
        discriminator = NLayerDiscriminator(cfg.disc_in_channels, cfg.disc_ndf, cfg.disc_num_layers)
    return {
        "vqmodel": model, "discriminator": discriminator, "encoder": encoder, "decoder": decoder,
        "quantizer": quantizer, "quant_convs": nn.ModuleList([model.quant_conv, model.post_quant_conv]),
    }


def model_card(config_name: str, organelle: str = "nucleus") -> dict:
    """Parameter counts (from modules built on the meta device), inputs, outputs and config of ONE specialist.

    ``networks``: ``encoder``, ``decoder``, ``quantizer`` (codebook + quant_conv + post_quant_conv; the
    split under ``quantizer_parts``) and ``discriminator``; ``total``: their sum, every trainable parameter of
    one specialist (the seed's "58.1 million"); ``published``: the published numbers (``paper`` only)."""
    cfg = get_config(config_name, organelle)
    nets = build_networks(cfg, device="meta")
    codebook, quant_convs = count_parameters(nets["quantizer"]), count_parameters(nets["quant_convs"])
    counts = {
        "encoder": count_parameters(nets["encoder"]),
        "decoder": count_parameters(nets["decoder"]),
        "quantizer": codebook + quant_convs,
        "discriminator": count_parameters(nets["discriminator"]),
    }
    assert count_parameters(nets["vqmodel"]) == counts["encoder"] + counts["decoder"] + counts["quantizer"]
    c, h, w = cfg.latent_shape
    d_h, d_w = nets["discriminator"].output_size(cfg.resolution, cfg.resolution)
    card = {
        "model": "vqgan",
        "config_name": cfg.name,
        "organelle": cfg.organelle,
        "description": cfg.description,
        "networks": counts,
        "quantizer_parts": {"codebook": codebook, "quant_convs": quant_convs},
        "autoencoder_total": count_parameters(nets["vqmodel"]),
        "total": sum(counts.values()),
        "inputs": {
            "transmitted_light": f"B x {cfg.in_channels} x {cfg.resolution} x {cfg.resolution} float in [-1, 1]: one "
                                 f"TL slice (BF, PC or DIC), percentile {cfg.percentile_low:g} / "
                                 f"{cfg.percentile_high:g} rescaled (clipped), the whole field of view resized to "
                                 f"{cfg.size} x {cfg.size}, replicated to {cfg.in_channels} channels",
        },
        "outputs": {
            "organelle": f"B x {cfg.out_ch} x {cfg.resolution} x {cfg.resolution} float (targets in [-1, 1]; "
                         f"inference clips, averages the {cfg.out_ch} channels and resizes back): {cfg.organelle}",
            "latent": f"B x {c} x {h} x {w} quantised codes, indices B x {h} x {w} in [0, {cfg.n_embed})",
            "discriminator": f"B x 1 x {d_h} x {d_w} PatchGAN logits (hinge loss), unconditional",
        },
        "config": cfg.to_dict(),
    }
    if cfg.published:
        card["published"] = dict(cfg.published)
    return card
