"""Regularizers of the discriminator (and generator): penalties, constraints and parametrizations.

A regularizer implements any of these hooks; the GAN family calls each one at its point of the step. Networks
come by role (``networks["discriminator"]``: the family's discriminator, or a list of them where it has
several, as CycleGAN does), never by a family's own names:

- ``setup(networks)``: once, before the optimizers exist (e.g. to add a parametrization);
- ``discriminator_penalty(critic, real, fake, step, real_outputs)``: a term added to D's loss, where ``critic``
  maps a batch of samples to D's adversarial outputs (labels already bound) and ``real_outputs`` are D's outputs
  on ``real`` from the loss's own forward pass; ``real`` requires grad when ``needs_real_gradients(step)``
  says so, so that a penalty on ∇ₓD(x) at the real samples (R1) needs no second forward pass;
- ``generator_penalty(generator, step)``: a term added to G's loss;
- ``after_update(role, networks)``: after an optimizer step that updated the networks of ``role`` (e.g. to clip
  the discriminators' weights).

Several combine (``regularizer=[spectral_norm,r1]``); ``check_combination`` warns of a combination that
breaks the loss's assumptions and refuses a contradictory one.
"""

from __future__ import annotations

import logging
from typing import Callable, Mapping, Optional, Sequence, Union

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from gantrain.losses import GANLoss
from gantrain.models.layers import norm_2d

Tensor = torch.Tensor
log = logging.getLogger(__name__)

# layers whose weight is a linear map: what spectral norm and orthogonal regularization act on
WEIGHT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


class Regularizer:
    """Base class: every hook does nothing until a subclass overrides it.

    ``lipschitz``: it keeps the discriminator (about) 1-Lipschitz, as a Wasserstein critic must be.
    ``constrains``: networks whose weights it clamps or reparametrizes; two regularizers may not share one.
    """

    lipschitz: bool = False
    constrains: frozenset[str] = frozenset()

    def setup(self, networks: Mapping[str, nn.Module]) -> None:
        pass

    def needs_real_gradients(self, step: int) -> bool:
        return False

    def discriminator_penalty(
        self, critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, step: int, real_outputs: Optional[Tensor] = None
    ) -> Optional[Tensor]:
        return None

    def generator_penalty(self, generator: nn.Module, step: int) -> Optional[Tensor]:
        return None

    def after_update(self, role: str, networks: Mapping[str, nn.Module]) -> None:
        pass


def networks_of(networks: Mapping[str, Union[nn.Module, Sequence[nn.Module]]], role: str) -> list[nn.Module]:
    """The networks of ``role``: one network or a list of them."""
    found = networks.get(role, [])
    return [found] if isinstance(found, nn.Module) else list(found)


def check_combination(loss: GANLoss, regularizers: Mapping[str, Regularizer]) -> None:
    """Refuse two regularizers that constrain the same weights; warn when a Wasserstein loss has no
    Lipschitz constraint (its critic can then grow without bound and its estimate means nothing)."""
    owner: dict[str, str] = {}
    for name, reg in regularizers.items():
        for network in sorted(reg.constrains):
            if network in owner:
                raise ValueError(
                    f"regularizers {owner[network]} and {name} both constrain the {network}'s weights "
                    f"and contradict each other: keep one of them"
                )
            owner[network] = name
    if loss.lipschitz and not any(reg.lipschitz for reg in regularizers.values()):
        log.warning(
            "the Wasserstein loss assumes a 1-Lipschitz critic, but no regularizer constrains it "
            "(%s): add regularizer=weight_clip, gradient_penalty or spectral_norm",
            ", ".join(regularizers) or "regularizer=none",
        )


def input_gradients(critic: Callable[[Tensor], Tensor], x: Tensor, outputs: Optional[Tensor] = None) -> Tensor:
    """∇ₓ D(x) of each sample (N × …), kept in the graph so that a penalty on it trains D (double backprop).
    ``outputs``: D(x) already computed from an ``x`` that requires grad (else D runs again on a copy of x)."""
    if outputs is None or not x.requires_grad:
        x = x.detach().requires_grad_(True)
        outputs = critic(x)
    (grad,) = torch.autograd.grad(outputs.sum(), x, create_graph=True)
    return grad.flatten(1)


def _per_sample_normalization(networks: Mapping[str, nn.Module], who: str) -> None:
    """Swap the discriminator's batch norm for layer norm: a gradient penalty treats each sample's gradient on
    its own, which batch statistics couple (WGAN-GP, Gulrajani et al. 2017, §4, recommends layer norm)."""
    swapped = []
    for parent_name, parent in [m for d in networks_of(networks, "discriminator") for m in d.named_modules()]:
        for child_name, child in list(parent.named_children()):
            if isinstance(child, nn.modules.batchnorm._BatchNorm):
                setattr(parent, child_name, norm_2d("layer", child.num_features))
                swapped.append(f"{parent_name}.{child_name}".lstrip("."))
    if swapped:  # what the regularizer is documented to do, so said but not warned of (it is `gantrain`'s default)
        log.info(
            "%s: the discriminator's batch norm (%s) couples the samples whose gradients are penalized; "
            "using layer norm instead, as WGAN-GP recommends (model.discriminator.norm=layer says so in the config)",
            who,
            ", ".join(swapped),
        )


class WeightClip(Regularizer):
    """Clamp every discriminator parameter to [−c, c] after each D update: WGAN (Arjovsky et al. 2017),
    Algorithm 1, line 7, c = 0.01; a crude way to keep the critic K-Lipschitz."""

    lipschitz = True
    constrains = frozenset({"discriminator"})

    def __init__(self, clip: float = 0.01):
        if not clip > 0:
            raise ValueError(f"regularizer.weight_clip.clip={clip} must be positive")
        self.clip = float(clip)

    @torch.no_grad()
    def after_update(self, role: str, networks: Mapping[str, nn.Module]) -> None:
        if role == "discriminator":
            for d in networks_of(networks, role):
                for p in d.parameters():
                    p.clamp_(-self.clip, self.clip)


def _lazy_interval(name: str, interval) -> int:
    """A lazy regularizer's k (Karras et al. 2020, StyleGAN2, §B): the penalty, times k, every k-th step only."""
    if not isinstance(interval, int) or isinstance(interval, bool) or interval < 1:
        raise ValueError(f"regularizer.{name}.interval={interval!r} must be a positive integer")
    return interval


class GradientPenalty(Regularizer):
    """WGAN-GP (Gulrajani et al. 2017), Eq. 3: λ E[(‖∇D(x̂)‖₂ − 1)²] on x̂ = εx + (1 − ε)G(z), ε ~ U[0, 1]
    per sample; λ = 10. ``one_sided``: λ E[max(0, ‖∇D(x̂)‖₂ − 1)²], the variant the paper mentions, which
    penalizes only slopes above 1. ``interval`` k > 1 applies StyleGAN2's lazy regularization (§B, there for R1)
    to it: k·λ E[…] on the D updates of every k-th training step only. A discriminator's batch norm is
    replaced by layer norm (and the log says so)."""

    lipschitz = True

    def __init__(self, weight: float = 10.0, one_sided: bool = False, interval: int = 1):
        if not weight > 0:
            raise ValueError(f"regularizer.gradient_penalty.weight={weight} must be positive")
        self.weight, self.one_sided = float(weight), bool(one_sided)
        self.interval = _lazy_interval("gradient_penalty", interval)

    def setup(self, networks: Mapping[str, nn.Module]) -> None:
        _per_sample_normalization(networks, "gradient_penalty")

    def discriminator_penalty(self, critic, real, fake, step, real_outputs=None):
        if step % self.interval:
            return None
        eps = torch.rand(len(real), *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
        interpolates = eps * real.detach() + (1 - eps) * fake.detach()
        excess = input_gradients(critic, interpolates).norm(dim=1) - 1.0
        if self.one_sided:
            excess = excess.clamp(min=0)
        return (self.weight * self.interval) * excess.pow(2).mean()


class R1(Regularizer):
    """R1 (Mescheder, Geiger & Nowozin 2018, Eq. 9): (γ/2) E_{x~p_data}[‖∇D(x)‖²], on real data only.

    ``interval`` k > 1 is lazy regularization (Karras et al. 2020, StyleGAN2, §B): the penalty, times k,
    on the D updates of every k-th training step only. A discriminator's batch norm becomes layer norm."""

    def __init__(self, gamma: float = 10.0, interval: int = 1):
        if not gamma > 0:
            raise ValueError(f"regularizer.r1.gamma={gamma} must be positive")
        self.gamma, self.interval = float(gamma), _lazy_interval("r1", interval)

    def setup(self, networks: Mapping[str, nn.Module]) -> None:
        _per_sample_normalization(networks, "r1")

    def needs_real_gradients(self, step: int) -> bool:
        return step % self.interval == 0

    def discriminator_penalty(self, critic, real, fake, step, real_outputs=None):
        if not self.needs_real_gradients(step):
            return None
        squared_norms = input_gradients(critic, real, real_outputs).pow(2).sum(dim=1)
        return (0.5 * self.gamma * self.interval) * squared_norms.mean()


class Drift(Regularizer):
    """ProGAN's drift penalty (Karras et al. 2018, §A.1): ε_drift E_{x~p_data}[D(x)²], ε_drift = 0.001, which
    keeps a Wasserstein critic's outputs from drifting far from zero (the WGAN-GP loss fixes only differences)."""

    def __init__(self, weight: float = 0.001):
        if not weight > 0:
            raise ValueError(f"regularizer.drift.weight={weight} must be positive")
        self.weight = float(weight)

    def discriminator_penalty(self, critic, real, fake, step, real_outputs=None):
        return self.weight * (critic(real) if real_outputs is None else real_outputs).pow(2).mean()


class SpectralNorm(Regularizer):
    """Spectral normalization (Miyato et al. 2018, Eq. 8): every linear/conv weight W of D is used as
    W / σ(W), σ estimated by one power iteration per training forward pass, so each layer is 1-Lipschitz.
    ``generator=True`` normalizes G's layers too (as SAGAN and BigGAN do)."""

    lipschitz = True

    def __init__(self, generator: bool = False, power_iterations: int = 1):
        if not isinstance(power_iterations, int) or power_iterations < 1:
            raise ValueError(f"regularizer.spectral_norm.power_iterations={power_iterations!r} must be a positive integer")
        self.networks = ("discriminator", "generator") if generator else ("discriminator",)
        self.constrains = frozenset(self.networks)
        self.power_iterations = power_iterations

    def setup(self, networks: Mapping[str, nn.Module]) -> None:
        for role in self.networks:
            for module in [m for net in networks_of(networks, role) for m in net.modules()]:
                if isinstance(module, WEIGHT_LAYERS):
                    spectral_norm(module, n_power_iterations=self.power_iterations)


class Orthogonal(Regularizer):
    """BigGAN's orthogonal regularization (Brock et al. 2019, Eq. 3) on G: β Σ_W ‖WᵀW ⊙ (1 − I)‖²_F over the
    generator's linear/conv weights, W the matrix whose columns are a layer's filters (one per output unit);
    β = 1e-4. It pushes the filters toward orthogonality without constraining their norms. A spectrally
    normalized layer is penalized on its raw weight (``parametrizations.weight.original``), the parameter the
    official code's ``ortho`` acts on. Computed as ‖FFᵀ‖²_F − Σ_i ‖f_i‖⁴ with ‖FFᵀ‖_F = ‖FᵀF‖_F, from
    the smaller of the two Gram matrices (G's first linear layer has 16·ch filters of one z chunk each), in
    float64 against the cancellation. Its gradient with respect to the filters F = Wᵀ (one per row) is
    4β(FFᵀ ⊙ (1 − I))F; the official code adds 2β(FFᵀ ⊙ (1 − I))F, half of it (β/2 of this penalty)."""

    def __init__(self, weight: float = 1e-4):
        if not weight > 0:
            raise ValueError(f"regularizer.orthogonal.weight={weight} must be positive")
        self.weight = float(weight)

    def setup(self, networks: Mapping[str, nn.Module]) -> None:
        if not any(isinstance(m, WEIGHT_LAYERS) for g in networks_of(networks, "generator") for m in g.modules()):
            raise ValueError("orthogonal regularization needs linear or conv layers in the generator, and it has none")

    def generator_penalty(self, generator: nn.Module, step: int) -> Tensor:
        total = 0.0
        for module in generator.modules():
            if isinstance(module, WEIGHT_LAYERS):
                w = module.parametrizations.weight.original if parametrize.is_parametrized(module, "weight") else module.weight
                if isinstance(module, nn.modules.conv._ConvTransposeNd):  # stored as (in, out, …)
                    w = w.transpose(0, 1)
                filters = w.flatten(1).double()  # one row per filter: filters @ filters.T is WᵀW of the docstring
                small = filters.T @ filters if len(filters) > filters.shape[1] else filters @ filters.T
                total = total + small.pow(2).sum() - filters.pow(2).sum(1).pow(2).sum()
        return self.weight * total.float()
