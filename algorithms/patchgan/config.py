"""Configurations of the two-stage Patch-GAN virtual stainer, and the model card of each.

``paper-20x``, ``paper-40x``, ``paper-60x``: the networks and hyper-parameters of the Soft Matter Lab (GU)
submission (``shared/reference/adipocyte.md`` §3.1-3.5; report Tables 2, 4, 5): generator breadth 32,
depth 5; discriminator widths 16..256; the second stage (Models 2A, 2C) only at 20x, for nuclei and
cytoplasm; MAE weight beta 0.001 / 0.004 / 0.001 (Table 4); Adam beta1 0.5. Learning rate: report
Table 5 says 0.002, the submitted code uses ``Adam(lr=0.0002, beta_1=0.5)``; we follow the code (2e-4),
and ``lr`` is a config value. Training crops: 724 x 724 (512 * sqrt(2)) before augmentation (rotation,
shear, elastic), centre crop to 512 x 512; batches of 8.

``tiny``: the same architecture, small (breadth 8, depth 3, discriminator 8/16/32, crops of 128, batches of
2, no second stage), to run on a CPU in tests and demos. Its MAE weight (0.2) and learning rate (5e-4) are
tuned for a short CPU run: on a synthetic 20x split (8 training sets of 512², 2,500 updates, ~4 min on 2
cores) beta 0.001 / lr 2e-4 loses to the ridge baseline on held-out pixel MAE, 0.05 / 5e-4 gives 1.097 and
0.2 / 5e-4 1.055 (ridge 1.138, train median 1.314).

What "total" counts (:func:`model_card`): every network the configuration trains, i.e. all generators
(Model 1 and each stage-2 model) and all discriminators (Model 1's, 3 fluorescence + 7 brightfield
inputs, and one per stage-2 model, 1 fluorescence + 7 brightfield inputs, §3.1). This is report Table 2's
definition: 40x/60x 10,885,770 = generator + discriminator. At 20x it gives 32,657,938 where the report
prints 32,659,016 (no consistent variant gives that; see :mod:`vsbench.algorithms.patchgan.networks`);
the card keeps the published numbers next to ours under ``"published"``.
"""

from __future__ import annotations

import dataclasses
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch
from torch import nn

from vsbench.algorithms.base import ORGANELLES
from vsbench.algorithms.patchgan.networks import (
    CHANNELS,
    CompositeGenerator,
    PatchGANDiscriminator,
    PatchGANGenerator,
    count_parameters,
)

__all__ = [
    "PatchGANConfig", "CONFIGS", "config_names", "get_config", "build_networks", "build_stage2_networks",
    "composite_generator", "model_card",
]


@dataclass(frozen=True)
class PatchGANConfig:
    name: str
    description: str
    magnification: str | None = None  # 20x, 40x, 60x; None for configs not tied to one
    # networks
    in_channels: int = 7  # brightfield planes Z01..Z07
    channels: tuple[str, ...] = CHANNELS  # Model 1 outputs, in this order
    breadth: int = 32
    depth: int = 5
    output_widths: tuple[int, ...] | None = None  # None: (breadth, breadth // 2)
    discriminator_widths: tuple[int, ...] = (16, 32, 64, 128, 256)
    stage2: tuple[str, ...] = ()  # channels refined by a second-stage model (20x: nuclei, cytoplasm)
    stage2_discriminator_condition: int = 7  # stage-2 discriminators see 1 fluorescence + the 7 brightfield planes
    # loss and optimiser
    mae_weight: float = 0.001  # beta: G loss = (1 - beta) * LSGAN + beta * MAE (raw intensities)
    lr: float = 2e-4  # the submitted code; report Table 5 says 0.002
    adam_betas: tuple[float, float] = (0.5, 0.999)  # beta_1 0.5 (code and Table 5), beta_2 the Keras default
    # data
    crop: int = 512  # training crop after augmentation
    crop_before_augmentation: int = 724  # int(512 * sqrt(2)): rotations leave no empty corners
    augmentation: str = "paper"  # "paper": flip, rotation, scale, shear, elastic (§3.5); "flips": flips, k·90°
    crop_reuse: int = 16  # updates per loaded crop (the notebooks' updates_per_reload)
    batch_size: int = 8
    # task: "adipocyte" (targets in raw 16-bit intensities) or "lmc" (targets percentile-normalised, then
    # multiplied by target_scale, so the ScaleLayer's clip(y * A * 1750 + B * 750, 0, 10000) covers them)
    task: str = "adipocyte"
    target_scale: float | None = None
    published: dict = field(default_factory=dict, compare=False)  # report Table 2, for comparison

    def __post_init__(self):
        if self.augmentation not in AUGMENTATIONS:
            raise ValueError(f"{self.name}: augmentation must be one of {AUGMENTATIONS}, not {self.augmentation!r}")
        if self.crop_before_augmentation < self.crop:
            raise ValueError(f"{self.name}: crop_before_augmentation {self.crop_before_augmentation} < crop "
                             f"{self.crop}")
        unknown = sorted(set(self.stage2) - set(self.channels))
        if unknown:
            raise ValueError(f"{self.name}: stage-2 channel(s) {unknown} not in {list(self.channels)}")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("published")
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


AUGMENTATIONS = ("paper", "flips")
# LMC targets are percentile-normalised to about [0, 1] (their scale differs from image to image); times 4000
# they sit well inside the ScaleLayer's [0, 10000], as the adipocyte intensities do.
LMC_TARGET_SCALE = 4000.0
_TABLE2_SINGLE = {"total": 10_885_770, "generator": 8_784_073}

CONFIGS: dict[str, PatchGANConfig] = {
    c.name: c for c in (
        PatchGANConfig(
            "paper-20x", "Soft Matter Lab (GU) 20x: Model 1 plus stage-2 refiners for nuclei (2A) and cytoplasm (2C)",
            magnification="20x", stage2=("nuclei", "cytoplasm"), mae_weight=0.001,
            published={"total": 32_659_016, "generator": 26_353_871},
        ),
        PatchGANConfig("paper-40x", "Soft Matter Lab (GU) 40x: Model 1 only", magnification="40x",
                       mae_weight=0.004, published=dict(_TABLE2_SINGLE)),
        PatchGANConfig("paper-60x", "Soft Matter Lab (GU) 60x: Model 1 only", magnification="60x",
                       mae_weight=0.001, published=dict(_TABLE2_SINGLE)),
        PatchGANConfig("tiny", "the paper architecture scaled down to run on a CPU (tests, demos); no stage 2",
                       breadth=8, depth=3, discriminator_widths=(8, 16, 32), crop=128, crop_before_augmentation=182,
                       augmentation="flips", crop_reuse=4, batch_size=2, mae_weight=0.2, lr=5e-4),
        PatchGANConfig("paper-lmc", "the paper-40x/60x Model 1 on Light My Cells: one transmitted-light slice -> "
                       "nucleus, mitochondria, tubulin, actin (not published; our configuration)",
                       in_channels=1, channels=ORGANELLES, task="lmc", target_scale=LMC_TARGET_SCALE),
        PatchGANConfig("lmc-tiny", "the tiny configuration on Light My Cells (tests, demos)",
                       in_channels=1, channels=ORGANELLES, task="lmc", target_scale=LMC_TARGET_SCALE,
                       breadth=8, depth=3, discriminator_widths=(8, 16, 32), crop=128, crop_before_augmentation=182,
                       crop_reuse=4, batch_size=2, mae_weight=0.2, lr=5e-4),
    )
}


def config_names() -> list[str]:
    return list(CONFIGS)


def get_config(name: str) -> PatchGANConfig:
    try:
        return CONFIGS[name]
    except KeyError:
        raise ValueError(f"unknown patchgan config {name!r}; choose from {', '.join(CONFIGS)}") from None


def build_networks(config: PatchGANConfig | str, device: torch.device | str | None = None) -> dict[str, nn.Module]:
    """Every network of a config, freshly initialised: ``generator`` and ``discriminator`` (Model 1), and per
    stage-2 channel c ``stage2_<c>`` (generator, ``in + 3`` -> 1) and ``stage2_<c>_discriminator``.
    ``device="meta"`` builds them without memory (for counting)."""
    cfg = get_config(config) if isinstance(config, str) else config
    n_out = len(cfg.channels)
    with torch.device(device) if device is not None else nullcontext():
        nets: dict[str, nn.Module] = {
            "generator": PatchGANGenerator(cfg.in_channels, n_out, cfg.breadth, cfg.depth, cfg.output_widths),
            "discriminator": PatchGANDiscriminator(n_out, cfg.in_channels, cfg.discriminator_widths),
        }
        for c in cfg.channels:  # channel order
            if c in cfg.stage2:
                nets[f"stage2_{c}"], nets[f"stage2_{c}_discriminator"] = build_stage2_networks(cfg)
    return nets


def build_stage2_networks(cfg: PatchGANConfig) -> tuple[PatchGANGenerator, PatchGANDiscriminator]:
    """A second-stage model (generator ``in + out`` -> 1) and its discriminator (1 fluorescence channel +
    ``stage2_discriminator_condition`` brightfield planes), on the current default device."""
    generator = PatchGANGenerator(cfg.in_channels + len(cfg.channels), 1, cfg.breadth, cfg.depth, cfg.output_widths)
    return generator, PatchGANDiscriminator(1, cfg.stage2_discriminator_condition, cfg.discriminator_widths)


def composite_generator(nets: dict[str, nn.Module], channels=CHANNELS) -> CompositeGenerator:
    """The inference model of :func:`build_networks`' output: Model 1 plus its stage-2 models."""
    stage2 = {c: nets[f"stage2_{c}"] for c in channels if f"stage2_{c}" in nets}
    return CompositeGenerator(nets["generator"], stage2, channels)


_INPUTS = {
    "adipocyte": "the raw 16-bit brightfield planes Z01..Z07",
    "lmc": "one raw transmitted-light slice (BF, PC or DIC; any z)",
}


def model_card(config_name: str) -> dict:
    """Parameter counts (from instantiated modules, on the meta device), inputs, outputs and config.

    ``networks``: each network's trainable parameters; ``generator_total``: the inference model (Model 1
    plus stage-2 models; report Table 2 "generator parameters"); ``total``: all generators and all
    discriminators of the config (Table 2 "total parameters"); ``published``: Table 2's numbers."""
    cfg = get_config(config_name)
    nets = build_networks(cfg, device="meta")
    counts = {name: count_parameters(net) for name, net in nets.items()}
    gen_total = count_parameters(composite_generator(nets, cfg.channels))
    m = 2 ** (cfg.depth - 1)
    d = 2 ** len(cfg.discriminator_widths)
    card = {
        "model": "patchgan",
        "config_name": cfg.name,
        "description": cfg.description,
        "networks": counts,
        "generator_total": gen_total,
        "total": sum(counts.values()),
        "inputs": {
            "brightfield" if cfg.task == "adipocyte" else "transmitted_light":
                f"B x {cfg.in_channels} x H x W float: {_INPUTS[cfg.task]}, normalised inside the network by "
                f"tanh((x - mean) / std), one scalar mean and std over the whole batch tensor; H and W multiples "
                f"of {m}",
        },
        "outputs": {
            "fluorescence": f"B x {len(cfg.channels)} x H x W float in [0, 10000], " + (
                "raw intensity scale" if cfg.target_scale is None else
                f"percentile-normalised intensity x {cfg.target_scale:g}"),
            "channels": list(cfg.channels),
            "stage2": list(cfg.stage2),
            "discriminator": f"B x 1 x ceil(H/{d}) x ceil(W/{d}) least-squares patch scores "
                             f"(inputs: fluorescence, then brightfield)",
        },
        "config": cfg.to_dict(),
    }
    if cfg.published:
        card["published"] = {"source": "Soft Matter Lab report, Table 2", **cfg.published}
    return card
