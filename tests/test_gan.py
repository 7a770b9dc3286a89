"""Tests of textimg_lessons.gan: losses against hand computations, the gradient penalty against its
analytic value, model shapes/ranges/parameter counts, input checks and a tiny training run."""
import math
from pathlib import Path

import nbformat
import pytest
import torch
from torch import nn

from textimg_lessons import gan
from textimg_lessons.checks import CheckFailed


def log_sigmoid(v):
    return math.log(1 / (1 + math.exp(-v)))


# ---------------------------------------------------------------- losses

def test_d_loss_hand_computed():
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5])
    expected = -(log_sigmoid(2.0) + log_sigmoid(-1.0)) / 2 - math.log(1 - 1 / (1 + math.exp(-0.5)))
    assert gan.d_loss(real, fake).item() == pytest.approx(expected, rel=1e-6)
    # D(x) = D(G(z)) = 1/2: -(log 1/2 + log 1/2) = 2 log 2
    assert gan.d_loss(torch.zeros(4), torch.zeros(3)).item() == pytest.approx(2 * math.log(2), rel=1e-6)


def test_d_loss_rewards_the_right_labels():
    confident_right = gan.d_loss(torch.full((8,), 5.0), torch.full((8,), -5.0))
    swapped = gan.d_loss(torch.full((8,), -5.0), torch.full((8,), 5.0))  # what the swapped-label seed rewards
    assert confident_right.item() < 0.02 < 9.0 < swapped.item()


def test_d_loss_shape_safe_and_stable():
    # (N, 1) logits get (N, 1) targets: no broadcasting to (N, N)
    col = gan.d_loss(torch.tensor([[1.0], [2.0]]), torch.tensor([[0.0], [-1.0]]))
    flat = gan.d_loss(torch.tensor([1.0, 2.0]), torch.tensor([0.0, -1.0]))
    assert col.item() == pytest.approx(flat.item())
    # logits far beyond float32's sigmoid saturation stay finite
    assert math.isfinite(gan.d_loss(torch.tensor([200.0]), torch.tensor([200.0])).item())
    assert gan.d_loss(torch.tensor([200.0]), torch.tensor([200.0])).item() == pytest.approx(200.0)


def test_generator_losses_hand_computed():
    l = torch.tensor([-3.0, 0.0, 1.5])
    ns = -sum(log_sigmoid(v) for v in l.tolist()) / 3
    mm = sum(math.log(1 - 1 / (1 + math.exp(-v))) for v in l.tolist()) / 3
    assert gan.g_loss_nonsaturating(l).item() == pytest.approx(ns, rel=1e-6)
    assert gan.g_loss_minimax(l).item() == pytest.approx(mm, rel=1e-6)


def test_nonsaturating_gradient_is_large_where_minimax_vanishes():
    # D(G(z)) = sigmoid(-6) ~ 0.0025: the discriminator confidently rejects the fake
    l1 = torch.tensor([-6.0], requires_grad=True)
    l2 = torch.tensor([-6.0], requires_grad=True)
    gan.g_loss_nonsaturating(l1).backward()
    gan.g_loss_minimax(l2).backward()
    d = torch.sigmoid(torch.tensor(-6.0)).item()
    assert l1.grad.item() == pytest.approx(-(1 - d), rel=1e-5)  # d/dl softplus(-l) = -(1 - D)
    assert l2.grad.item() == pytest.approx(-d, rel=1e-5)        # d/dl -softplus(l) = -D
    assert abs(l1.grad.item()) > 100 * abs(l2.grad.item())


def test_wgan_losses():
    r, f = torch.tensor([1.0, 3.0]), torch.tensor([-2.0, 0.0, 2.0])
    assert gan.wgan_critic_loss(r, f).item() == pytest.approx(0.0 - 2.0)
    assert gan.wgan_generator_loss(f).item() == pytest.approx(0.0)


@pytest.mark.parametrize("fn", [gan.g_loss_nonsaturating, gan.g_loss_minimax, gan.wgan_generator_loss])
def test_loss_bad_input(fn):
    with pytest.raises(ValueError, match="empty"):
        fn(torch.tensor([]))
    with pytest.raises(TypeError, match="float"):
        fn(torch.tensor([1, 2]))
    with pytest.raises(TypeError, match="torch.Tensor"):
        fn([0.5])


def test_d_loss_bad_input():
    with pytest.raises(ValueError, match="real_logits is empty"):
        gan.d_loss(torch.tensor([]), torch.tensor([0.0]))
    with pytest.raises(ValueError, match="fake_logits is empty"):
        gan.d_loss(torch.tensor([0.0]), torch.tensor([]))


# ---------------------------------------------------------------- gradient penalty

class LinearCritic(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x):
        return x.flatten(1) @ self.w + 0.3  # (N, 784) => (N,)


def test_gradient_penalty_of_linear_critic_is_analytic():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(784, generator=g, dtype=torch.float64) * 0.1
    critic = LinearCritic(w.clone())
    real = torch.rand(5, 1, 28, 28, generator=g, dtype=torch.float64)
    fake = torch.rand(5, 1, 28, 28, generator=g, dtype=torch.float64)
    gp = gan.gradient_penalty(critic, real, fake)
    # grad_x (w.x + b) = w everywhere, whatever eps: penalty (||w|| - 1)^2
    norm = w.norm().item()
    assert gp.item() == pytest.approx((norm - 1) ** 2, rel=1e-10)
    # it is differentiable with respect to the critic's weights: d/dw = 2 (||w|| - 1) w / ||w||
    gp.backward()
    torch.testing.assert_close(critic.w.grad, 2 * (norm - 1) * w / norm)


def test_gradient_penalty_unit_norm_critic_is_zero_and_eps_is_used():
    w = torch.zeros(784, dtype=torch.float64)
    w[0] = 1.0
    critic = LinearCritic(w)
    x = torch.rand(3, 1, 28, 28, dtype=torch.float64)
    assert gan.gradient_penalty(critic, x, x.flip(0)).item() == pytest.approx(0.0, abs=1e-12)
    # a quadratic critic f(x) = sum(x^2): grad 2 x_hat, so eps matters
    quad = lambda x: (x ** 2).flatten(1).sum(1)
    real, fake = torch.full((2, 1, 28, 28), 1.0), torch.zeros(2, 1, 28, 28)
    eps = torch.tensor([0.25, 0.5])
    norms = 2 * eps * 28  # ||2 eps * ones(784)|| = 2 eps * 28
    expected = ((norms - 1) ** 2).mean()
    assert gan.gradient_penalty(quad, real, fake, eps=eps).item() == pytest.approx(expected.item(), rel=1e-5)


def test_gradient_penalty_bad_input():
    critic = LinearCritic(torch.zeros(784))
    with pytest.raises(ValueError, match="same shape"):
        gan.gradient_penalty(critic, torch.rand(4, 1, 28, 28), torch.rand(3, 1, 28, 28))
    with pytest.raises(ValueError, match="one mixing weight per sample"):
        gan.gradient_penalty(critic, torch.rand(4, 1, 28, 28), torch.rand(4, 1, 28, 28), eps=torch.rand(3))
    with pytest.raises(ValueError, match="non-empty"):
        gan.gradient_penalty(critic, torch.rand(0, 1, 28, 28), torch.rand(0, 1, 28, 28))


# ---------------------------------------------------------------- models

def linear_params(i, o, bias=True):
    return i * o + (o if bias else 0)


def test_parameter_counts():
    mlp_g = (linear_params(100, 256) + linear_params(256, 512) + linear_params(512, 1024)
             + linear_params(1024, 784))
    mlp_d = linear_params(784, 1024) + linear_params(1024, 512) + linear_params(512, 256) + linear_params(256, 1)
    assert gan.count_parameters(gan.MLPGenerator()) == mlp_g == 1_486_352
    assert gan.count_parameters(gan.MLPDiscriminator()) == mlp_d == 1_460_225
    w = 32
    dc_g = (linear_params(64, 2 * w * 49, bias=False) + 2 * 2 * w * 49
            + 2 * w * w * 16 + 2 * w + w * 16 + 1)
    dc_d = (16 * w + w) + (w * 2 * w * 16 + 2 * w) + linear_params(2 * w * 49, 1)
    assert gan.count_parameters(gan.DCGANGenerator(64, w)) == dc_g
    assert gan.count_parameters(gan.DCGANDiscriminator(w)) == dc_d
    # spectral norm reparametrises the weights but adds no trainable parameters
    assert gan.count_parameters(gan.DCGANDiscriminator(w, spectral_norm=True)) == dc_d


@pytest.mark.parametrize("G", [gan.MLPGenerator(z_dim=10, hidden=(16, 32)), gan.DCGANGenerator(z_dim=10, width=4)])
def test_generator_shapes_and_range(G):
    out = G(torch.randn(6, 10) * 10)  # large z saturates tanh: still inside [-1, 1]
    assert out.shape == (6, 1, 28, 28)
    assert out.min() >= -1 and out.max() <= 1
    with pytest.raises(ValueError, match=r"\(N, 10\)"):
        G(torch.randn(6, 11))
    with pytest.raises(ValueError, match="empty"):
        G(torch.randn(0, 10))


@pytest.mark.parametrize("D", [gan.MLPDiscriminator(hidden=(16, 8)), gan.DCGANDiscriminator(4),
                               gan.DCGANDiscriminator(4, spectral_norm=True)])
def test_discriminator_returns_logits_per_image(D):
    out = D(torch.rand(5, 1, 28, 28))
    assert out.shape == (5,)
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        D(torch.rand(5, 784))


def test_spectral_norm_bounds_largest_singular_value():
    torch.manual_seed(0)  # power iteration from a random start: without a seed, 30 steps fell short once
    D = gan.DCGANDiscriminator(8, spectral_norm=True)
    x = torch.rand(4, 1, 28, 28)
    for _ in range(30):  # every training-mode forward runs one power iteration
        D(x)
    for layer in (D.net[0], D.net[2], D.net[5]):
        sigma = torch.linalg.matrix_norm(layer.weight.detach().flatten(1), ord=2).item()
        assert sigma == pytest.approx(1.0, abs=0.02)


def test_sample_is_reproducible_and_in_unit_range():
    G = gan.DCGANGenerator(z_dim=8, width=4)
    a, b = gan.sample(G, 7, seed=3), gan.sample(G, 7, seed=3)
    assert a.shape == (7, 1, 28, 28) and a.min() >= 0 and a.max() <= 1
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, gan.sample(G, 7, seed=4))
    assert G.training  # mode restored
    with pytest.raises(ValueError, match="positive int"):
        gan.sample(G, 0)


# ---------------------------------------------------------------- training

@pytest.mark.parametrize("kind", gan.KINDS)
def test_train_gan_tiny_run(kind):
    X = torch.rand(40, 1, 28, 28)
    seen = []
    G, D, h = gan.train_gan(X, kind=kind, num_epochs=2, batch_size=8, width=0.02 if kind == "mlp" else 4,
                            n_critic=2, num_grid=4, device="cpu", callback=lambda e, G, h: seen.append(e))
    assert seen == [0, 1]
    assert len(h["d_loss"]) == len(h["g_loss"]) == len(h["grids"]) == 2
    assert len(h["d_loss_step"]) == 10  # 40 // 8 batches x 2 epochs
    assert len(h["g_loss_step"]) == (5 if kind == "wgan-gp" else 10)  # every n_critic = 2 steps
    assert all(math.isfinite(v) for v in h["d_loss"] + h["g_loss"])
    assert h["grids"][0].shape == (4, 1, 28, 28)
    assert h["seconds"] > 0


def test_train_gan_changes_the_generator():
    X = torch.rand(32, 1, 28, 28)
    G0 = gan.DCGANGenerator(8, 4)
    before = gan.sample(G0, 4)
    G, _, _ = gan.train_gan(X, G=G0, D=gan.DCGANDiscriminator(4), num_epochs=1, batch_size=8, device="cpu")
    assert not torch.allclose(before, gan.sample(G, 4))


def test_train_gan_bad_input():
    X = torch.rand(16, 1, 28, 28)
    with pytest.raises(ValueError, match="kind must be one of"):
        gan.train_gan(X, kind="vae")
    with pytest.raises(ValueError, match="batch_size"):
        gan.train_gan(X, batch_size=32)
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        gan.train_gan(torch.rand(16, 784))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        gan.train_gan(X * 2 - 1)
    with pytest.raises(ValueError, match="g_loss"):
        gan.train_gan(X, g_loss="hinge")
    with pytest.raises(ValueError, match="num_epochs"):
        gan.train_gan(X, num_epochs=0)
    with pytest.raises(TypeError, match="ImageData"):
        gan.train_gan([[0.0]])


def test_d_lr_zero_freezes_the_discriminator():
    X = torch.rand(32, 1, 28, 28)
    D = gan.DCGANDiscriminator(4)
    before = [p.detach().clone() for p in D.parameters()]
    gan.train_gan(X, G=gan.DCGANGenerator(8, 4), D=D, d_lr=0.0, num_epochs=1, batch_size=8, device="cpu")
    assert all(torch.equal(a, b) for a, b in zip(before, D.parameters()))


def test_recipe_and_kinds():
    for kind in gan.KINDS:
        r = gan.recipe(kind)
        assert r["kind"] == kind and r["num_epochs"] >= 1
    with pytest.raises(ValueError, match="kind must be one of"):
        gan.recipe("stylegan")
    G, D = gan.make_models("dcgan-sn")
    assert hasattr(D.net[0], "parametrizations")  # spectral norm is on
    assert not hasattr(gan.make_models("dcgan")[1].net[0], "parametrizations")
    assert hasattr(gan.make_models("dcgan", spectral_norm=True)[1].net[0], "parametrizations")
    # the DCGAN's own recipe; the MLP GAN, the targets' baseline, keeps the articles' optimiser settings
    dc = gan.recipe("dcgan")
    assert (dc["kind"], dc["spectral_norm"], dc["loss"], dc["lr"], dc["betas"], dc["ema_decay"]) == \
        ("dcgan", True, "hinge", 5e-4, (0.0, 0.9), 0.999)
    mlp = gan.recipe("mlp")
    assert mlp["lr"] == 2e-4 and "loss" not in mlp and "ema_decay" not in mlp and "betas" not in mlp
    G, D = gan.make_models("mlp", width=0.5)
    assert G.net[0].out_features == 128


# ---------------------------------------------------------------- the chapter's exercise tests, attacked
# Each wrong answer below breaks exactly one requirement the exercise text states; the notebook's VISIBLE
# test cell must reject it with a message naming that requirement (hidden tests only vary the inputs).

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "03_gan.ipynb"


def _cells():
    return {c.get("id"): c.source for c in nbformat.read(NOTEBOOK, as_version=4).cells}


def _run_exercise_test(answer: str, test_id: str, hidden: bool = False):
    """Run the notebook's imports, an answer and the visible (or visible + hidden) part of a test cell."""
    cells = _cells()
    ns: dict = {}
    exec("\n".join(l for l in cells["imports"].splitlines() if not l.startswith("%")), ns)
    exec(answer, ns)
    visible, _, rest = cells[test_id].partition("### BEGIN HIDDEN TESTS")
    exec(visible + (rest.replace("### END HIDDEN TESTS", "") if hidden else ""), ns)


def _solution(cell_id: str) -> str:
    return "\n".join(l for l in _cells()[cell_id].splitlines() if "### " not in l)


@pytest.mark.parametrize("solution_id, test_id", [("ex1-solution", "ex1-test"), ("ex2-solution", "ex2-test"),
                                                  ("ex3-solution", "ex3-test")])
def test_reference_answers_pass_visible_and_hidden_tests(solution_id, test_id, capsys):
    _run_exercise_test(_solution(solution_id), test_id, hidden=True)
    assert "[OK]" in capsys.readouterr().out


D_LOSS_ATTACKS = {
    "labels are swapped": """
def d_loss_ex(r, f):
    return (F.binary_cross_entropy_with_logits(r, torch.zeros_like(r))
            + F.binary_cross_entropy_with_logits(f, torch.ones_like(f)))""",
    "the mean over the real logits plus the mean over the fake logits": """
def d_loss_ex(r, f):  # one mean over all N + M logits
    targets = torch.cat([torch.ones_like(r), torch.zeros_like(f)])
    return F.binary_cross_entropy_with_logits(torch.cat([r, f]), targets)""",
    "L_D at logits of 150 (1 - sigmoid(150) is 0 in float32": """
def d_loss_ex(r, f):
    return -torch.log(torch.sigmoid(r)).mean() - torch.log(1 - torch.sigmoid(f)).mean()""",
    "d_loss_ex with (N, 1) logits (build the targets with ones_like": """
def d_loss_ex(r, f):  # (N,) targets, as in the article
    return (F.binary_cross_entropy_with_logits(r, torch.ones(len(r)))
            + F.binary_cross_entropy_with_logits(f, torch.zeros(len(f))))""",
    "L_D (a scalar tensor): shape (1,)": """
def d_loss_ex(r, f):
    return gan.d_loss(r, f).view(1)""",
}

G_LOSS_ATTACKS = {
    "that is the minimax loss": """
def g_loss_nonsaturating_ex(l):
    return -F.binary_cross_entropy_with_logits(l, torch.zeros_like(l))""",
    "L_G at logits -200 and 200 (never compute sigmoid": """
def g_loss_nonsaturating_ex(l):  # -log(sigmoid(l)) literally
    return -torch.log(torch.sigmoid(l)).mean()""",
    "L_G at logits -200 and 200 (never compute sigmoid: ": """
def g_loss_nonsaturating_ex(l):  # softplus by hand: exp(200) overflows
    return torch.log(1 + torch.exp(-l)).mean()""",
    "the loss must stay connected to the logits": """
def g_loss_nonsaturating_ex(l):  # a number, cut from the graph
    return torch.tensor(F.softplus(-l).mean().item())""",
}

GP_ATTACKS = {
    "eps weights the generated images": """
def gradient_penalty_ex(critic, real, fake, eps):
    eps = eps.view(-1, 1, 1, 1)
    x_hat = (eps * fake + (1 - eps) * real).detach().requires_grad_(True)
    grad, = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()""",
    "pass it create_graph=True": """
def gradient_penalty_ex(critic, real, fake, eps):
    eps = eps.view(-1, 1, 1, 1)
    x_hat = (eps * real + (1 - eps) * fake).detach().requires_grad_(True)
    grad, = torch.autograd.grad(critic(x_hat).sum(), x_hat)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()""",
    "the norm over all 784 pixels of each image, then the mean over images": """
def gradient_penalty_ex(critic, real, fake, eps):  # one norm over the whole batch
    eps = eps.view(-1, 1, 1, 1)
    x_hat = (eps * real + (1 - eps) * fake).detach().requires_grad_(True)
    grad, = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return (grad.norm() - 1) ** 2""",
    "check that the inputs have requires_grad=True": """
def gradient_penalty_ex(critic, real, fake, eps):
    eps = eps.view(-1, 1, 1, 1)
    x_hat = eps * real + (1 - eps) * fake
    grad, = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()""",
}


@pytest.mark.parametrize("test_id, attacks", [("ex1-test", D_LOSS_ATTACKS), ("ex2-test", G_LOSS_ATTACKS),
                                              ("ex3-test", GP_ATTACKS)], ids=["d_loss", "g_loss", "penalty"])
def test_visible_tests_reject_each_broken_requirement_with_its_message(test_id, attacks):
    for expected, answer in attacks.items():
        with pytest.raises(CheckFailed) as failed:
            _run_exercise_test(answer, test_id)
        assert expected in str(failed.value), (answer, str(failed.value))


# ---------------------------------------------------------------- a convolution's operator norm

def dense_conv_norm(conv, shape):
    """Exact operator norm: the convolution (no bias) written as a matrix, one column per input pixel."""
    n = math.prod(shape)
    basis = torch.eye(n, dtype=torch.float64).view(n, *shape)
    w = conv.weight.detach().double()
    cols = nn.functional.conv2d(basis, w, stride=conv.stride, padding=conv.padding, dilation=conv.dilation)
    return torch.linalg.matrix_norm(cols.flatten(1), ord=2).item()


@pytest.mark.parametrize("settings, shape", [(dict(kernel_size=4, stride=2, padding=1), (2, 8, 8)),
                                             (dict(kernel_size=3, stride=1, padding=1), (2, 6, 6)),
                                             (dict(kernel_size=3, stride=2, padding=0), (2, 7, 7)),
                                             (dict(kernel_size=3, stride=1, padding=2, dilation=2), (2, 7, 5))])
def test_conv_operator_norm_matches_the_dense_matrix(settings, shape):
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 3, **settings)
    assert gan.conv_operator_norm(conv, shape) == pytest.approx(dense_conv_norm(conv, shape), rel=1e-6)


def test_spectral_norm_bounds_the_reshaped_kernel_not_the_convolution():
    torch.manual_seed(0)
    conv = nn.utils.parametrizations.spectral_norm(nn.Conv2d(1, 4, 4, stride=2, padding=1))
    for _ in range(50):  # converge the layer's own power iteration
        conv(torch.rand(2, 1, 12, 12))
    reshaped = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2).item()
    operator = gan.conv_operator_norm(conv, (1, 12, 12))
    assert reshaped == pytest.approx(1.0, abs=1e-3)
    # 4x4 windows at stride 2: each pixel is in at most 4 windows, so the norm is between 1 and sqrt(4) = 2
    assert 1.05 < operator <= 2 * reshaped + 1e-6
    assert operator == pytest.approx(dense_conv_norm(conv, (1, 12, 12)), rel=1e-5)


def test_conv_operator_norm_of_non_overlapping_windows_is_the_kernels():
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 3, 2, stride=2)  # each pixel in exactly one window: the matrix is block diagonal
    reshaped = torch.linalg.matrix_norm(conv.weight.detach().double().flatten(1), ord=2).item()
    assert gan.conv_operator_norm(conv, (2, 6, 6)) == pytest.approx(reshaped, rel=1e-6)


def test_conv_operator_norm_leaves_a_spectral_norm_layer_unchanged():
    conv = nn.utils.parametrizations.spectral_norm(nn.Conv2d(1, 4, 4, stride=2, padding=1))
    conv.train()
    before = conv.parametrizations.weight[0]._u.clone()
    gan.conv_operator_norm(conv, (1, 12, 12))
    assert torch.equal(before, conv.parametrizations.weight[0]._u) and conv.training


def test_conv_operator_norm_bad_input():
    with pytest.raises(TypeError, match="nn.Conv2d"):
        gan.conv_operator_norm(nn.Linear(3, 3), (1, 3, 3))
    with pytest.raises(ValueError, match="in_channels"):
        gan.conv_operator_norm(nn.Conv2d(2, 3, 3), (1, 8, 8))
    with pytest.raises(ValueError, match="numeric zero padding"):
        gan.conv_operator_norm(nn.Conv2d(2, 3, 3, padding="same"), (2, 8, 8))
