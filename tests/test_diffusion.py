"""Chapter 7: noising in closed form, flow matching, cross-attention, samplers, guidance (the generator itself)."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from textimg_lessons import diffusion as D


def test_ddpm_closed_form_matches_the_step_by_step_chain_in_distribution():
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    alpha_bar = D.ddpm_alpha_bar(1000)
    x0 = torch.full((20000,), 0.8)
    chain = D.ddpm_forward_chain(x0, 200, betas, torch.Generator().manual_seed(0))
    jump = D.ddpm_closed_form(x0, 200, alpha_bar, torch.Generator().manual_seed(1))
    a = alpha_bar[199]
    for x in (chain, jump):
        assert abs(float(x.mean()) - 0.8 * float(a.sqrt())) < 0.02
        assert abs(float(x.var()) - float(1 - a)) < 0.02


def test_flow_path_starts_at_data_ends_at_noise_and_moves_with_the_velocity_target():
    x0, noise = torch.randn(5, 3), torch.randn(5, 3)
    assert torch.equal(D.interpolate(x0, noise, torch.zeros(5)), x0)
    assert torch.equal(D.interpolate(x0, noise, torch.ones(5)), noise)
    t, h = torch.full((5,), 0.3), 1e-3
    numeric = (D.interpolate(x0, noise, t + h) - D.interpolate(x0, noise, t - h)) / (2 * h)
    torch.testing.assert_close(numeric, D.velocity_target(x0, noise), atol=1e-3, rtol=1e-3)


def test_cross_attention_by_hand_equals_pytorch_with_padding_masked():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 4, 8, 16, generator=g), torch.randn(2, 4, 5, 16, generator=g),
               torch.randn(2, 4, 5, 16, generator=g))
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    ours = D.cross_attention(q, k, v, mask)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask.bool()[:, None, None, :])
    torch.testing.assert_close(ours, ref)


@pytest.mark.parametrize("conditioning", ["cross", "pooled"])
def test_denoiser_ignores_padded_tokens_and_handles_a_dropped_prompt(conditioning):
    torch.manual_seed(0)
    model = D.Denoiser(latent_dim=6, text_dim=10, width=16, tokens=2, depth=2, heads=2, conditioning=conditioning)
    for p in model.parameters():  # the zero-initialised gates and output would hide everything
        nn.init.normal_(p, std=0.3)
    z, t = torch.randn(3, 6), torch.rand(3)
    states, mask = torch.randn(3, 4, 10), torch.tensor([[1, 1, 0, 0]] * 3)
    out = model(z, t, states, mask)
    assert out.shape == (3, 6)
    changed = states.clone()
    changed[:, 2:] = 100.0  # padding positions
    torch.testing.assert_close(model(z, t, changed, mask), out)
    dropped = model(z, t, states, torch.zeros_like(mask))  # only the null token remains
    assert torch.isfinite(dropped).all() and not torch.allclose(dropped, out)


def test_guidance_scale_one_is_plain_conditional_and_two_extrapolates():
    vc, vu = torch.tensor([1.0, 2.0]), torch.tensor([0.0, 1.0])
    assert torch.equal(D.guided_velocity(vc, vu, 1.0), vc)
    assert torch.equal(D.guided_velocity(vc, vu, 0.0), vu)
    assert torch.equal(D.guided_velocity(vc, vu, 2.0), torch.tensor([2.0, 3.0]))


class _LinearField(nn.Module):
    """dz/dt = z: from z(1) the exact value at t = 0 is z(1) / e."""

    latent_dim = 3

    def __init__(self):
        super().__init__()
        self.p = nn.Parameter(torch.zeros(1))

    def context(self, states, mask):
        return states, mask

    def forward(self, z, t, states, mask, context=None):
        return z


def test_heun_integrates_more_accurately_than_euler_with_the_same_steps():
    model = _LinearField()
    states, mask = torch.zeros(4, 1, 2), torch.ones(4, 1)
    start = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    exact = start / math.e
    errors = {}
    for sampler in ("euler", "heun"):
        z = D.sample_latents(model, states, mask, 1, 4, 1.0, sampler, torch.Generator().manual_seed(0))
        errors[sampler] = float((z - exact).abs().max())
    assert errors["heun"] < errors["euler"] / 5


def test_network_evaluations_count_guided_passes_twice():
    assert D.network_evaluations(16, "heun", 2.0) == 62
    assert D.network_evaluations(8, "euler", 1.0) == 8


def test_sampler_arguments_are_checked():
    model = _LinearField()
    with pytest.raises(ValueError, match="sampler"):
        D.sample_latents(model, torch.zeros(1, 1, 2), torch.ones(1, 1), sampler="rk4")
    with pytest.raises(ValueError, match="steps"):
        D.sample_latents(model, torch.zeros(1, 1, 2), torch.ones(1, 1), steps=0)
