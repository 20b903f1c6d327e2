"""Mode coverage (PacGAN, Lin et al. 2018): modes captured, high-quality share and reverse KL, on point sets
whose answers are known by hand."""

import math

import pytest
import torch

from gantrain.data.mixtures import GaussianMixture, grid25, grid_means, ring8, ring_means
from gantrain.metrics.modes import mode_coverage

GRID = GaussianMixture(grid_means(5, 2.0), 0.05)
RING = GaussianMixture(ring_means(8), 0.01)


def test_one_point_on_every_mean_captures_all_modes_with_zero_reverse_kl():
    result = mode_coverage(GRID.means.repeat(4, 1), GRID)
    assert result == {"modes": 25, "num_modes": 25, "hq_fraction": 1.0, "reverse_kl": pytest.approx(0.0, abs=1e-12)}


def test_a_single_mode_gives_reverse_kl_log_m():
    points = RING.means[3] + torch.tensor([[0.01, 0.0], [0.0, -0.02], [0.0, 0.0]])
    result = mode_coverage(points, RING)
    assert result["modes"] == 1 and result["hq_fraction"] == 1.0
    assert result["reverse_kl"] == pytest.approx(math.log(8))


def test_unequal_histogram_reverse_kl_is_kl_to_uniform():
    # 3 points on mode 0 and 1 on mode 5: p̂ = (3/4, 1/4) → Σ p log(8 p) = 3/4 log 6 + 1/4 log 2
    points = RING.means[[0, 0, 0, 5]]
    result = mode_coverage(points, RING)
    assert result["modes"] == 2
    assert result["reverse_kl"] == pytest.approx(0.75 * math.log(6) + 0.25 * math.log(2))


def test_points_off_mode_are_low_quality_and_left_out_of_the_histogram():
    # 2 on mode 0 and 2 on mode 1 (HQ), then 4 points 3.5 std from mode 2's mean (nearest to it, not HQ)
    offsets = 3.5 * GRID.std * torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    points = torch.cat([GRID.means[[0, 0, 1, 1]], GRID.means[2] + offsets])
    result = mode_coverage(points, GRID)
    assert result["modes"] == 2
    assert result["hq_fraction"] == 0.5
    assert result["reverse_kl"] == pytest.approx(math.log(25 / 2))  # p̂ = (1/2, 1/2) over 25 modes


def test_the_high_quality_radius_is_three_std_around_the_nearest_mean():
    mean = GRID.means[12]  # (0, 0); its neighbours are 2 away
    inside, outside = mean + torch.tensor([2.9 * 0.05, 0.0]), mean + torch.tensor([0.0, 3.1 * 0.05])
    assert mode_coverage(torch.stack([inside]), GRID)["hq_fraction"] == 1.0
    assert mode_coverage(torch.stack([outside]), GRID)["hq_fraction"] == 0.0
    between = mode_coverage(torch.tensor([[0.99, 0.0], [1.01, 0.0]]), GRID)  # midway between two means
    assert between["modes"] == 0 and between["hq_fraction"] == 0.0 and math.isnan(between["reverse_kl"])


@pytest.mark.parametrize("make", [ring8, grid25])
def test_true_samples_score_the_closed_form(make):
    # The radius of a 2D isotropic Gaussian is Rayleigh: P(r < 3σ) = 1 − exp(−9/2) ≈ 0.98889.
    bundle = make(n=40_000, heldout=1, seed=0)
    result = mode_coverage(bundle.train.tensors()["image"], bundle.mixture)
    assert result["modes"] == len(bundle.mixture.means)
    assert result["hq_fraction"] == pytest.approx(1 - math.exp(-4.5), abs=0.002)  # ~ 4 binomial std
    # a uniform histogram of 40,000 points over M modes: KL ≈ (M − 1) / (2 n), tiny
    assert 0 <= result["reverse_kl"] < 0.002


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="N×2"):
        mode_coverage(torch.zeros(5, 3), GRID)
    with pytest.raises(ValueError, match="N×2"):
        mode_coverage(torch.zeros(0, 2), GRID)
