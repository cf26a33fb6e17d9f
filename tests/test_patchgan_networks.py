"""The Soft Matter Lab Patch-GAN networks: the published parameter counts exactly, shapes, the quirks
of the original (scalar batch normalisation, Keras 'same' padding), the composite, the model card."""

from __future__ import annotations

import json

import pytest
import torch
from torch.nn import functional as F

from vsbench.algorithms.patchgan import (
    CHANNELS,
    CONFIGS,
    CompositeGenerator,
    PatchGANDiscriminator,
    PatchGANGenerator,
    ScalarTanhNorm,
    build_networks,
    config_names,
    count_parameters,
    model_card,
)
from vsbench.algorithms.patchgan.networks import SameConv2d, same_padding
from vsbench.harness.cli import build_parser, main

# report Table 2 and the notebooks' model summaries (shared/reference/adipocyte.md §3.1-3.3)
GENERATOR = 8_784_073
DISCRIMINATOR = 2_101_697
GENERATOR_PLUS_DISCRIMINATOR = 10_885_770
STAGE2_GENERATOR = 8_784_899
COMPOSITE_20X = 26_353_871


def _meta(cls, *args, **kwargs):
    with torch.device("meta"):
        return cls(*args, **kwargs)


def test_the_five_published_counts():
    gen = _meta(PatchGANGenerator, 7, 3, breadth=32, depth=5)
    disc = _meta(PatchGANDiscriminator, 3, 7)
    stage2 = _meta(PatchGANGenerator, 10, 1, breadth=32, depth=5)
    assert count_parameters(gen) == GENERATOR
    assert count_parameters(disc) == DISCRIMINATOR
    assert count_parameters(gen) + count_parameters(disc) == GENERATOR_PLUS_DISCRIMINATOR
    assert count_parameters(stage2) == STAGE2_GENERATOR
    composite = CompositeGenerator(gen, {"nuclei": stage2, "cytoplasm": _meta(PatchGANGenerator, 10, 1)})
    assert count_parameters(composite) == COMPOSITE_20X == GENERATOR + 2 * STAGE2_GENERATOR


def test_paper_configs_build_the_published_networks():
    nets = build_networks("paper-20x", device="meta")
    assert list(nets) == ["generator", "discriminator", "stage2_nuclei", "stage2_nuclei_discriminator",
                          "stage2_cytoplasm", "stage2_cytoplasm_discriminator"]
    assert count_parameters(nets["stage2_nuclei"]) == count_parameters(nets["stage2_cytoplasm"]) == STAGE2_GENERATOR
    # stage-2 discriminators: 1 fluorescence + 7 brightfield inputs, 2 x 256 fewer weights in the first conv
    assert count_parameters(nets["stage2_nuclei_discriminator"]) == DISCRIMINATOR - 2 * 16 * 4 * 4
    for name in ("paper-40x", "paper-60x"):
        assert {k: count_parameters(v) for k, v in build_networks(name, device="meta").items()} == {
            "generator": GENERATOR, "discriminator": DISCRIMINATOR}


def test_model_card_numbers():
    card = model_card("paper-20x")
    assert card["networks"]["generator"] == GENERATOR
    assert card["networks"]["discriminator"] == DISCRIMINATOR
    assert card["networks"]["stage2_nuclei"] == card["networks"]["stage2_cytoplasm"] == STAGE2_GENERATOR
    assert card["generator_total"] == COMPOSITE_20X
    assert card["total"] == COMPOSITE_20X + DISCRIMINATOR + 2 * (DISCRIMINATOR - 512) == sum(card["networks"].values())
    assert card["published"]["generator"] == COMPOSITE_20X
    assert card["config"]["lr"] == 2e-4 and card["config"]["mae_weight"] == 0.001
    for name in ("paper-40x", "paper-60x"):
        card = model_card(name)
        assert card["total"] == GENERATOR_PLUS_DISCRIMINATOR == card["published"]["total"]
        assert card["generator_total"] == GENERATOR
    assert model_card("paper-40x")["config"]["mae_weight"] == 0.004
    assert model_card("tiny")["config"]["stage2"] == []
    with pytest.raises(ValueError, match="unknown patchgan config"):
        model_card("paper-10x")


def test_configs():
    assert config_names() == ["paper-20x", "paper-40x", "paper-60x", "tiny", "paper-lmc", "lmc-tiny"]
    for name in ("paper-20x", "paper-40x", "paper-60x", "paper-lmc"):
        c = CONFIGS[name]
        # §3.5: 724-px crops reused for 16 updates, augmented, centre-cropped to 512, batches of 8
        assert (c.breadth, c.depth, c.crop, c.crop_before_augmentation, c.crop_reuse, c.batch_size, c.augmentation,
                c.lr, c.adam_betas[0]) == (32, 5, 512, 724, 16, 8, "paper", 2e-4, 0.5)
    assert CONFIGS["paper-lmc"].channels == ("nucleus", "mitochondria", "tubulin", "actin")
    assert CONFIGS["paper-lmc"].in_channels == 1 and CONFIGS["paper-lmc"].target_scale > 0
    assert CONFIGS["paper-20x"].stage2 == ("nuclei", "cytoplasm")
    assert CONFIGS["paper-40x"].stage2 == CONFIGS["paper-60x"].stage2 == ()


def test_generator_forward_shape_and_range():
    torch.manual_seed(0)
    gen = PatchGANGenerator(7, 3, breadth=32, depth=5).eval()
    x = torch.rand(1, 7, 64, 96) * 4000 + 200
    with torch.no_grad():
        y = gen(x)
    assert y.shape == (1, 3, 64, 96)
    assert y.dtype == torch.float32 and torch.isfinite(y).all()
    assert y.min() >= 0 and y.max() <= 10000
    # initialised with A = B = 1 and tiny weights: outputs near the offset 750
    assert 0 < y.mean() < 10000
    with pytest.raises(ValueError, match="multiples of 16"):
        gen(torch.rand(1, 7, 40, 64))


def test_scale_layer_clips_to_the_16_bit_range():
    gen = PatchGANGenerator(7, 3, breadth=4, depth=2)
    with torch.no_grad():
        gen.scale.a.fill_(100.0)  # huge gain: both ends of the clip reached
        y = gen(torch.randn(2, 7, 16, 16) * 1000)
    assert y.min() == 0 and y.max() == 10000


def test_discriminator_patch_map_shapes():
    torch.manual_seed(0)
    disc = PatchGANDiscriminator(3, 7)
    with torch.no_grad():
        assert disc(torch.rand(1, 3, 64, 64), torch.rand(1, 7, 64, 64)).shape == (1, 1, 2, 2)
        assert disc(torch.rand(1, 3, 96, 128), torch.rand(1, 7, 96, 128)).shape == (1, 1, 3, 4)
        assert disc(torch.rand(1, 3, 33, 40), torch.rand(1, 7, 33, 40)).shape == (1, 1, 2, 2)  # ceil(n/32)
    assert disc.output_size(96, 128) == (3, 4)
    with pytest.raises(ValueError, match="condition"):
        disc(torch.rand(1, 3, 64, 64), torch.rand(1, 10, 64, 64))


def test_normalisation_is_one_scalar_over_the_batch():
    x = torch.stack([torch.rand(7, 8, 8) * 100, torch.rand(7, 8, 8) * 5000 + 1000])
    expected = torch.tanh((x - x.mean()) / x.std(correction=0))
    assert torch.allclose(ScalarTanhNorm()(x), expected)
    assert ScalarTanhNorm()(torch.full((1, 7, 4, 4), 3.0)).abs().max() == 0  # constant input: 0, not NaN
    # so a sample's output depends on its batch mates (as in the original), not only on itself
    torch.manual_seed(0)
    gen = PatchGANGenerator(7, 3, breadth=8, depth=3).eval()
    with torch.no_grad():
        alone = gen(x[:1])
        batched = gen(x)
    assert not torch.allclose(alone[0], batched[0])


@pytest.mark.parametrize("size,kernel,stride,expected", [
    (64, 3, 1, (1, 1)), (64, 3, 2, (0, 1)), (65, 3, 2, (1, 1)), (64, 4, 1, (1, 2)), (64, 4, 2, (1, 1)),
    (65, 4, 2, (1, 2)), (64, 1, 1, (0, 0)),
])
def test_keras_same_padding(size, kernel, stride, expected):
    assert same_padding(size, kernel, stride) == expected


def test_same_conv_pads_bottom_right_for_even_kernels():
    torch.manual_seed(0)
    conv = SameConv2d(2, 3, 4)
    x = torch.randn(1, 2, 10, 7)
    ref = F.conv2d(F.pad(x, (1, 2, 1, 2)), conv.weight, conv.bias)
    assert torch.allclose(conv(x), ref, atol=1e-6)
    assert SameConv2d(2, 3, 3, stride=2)(x).shape[-2:] == (5, 4)


def test_composite_generator_falls_back_to_stage1():
    torch.manual_seed(0)
    stage1 = PatchGANGenerator(7, 3, breadth=4, depth=2).eval()
    nuclei = PatchGANGenerator(10, 1, breadth=4, depth=2).eval()
    comp = CompositeGenerator(stage1, {"nuclei": nuclei}).eval()
    x = torch.rand(2, 7, 16, 16) * 3000
    with torch.no_grad():
        first = stage1(x)
        out = comp(x)
        refined = nuclei(torch.cat([x, first], dim=1))
    assert out.shape == (2, 3, 16, 16) and CHANNELS == ("nuclei", "lipids", "cytoplasm")
    assert torch.equal(out[:, 0:1], refined)
    assert torch.equal(out[:, 1:], first[:, 1:])
    with torch.no_grad():
        assert torch.equal(CompositeGenerator(stage1)(x), first)
    with pytest.raises(ValueError, match="not in"):
        CompositeGenerator(stage1, {"mitochondria": nuclei})


def test_tiny_config_trains_a_step_on_cpu():
    nets = build_networks("tiny")
    gen, disc = nets["generator"], nets["discriminator"]
    cfg = CONFIGS["tiny"]
    opt = torch.optim.Adam(gen.parameters(), lr=cfg.lr, betas=cfg.adam_betas)
    x, y = torch.rand(2, 7, 32, 32) * 3000, torch.rand(2, 3, 32, 32) * 3000
    fake = gen(x)
    score = disc(fake, x)
    assert score.shape == (2, 1, 4, 4)
    loss = (1 - cfg.mae_weight) * F.mse_loss(score, torch.ones_like(score)) + cfg.mae_weight * F.l1_loss(fake, y)
    loss.backward()
    opt.step()
    assert all(p.grad is not None for p in gen.parameters())


def test_cli_model_info_json(capsys):
    assert main(["model", "info", "patchgan", "--config", "paper-20x", "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["generator_total"] == COMPOSITE_20X
    assert card["networks"]["generator"] == GENERATOR and card["networks"]["discriminator"] == DISCRIMINATOR
    assert card["networks"]["stage2_nuclei"] == STAGE2_GENERATOR
    assert card["total"] == COMPOSITE_20X + DISCRIMINATOR + 2 * 2_101_185 == 32_657_938


def test_cli_model_info_text(capsys):
    assert main(["model", "info", "patchgan", "--config", "paper-60x"]) == 0
    out = capsys.readouterr().out
    assert "8,784,073" in out and "10,885,770" in out and "2,101,697" in out


@pytest.mark.parametrize("words", [["model"], ["model", "info"]])
def test_cli_model_help(words, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([*words, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: vsbench model")


def test_cli_config_choices_match_the_configs():
    info = build_parser().parse_args(["model", "info", "patchgan"])
    assert info.config is None  # the family's default: paper-20x for patchgan
    for name in config_names():
        assert build_parser().parse_args(["model", "info", "patchgan", "--config", name]).config == name
