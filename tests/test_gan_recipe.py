"""Tests of the DCGAN recipe's ingredients in textimg_lessons.gan: hinge losses, the generator's moving
average (EMA) and its batch-norm statistics, differentiable augmentation, and their train_gan options."""
import copy

import pytest
import torch
from torch import nn

from textimg_lessons import gan


def test_hinge_losses_hand_computed():
    real, fake = torch.tensor([2.0, 0.5, -1.0]), torch.tensor([-3.0, 0.0])
    # relu(1 - l_real): 0, 0.5, 2 => mean 5/6;  relu(1 + l_fake): 0, 1 => mean 1/2
    assert gan.hinge_d_loss(real, fake).item() == pytest.approx(5 / 6 + 1 / 2)
    assert gan.hinge_g_loss(fake).item() == pytest.approx(1.5)
    # a discriminator that is right by a margin gets no loss and no gradient
    l = torch.tensor([1.5, 3.0], requires_grad=True)
    loss = gan.hinge_d_loss(l, -l)
    loss.backward()
    assert loss.item() == 0 and torch.all(l.grad == 0)


def test_ema_update_is_a_weighted_average_of_parameters_only():
    a, b = nn.BatchNorm1d(3), nn.BatchNorm1d(3)
    with torch.no_grad():
        a.weight.fill_(1.0), b.weight.fill_(3.0)
        b.running_mean.fill_(7.0)
    gan.ema_update(a, b, decay=0.75)
    assert torch.allclose(a.weight, torch.full((3,), 1.5))      # 0.75 * 1 + 0.25 * 3
    assert torch.all(a.running_mean == 0)                       # buffers are not averaged
    gan.ema_update(a, b, decay=0.0)
    assert torch.equal(a.weight, b.weight)
    with pytest.raises(ValueError, match="decay"):
        gan.ema_update(a, b, decay=1.0)


def test_recompute_batch_norm_matches_the_current_weights_and_keeps_the_global_rng():
    torch.manual_seed(0)
    G = gan.DCGANGenerator(z_dim=8, width=4)
    bn = G.project[1]
    with torch.no_grad():
        bn.running_mean.fill_(100.0), bn.running_var.fill_(100.0)  # stale statistics
    state = torch.random.get_rng_state()
    gan.recompute_batch_norm(G, num_batches=10, batch_size=200, seed=3)
    assert torch.equal(state, torch.random.get_rng_state())
    z = torch.randn(4000, 8, generator=torch.Generator().manual_seed(99))
    with torch.no_grad():
        pre = G.project[0](z)                                   # what the BN layer sees
    assert torch.allclose(bn.running_mean, pre.mean(0), atol=0.05)
    assert torch.allclose(bn.running_var, pre.var(0), rtol=0.15)
    assert bn.momentum == 0.1                                   # restored


def test_diff_augment_shifts_and_cuts_out_and_passes_gradients():
    x = torch.ones(64, 1, 28, 28, requires_grad=True)
    out = gan.diff_augment(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    vals = set(out.detach().unique().tolist())
    assert vals <= {-1.0, 0.0, 1.0} and {-1.0, 0.0} <= vals     # shifted-in background and cut-out squares
    frac_cut = (out == 0).float().mean().item()
    assert 0.05 < frac_cut < 0.3                                 # a 15x15 square of 28x28, clipped at borders
    out.sum().backward()
    assert x.grad.abs().sum() > 0
    same = gan.diff_augment(x, torch.Generator().manual_seed(0))
    assert torch.equal(out, same)


def test_train_gan_ema_returns_the_average_not_the_trained_generator():
    X = torch.rand(48, 1, 28, 28)
    G = gan.DCGANGenerator(8, 4)
    G_start = copy.deepcopy(G)
    G_avg, _, h = gan.train_gan(X, G=G, D=gan.DCGANDiscriminator(4), num_epochs=2, batch_size=8,
                                ema_decay=0.9, device="cpu")
    assert G_avg is not G
    assert h["trained_generator"] is G and not G.training        # the trained one is kept, to compare with
    assert all(p.requires_grad for p in G_avg.parameters())     # it can be trained further, like any G
    for p0, p, pa in zip(G_start.parameters(), G.parameters(), G_avg.parameters()):
        assert not torch.equal(p, pa)                           # the average lags behind the trained weights
    # decay 0: the "average" is the last step's weights
    G2 = copy.deepcopy(G_start)
    G2_avg, _, _ = gan.train_gan(X, G=G2, D=gan.DCGANDiscriminator(4), num_epochs=1, batch_size=8,
                                 ema_decay=0.0, device="cpu")
    assert all(torch.equal(p, pa) for p, pa in zip(G2.parameters(), G2_avg.parameters()))
    assert len(h["grids"]) == 2
    _, _, h_plain = gan.train_gan(X, num_epochs=1, batch_size=8, width=4, device="cpu")
    assert h_plain["trained_generator"] is None                   # no average: the returned G is the trained one


@pytest.mark.parametrize("kind", ["dcgan", "dcgan-sn"])
def test_train_gan_hinge_and_augment_run(kind):
    X = torch.rand(32, 1, 28, 28)
    G, D, h = gan.train_gan(X, kind=kind, loss="hinge", augment=True, num_epochs=1, batch_size=8, width=4,
                            betas=(0.0, 0.9), device="cpu")
    assert len(h["g_loss_step"]) == 4
    # the hinge loss of D is at most 2 + (margin violations), never the BCE's 2 log 2 start
    assert all(v >= 0 for v in h["d_loss_step"])


def test_train_gan_new_options_bad_input():
    X = torch.rand(16, 1, 28, 28)
    with pytest.raises(ValueError, match="loss must be"):
        gan.train_gan(X, loss="wasserstein")
    with pytest.raises(ValueError, match="WGAN-GP has its own loss"):
        gan.train_gan(X, kind="wgan-gp", loss="hinge")
    with pytest.raises(ValueError, match="ema_decay"):
        gan.train_gan(X, ema_decay=1.5)


def test_train_recipe_dcgan_trains_a_spectrally_normalised_hinge_gan_and_returns_its_average():
    X = torch.rand(32, 1, 28, 28)
    G = gan.DCGANGenerator(8, 4)
    G_avg, D, h = gan.train_recipe(X, "dcgan", G=G, D=None, num_epochs=1, batch_size=8, width=4, device="cpu")
    assert hasattr(D.net[0], "parametrizations")                 # spectral norm in D
    assert G_avg is not G                                        # sampling uses the moving average
    assert all(v >= 0 for v in h["d_loss_step"])                # hinge: never negative (BCE neither, WGAN yes)
    assert h["kind"] == "dcgan"
