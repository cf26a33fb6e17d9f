"""The Soft Matter Lab (GU) Patch-GAN networks, in PyTorch, exact to the published parameter counts.

A reimplementation, from the description in ``shared/reference/adipocyte.md`` §3.1-3.3 and §3.7, of
the Keras / DeepTrack 2.0 networks submitted to the Adipocyte Cell Imaging Challenge (tensorflow-addons
``InstanceNormalization``). Tensors are ``B x C x H x W`` (Keras is channels-last; nothing else changes).

Generator (:class:`PatchGANGenerator`, ``breadth`` 32, ``depth`` 5 in the paper):

* input ``tanh((x - mean) / std)`` with ONE scalar mean and (population) std over the whole batch tensor,
  all channels and all images together (:class:`ScalarTanhNorm`; Keras ``K.mean(x)``, ``K.std(x)``);
* encoder levels ``breadth * 2**n`` for ``n < depth - 1`` (32, 64, 128, 256): 2 x [3x3 conv 'same' with
  bias -> InstanceNorm (learnable gamma, beta) -> LeakyReLU(0.2)], the skip is kept, then a stride-2
  3x3 conv with the level's own width -> InstanceNorm (learnable) -> LeakyReLU;
* bottleneck: one residual block of ``breadth * 2**(depth-1)`` (512): conv3x3 -> IN -> LReLU -> conv3x3
  -> IN, plus a 1x1 conv (with bias) projection of the block input, add, LReLU;
* decoder per level (256, 128, 64, 32): bilinear x2 upsampling (half-pixel centres, as Keras
  ``UpSampling2D(interpolation='bilinear')``; no conv), concat ``[upsampled, skip]`` (DeepTrack's
  order), 2 conv blocks;
* output conv blocks (``breadth``, ``breadth // 2``) = (32, 16), a linear 1x1 conv with bias to the output
  channels, then :class:`ScaleLayer` ``clip(y * A * 1750 + B * 750, 0, 10000)`` with trainable
  per-channel A and B initialised to 1 (the "denormalisation" to raw 16-bit intensities).
* Conv kernels ~ Normal(0, 0.02), biases 0; InstanceNorm gamma 1, beta 0, epsilon 1e-3 (tfa default).

Discriminator (:class:`PatchGANDiscriminator`): inputs ``[fluorescence, brightfield]`` concatenated in
that order, the same scalar tanh normalisation, then for c in (16, 32, 64, 128, 256): 4x4 conv stride 1 ->
InstanceNorm with learnable gamma/beta -> LReLU(0.2), 4x4 conv stride 2 -> InstanceNorm without affine
-> LReLU; then a 4x4 conv to 1 channel, no activation: an ``ceil(H/32) x ceil(W/32)`` patch map. All convs
have a bias. The stride-1 blocks all have an affine InstanceNorm, the first (16) included: the submitted
code meant "none for 16, plain for the rest" but a trailing comma made the lambda return a (truthy)
tuple, which DeepTrack turns into a default, affine, ``InstanceNormalization()``; see below for the
count that pins this. Kernels: Keras' default glorot-uniform (the discriminator gets no initializer).

Keras ``padding='same'`` pads ``max((ceil(n/s) - 1) * s + k - n, 0)`` in total, the smaller half
before and the larger after: asymmetric (more at the bottom / right) for even kernels, and for a
stride-2 3x3 conv on an even size (0 before, 1 after). :class:`SameConv2d` reproduces it with ``F.pad``.

Which variant the published counts pin down (computed analytically, then asserted on the modules in
``tests/test_patchgan_networks.py``). Published: generator 7 -> 3 **8,784,073**; stage-2 generator 10 ->
1 **8,784,899**; discriminator **2,101,697**; generator + discriminator **10,885,770**; the 20x
composite (Model 1 + 2A + 2C) **26,353,871** = 8,784,073 + 2 x 8,784,899.

* Downsampling conv with the level's width *and* an affine InstanceNorm: without the IN the generator
  has 2 x (32 + 64 + 128 + 256) = 960 fewer (8,783,113); doubling the width (the usual U-Net choice)
  gives 11,266,665.
* 1x1 output conv *with* bias and a 2 x C-parameter ScaleLayer: the two equations (7 -> 3 and 10 -> 1)
  leave one solution among {bias, no bias} x {A and B, A only, none}. E.g. "bias + A only" also gives
  8,784,073 for 3 outputs (3 + 3) but 8,784,898 for the 1-output stage-2 model (1 + 1 instead of 1 + 2).
* 1x1 residual projection with bias (without: 512 fewer).
* Discriminator: affine IN on all five stride-1 blocks (without it on the first: 2,101,665, 32 fewer),
  no affine on the stride-2 ones, every conv with a bias (without: 2,100,705).

The report's 20x *total* (Table 2: 32,659,016) is not reproduced by any variant consistent with the
numbers above: it would need two stage-2 discriminators of 2,101,724 parameters, 27 more than Model 1's,
while every input channel changes a discriminator by 16 x 4 x 4 = 256. With the stage-2 discriminators
seeing one fluorescence channel plus the 7 brightfield planes (§3.1) they have 2,101,185 each, and the
20x networks 32,657,938 in all (see :func:`vsbench.algorithms.patchgan.config.model_card`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from vsbench.harness.adipocyte_split import CHANNELS

__all__ = [
    "CHANNELS", "LEAKY_SLOPE", "IN_EPS", "ScalarTanhNorm", "SameConv2d", "ConvBlock", "ResidualBlock",
    "ScaleLayer", "PatchGANGenerator", "PatchGANDiscriminator", "CompositeGenerator", "count_parameters",
    "same_padding", "PAD_MULTIPLE", "pad_to_multiple",
]

LEAKY_SLOPE = 0.2
IN_EPS = 1e-3  # tensorflow-addons InstanceNormalization (GroupNormalization) default epsilon
GEN_INIT_STD = 0.02
PAD_MULTIPLE = 32  # whole images are padded to multiples of 32 at validation and inference (§3.5)


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding of TensorFlow's 'same' for one axis: ``ceil(size/stride)`` outputs."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow / Keras ``padding='same'``: zero padding, the extra pixel of an odd
    total after (bottom / right), so the output is ``ceil(H/stride) x ceil(W/stride)``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        top, bottom = same_padding(x.shape[-2], kh, sh)
        left, right = same_padding(x.shape[-1], kw, sw)
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom))
        return F.conv2d(x, self.weight, self.bias, self.stride)


class ScalarTanhNorm(nn.Module):
    """``tanh((x - mean(x)) / std(x))`` with one scalar mean and population std over the whole tensor:
    every image and channel of the batch (Keras ``K.mean``, ``K.std``). So a sample's output depends on
    the rest of its batch, as in the original. The std is floored at the smallest normal float so a
    constant input gives 0 instead of NaN (Keras would give NaN); nothing else changes."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        mean = xf.mean()
        std = xf.std(correction=0).clamp_min(torch.finfo(torch.float32).tiny)
        return torch.tanh((xf - mean) / std).to(x.dtype if x.is_floating_point() else torch.float32)


class ConvBlock(nn.Sequential):
    """'same' conv (with bias) -> InstanceNorm -> LeakyReLU(0.2) (DeepTrack ``ConvolutionalBlock``).

    ``norm``: ``"affine"`` (tfa default: learnable per-channel gamma and beta), ``"plain"`` (tfa
    ``center=False, scale=False``: no parameters) or ``None`` (no normalisation)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 norm: str | None = "affine"):
        layers: list[nn.Module] = [SameConv2d(in_channels, out_channels, kernel_size, stride)]
        if norm is not None:
            if norm not in ("affine", "plain"):
                raise ValueError(f"norm must be 'affine', 'plain' or None, not {norm!r}")
            layers.append(nn.InstanceNorm2d(out_channels, eps=IN_EPS, affine=norm == "affine"))
        layers.append(nn.LeakyReLU(LEAKY_SLOPE))
        super().__init__(*layers)


class ResidualBlock(nn.Module):
    """conv3x3 -> IN -> LReLU -> conv3x3 -> IN, plus a 1x1 conv (with bias) of the input; add; LReLU."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.body = nn.Sequential(
            ConvBlock(in_channels, out_channels, 3),
            SameConv2d(out_channels, out_channels, 3),
            nn.InstanceNorm2d(out_channels, eps=IN_EPS, affine=True),
        )
        self.projection = SameConv2d(in_channels, out_channels, 1)
        self.act = nn.LeakyReLU(LEAKY_SLOPE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.projection(x))


class ScaleLayer(nn.Module):
    """``clip(y * A * a_scale + B * b_scale, low, high)`` with trainable per-channel A and B, both
    initialised to 1: maps the linear output to raw 16-bit intensities ([0, 10000])."""

    def __init__(self, channels: int, a_scale: float = 1750.0, b_scale: float = 750.0, low: float = 0.0,
                 high: float = 10000.0):
        super().__init__()
        self.a = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.b = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.a_scale, self.b_scale, self.low, self.high = a_scale, b_scale, low, high

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return torch.clamp(y * self.a * self.a_scale + self.b * self.b_scale, self.low, self.high)

    def extra_repr(self) -> str:
        return f"channels={self.a.shape[1]}, a_scale={self.a_scale}, b_scale={self.b_scale}, " \
               f"clip=[{self.low}, {self.high}]"


def _init_generator(module: nn.Module, std: float) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _init_discriminator(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.xavier_uniform_(m.weight)  # Keras glorot_uniform: same fan_in / fan_out for convs
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class PatchGANGenerator(nn.Module):
    """The U-Net generator: raw brightfield ``B x in_channels x H x W`` -> raw fluorescence
    ``B x out_channels x H x W`` in [0, 10000]. H and W must be multiples of ``size_multiple``
    (``2 ** (depth - 1)``; the original pads whole images to multiples of 32)."""

    def __init__(self, in_channels: int = 7, out_channels: int = 3, breadth: int = 32, depth: int = 5,
                 output_widths: Sequence[int] | None = None, init_std: float = GEN_INIT_STD):
        super().__init__()
        if depth < 2 or breadth < 2:
            raise ValueError(f"need depth >= 2 and breadth >= 2, got depth {depth}, breadth {breadth}")
        self.in_channels, self.out_channels, self.breadth, self.depth = in_channels, out_channels, breadth, depth
        widths = [breadth * 2**n for n in range(depth - 1)]
        out_widths = list(output_widths) if output_widths is not None else [breadth, breadth // 2]
        self.norm = ScalarTanhNorm()
        self.encoder = nn.ModuleList()
        self.down = nn.ModuleList()
        c = in_channels
        for w in widths:
            self.encoder.append(nn.Sequential(ConvBlock(c, w), ConvBlock(w, w)))
            self.down.append(ConvBlock(w, w, 3, stride=2))
            c = w
        self.bottleneck = ResidualBlock(c, breadth * 2 ** (depth - 1))
        c = breadth * 2 ** (depth - 1)
        self.decoder = nn.ModuleList()
        for w in reversed(widths):
            self.decoder.append(nn.Sequential(ConvBlock(c + w, w), ConvBlock(w, w)))
            c = w
        head: list[nn.Module] = []
        for w in out_widths:
            head.append(ConvBlock(c, w))
            c = w
        self.head = nn.Sequential(*head)
        self.output = SameConv2d(c, out_channels, 1)
        self.scale = ScaleLayer(out_channels)
        _init_generator(self, init_std)

    @property
    def size_multiple(self) -> int:
        return 2 ** (self.depth - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.size_multiple
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected B x {self.in_channels} x H x W, got {tuple(x.shape)}")
        if x.shape[-2] % m or x.shape[-1] % m:
            raise ValueError(f"height and width must be multiples of {m}, got {tuple(x.shape[-2:])} (pad first)")
        y = self.norm(x)
        skips = []
        for enc, down in zip(self.encoder, self.down, strict=True):
            y = enc(y)
            skips.append(y)
            y = down(y)
        y = self.bottleneck(y)
        for dec, skip in zip(self.decoder, reversed(skips), strict=True):
            y = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)
            y = dec(torch.cat([y, skip], dim=1))
        return self.scale(self.output(self.head(y)))


class PatchGANDiscriminator(nn.Module):
    """Conditional PatchGAN: ``(target B x target_channels x H x W, condition B x condition_channels x
    H x W)`` -> ``B x 1 x ceil(H/2**n) x ceil(W/2**n)`` scores, n = ``len(widths)`` (5: n/32)."""

    def __init__(self, target_channels: int = 3, condition_channels: int = 7,
                 widths: Sequence[int] = (16, 32, 64, 128, 256)):
        super().__init__()
        self.target_channels, self.condition_channels = target_channels, condition_channels
        self.widths = tuple(widths)
        self.norm = ScalarTanhNorm()
        blocks: list[nn.Module] = []
        c = target_channels + condition_channels
        for w in self.widths:
            blocks.append(ConvBlock(c, w, 4, stride=1, norm="affine"))  # affine on all: the trailing-comma quirk
            blocks.append(ConvBlock(w, w, 4, stride=2, norm="plain"))
            c = w
        self.features = nn.Sequential(*blocks)
        self.output = SameConv2d(c, 1, 4)
        _init_discriminator(self)

    @property
    def downsampling(self) -> int:
        return 2 ** len(self.widths)

    def forward(self, target: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        if target.shape[1] != self.target_channels or condition.shape[1] != self.condition_channels:
            raise ValueError(f"expected {self.target_channels} target and {self.condition_channels} condition "
                             f"channels, got {target.shape[1]} and {condition.shape[1]}")
        x = self.norm(torch.cat([target, condition], dim=1))
        return self.output(self.features(x))

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        f = self.downsampling
        return math.ceil(height / f), math.ceil(width / f)


class CompositeGenerator(nn.Module):
    """Model 1 plus optional stage-2 refiners (Models 2A/2B/2C), as composed at inference.

    ``stage2`` maps a channel name of :data:`CHANNELS` to a generator of ``in + len(CHANNELS)`` inputs and
    1 output. Each one gets ``concat([input, stage1(input)])``; channels without one keep Model 1's output.
    The output is in :data:`CHANNELS` order (nuclei, lipids, cytoplasm)."""

    def __init__(self, stage1: nn.Module, stage2: Mapping[str, nn.Module] | None = None,
                 channels: Sequence[str] = CHANNELS):
        super().__init__()
        self.channels = tuple(channels)
        stage2 = dict(stage2 or {})
        unknown = sorted(set(stage2) - set(self.channels))
        if unknown:
            raise ValueError(f"stage-2 channel(s) {unknown} not in {list(self.channels)}")
        self.stage1 = stage1
        # registered in channel order, so the parameter order does not depend on the mapping's
        self.stage2 = nn.ModuleDict({c: stage2[c] for c in self.channels if c in stage2})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first = self.stage1(x)
        if not len(self.stage2):
            return first
        refined_input = torch.cat([x.to(first.dtype), first], dim=1)
        outs = [self.stage2[c](refined_input) if c in self.stage2 else first[:, i:i + 1]
                for i, c in enumerate(self.channels)]
        return torch.cat(outs, dim=1)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad ``B x C x H x W`` at the bottom and right to multiples of ``multiple`` (reflect where it can,
    else replicate)."""
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if not (ph or pw):
        return x
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters, as Keras' ``model.summary()`` counts them."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
