"""The losses against GAN theory on 1D Gaussians: optimal discriminator and game value (Goodfellow et al. 2014,
Prop. 1 and Thm. 1), f-divergence estimation (Nowozin et al. 2016), Wasserstein-1 (Gulrajani et al. 2017).

Small networks, a few hundred Adam steps on fresh samples, fixed seeds; the truths come from closed forms or
numerical integration (scipy.integrate.quad) of the densities, independent of the code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats
from torch import nn

from gantrain import losses
from gantrain.regularizers import GradientPenalty, input_gradients


def small_net(hidden: int = 16, activation=nn.ELU) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(1, hidden), activation(), nn.Linear(hidden, hidden), activation(), nn.Linear(hidden, 1))


def fit(net: nn.Module, objective, sample_p, sample_q, steps: int, lr: float, betas=(0.9, 0.999), n: int = 512):
    """Minimize ``objective(net, p_batch, q_batch, step)`` with Adam on fresh batches of ``n`` samples each."""
    g = torch.Generator().manual_seed(1)
    opt = torch.optim.Adam(net.parameters(), lr=lr, betas=betas)
    for step in range(steps):
        loss = objective(net, sample_p(n, g), sample_q(n, g), step)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net


def gaussian_sampler(mean: float, std: float):
    return lambda n, g: mean + std * torch.randn(n, 1, generator=g)


def outputs(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return net(x).squeeze(1)


def held_out(sample_p, sample_q, n: int = 50_000):
    g = torch.Generator().manual_seed(2)
    return sample_p(n, g), sample_q(n, g)


def test_minimax_discriminator_approaches_the_optimum_and_the_game_value_2jsd_minus_log4():
    """Data N(0, 1), a fixed generator N(1.5, 0.7²): D* = p_data / (p_data + p_g) (Prop. 1) and
    V(D*, G) = 2·JSD(p_data ‖ p_g) − log 4 (Thm. 1)."""
    p, q = stats.norm(0, 1), stats.norm(1.5, 0.7)
    sample_p, sample_q = gaussian_sampler(0, 1), gaussian_sampler(1.5, 0.7)
    d = fit(
        small_net(),
        lambda net, xp, xq, _: losses.minimax_discriminator(outputs(net, xp), outputs(net, xq)),
        sample_p,
        sample_q,
        steps=300,
        lr=1e-2,
    )
    x = np.linspace(-2, 3, 501)
    with torch.no_grad():
        d_x = torch.sigmoid(outputs(d, torch.tensor(x, dtype=torch.float32)[:, None])).numpy()
    d_star = p.pdf(x) / (p.pdf(x) + q.pdf(x))
    tolerance = 0.03  # the trained D is within 0.020; an exact D* with logits 20 % too small is 0.050 off
    assert np.abs(1 / (1 + (q.pdf(x) / p.pdf(x)) ** 0.8) - d_star).max() > tolerance
    assert np.abs(d_x - d_star).max() < tolerance

    m = lambda t: 0.5 * (p.pdf(t) + q.pdf(t))
    jsd = (
        0.5 * integrate.quad(lambda t: p.pdf(t) * np.log(p.pdf(t) / m(t)), -12, 12)[0]
        + 0.5 * integrate.quad(lambda t: q.pdf(t) * np.log(q.pdf(t) / m(t)), -12, 12)[0]
    )
    with torch.no_grad():
        xp, xq = held_out(sample_p, sample_q)
        value = -losses.minimax_discriminator(outputs(d, xp), outputs(d, xq)).item()  # E log D + E log(1 − D)
    assert value == pytest.approx(2 * jsd - math.log(4), abs=0.02)


# D_f(P‖Q) = ∫ q f(p/q) with Table 1's generator functions f, for P = N(0, 1), Q = N(1, 1)
F_OF_TABLE1 = {
    "kl": lambda u: u * np.log(u),
    "reverse_kl": lambda u: -np.log(u),
    "pearson": lambda u: (u - 1) ** 2,
    "squared_hellinger": lambda u: (np.sqrt(u) - 1) ** 2,
    "js": lambda u: -(u + 1) * np.log((1 + u) / 2) + u * np.log(u),
    "gan": lambda u: u * np.log(u) - (u + 1) * np.log(u + 1),
}
CLOSED_FORM = {  # for two unit-variance Gaussians one apart
    "kl": 0.5,
    "reverse_kl": 0.5,
    "pearson": math.e - 1,
    "squared_hellinger": 2 * (1 - math.exp(-1 / 8)),
}


def f_divergence(name: str) -> float:
    p, q = stats.norm(0, 1), stats.norm(1, 1)
    value = integrate.quad(lambda x: q.pdf(x) * F_OF_TABLE1[name](p.pdf(x) / q.pdf(x)), -15, 15)[0]
    if name in CLOSED_FORM:
        assert value == pytest.approx(CLOSED_FORM[name], rel=1e-6)  # the integration itself is right
    return value


@pytest.mark.parametrize("name", sorted(losses.F_DIVERGENCES))
def test_fgan_bound_at_the_optimal_critic_is_the_divergence(name):
    """Fenchel duality without training: at T*(x) = f'(p/q), i.e. V* = g_f⁻¹(f'(p/q)) (written per row below),
    E_P[g_f(V*)] − E_Q[f*(g_f(V*))] = D_f(P‖Q); any other V gives less."""
    log_ratio = lambda x: -x + 0.5  # log p/q for N(0, 1) vs N(1, 1)
    v_star = {
        "kl": lambda x: 1 + log_ratio(x),
        "reverse_kl": log_ratio,
        "pearson": lambda x: 2 * np.expm1(log_ratio(x)),
        "squared_hellinger": lambda x: 0.5 * log_ratio(x),
        "js": log_ratio,
        "gan": log_ratio,
    }[name]
    div = losses.F_DIVERGENCES[name]
    p, q = stats.norm(0, 1), stats.norm(1, 1)

    def bound(v):
        t = lambda x: torch.tensor(v(x), dtype=torch.float64)
        return integrate.quad(lambda x: p.pdf(x) * div.activation(t(x)).item() - q.pdf(x) * div.conjugate(t(x)).item(), -15, 15)[0]

    assert bound(v_star) == pytest.approx(f_divergence(name), rel=1e-6)
    assert bound(lambda x: v_star(x) + 0.2) < bound(v_star) and bound(lambda x: 0.9 * v_star(x)) < bound(v_star)


@pytest.mark.parametrize("name", sorted(losses.F_DIVERGENCES))
def test_fgan_critic_estimates_the_divergence_within_4_percent(name):
    """Maximizing the variational bound with a small T network between N(0, 1) and N(1, 1) recovers D_f (the
    worst of the six is 1.4 % off)."""
    sample_p, sample_q = gaussian_sampler(0, 1), gaussian_sampler(1, 1)
    t = fit(
        small_net(),
        lambda net, xp, xq, _: losses.fgan_discriminator(outputs(net, xp), outputs(net, xq), name),
        sample_p,
        sample_q,
        steps=250,
        lr=1e-2,
    )
    with torch.no_grad():
        xp, xq = held_out(sample_p, sample_q)
        estimate = -losses.fgan_discriminator(outputs(t, xp), outputs(t, xq), name).item()
    truth = f_divergence(name)
    assert abs(estimate - truth) < 0.04 * abs(truth), (estimate, truth)


def test_wgan_gp_critic_estimates_w1_from_below_within_5_percent():
    """W1(N(0, 1), N(2, 1)) = 2, the distance between the means. The penalty is soft: for a critic of slope s the
    objective −2s + λ(s − 1)² is best at s = 1 + 1/λ, so the raw estimate E_P[D] − E_Q[D] tends to 2(1 + 1/λ)
    = 2.2. Divided by the critic's largest slope it is a 1-Lipschitz critic's value, a lower bound of W1 by
    Kantorovich-Rubinstein duality (of the held-out samples' W1, 2.006, on which it is evaluated): it may not
    exceed that, and it is within 5 % below 2 (1.972).

    The critic's last layer starts at zero: in 1D a critic of slope +1 cannot turn to −1 without its gradient
    passing through 0 on the interpolates, which the penalty charges more than the loss gains, so from a random
    start it can settle at the wrong sign."""
    sample_p, sample_q = gaussian_sampler(0, 1), gaussian_sampler(2, 1)
    critic = small_net(activation=nn.LeakyReLU)
    with torch.no_grad():
        critic[-1].weight.zero_()
        critic[-1].bias.zero_()
    gp = GradientPenalty(10.0)

    def objective(net, xp, xq, step):
        f = lambda x: outputs(net, x)
        return losses.wgan_discriminator(f(xp), f(xq)) + gp.discriminator_penalty(f, xp, xq, step)

    fit(critic, objective, sample_p, sample_q, steps=250, lr=1e-2, betas=(0.0, 0.9))
    xp, xq = held_out(sample_p, sample_q)
    with torch.no_grad():
        estimate = -losses.wgan_discriminator(outputs(critic, xp), outputs(critic, xq)).item()
    lipschitz = input_gradients(lambda x: outputs(critic, x), torch.linspace(-5, 7, 1201)[:, None]).abs().max().item()
    w1_held_out = (xp.sort(dim=0).values - xq.sort(dim=0).values).abs().mean().item()  # 1D W1 of equal-size samples
    assert estimate == pytest.approx(2.0 * (1 + 1 / gp.weight), rel=0.1)
    assert 0.95 * 2.0 <= estimate / lipschitz <= w1_held_out * (1 + 1e-3)  # slack for the slope's 0.01 grid
