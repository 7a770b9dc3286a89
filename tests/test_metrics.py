"""Tests of textimg_lessons.metrics against direct formulas, with a tiny stand-in judge."""
import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn

from textimg_lessons.metrics import (require_images, class_coverage, class_histogram, diversity, frechet_distance,
                                     judge_confidence, judge_features, judge_frechet_distance)


def direct_frechet(a: torch.Tensor, b: torch.Tensor) -> float:
    """The textbook formula with scipy's matrix square root, in float64."""
    a, b = a.double().numpy(), b.double().numpy()
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s_a @ s_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a + s_b - 2 * covmean))


class TinyJudge(nn.Module):
    """Stand-in for judges.load_judge(): class = which of 10 horizontal bands holds the most ink."""

    def __init__(self):
        super().__init__()
        self.num_classes = 10

    def features(self, x):
        # (N, 1, 28, 28) => (N, 10): ink per band of rows (rows 0-27 in 10 bands)
        rows = x[:, 0].sum(2)  # (N, 28)
        bands = torch.stack([rows[:, (i * 28) // 10:((i + 1) * 28) // 10].sum(1) for i in range(10)], 1)
        return bands

    def forward(self, x):
        return 5.0 * self.features(x)

    def parameters(self, recurse=True):  # no weights; give metrics a device to use
        yield torch.zeros(1)


def band_images(classes):
    """One image per class id, lit in that class's band only."""
    x = torch.zeros(len(classes), 1, 28, 28)
    for n, c in enumerate(classes):
        x[n, 0, (c * 28) // 10:((c + 1) * 28) // 10] = 1.0
    return x


def test_frechet_identical_sets_is_zero():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(500, 8, generator=g)
    assert frechet_distance(a, a.clone()) == pytest.approx(0.0, abs=1e-6)


def test_frechet_shifted_gaussians_equals_squared_shift():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(400, 5, generator=g) @ torch.randn(5, 5, generator=g)
    shift = torch.tensor([1.0, -2.0, 0.5, 0.0, 3.0])
    # Same covariance, so only the mean term remains: ||shift||^2 = 1 + 4 + 0.25 + 0 + 9
    assert frechet_distance(a, a + shift) == pytest.approx(14.25, rel=1e-6)


def test_frechet_scaled_set_equals_trace():
    g = torch.Generator().manual_seed(2)
    a = torch.randn(300, 4, generator=g) @ torch.randn(4, 4, generator=g)
    # S_b = 4 S_a: Tr(S_a + 4 S_a - 2 * 2 S_a) = Tr(S_a); means are equal
    expected = float(torch.cov(a.double().T).trace())
    assert frechet_distance(a, 2 * a - a.mean(0)) == pytest.approx(expected, rel=1e-6)


def test_frechet_matches_direct_formula_on_different_sets():
    g = torch.Generator().manual_seed(3)
    a = torch.randn(200, 6, generator=g)
    b = torch.randn(150, 6, generator=g) * torch.linspace(0.5, 2, 6) + 0.3
    assert frechet_distance(a, b) == pytest.approx(direct_frechet(a, b), rel=1e-6)
    assert frechet_distance(a, b) > 0.5


def test_frechet_known_value_of_1d_gaussians():
    # N(0, 1) vs N(3, 4): (0 - 3)^2 + (1 - 2)^2 = 10 for the population; samples are close
    g = torch.Generator().manual_seed(4)
    a = torch.randn(20000, 1, generator=g)
    b = 3 + 2 * torch.randn(20000, 1, generator=g)
    assert frechet_distance(a, b) == pytest.approx(10.0, rel=0.03)


@pytest.mark.parametrize("a,b,exc,match", [
    (torch.zeros(0, 3), torch.zeros(5, 3), ValueError, "at least 2"),
    (torch.zeros(1, 3), torch.zeros(5, 3), ValueError, "at least 2"),
    (torch.randn(5, 3), torch.randn(5, 4), ValueError, "same feature extractor"),
    (torch.randn(5), torch.randn(5, 1), ValueError, "2-D"),
    (np.zeros((5, 3)), torch.randn(5, 3), TypeError, "torch.Tensor"),
    (torch.ones(5, 3, dtype=torch.long), torch.randn(5, 3), TypeError, "float"),
    (torch.full((5, 3), float("nan")), torch.randn(5, 3), ValueError, "NaN"),
])
def test_frechet_bad_input(a, b, exc, match):
    with pytest.raises(exc, match=match):
        frechet_distance(a, b)


def test_judge_frechet_uses_judge_features():
    judge = TinyJudge()
    g = torch.Generator().manual_seed(5)
    real = torch.rand(64, 1, 28, 28, generator=g)
    fake = torch.rand(48, 1, 28, 28, generator=g) * 0.5
    expected = direct_frechet(judge.features(real), judge.features(fake))
    assert judge_frechet_distance(judge, real, fake) == pytest.approx(expected, rel=1e-5)
    assert judge_frechet_distance(judge, real, real) == pytest.approx(0.0, abs=1e-4)
    assert judge_features(judge, real, batch_size=7).shape == (64, 10)


@pytest.mark.parametrize("images,exc,match", [
    (torch.rand(4, 28, 28), ValueError, r"\(N, 1, 28, 28\)"),
    (torch.rand(4, 3, 28, 28), ValueError, r"\(N, 1, 28, 28\)"),
    (torch.rand(0, 1, 28, 28), ValueError, "empty"),
    (torch.rand(4, 1, 28, 28) * 2 - 1, ValueError, r"\(x \+ 1\) / 2"),
    (torch.randint(0, 255, (4, 1, 28, 28)), TypeError, "float"),
    ([[0.0]], TypeError, "torch.Tensor"),
])
def test_wrong_image_input(images, exc, match):
    with pytest.raises(exc, match=match):
        require_images(images)
    with pytest.raises(exc, match=match):
        judge_frechet_distance(TinyJudge(), torch.rand(4, 1, 28, 28), images)


def test_class_histogram_and_coverage():
    judge = TinyJudge()
    classes = [0] * 50 + [1] * 30 + [2] * 16 + [3] * 4  # 4% of class 3: under the 5% bar
    hist = class_histogram(judge, band_images(classes))
    torch.testing.assert_close(hist, torch.tensor([0.5, 0.3, 0.16, 0.04, 0, 0, 0, 0, 0, 0]))
    assert class_coverage(hist) == 3
    assert class_coverage(hist, min_share=0.04) == 4
    assert class_coverage(torch.full((10,), 0.1)) == 10
    with pytest.raises(ValueError, match="num_classes"):
        class_histogram(judge, band_images(classes), num_classes=5)
    with pytest.raises(ValueError, match="sum to 1"):
        class_coverage(torch.tensor([3.0, 1.0]))
    with pytest.raises(ValueError, match="1-D"):
        class_coverage(torch.ones(2, 5) / 10)


def test_judge_confidence_matches_softmax():
    judge = TinyJudge()
    x = band_images([0, 5, 9])
    x[1] *= 0.3  # a fainter image: less confident
    expected = torch.softmax(judge(x).double(), 1).max(1).values.mean()
    assert judge_confidence(judge, x) == pytest.approx(float(expected), rel=1e-6)
    assert 0.1 <= judge_confidence(judge, x) <= 1.0


def test_diversity_direct_formula():
    x = torch.zeros(3, 1, 28, 28)
    x[1, 0, 0, 0] = 1.0           # distance 1 from x[0]
    x[2, 0, 0, :4] = 1.0          # distance 2 from x[0], sqrt(3) from x[1]
    assert diversity(x) == pytest.approx((1 + 2 + 3 ** 0.5) / 3, rel=1e-9)
    assert diversity(x[[0, 0, 0]]) == 0.0  # a collapsed set
    with pytest.raises(ValueError, match="at least 2"):
        diversity(x[:1])
    with pytest.raises(ValueError, match="batch"):
        diversity(torch.zeros(5))
