"""The LMC 2024 winner's VQGAN specialist: the published parameter counts exactly, shapes, the quantizer (nearest
code, straight-through gradient, loss weighting, usage / perplexity), the discriminator, configs and model card."""

from __future__ import annotations

import json
import math

import pytest
import torch

from vsbench.algorithms.base import ORGANELLES
from vsbench.algorithms.vqgan import (
    CONFIGS,
    Decoder,
    Encoder,
    NLayerDiscriminator,
    VectorQuantizer,
    VQModel,
    build_networks,
    codebook_usage,
    config_names,
    count_parameters,
    get_config,
    model_card,
)

# shared/reference/lmc.md §3.1 (README: encoder 22.3M, decoder 33.0M; quantizer 8192 x 3; quant convs 12 each)
# and the seed paper §2.3 ("58.1 million trainable parameters")
ENCODER = 22_337_411
DECODER = 32_960_771
CODEBOOK = 8192 * 3
QUANT_CONVS = 12 + 12
DISCRIMINATOR = 2_765_633
TOTAL = 58_088_415


def _meta(cls, *args, **kwargs):
    with torch.device("meta"):
        return cls(*args, **kwargs)


def _tiny_model(seed: int = 0) -> VQModel:
    torch.manual_seed(seed)
    return build_networks("tiny")["vqmodel"]


def test_the_published_counts_exactly():
    enc, dec = _meta(Encoder), _meta(Decoder)
    quant = _meta(VectorQuantizer, 8192, 3, 0.25)
    disc = _meta(NLayerDiscriminator, 3, 64, 3)
    assert count_parameters(enc) == ENCODER
    assert count_parameters(dec) == DECODER
    assert count_parameters(quant) == CODEBOOK == 24_576
    model = _meta(VQModel, enc, dec, quant, 3)
    assert count_parameters(model.quant_conv) == count_parameters(model.post_quant_conv) == 12
    assert count_parameters(model) == ENCODER + DECODER + CODEBOOK + QUANT_CONVS
    assert count_parameters(disc) == DISCRIMINATOR
    assert count_parameters(model) + count_parameters(disc) == TOTAL
    assert round(TOTAL / 1e6, 1) == 58.1 and round(ENCODER / 1e6, 1) == 22.3 and round(DECODER / 1e6, 1) == 33.0


def test_the_variants_the_counts_rule_out():
    # one change away from the reference, each misses a published number (see the networks docstring)
    assert count_parameters(_meta(Encoder, conv_shortcut=True)) == ENCODER + 1_310_720
    assert count_parameters(_meta(Encoder, resamp_with_conv=False)) == ENCODER - 737_664
    assert count_parameters(_meta(Encoder, mid_attention=False)) == ENCODER - 1_051_648
    assert count_parameters(_meta(Decoder, blocks_per_level=2)) == 26_762_243
    assert count_parameters(_meta(NLayerDiscriminator, bias_before_norm=True)) == DISCRIMINATOR + 128 + 256 + 512
    assert count_parameters(_meta(Encoder, double_z=True)) == ENCODER + 512 * 3 * 9 + 3


def test_build_networks_paper_on_meta():
    nets = build_networks("paper", device="meta")
    assert {k: count_parameters(v) for k, v in nets.items()} == {
        "vqmodel": ENCODER + DECODER + CODEBOOK + QUANT_CONVS, "discriminator": DISCRIMINATOR,
        "encoder": ENCODER, "decoder": DECODER, "quantizer": CODEBOOK, "quant_convs": QUANT_CONVS,
    }
    assert nets["vqmodel"].last_layer is nets["decoder"].conv_out.weight


def test_paper_shapes_on_meta():
    model = build_networks("paper", device="meta")["vqmodel"]
    x = torch.empty(1, 3, 256, 256, device="meta")
    z = model.quant_conv(model.encoder(x))
    assert z.shape == (1, 3, 64, 64)  # the 64 x 64 x 3 latent
    assert model.decode(z).shape == (1, 3, 256, 256)


def test_tiny_forward_shapes_and_outputs():
    cfg = get_config("tiny")
    model = _tiny_model()
    x = torch.rand(2, 3, cfg.resolution, cfg.resolution) * 2 - 1
    xrec, qloss, indices = model(x)
    r = cfg.resolution // cfg.downsampling
    assert xrec.shape == x.shape
    assert qloss.ndim == 0 and torch.isfinite(qloss) and qloss >= 0
    assert indices.shape == (2, r, r) and indices.dtype == torch.int64
    assert 0 <= int(indices.min()) and int(indices.max()) < cfg.n_embed
    z_q, qloss2, idx2 = model.encode(x)
    assert z_q.shape == (2, *cfg.latent_shape)
    torch.testing.assert_close(model.decode(z_q), xrec)
    torch.testing.assert_close(model.decode_indices(idx2), xrec)  # the forward value is the codes


def test_straight_through_gradient_reaches_the_encoder():
    model = _tiny_model()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    xrec, _, _ = model(x)
    xrec.abs().mean().backward()  # reconstruction loss only: no codebook loss term
    assert model.encoder.conv_in.weight.grad is not None
    assert model.encoder.conv_in.weight.grad.abs().sum() > 0
    assert model.quant_conv.weight.grad.abs().sum() > 0
    assert model.quantize.embedding.weight.grad is None  # the codebook only learns from the codebook loss


def test_quantizer_nearest_codes_and_straight_through():
    q = VectorQuantizer(4, 2, beta=0.25)
    with torch.no_grad():
        q.embedding.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [5.0, 5.0]]))
    z = torch.tensor([[0.1, 0.9], [0.2, -0.1], [4.0, 6.0], [0.9, 0.2]]).t().reshape(1, 2, 2, 2).requires_grad_()
    z_q, loss, indices = q(z)
    assert indices.tolist() == [[[2, 0], [3, 1]]]
    expected = torch.tensor([[0.0, 1.0], [0.0, 0.0], [5.0, 5.0], [1.0, 0.0]]).t().reshape(1, 2, 2, 2)
    torch.testing.assert_close(z_q.detach(), expected)
    (z_q * torch.arange(8.0).reshape(1, 2, 2, 2)).sum().backward(retain_graph=True)
    torch.testing.assert_close(z.grad, torch.arange(8.0).reshape(1, 2, 2, 2))  # identity gradient


def test_codebook_loss_legacy_and_vqvae_weighting_on_a_hand_made_case():
    q = VectorQuantizer(2, 1, beta=0.25, legacy=True)
    with torch.no_grad():
        q.embedding.weight.copy_(torch.tensor([[0.0], [10.0]]))
    z = torch.tensor([1.0, 9.0, 2.0, 10.0]).reshape(1, 1, 2, 2).requires_grad_()
    _, loss, indices = q(z)
    assert indices.flatten().tolist() == [0, 1, 0, 1]
    mse = (1 + 1 + 4 + 0) / 4  # mean squared distance to the chosen codes
    assert loss.item() == pytest.approx(mse + 0.25 * mse)  # the two terms are equal in value
    # the weighting shows in the gradients: legacy = commitment (to z) weight 1, codebook weight beta
    loss.backward()
    dz = 2 * (z.detach() - torch.tensor([0.0, 10.0, 0.0, 10.0]).reshape(1, 1, 2, 2)) / 4
    torch.testing.assert_close(z.grad, dz)
    de = torch.tensor([[-(2 * (1 + 2)) / 4], [-(2 * (-1 + 0)) / 4]]) * 0.25  # d/de of beta * mean((e - z)²)
    torch.testing.assert_close(q.embedding.weight.grad, de)
    q2 = VectorQuantizer(2, 1, beta=0.25, legacy=False)
    with torch.no_grad():
        q2.embedding.weight.copy_(torch.tensor([[0.0], [10.0]]))
    z2 = z.detach().clone().requires_grad_()
    _, loss2, _ = q2(z2)
    loss2.backward()
    torch.testing.assert_close(z2.grad, 0.25 * dz)
    torch.testing.assert_close(q2.embedding.weight.grad, de / 0.25)


def test_codebook_usage_and_perplexity():
    usage, perplexity = codebook_usage(torch.tensor([[0, 1], [2, 3]]), 8)
    assert usage == 0.5 and perplexity == pytest.approx(4.0)  # 4 codes equally used
    usage, perplexity = codebook_usage(torch.zeros(3, 4, 4, dtype=torch.long), 16)
    assert usage == 1 / 16 and perplexity == pytest.approx(1.0)
    usage, perplexity = codebook_usage(torch.tensor([0, 0, 0, 1]), 4)
    p = torch.tensor([0.75, 0.25])
    assert usage == 0.5 and perplexity == pytest.approx(math.exp(-(p * p.log()).sum().item()))


def test_discriminator_output_shape_and_init():
    torch.manual_seed(0)
    disc = NLayerDiscriminator(3, 64, 3)
    assert disc.output_size(256, 256) == (30, 30)
    small = NLayerDiscriminator(3, 16, 2)
    assert small(torch.rand(2, 3, 64, 64)).shape == (2, 1, *small.output_size(64, 64)) == (2, 1, 14, 14)
    convs = [m for m in disc.modules() if isinstance(m, torch.nn.Conv2d)]
    norms = [m for m in disc.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert [c.bias is not None for c in convs] == [True, False, False, False, True]  # none before BatchNorm
    big = convs[3].weight  # 256 -> 512, 2M weights
    assert abs(big.mean().item()) < 1e-3 and big.std().item() == pytest.approx(0.02, rel=0.02)
    assert all(n.bias.abs().sum() == 0 for n in norms)
    assert norms[-1].weight.mean().item() == pytest.approx(1.0, abs=0.01)
    with torch.no_grad():
        assert disc(torch.rand(1, 3, 256, 256)).shape == (1, 1, 30, 30)


def test_configs_per_organelle_and_learning_rate():
    assert config_names() == ["paper", "tiny"] == list(CONFIGS)
    expected_lr = {"nucleus": 1.28e-4, "actin": 6.4e-5, "mitochondria": 3.2e-5, "tubulin": 3.2e-5}  # lmc.md §3.1
    for organelle in ORGANELLES:
        cfg = get_config("paper", organelle)
        assert cfg.organelle == organelle
        assert cfg.disc_weight == (0.75 if organelle == "nucleus" else 0.8)
        assert cfg.learning_rate == pytest.approx(expected_lr[organelle])
        assert cfg.learning_rate == pytest.approx(2 * 1 * 16 * cfg.base_learning_rate)
        assert get_config("tiny", organelle).learning_rate == get_config("tiny").learning_rate
    cfg = get_config("paper")
    assert (cfg.ch, cfg.ch_mult, cfg.num_res_blocks, cfg.z_channels, cfg.n_embed, cfg.embed_dim) == (
        128, (1, 2, 4), 2, 3, 8192, 3)
    assert cfg.beta == 0.25 and cfg.adam_betas == (0.5, 0.9) and cfg.perceptual_weight == 0.0
    assert (cfg.percentile_low, cfg.percentile_high, cfg.crop_scale, cfg.size) == (2.0, 99.8, (0.70, 0.95), 256)
    assert cfg.latent_shape == (3, 64, 64)
    with pytest.raises(ValueError, match="unknown vqgan config"):
        get_config("nope")
    with pytest.raises(ValueError, match="unknown organelle"):
        get_config("paper", "golgi")


def test_model_card_numbers():
    card = model_card("paper")
    assert card["model"] == "vqgan" and card["config_name"] == "paper" and card["organelle"] == "nucleus"
    assert card["networks"] == {"encoder": ENCODER, "decoder": DECODER, "quantizer": CODEBOOK + QUANT_CONVS,
                                "discriminator": DISCRIMINATOR}
    assert card["quantizer_parts"] == {"codebook": CODEBOOK, "quant_convs": QUANT_CONVS}
    assert card["total"] == TOTAL
    assert card["published"]["total"] == 58_100_000
    assert card["config"]["learning_rate"] == pytest.approx(1.28e-4)
    json.dumps(card)  # JSON-able
    tiny = model_card("tiny", "actin")
    assert tiny["total"] == sum(tiny["networks"].values()) < 1_000_000
    assert "published" not in tiny and tiny["config"]["disc_weight"] == 0.8


def test_cli_model_info_vqgan(capsys):
    import json

    from vsbench.harness.cli import main

    assert main(["model", "info", "vqgan", "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["networks"] == {"encoder": 22_337_411, "decoder": 32_960_771, "quantizer": 24_600,
                                "discriminator": 2_765_633}
    assert card["total"] == 58_088_415 and card["organelle"] == "nucleus"
    assert main(["model", "info", "vqgan", "--organelle", "actin"]) == 0
    text = capsys.readouterr().out
    assert "58,088,415  (published 58,100,000, rounded: matches)" in text and "disc_weight=0.8" in text
    assert main(["model", "info", "vqgan", "--config", "paper-20x"]) == 2
    assert "vqgan has configs" in capsys.readouterr().err
    assert main(["model", "info", "patchgan"]) == 0
    assert "32,657,938  (published 32,659,016, differs)" in capsys.readouterr().out
