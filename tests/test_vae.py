"""Tests of the chapter 4 package code (textimg_lessons.vae): the ELBO pieces, the networks, the metrics."""
import math
from dataclasses import replace

import pytest
import torch
from torch.distributions import Bernoulli, Independent, Normal, kl_divergence

from textimg_lessons import vae, vae_experiments


def _gauss(n=5, d=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(n, d, generator=g, dtype=torch.float64)
    logvar = torch.randn(n, d, generator=g, dtype=torch.float64)
    return mu, logvar


def _images(n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return vae.binarize(torch.rand(n, 1, 28, 28, generator=g))


# ---------------------------------------------------------------- pieces

def test_binarize_threshold_is_fixed():
    x = torch.tensor([0.0, 0.5, 0.5001, 1.0]).view(1, 4)
    assert vae.binarize(x).tolist() == [[0.0, 0.0, 1.0, 1.0]]


def test_gaussian_kl_matches_torch_distributions():
    mu, logvar = _gauss()
    q = Independent(Normal(mu, (0.5 * logvar).exp()), 1)
    p = Independent(Normal(torch.zeros_like(mu), torch.ones_like(mu)), 1)
    torch.testing.assert_close(vae.gaussian_kl(mu, logvar), kl_divergence(q, p))


def test_gaussian_kl_known_values():
    zero = torch.zeros(2, 4)
    assert vae.gaussian_kl(zero, zero).tolist() == [0.0, 0.0]  # q equals the prior
    mu = torch.full((1, 2), 3.0)
    torch.testing.assert_close(vae.gaussian_kl(mu, torch.zeros(1, 2)), torch.tensor([9.0]))  # 2 dims x 3^2 / 2


def test_gaussian_kl_matches_monte_carlo():
    mu, logvar = _gauss(n=2, d=2, seed=3)
    g = torch.Generator().manual_seed(0)
    z = vae.reparameterize(mu.expand(200_000, 2, 2).reshape(-1, 2), logvar.expand(200_000, 2, 2).reshape(-1, 2), g)
    z = z.view(200_000, 2, 2)
    mc = (vae.gaussian_log_prob(z, mu, logvar) - vae.gaussian_log_prob(z)).mean(0)
    torch.testing.assert_close(mc, vae.gaussian_kl(mu, logvar), rtol=0.03, atol=0.03)


def test_reparameterize_formula_and_gradient_flows():
    mu, logvar = _gauss()
    mu.requires_grad_(True)
    logvar.requires_grad_(True)
    z = vae.reparameterize(mu, logvar, torch.Generator().manual_seed(1))
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(1), dtype=mu.dtype)
    torch.testing.assert_close(z, mu + (0.5 * logvar).exp() * eps)
    z.sum().backward()
    torch.testing.assert_close(mu.grad, torch.ones_like(mu))                       # dz/dmu = 1
    torch.testing.assert_close(logvar.grad, 0.5 * (0.5 * logvar).exp().detach() * eps)  # dz/dlogvar = sigma eps / 2


def test_reparameterize_statistics():
    mu = torch.full((100_000, 1), 2.0)
    logvar = torch.full((100_000, 1), math.log(9.0))
    z = vae.reparameterize(mu, logvar, torch.Generator().manual_seed(0))
    assert abs(z.mean().item() - 2.0) < 0.05 and abs(z.std().item() - 3.0) < 0.05


def test_bernoulli_nll_by_hand():
    logits = torch.tensor([[0.0, 2.0, -1.0]])
    x = torch.tensor([[1.0, 0.0, 1.0]])
    p = torch.sigmoid(logits)
    by_hand = -(x * p.log() + (1 - x) * (1 - p).log()).sum(1)
    torch.testing.assert_close(vae.bernoulli_nll(logits, x), by_hand)
    torch.testing.assert_close(vae.bernoulli_nll(logits, x), -Independent(Bernoulli(logits=logits), 1).log_prob(x))


def test_bernoulli_nll_is_stable_for_large_logits():
    out = vae.bernoulli_nll(torch.tensor([[200.0, -200.0]]), torch.tensor([[0.0, 1.0]]))
    torch.testing.assert_close(out, torch.tensor([400.0]))


def test_negative_elbo_is_reconstruction_plus_kl():
    logits = torch.randn(3, 1, 28, 28)
    x = _images(3)
    mu, logvar = torch.randn(3, 5), torch.randn(3, 5)
    out = vae.negative_elbo(logits, x, mu, logvar)
    assert out.shape == (3,)
    torch.testing.assert_close(out, vae.bernoulli_nll(logits, x) + vae.gaussian_kl(mu, logvar))
    # the per-image reconstruction term sums 784 pixels, so it is in nats per image, not per pixel
    torch.testing.assert_close(vae.bernoulli_nll(torch.zeros(1, 1, 28, 28), x[:1]), torch.tensor([784 * math.log(2)]))


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("fn", [vae.reparameterize, vae.gaussian_kl])
def test_gaussian_pieces_reject_bad_input(fn):
    with pytest.raises(ValueError, match="shape"):
        fn(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="empty"):
        fn(torch.zeros(0, 3), torch.zeros(0, 3))
    with pytest.raises(TypeError, match="torch.Tensor"):
        fn([[0.0]], torch.zeros(1, 1))
    with pytest.raises(TypeError, match="floating"):
        fn(torch.zeros(1, 2, dtype=torch.long), torch.zeros(1, 2, dtype=torch.long))


def test_bernoulli_and_elbo_reject_bad_input():
    with pytest.raises(ValueError, match="shape"):
        vae.bernoulli_nll(torch.zeros(2, 784), torch.zeros(2, 1, 28, 28))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        vae.bernoulli_nll(torch.zeros(1, 3), torch.tensor([[0.0, 255.0, 1.0]]))
    with pytest.raises(ValueError, match="empty"):
        vae.bernoulli_nll(torch.zeros(0, 3), torch.zeros(0, 3))
    with pytest.raises(ValueError, match="same batch"):
        vae.negative_elbo(torch.zeros(2, 4), torch.zeros(2, 4), torch.zeros(3, 2), torch.zeros(3, 2))


def test_metrics_require_binary_images():
    model = vae.VAE(latent_dim=2, kind="mlp")
    grey = torch.full((2, 1, 28, 28), 0.3)
    with pytest.raises(ValueError, match="binar"):
        vae.test_negative_elbo(model, grey)
    with pytest.raises(ValueError, match="binar"):
        vae.importance_weighted_nll(model, grey, k=2)
    with pytest.raises(ValueError, match="28, 28"):
        vae.test_negative_elbo(model, torch.zeros(2, 784))
    with pytest.raises(ValueError, match="empty"):
        vae.test_negative_elbo(model, torch.zeros(0, 1, 28, 28))
    with pytest.raises(ValueError, match="positive int"):
        vae.importance_weighted_nll(model, _images(2), k=0)


def test_networks_reject_bad_input():
    with pytest.raises(ValueError, match="kind"):
        vae.VAE(kind="transformer")
    model = vae.VAE(latent_dim=4)
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        model.decode(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="cond_dim=0"):
        model.decoder(torch.zeros(2, 4), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="positive int"):
        model.sample(0)
    cond = vae.ConvDecoder(4, cond_dim=3)
    with pytest.raises(ValueError, match="pass c"):
        cond(torch.zeros(2, 4))


# ---------------------------------------------------------------- networks

@pytest.mark.parametrize("kind", ["conv", "mlp"])
def test_vae_shapes(kind):
    model = vae.VAE(latent_dim=6, kind=kind)
    x = _images(5)
    logits, mu, logvar = model(x)
    assert logits.shape == (5, 1, 28, 28) and mu.shape == (5, 6) and logvar.shape == (5, 6)
    assert model.decode(torch.zeros(3, 6)).shape == (3, 1, 28, 28)
    s = model.sample(7, generator=torch.Generator().manual_seed(0))
    assert s.shape == (7, 1, 28, 28) and 0 <= s.min() and s.max() <= 1


def test_mlp_baseline_has_the_classic_parameter_count():
    # 784*400+400 + 2*(400*20+20) + 20*400+400 + 400*784+784 = 652,824 (pytorch/examples VAE)
    assert sum(p.numel() for p in vae.VAE(latent_dim=20, kind="mlp").parameters()) == 652_824


def test_conditional_encoder_decoder_use_c():
    enc, dec = vae.ConvEncoder(3, cond_dim=10).eval(), vae.ConvDecoder(3, cond_dim=10).eval()
    x, z = _images(2), torch.zeros(2, 3)
    c0, c1 = torch.zeros(2, 10), torch.eye(10)[:2]
    assert enc(x, c0)[0].shape == (2, 3) and dec(z, c0).shape == (2, 1, 28, 28)
    assert not torch.allclose(dec(z, c0), dec(z, c1))  # the condition changes the output


def test_sample_is_reproducible_with_a_generator():
    model = vae.VAE(latent_dim=3, kind="mlp")
    a = model.sample(4, generator=torch.Generator().manual_seed(5))
    b = model.sample(4, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(a, b)


# ---------------------------------------------------------------- IWAE

def test_iwae_k1_equals_single_sample_elbo_with_same_eps():
    torch.manual_seed(0)
    model = vae.VAE(latent_dim=4, kind="conv").double().eval()  # conv: batch norm must be in eval mode too
    x = _images(3).double()
    log_w = vae.log_importance_weights(model, x, k=1, generator=torch.Generator().manual_seed(7))
    mu, logvar = model.encode(x)
    z = vae.reparameterize(mu, logvar, torch.Generator().manual_seed(7))
    by_hand = -vae.bernoulli_nll(model.decode(z), x) + vae.gaussian_log_prob(z) - vae.gaussian_log_prob(z, mu, logvar)
    torch.testing.assert_close(log_w[0], by_hand.detach())
    # and the IWAE NLL with k = 1 is minus the mean of that single-sample ELBO (same seed => same eps)
    iw1 = vae.importance_weighted_nll(model, x, k=1, seed=7, batch_size=3)
    torch.testing.assert_close(torch.tensor(iw1, dtype=torch.float64), -by_hand.mean().detach())


def test_iwae_bound_is_tighter_than_elbo_in_expectation():
    torch.manual_seed(0)
    model = vae.VAE(latent_dim=4, kind="mlp")
    x = _images(20)
    elbo_nll = sum(vae.test_negative_elbo(model, x, seed=s) for s in range(5)) / 5
    iw = vae.importance_weighted_nll(model, x, k=50)
    assert iw < elbo_nll
    # and it does not underflow: the log-weights are around -500 nats for an untrained model
    assert math.isfinite(iw) and iw > 0


def test_test_negative_elbo_equals_mean_of_negative_elbo():
    torch.manual_seed(0)
    model = vae.VAE(latent_dim=4, kind="conv").eval()
    x = _images(6)
    got = vae.test_negative_elbo(model, x, batch_size=4, seed=3)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        parts = [vae.negative_elbo(*(lambda o, xb: (o[0], xb, o[1], o[2]))(model(xb, generator=g), xb)) for xb in x.split(4)]
    assert abs(got - torch.cat(parts).mean().item()) < 1e-4


# ---------------------------------------------------------------- training and applications

@pytest.fixture(scope="module")
def tiny_data():
    from textimg_lessons.data import load_mnist
    d = load_mnist(offline=True, fast=True, verbose=False)
    return replace(d, X_train=d.X_train[:300], X_test=d.X_test[:100])


def test_train_vae_learns_and_reports_history(tiny_data):
    model, h = vae.train_vae(tiny_data, kind="mlp", latent_dim=4, num_epochs=3, seed=0)
    assert type(h).__name__ == "VAEHistory" and h.train_nelbo == h["train_nelbo"]
    assert len(h["train_nelbo"]) == 3 and len(h["test_nelbo"]) == 3 and h["seconds"] > 0 and h["cpu_seconds"] > 0
    assert h["train_nelbo"][-1] < h["train_nelbo"][0]         # it learns
    assert h["test_nelbo"][-1] < 784 * math.log(2)              # beats a coin flip per pixel (543 nats)
    x = vae.binarize(tiny_data.X_test)
    assert abs(vae.test_negative_elbo(model, x) - h["test_nelbo"][-1]) < 1e-3
    vae2, h2 = vae.train_vae(tiny_data, kind="mlp", latent_dim=4, num_epochs=3, seed=0)
    assert h2["train_nelbo"] == h["train_nelbo"]              # seeded: reproducible


def test_applications_and_quality(tiny_data):
    model, _ = vae.train_vae(tiny_data, kind="mlp", latent_dim=4, num_epochs=2, seed=0)
    x = vae.binarize(tiny_data.X_test[:8])
    noisy = vae_experiments.flip_pixels(x, 0.1, torch.Generator().manual_seed(0))
    assert 0.05 < (noisy != x).float().mean() < 0.15
    assert vae_experiments.denoise(model, noisy, 0.1, steps=2).shape == x.shape
    known = torch.ones_like(x)
    known[..., 14:, :] = 0
    filled = vae_experiments.inpaint(model, x, known, steps=3)
    torch.testing.assert_close(filled * known, x * known)   # observed pixels are kept
    q = vae_experiments.reconstruction_quality(x, x)
    assert q["psnr"] > 50 and abs(q["ssim"] - 1) < 1e-4
    q_half = vae_experiments.reconstruction_quality(torch.full_like(x, 0.5), x)
    assert abs(q_half["psnr"] - 20 * math.log10(2)) < 1e-3    # error 0.5 everywhere => PSNR = 6.02 dB
    with pytest.raises(ValueError, match="probability"):
        vae_experiments.flip_pixels(x, 1.5)


def test_autoencoder_trains(tiny_data):
    ae, h = vae.train_autoencoder(tiny_data.X_train, latent_dim=4, num_epochs=2)
    assert h["loss"][-1] < h["loss"][0]
    assert ae(_images(2)).shape == (2, 1, 28, 28) and ae.encode(_images(2)).shape == (2, 4)


# ---------------------------------------------------------------- denoising under the flip noise model

def test_flip_noise_nll_is_the_flip_likelihood():
    g = torch.Generator().manual_seed(0)
    logits = 4 * torch.randn(3, 1, 28, 28, generator=g, dtype=torch.float64)
    x = _images(3).double()
    torch.testing.assert_close(vae_experiments.flip_noise_nll(logits, x, 0.0), vae.bernoulli_nll(logits, x))
    s = torch.sigmoid(logits)
    p_obs1 = 0.8 * s + 0.2 * (1 - s)                               # kept 1, or a 0 flipped to 1
    by_hand = -(x * p_obs1.log() + (1 - x) * (1 - p_obs1).log()).sum((1, 2, 3))
    torch.testing.assert_close(vae_experiments.flip_noise_nll(logits, x, 0.2), by_hand)
    # a confident wrong pixel costs at most -log p under the noise model: the noise explains it
    one = vae_experiments.flip_noise_nll(torch.full((1, 1, 1, 1), 30.0), torch.zeros(1, 1, 1, 1), 0.2)
    assert abs(one.item() + math.log(0.2)) < 1e-6
    with pytest.raises(ValueError, match="0.5"):
        vae_experiments.flip_noise_nll(logits, x, 0.5)


def test_denoise_brings_noisy_images_closer_to_the_clean_ones(tiny_data):
    # 40 epochs on 300 MNIST digits (a few seconds): 123 nats, enough for a decoder that draws digits
    model, _ = vae.train_vae(tiny_data, kind="mlp", latent_dim=4, num_epochs=40, seed=0, eval_every_epoch=False)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = vae.binarize(tiny_data.X_test[:50])
    noisy = vae_experiments.flip_pixels(x, 0.2, torch.Generator().manual_seed(0))
    out = vae_experiments.denoise(model, noisy, 0.2, steps=30)
    assert out.shape == x.shape and 0 <= out.min() and out.max() <= 1
    err_noisy, err_out = (noisy - x).abs().mean().item(), (vae.binarize(out) - x).abs().mean().item()
    assert err_out < 0.6 * err_noisy, (err_out, err_noisy)        # far fewer wrong pixels than the noisy input
    q_noisy = vae_experiments.reconstruction_quality(noisy, x)
    assert vae_experiments.reconstruction_quality(out, x)["ssim"] > q_noisy["ssim"] + 0.1
    assert model.training                                          # its mode is restored...
    for k, v in model.state_dict().items():                        # ...and its weights are untouched
        torch.testing.assert_close(v, before[k])
