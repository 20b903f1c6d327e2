"""Adversarial losses as small pure functions of discriminator outputs.

A ``GANLoss`` pairs ``discriminator(real, fake)`` and ``generator(fake, real)``: each maps the raw outputs
(logits or critic values) of D on a real and a generated batch to the scalar that network minimizes.
With D(x) = σ(l(x)), log D = −softplus(−l) and log(1 − D) = −softplus(l), which keeps them stable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Callable

import torch
import torch.nn.functional as F

Tensor = torch.Tensor
LOG2 = math.log(2.0)


@dataclass(frozen=True)
class GANLoss:
    """``generator_uses_real``: G's loss reads D's outputs on real data (relativistic losses).
    ``lipschitz``: the loss is a Wasserstein estimate that assumes a 1-Lipschitz critic."""

    discriminator: Callable[[Tensor, Tensor], Tensor]
    generator: Callable[[Tensor, Tensor], Tensor]
    generator_uses_real: bool = False
    lipschitz: bool = False


# ------------------------------------------------------------------ Goodfellow et al. (2014)
def minimax_discriminator(real: Tensor, fake: Tensor) -> Tensor:
    """−E[log D(x)] − E[log(1 − D(G(z)))]: D ascends V(D, G) of Goodfellow et al. (2014), Eq. 1."""
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def minimax_generator(fake: Tensor, real: Tensor | None = None) -> Tensor:
    """E[log(1 − D(G(z)))]: G descends Eq. 1 itself; its gradient vanishes when D rejects G's samples."""
    return -F.softplus(fake).mean()


def nonsaturating_generator(fake: Tensor, real: Tensor | None = None) -> Tensor:
    """−E[log D(G(z))]: the heuristic of Goodfellow et al. (2014), §3, with strong gradients early on."""
    return F.softplus(-fake).mean()


def minimax() -> GANLoss:
    return GANLoss(minimax_discriminator, minimax_generator)


def nonsaturating() -> GANLoss:
    return GANLoss(minimax_discriminator, nonsaturating_generator)


# ------------------------------------------------------------------ least squares (Mao et al. 2017)
def lsgan_discriminator(real: Tensor, fake: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    """½E[(D(x) − b)²] + ½E[(D(G(z)) − a)²]: LSGAN (Mao et al. 2017), Eq. 2, D on raw outputs."""
    return 0.5 * (real - b).pow(2).mean() + 0.5 * (fake - a).pow(2).mean()


def lsgan_generator(fake: Tensor, real: Tensor | None = None, c: float = 1.0) -> Tensor:
    """½E[(D(G(z)) − c)²]: LSGAN's generator, Eq. 2 (c = b: G wants its samples taken for real)."""
    return 0.5 * (fake - c).pow(2).mean()


def lsgan(a: float = 0.0, b: float = 1.0, c: float = 1.0) -> GANLoss:
    """Targets a (fake) and b (real) for D, c for G. 0/1/1 is the paper's Eq. 9 choice; −1/1/0 (b − c = 1,
    b − a = 2) is the one under which it minimizes the Pearson χ² divergence (Theorem 1)."""
    return GANLoss(partial(lsgan_discriminator, a=a, b=b), partial(lsgan_generator, c=c))


# ------------------------------------------------------------------ Wasserstein (Arjovsky et al. 2017)
def wgan_discriminator(real: Tensor, fake: Tensor) -> Tensor:
    """E[D(G(z))] − E[D(x)]: the critic maximizes the Kantorovich–Rubinstein estimate of W1, Eq. 3."""
    return fake.mean() - real.mean()


def wgan_generator(fake: Tensor, real: Tensor | None = None) -> Tensor:
    """−E[D(G(z))]: G lowers the critic's W1 estimate (Algorithm 1, line 10)."""
    return -fake.mean()


def wgan() -> GANLoss:
    """Needs a 1-Lipschitz critic: weight clipping (WGAN), a gradient penalty (WGAN-GP) or spectral norm."""
    return GANLoss(wgan_discriminator, wgan_generator, lipschitz=True)


# ------------------------------------------------------------------ hinge (Lim & Ye 2017; Miyato et al. 2018)
def hinge_discriminator(real: Tensor, fake: Tensor) -> Tensor:
    """E[max(0, 1 − D(x))] + E[max(0, 1 + D(G(z)))]: the hinge loss of Lim & Ye (2017), as in SNGAN and SAGAN."""
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def hinge() -> GANLoss:
    """G minimizes −E[D(G(z))] (SNGAN's and SAGAN's generator loss), the same as WGAN's generator."""
    return GANLoss(hinge_discriminator, wgan_generator)


# ------------------------------------------------------------------ relativistic average (Jolicoeur-Martineau 2019)
def relativistic_discriminator(real: Tensor, fake: Tensor) -> Tensor:
    """RaSGAN, the relativistic average standard GAN (Jolicoeur-Martineau 2019): −E_x[log σ(C(x) − E C(G(z)))]
    − E_z[log(1 − σ(C(G(z)) − E C(x)))]: real data should look more real than the average fake."""
    return F.softplus(-(real - fake.mean())).mean() + F.softplus(fake - real.mean()).mean()


def relativistic_generator(fake: Tensor, real: Tensor) -> Tensor:
    """RaSGAN's generator: D's loss with the roles of real and fake swapped (G also pushes real data down)."""
    return relativistic_discriminator(fake, real)


def relativistic() -> GANLoss:
    return GANLoss(relativistic_discriminator, relativistic_generator, generator_uses_real=True)


# ------------------------------------------------------------------ f-GAN (Nowozin, Cseke & Tomioka 2016)
@dataclass(frozen=True)
class FDivergence:
    """One row of f-GAN's Table 2, as functions of D's raw output v: the output activation g_f(v), whose range
    is dom f*, and the convex conjugate composed with it, f*(g_f(v)), written in a form that cannot overflow
    where the naive composition would (e.g. −log(2 − exp(g_f(v))) for JS)."""

    activation: Callable[[Tensor], Tensor]
    conjugate: Callable[[Tensor], Tensor]


F_DIVERGENCES: dict[str, FDivergence] = {
    # KL(P‖Q), f(u) = u log u: g_f(v) = v, f*(t) = exp(t − 1)
    "kl": FDivergence(lambda v: v, lambda v: torch.exp(v - 1.0)),
    # KL(Q‖P), f(u) = −log u: g_f(v) = −exp(−v), f*(t) = −1 − log(−t)
    "reverse_kl": FDivergence(lambda v: -torch.exp(-v), lambda v: v - 1.0),
    # Pearson χ², f(u) = (u − 1)²: g_f(v) = v, f*(t) = t²/4 + t
    "pearson": FDivergence(lambda v: v, lambda v: 0.25 * v * v + v),
    # squared Hellinger, f(u) = (√u − 1)²: g_f(v) = 1 − exp(−v), f*(t) = t / (1 − t)
    "squared_hellinger": FDivergence(lambda v: 1.0 - torch.exp(-v), torch.expm1),
    # Jensen-Shannon, f(u) = −(u + 1) log((1 + u)/2) + u log u: g_f(v) = log 2 − log(1 + e^−v), f*(t) = −log(2 − e^t)
    "js": FDivergence(lambda v: LOG2 - F.softplus(-v), lambda v: F.softplus(v) - LOG2),
    # GAN, f(u) = u log u − (u + 1) log(u + 1): g_f(v) = −log(1 + e^−v), f*(t) = −log(1 − e^t)
    "gan": FDivergence(lambda v: -F.softplus(-v), F.softplus),
}


def fgan_discriminator(real: Tensor, fake: Tensor, divergence: str) -> Tensor:
    """−(E_P[g_f(V(x))] − E_Q[f*(g_f(V(G(z))))]): D maximizes the variational lower bound of D_f(P‖Q),
    f-GAN Eq. 6. At its maximum the bound equals D_f (for "js": 2·JSD, the f of Table 1)."""
    div = F_DIVERGENCES[divergence]
    return div.conjugate(fake).mean() - div.activation(real).mean()


def fgan_generator(fake: Tensor, real: Tensor | None = None, divergence: str = "gan", saddle: bool = False) -> Tensor:
    """G's f-GAN loss. Default: −E_Q[g_f(V(G(z)))], the update of §3.2 that the paper uses in practice
    (for "gan" it is the non-saturating loss). ``saddle=True``: −E_Q[f*(g_f(V(G(z))))], G descending Eq. 6
    itself (for "gan" the minimax loss)."""
    div = F_DIVERGENCES[divergence]
    return -(div.conjugate(fake) if saddle else div.activation(fake)).mean()


def fgan(divergence: str, saddle: bool = False) -> GANLoss:
    if divergence not in F_DIVERGENCES:
        raise ValueError(f"loss.divergence={divergence!r}: choose one of {', '.join(F_DIVERGENCES)}")
    return GANLoss(
        partial(fgan_discriminator, divergence=divergence),
        partial(fgan_generator, divergence=divergence, saddle=saddle),
    )
