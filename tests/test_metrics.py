"""Metric functions against closed forms and hand-made point sets with known answers."""

import math

import numpy as np
import pytest
import torch

from gantrain.metrics import (
    GaussianStats,
    class_histogram_kl,
    density_coverage,
    frechet_distance,
    frechet_distance_sqrtm,
    gaussian_stats,
    inception_score,
    kernel_inception_distance,
    precision_recall,
)


def _random_pair(d: int, n: int, seed: int = 0):
    """Two correlated, differently shaped feature sets (non-commuting covariances)."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, d, generator=g, dtype=torch.float64) @ torch.randn(d, d, generator=g, dtype=torch.float64) / math.sqrt(d)
    b = torch.randn(n, d, generator=g, dtype=torch.float64) @ torch.randn(d, d, generator=g, dtype=torch.float64) / math.sqrt(d)
    return a, b + 0.3


# ------------------------------------------------------------------------------------------------ FID
def test_fid_of_a_set_with_itself_is_zero():
    x, _ = _random_pair(32, 500)
    s = gaussian_stats(x)
    assert abs(frechet_distance(s, gaussian_stats(x))) < 1e-9 * np.trace(s.sigma)


def test_stats_are_float64_mean_and_unbiased_covariance():
    x = torch.randn(50, 3)
    s = gaussian_stats(x)
    assert s.mu.dtype == np.float64 and s.sigma.dtype == np.float64
    np.testing.assert_allclose(s.sigma, np.cov(x.double().numpy(), rowvar=False, ddof=1))


def test_fid_matches_the_closed_form_of_two_2d_gaussians():
    # For 2×2 PSD products, Tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)) (sum of the square roots of 2 eigenvalues).
    s1 = np.array([[2.0, 0.8], [0.8, 1.0]])
    s2 = np.array([[0.5, -0.3], [-0.3, 1.5]])
    mu1, mu2 = np.array([0.0, 1.0]), np.array([2.0, -1.0])
    product = s1 @ s2
    trace_sqrt = math.sqrt(np.trace(product) + 2 * math.sqrt(np.linalg.det(product)))
    closed = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * trace_sqrt
    assert frechet_distance(GaussianStats(mu1, s1), GaussianStats(mu2, s2)) == pytest.approx(closed, rel=1e-12)
    # and estimated from samples of the two Gaussians, to sampling error
    rng = np.random.default_rng(0)
    x = rng.multivariate_normal(mu1, s1, 200_000)
    y = rng.multivariate_normal(mu2, s2, 200_000)
    assert frechet_distance(gaussian_stats(x), gaussian_stats(y)) == pytest.approx(closed, rel=0.01)


def test_fid_of_diagonal_gaussians_is_mean_distance_plus_std_differences():
    var1, var2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
    mu1, mu2 = np.zeros(3), np.array([1.0, 2.0, 2.0])
    closed = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2)
    got = frechet_distance(GaussianStats(mu1, np.diag(var1)), GaussianStats(mu2, np.diag(var2)))
    assert got == pytest.approx(closed, rel=1e-12)


@pytest.mark.parametrize("d", [64, 256])
def test_fid_agrees_with_the_sqrtm_reference(d):
    a, b = _random_pair(d, 2 * d + 100, seed=d)
    sa, sb = gaussian_stats(a), gaussian_stats(b)
    ours, reference = frechet_distance(sa, sb), frechet_distance_sqrtm(sa, sb)
    assert abs(ours - reference) / reference < 1e-6


@pytest.mark.slow
@pytest.mark.parametrize("d", [512, 2048])
def test_fid_agrees_with_the_sqrtm_reference_up_to_2048_dimensions(d):
    test_fid_agrees_with_the_sqrtm_reference(d)


def test_fid_handles_singular_covariances():
    # fewer samples than dimensions: Σ is singular; clipping round-off eigenvalues keeps the value finite
    x, y = _random_pair(64, 40)
    assert np.isfinite(frechet_distance(gaussian_stats(x), gaussian_stats(y)))
    s = gaussian_stats(x)  # √ of round-off eigenvalues (~1e-15) leaves ~1e-8 of the trace
    assert abs(frechet_distance(s, gaussian_stats(x))) < 1e-7 * np.trace(s.sigma)


# ------------------------------------------------------------------------------------------------ IS
def test_inception_score_is_the_number_of_classes_for_confident_uniform_predictions():
    classes = 10
    logits = 50.0 * torch.nn.functional.one_hot(torch.arange(1000) % classes, classes).float()
    mean, std = inception_score(logits, splits=10)
    assert mean == pytest.approx(classes, rel=1e-9) and std < 1e-9


def test_inception_score_is_one_for_a_single_class_or_uninformative_predictions():
    one_class = torch.zeros(500, 10)
    one_class[:, 3] = 50.0
    assert inception_score(one_class)[0] == pytest.approx(1.0, abs=1e-9)
    assert inception_score(torch.zeros(500, 10))[0] == pytest.approx(1.0, abs=1e-12)


def test_inception_score_of_half_confident_predictions_follows_the_definition():
    # p(y|x) = (0.5, 0.5, 0, …) for half the samples, (…, 0.5, 0.5) for the other: KL = log 2 each → IS = 2
    logits = torch.full((200, 4), -1e4)
    logits[::2, :2] = 0.0
    logits[1::2, 2:] = 0.0
    assert inception_score(logits, splits=2)[0] == pytest.approx(2.0, rel=1e-9)


# ------------------------------------------------------------------------------------------------ KID
def test_kid_is_near_zero_for_one_distribution_and_positive_for_a_shift():
    g = torch.Generator().manual_seed(0)
    real, same = torch.randn(600, 16, generator=g), torch.randn(600, 16, generator=g)
    shifted = torch.randn(600, 16, generator=g) + 0.5
    kid_same, std_same = kernel_inception_distance(real, same, subsets=10, subset_size=300)
    kid_shift, _ = kernel_inception_distance(real, shifted, subsets=10, subset_size=300)
    assert abs(kid_same) < 3 * std_same + 1e-3
    assert kid_shift > 0.05 and kid_shift > 20 * abs(kid_same)


def test_kid_estimator_is_the_unbiased_mmd2_of_the_cubic_kernel():
    x = torch.tensor([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    y = torch.tensor([[2.0, 0.0], [0.0, 0.5], [1.0, 2.0]], dtype=torch.float64)
    k = lambda a, b: (a @ b / 2 + 1) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(3) for j in range(3) if i != j) / 6
    yy = sum(k(y[i], y[j]) for i in range(3) for j in range(3) if i != j) / 6
    xy = sum(k(x[i], y[j]) for i in range(3) for j in range(3)) / 9
    mean, std = kernel_inception_distance(x, y, subsets=5, subset_size=3)  # every subset is the whole set
    assert mean == pytest.approx(float(xx + yy - 2 * xy), rel=1e-12) and std == pytest.approx(0.0, abs=1e-12)


# ------------------------------------------------------------------------------------------------ precision, recall, density, coverage
REAL = torch.tensor([[0.0], [1.0], [2.0], [3.0]], dtype=torch.float64)  # 1-NN radius 1 each: manifold [-1, 4]
COLLAPSED = torch.tensor([[0.1], [0.25], [0.4]], dtype=torch.float64)  # 1-NN radius 0.15 each


def test_precision_recall_of_a_collapsed_generator():
    # every fake lies in the real manifold; of the real points only 0 lies within 0.15 of a fake
    assert precision_recall(REAL, COLLAPSED, k=1) == (1.0, 0.25)


def test_precision_counts_fakes_off_the_real_manifold():
    fake = torch.tensor([[0.5], [3.5], [10.0], [-5.0]], dtype=torch.float64)
    precision, recall = precision_recall(REAL, fake, k=1)
    assert precision == 0.5
    assert recall == 1.0  # the outliers' huge balls cover every real point (the paper's known caveat)


def test_density_and_coverage_of_a_collapsed_generator():
    # each fake lies in the balls of real 0 and real 1: density = 6 / (1·3) = 2; reals 0 and 1 have a fake
    # within radius 1, reals 2 and 3 do not: coverage 1/2
    assert density_coverage(REAL, COLLAPSED, k=1) == (2.0, 0.5)


def test_manifold_metrics_with_the_default_k_on_a_grid():
    # a 5×5 unit grid: the 3rd nearest neighbour is 1 away everywhere (4 neighbours at 1 in the interior,
    # 2–3 at 1 on the border); fakes at the centre of each cell are √0.5 ≈ 0.71 from 4 reals
    grid = torch.cartesian_prod(torch.arange(5.0), torch.arange(5.0)).double()
    centres = grid[(grid[:, 0] < 4) & (grid[:, 1] < 4)] + 0.5
    precision, recall = precision_recall(grid, centres, k=3)
    assert precision == 1.0
    # the cell centres' 3rd neighbour is 1 away: each real within 0.71 of a centre, i.e. all of them
    assert recall == 1.0
    far = centres + 10.0
    assert precision_recall(grid, far, k=3) == (0.0, 0.0)
    assert density_coverage(grid, far, k=5) == (0.0, 0.0)


def test_density_is_about_one_and_coverage_high_for_one_distribution():
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(2000, 8, generator=g), torch.randn(2000, 8, generator=g)
    density, coverage = density_coverage(real, fake, k=5)
    assert 0.9 < density < 1.1  # Naeem et al.: E[density] = 1 for identical distributions
    assert coverage > 0.95  # 1 − 2^-k in the large-sample limit (≈ 0.97 for k = 5)


def test_class_histogram_kl():
    uniform = torch.nn.functional.one_hot(torch.arange(100) % 10, 10).float()
    single = torch.nn.functional.one_hot(torch.zeros(100, dtype=torch.long), 10).float()
    assert class_histogram_kl(uniform) == pytest.approx(0.0, abs=1e-12)
    assert class_histogram_kl(single) == pytest.approx(math.log(10), rel=1e-12)


def test_the_cache_is_written_into_a_folder_that_does_not_exist_yet(tmp_path):
    """A fresh machine has no ~/.cache/gantrain: the first cached classifier creates it."""
    from gantrain import checkpoint
    from gantrain.metrics.features import save_cached

    path = tmp_path / "new" / "cache" / "features.pt"
    save_cached({"w": torch.arange(3.0)}, path)
    assert torch.equal(checkpoint.load(path)["w"], torch.arange(3.0))
    assert [p.name for p in path.parent.iterdir()] == ["features.pt"]
