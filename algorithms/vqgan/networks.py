"""The Light My Cells 2024 winner's VQGAN specialist networks, in PyTorch, exact to the published parameter counts.

A reimplementation, from the facts in ``shared/reference/lmc.md`` §3.1 and the seed paper (Le & Lundberg,
"High-Resolution In Silico Painting with Generative Models", §2.3), of one organelle model of
``trangle1302/lmc_GenCellPaint``: a *paired* VQGAN (transmitted light in, one organelle out, both replicated
to 3 channels) of the taming-transformers / latent-diffusion autoencoder family. No code was copied. Tensors
are ``B x C x H x W``.

Encoder (:class:`Encoder`; ``ch`` 128, ``ch_mult`` (1, 2, 4), 2 residual blocks per level, lmc.md §3.1):

* ``conv_in`` 3x3, ``in_channels`` -> ``ch``;
* per level ``l`` (width ``ch * ch_mult[l]``: 128, 256, 512): ``num_res_blocks`` :class:`ResnetBlock`,
  a self-attention block after each one only at resolutions in ``attn_resolutions`` (none in the paper),
  then, except at the last level, a :class:`Downsample`: zero-pad right and bottom by one, 3x3 conv stride 2
  (a conv with bias, not average pooling: ``resamp_with_conv``);
* mid: ResnetBlock, :class:`AttnBlock` (single-head self-attention over all ``h * w`` positions; 1x1
  q / k / v / proj_out convs with bias; residual), ResnetBlock, whatever ``attn_resolutions`` says;
* GroupNorm, swish, ``conv_out`` 3x3 to ``z_channels`` (``double_z`` False: not ``2 * z_channels``).

:class:`ResnetBlock`: GroupNorm -> swish -> conv3x3 -> GroupNorm -> swish -> dropout -> conv3x3, plus the input,
through a 1x1 conv ("nin shortcut", with bias) when the width changes. Every GroupNorm: 32 groups, eps 1e-6,
affine. Swish: ``x * sigmoid(x)``. All convs have a bias. No time embedding.

Decoder (:class:`Decoder`): ``conv_in`` 3x3, ``z_channels`` -> ``ch * ch_mult[-1]`` (512); the same mid block;
per level from the last to the first: ``num_res_blocks + 1`` ResnetBlocks (one more than the encoder), then,
except at level 0, an :class:`Upsample` (nearest x2, then a 3x3 conv); GroupNorm, swish, ``conv_out`` 3x3 to
``out_ch``. No tanh at the output (the targets are in [-1, 1]; inference clips, lmc.md §3.3).

:class:`VectorQuantizer` (taming's ``VectorQuantizer2(8192, 3, beta=0.25)``, lmc.md §3.1): an ``n_embed x
embed_dim`` codebook (initialised U(-1/n, 1/n)), nearest code by squared Euclidean distance, straight-through
``z_q = z + sg[z_q - z]``, the loss below, and the code indices. ``quant_conv`` / ``post_quant_conv``: 1x1
convs ``z_channels`` -> ``embed_dim`` -> ``z_channels`` with bias (3 x 3 + 3 = 12 parameters each).

The codebook loss. The seed paper writes ``||sg[z] - z'||² + ||z - sg[z']||²`` (no beta). The reference builds
``VectorQuantizer2(n_embed, embed_dim, beta=0.25)`` without a ``legacy`` argument, and taming's class default is
``legacy=True``: ``mean((sg[z_q] - z_e)²) + beta * mean((z_q - sg[z_e])²)``, i.e. beta weights the *codebook*
term and the commitment term has weight 1 (the reverse of VQ-VAE's ``||sg[z_e] - e||² + beta ||z_e - sg[e]||²``,
which ``legacy=False`` gives). :class:`VectorQuantizer` has both; ``legacy=True`` is the reference's, and the
paper config's. Both are means over all elements (``B * h * w * embed_dim``), not sums.

:class:`NLayerDiscriminator` (taming's PatchGAN of pix2pix, ``input_nc`` 3, ``ndf`` 64, ``n_layers`` 3,
BatchNorm, lmc.md §3.1): 4x4 conv stride 2 (bias) -> LReLU(0.2); for n = 1, 2: 4x4 conv stride 2 to
``ndf * min(2**n, 8)`` *without bias* -> BatchNorm -> LReLU; 4x4 conv stride 1 to ``ndf * min(2**3, 8)`` (512)
without bias -> BatchNorm -> LReLU; 4x4 conv stride 1 to 1 (bias). All paddings 1: a 256x256 input gives 30x30
logits (``H / 8 - 2``).

Initialisation, as the reference family does it: encoder, decoder and quant convs keep PyTorch's default
(kaiming-uniform) init; the codebook is U(-1/n_embed, 1/n_embed); the discriminator's conv weights are N(0, 0.02),
its BatchNorm weights N(1, 0.02) and biases 0 (conv biases keep PyTorch's default).

Which variant the published counts pin down. Published: encoder 22.3M and decoder 33.0M (winner's README,
lmc.md §3.1), "58.1 million trainable parameters" per model (seed paper §2.3), the quantizer 24.6K (= 8192 x 3),
quant convs 12 each (lmc.md). Ours (asserted on the modules in ``tests/test_vqgan_networks.py``): encoder
**22,337,411**, decoder **32,960,771**, codebook 24,576, quant convs 24, discriminator **2,765,633**, in all
**58,088,415**. The alternatives, each one change away from ours (computed on the modules):

* ``double_z`` True (conv_out to 2 x 3 channels): encoder +13,827 = 22,351,238 (still "22.3M", so the count
  alone does not decide it; the config's ``double_z: False`` does, and the 64x64x3 latent).
* a 3x3 conv shortcut instead of the 1x1 nin shortcut when the width changes: encoder +1,310,720
  (23,648,131; "23.6M"), decoder +1,310,720.
* no resampling convs (average pooling / plain nearest upsampling, ``resamp_with_conv`` False): encoder
  -737,664 (21,599,747), decoder -2,949,888 (30,010,883).
* no mid-block attention (``attn_resolutions: []`` taken to remove it too): -1,051,648 in each network
  (encoder 21,285,763, decoder 31,909,123); the LDM blocks keep it, lmc.md §3.1.
* decoder with ``num_res_blocks`` (2) rather than ``num_res_blocks + 1`` blocks per level: 26,762,243 ("26.8M").
* discriminator: conv biases where BatchNorm follows would add 128 + 256 + 512 = 896 (2,766,529); the
  pix2pix design drops them (``use_bias = False`` with BatchNorm), which gives the published total.

58,088,415 = 22,337,411 + 32,960,771 + 24,576 + 24 + 2,765,633 ("58.1 million"); the README's 72.8M total adds
the non-trainable LPIPS-VGG16 (14.7M), which this reimplementation does not use (perceptual weight 0).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "GN_EPS", "Swish", "normalize", "ResnetBlock", "AttnBlock", "Downsample", "Upsample", "Encoder", "Decoder",
    "VectorQuantizer", "codebook_usage", "VQModel", "NLayerDiscriminator", "count_parameters",
]

GN_EPS = 1e-6  # GroupNorm epsilon of the taming / LDM blocks
DISC_INIT_STD = 0.02  # pix2pix / taming ``weights_init``


class Swish(nn.Module):
    """``x * sigmoid(x)`` (the family's "nonlinearity")."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x)


def normalize(channels: int, groups: int = 32) -> nn.GroupNorm:
    """GroupNorm with ``groups`` groups (32 in the reference), eps 1e-6, affine."""
    if channels % groups:
        raise ValueError(f"GroupNorm: {channels} channels are not divisible into {groups} groups")
    return nn.GroupNorm(groups, channels, eps=GN_EPS, affine=True)


class ResnetBlock(nn.Module):
    """norm -> swish -> conv3x3 -> norm -> swish -> dropout -> conv3x3, plus the input (1x1 conv when the width
    changes, or a 3x3 conv with ``conv_shortcut``)."""

    def __init__(self, in_channels: int, out_channels: int | None = None, dropout: float = 0.0,
                 norm_groups: int = 32, conv_shortcut: bool = False):
        super().__init__()
        out_channels = in_channels if out_channels is None else out_channels
        self.in_channels, self.out_channels = in_channels, out_channels
        self.norm1 = normalize(in_channels, norm_groups)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = normalize(out_channels, norm_groups)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.act = Swish()
        self.shortcut: nn.Module
        if in_channels == out_channels:
            self.shortcut = nn.Identity()
        elif conv_shortcut:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        else:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1)  # the "nin shortcut"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(self.act(self.norm1(x)))
        h = self.conv2(self.dropout(self.act(self.norm2(h))))
        return self.shortcut(x) + h


class AttnBlock(nn.Module):
    """Single-head self-attention over all ``H * W`` positions (scale ``C**-0.5``), 1x1 q/k/v/output convs with
    bias, residual."""

    def __init__(self, channels: int, norm_groups: int = 32):
        super().__init__()
        self.norm = normalize(channels, norm_groups)
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        y = self.norm(x)
        q, k, v = (m(y).reshape(b, 1, c, h * w).transpose(-1, -2) for m in (self.q, self.k, self.v))
        out = F.scaled_dot_product_attention(q, k, v)  # softmax(q k^T / sqrt(c)) v, B x 1 x HW x C
        return x + self.proj_out(out.transpose(-1, -2).reshape(b, c, h, w))


class Downsample(nn.Module):
    """Halve H and W: zero-pad right and bottom by 1 and a 3x3 stride-2 conv (``with_conv``), else 2x2 average
    pooling."""

    def __init__(self, channels: int, with_conv: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2) if with_conv else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv is None:
            return F.avg_pool2d(x, 2)
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    """Double H and W: nearest-neighbour x2, then a 3x3 conv (``with_conv``)."""

    def __init__(self, channels: int, with_conv: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1) if with_conv else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return x if self.conv is None else self.conv(x)


def _mid_block(channels: int, dropout: float, norm_groups: int, attention: bool) -> nn.Sequential:
    layers: list[nn.Module] = [ResnetBlock(channels, channels, dropout, norm_groups)]
    if attention:
        layers.append(AttnBlock(channels, norm_groups))
    layers.append(ResnetBlock(channels, channels, dropout, norm_groups))
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    """``B x in_channels x R x R`` -> ``B x z_channels x R/f x R/f`` (``2 * z_channels`` with ``double_z``),
    ``f = 2 ** (len(ch_mult) - 1)``; the paper: 3 x 256 x 256 -> 3 x 64 x 64."""

    def __init__(self, *, ch: int = 128, ch_mult: Sequence[int] = (1, 2, 4), num_res_blocks: int = 2,
                 attn_resolutions: Sequence[int] = (), dropout: float = 0.0, in_channels: int = 3,
                 resolution: int = 256, z_channels: int = 3, double_z: bool = False, norm_groups: int = 32,
                 resamp_with_conv: bool = True, conv_shortcut: bool = False, mid_attention: bool = True):
        super().__init__()
        self.ch_mult, self.num_res_blocks, self.resolution = tuple(ch_mult), num_res_blocks, resolution
        self.conv_in = nn.Conv2d(in_channels, ch, 3, padding=1)
        self.down = nn.ModuleList()
        widths = [ch * m for m in self.ch_mult]
        block_in, res = ch, resolution
        for level, width in enumerate(widths):
            stage = nn.Module()
            stage.block = nn.ModuleList()
            stage.attn = nn.ModuleList()
            for _ in range(num_res_blocks):
                stage.block.append(ResnetBlock(block_in, width, dropout, norm_groups, conv_shortcut))
                block_in = width
                if res in attn_resolutions:
                    stage.attn.append(AttnBlock(block_in, norm_groups))
            if level != len(widths) - 1:
                stage.downsample = Downsample(block_in, resamp_with_conv)
                res //= 2
            self.down.append(stage)
        self.mid = _mid_block(block_in, dropout, norm_groups, mid_attention)
        self.norm_out = normalize(block_in, norm_groups)
        self.act = Swish()
        self.conv_out = nn.Conv2d(block_in, 2 * z_channels if double_z else z_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for stage in self.down:
            for i, block in enumerate(stage.block):
                h = block(h)
                if len(stage.attn):
                    h = stage.attn[i](h)
            if hasattr(stage, "downsample"):
                h = stage.downsample(h)
        h = self.mid(h)
        return self.conv_out(self.act(self.norm_out(h)))


class Decoder(nn.Module):
    """``B x z_channels x r x r`` -> ``B x out_ch x r*f x r*f`` (linear output, no tanh)."""

    def __init__(self, *, ch: int = 128, out_ch: int = 3, ch_mult: Sequence[int] = (1, 2, 4), num_res_blocks: int = 2,
                 attn_resolutions: Sequence[int] = (), dropout: float = 0.0, resolution: int = 256,
                 z_channels: int = 3, norm_groups: int = 32, resamp_with_conv: bool = True,
                 conv_shortcut: bool = False, mid_attention: bool = True, blocks_per_level: int | None = None):
        super().__init__()
        self.ch_mult = tuple(ch_mult)
        n_blocks = num_res_blocks + 1 if blocks_per_level is None else blocks_per_level  # the family: one more
        widths = [ch * m for m in self.ch_mult]
        block_in = widths[-1]
        res = resolution // 2 ** (len(widths) - 1)
        self.conv_in = nn.Conv2d(z_channels, block_in, 3, padding=1)
        self.mid = _mid_block(block_in, dropout, norm_groups, mid_attention)
        up: list[nn.Module] = []
        for level in reversed(range(len(widths))):
            stage = nn.Module()
            stage.block = nn.ModuleList()
            stage.attn = nn.ModuleList()
            for _ in range(n_blocks):
                stage.block.append(ResnetBlock(block_in, widths[level], dropout, norm_groups, conv_shortcut))
                block_in = widths[level]
                if res in attn_resolutions:
                    stage.attn.append(AttnBlock(block_in, norm_groups))
            if level != 0:
                stage.upsample = Upsample(block_in, resamp_with_conv)
                res *= 2
            up.insert(0, stage)  # self.up[level], as the family indexes it
        self.up = nn.ModuleList(up)
        self.norm_out = normalize(block_in, norm_groups)
        self.act = Swish()
        self.conv_out = nn.Conv2d(block_in, out_ch, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(z))
        for stage in reversed(self.up):
            for i, block in enumerate(stage.block):
                h = block(h)
                if len(stage.attn):
                    h = stage.attn[i](h)
            if hasattr(stage, "upsample"):
                h = stage.upsample(h)
        return self.conv_out(self.act(self.norm_out(h)))


class VectorQuantizer(nn.Module):
    """Nearest-codebook quantisation with straight-through gradients.

    ``forward(z)``, ``z`` ``B x embed_dim x h x w`` -> ``(z_q, loss, indices)``: ``z_q`` the same shape (forward
    value: the codes; gradient: identity to ``z``), ``loss`` a scalar, ``indices`` ``B x h x w`` int64.
    ``legacy=True`` (the reference's): ``mean((sg[z_q] - z)²) + beta * mean((z_q - sg[z])²)``; ``legacy=False``
    (VQ-VAE's weighting): ``beta * mean((sg[z_q] - z)²) + mean((z_q - sg[z])²)``."""

    def __init__(self, n_embed: int = 8192, embed_dim: int = 3, beta: float = 0.25, legacy: bool = True):
        super().__init__()
        self.n_embed, self.embed_dim, self.beta, self.legacy = n_embed, embed_dim, beta, legacy
        self.embedding = nn.Embedding(n_embed, embed_dim)
        nn.init.uniform_(self.embedding.weight, -1.0 / n_embed, 1.0 / n_embed)

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """Indices (``B x h x w``) of the nearest codes of ``z`` (``B x embed_dim x h x w``); ties: lowest index."""
        b, c, h, w = z.shape
        if c != self.embed_dim:
            raise ValueError(f"expected {self.embed_dim} latent channels, got {c}")
        flat = z.permute(0, 2, 3, 1).reshape(-1, c)
        e = self.embedding.weight
        d = flat.pow(2).sum(1, keepdim=True) + e.pow(2).sum(1) - 2.0 * flat @ e.t()  # squared distances
        return d.argmin(1).reshape(b, h, w)

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Codes of ``indices`` (``B x h x w``) as ``B x embed_dim x h x w``."""
        return self.embedding(indices).permute(0, 3, 1, 2).contiguous()

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        indices = self.nearest(z.detach())
        z_q = self.lookup(indices)
        commitment = F.mse_loss(z, z_q.detach())  # moves the encoder output to its code
        codebook = F.mse_loss(z_q, z.detach())  # moves the code to the encoder output
        if self.legacy:
            loss = commitment + self.beta * codebook
        else:
            loss = self.beta * commitment + codebook
        z_q = z + (z_q - z).detach()  # straight-through
        return z_q, loss, indices

    def extra_repr(self) -> str:
        return f"n_embed={self.n_embed}, embed_dim={self.embed_dim}, beta={self.beta}, legacy={self.legacy}"


def codebook_usage(indices: torch.Tensor, n_embed: int) -> tuple[float, float]:
    """``(usage, perplexity)`` of a batch of code indices: the fraction of the ``n_embed`` codes used at least
    once, and ``exp(-sum p log p)`` of the codes' empirical distribution (1 if one code is used, ``n_embed`` if
    all are used equally; the family's logged "perplexity")."""
    counts = torch.bincount(indices.reshape(-1).long(), minlength=n_embed).double()
    total = counts.sum()
    if total == 0:
        return 0.0, 0.0
    p = counts / total
    entropy = -(p[p > 0] * p[p > 0].log()).sum()
    return float((counts > 0).sum() / n_embed), float(math.exp(entropy.item()))


class VQModel(nn.Module):
    """Encoder -> quant_conv (1x1) -> VectorQuantizer -> post_quant_conv (1x1) -> Decoder.

    ``forward(x) -> (xrec, qloss, indices)``; inputs and targets are in [-1, 1]."""

    def __init__(self, encoder: Encoder, decoder: Decoder, quantizer: VectorQuantizer, z_channels: int):
        super().__init__()
        self.encoder = encoder
        self.quant_conv = nn.Conv2d(z_channels, quantizer.embed_dim, 1)
        self.quantize = quantizer
        self.post_quant_conv = nn.Conv2d(quantizer.embed_dim, z_channels, 1)
        self.decoder = decoder

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(z_q, qloss, indices)``: the straight-through quantised latent, the codebook loss, the code indices."""
        return self.quantize(self.quant_conv(self.encoder(x)))

    def decode(self, z_q: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.post_quant_conv(z_q))

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """Decode code indices (``B x h x w``) directly."""
        return self.decode(self.quantize.lookup(indices))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        z_q, qloss, indices = self.encode(x)
        return self.decode(z_q), qloss, indices

    @property
    def last_layer(self) -> nn.Parameter:
        """The decoder's final conv weight: the adaptive discriminator weight compares gradients here."""
        return self.decoder.conv_out.weight


def _init_discriminator(module: nn.Module, std: float = DISC_INIT_STD) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, 0.0, std)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)


class NLayerDiscriminator(nn.Module):
    """The pix2pix PatchGAN: ``B x input_nc x H x W`` -> ``B x 1 x h x w`` logits (256 -> 30 with 3 layers)."""

    def __init__(self, input_nc: int = 3, ndf: int = 64, n_layers: int = 3, bias_before_norm: bool = False):
        super().__init__()
        self.n_layers = n_layers
        layers: list[nn.Module] = [nn.Conv2d(input_nc, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1  # the last of these keeps the size
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, 4, stride=stride, padding=1, bias=bias_before_norm),
                nn.BatchNorm2d(ndf * mult),
                nn.LeakyReLU(0.2, True),
            ]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1))
        self.main = nn.Sequential(*layers)
        _init_discriminator(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """Spatial size of the logits for an ``height x width`` input."""
        def out(n: int) -> int:
            for _ in range(self.n_layers):
                n = (n + 2 - 4) // 2 + 1
            return n + 2 - 4 + 1 + 2 - 4 + 1
        return out(height), out(width)


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
