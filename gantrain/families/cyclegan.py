"""CycleGAN (Zhu et al. 2017): unpaired translation between domains A and B with two generators and two
discriminators, as the official code trains them.

Generator phase (G_AB and G_BA together, D frozen), on a batch of A images a (``source``) and B images b
(``image``), the full objective Eq. 3 plus the identity term of §5.2:
  L = w·[ℓ_G(D_B(G_AB(a))) + ℓ_G(D_A(G_BA(b)))]                                 (Eq. 1, both directions)
    + λ·[‖G_BA(G_AB(a)) − a‖₁ + ‖G_AB(G_BA(b)) − b‖₁]                            (Eq. 2, cycle consistency)
    + λ_idt·λ·[‖G_AB(b) − b‖₁ + ‖G_BA(a) − a‖₁]                                  (identity mapping, λ_idt = 0.5)
with λ = 10 and the LSGAN loss (§4: G minimizes E[(D(G(x)) − 1)²], i.e. ``adversarial_weight`` 2 times
gantrain's ½E[(D − 1)²]). The identity term needs A and B of equal channel counts: otherwise it is refused
unless ``identity_weight`` is 0.

Discriminator phase (D_A and D_B together): as in the official code, D is updated on the fakes G made in the
generator phase of the same step (detached, stashed per micro-batch, so ``trainer.accumulate`` pairs each D
micro-batch with its G one), through an image history pool per domain (``ImagePool``, Shrivastava et al.
2017), against the same real images: ℓ_D(D_B(b), D_B(pool_B(G_AB(a)))) + ℓ_D(D_A(a), D_A(pool_A(G_BA(b)))).
For LSGAN ℓ_D is ½E[(D(real) − 1)²] + ½E[D(fake)²], the official code's (MSE_real + MSE_fake)·0.5. The phase takes no batch of
its own (one batch per step, as the official code), so ``trainer.d_steps`` must be 1.

Sampling, previews and metrics translate A → B with G_AB (the EMA copy when ``trainer.ema`` > 0); ``translate``
goes either way.
"""

from __future__ import annotations

from typing import Mapping, Optional

import torch
import torch.nn.functional as F
from torch import nn

from gantrain.errors import ConfigError
from gantrain.families.base import Family, Grid, Phase, frozen
from gantrain.losses import GANLoss

Tensor = torch.Tensor


class ImagePool(nn.Module):
    """The official ImagePool (Shrivastava et al. 2017, §2.3): D sees a history of generated images, not only
    the latest. For each image of a query: while fewer than ``size`` are stored, store it and return it; then,
    with probability ½, return a stored one chosen uniformly and store the new one in its place, else return the
    new one. Size 0 returns the query unchanged. The stored images are buffers, saved in checkpoints; the draws
    come from torch's global generator (checkpointed too), so a resumed run queries it as the uninterrupted one."""

    def __init__(self, size: int, shape: tuple[int, ...]):
        super().__init__()
        if size < 0:
            raise ValueError(f"pool_size={size} must be 0 (no history) or more")
        self.size = size
        self.register_buffer("images", torch.zeros(size, *shape))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    def forward(self, images: Tensor) -> Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            n = int(self.count)
            if n < self.size:
                self.images[n] = image
                self.count += 1
                out.append(image)
            elif float(torch.rand(())) > 0.5:
                j = int(torch.randint(self.size, ()))
                out.append(self.images[j].to(image.dtype, copy=True))
                self.images[j] = image
            else:
                out.append(image)
        return torch.stack(out)


class CycleGANFamily(Family):
    sample_network = "G_AB"
    round_trips = True
    roles = {"generator": ("G_AB", "G_BA"), "discriminator": ("D_A", "D_B")}

    def __init__(
        self,
        name: str,
        G_AB: nn.Module,
        G_BA: nn.Module,
        D_A: nn.Module,
        D_B: nn.Module,
        loss: GANLoss,
        channels_a: int,
        channels_b: int,
        image_size: int,
        cycle_weight: float = 10.0,
        identity_weight: float = 0.5,
        adversarial_weight: float = 2.0,
        pool_size: int = 50,
        paired_heldout: bool = False,
        regularizers: Optional[Mapping] = None,
    ):
        super().__init__(name)
        if loss.generator_uses_real:
            raise ConfigError(
                "model=cyclegan: this loss's generator term reads D on real images; use loss=lsgan (the paper's), nonsaturating or hinge"
            )
        if regularizers:
            raise ConfigError(f"model=cyclegan takes no regularizers (regularizer={', '.join(regularizers)} given): use regularizer=none")
        if identity_weight and channels_a != channels_b:
            raise ConfigError(
                f"model.identity_weight={identity_weight}: the identity loss feeds B images to G_AB, but A has {channels_a} "
                f"channel(s) and B {channels_b}; set model.identity_weight=0"
            )
        for key, value in (
            ("cycle_weight", cycle_weight),
            ("identity_weight", identity_weight),
            ("adversarial_weight", adversarial_weight),
        ):
            if value < 0:
                raise ValueError(f"model.{key}={value} must be 0 or more")
        for g in (G_AB, G_BA):
            if hasattr(g, "check_size"):
                g.check_size(image_size)
        for key, d in (("D_A", D_A), ("D_B", D_B)):
            if conv_output_size(d, image_size) < 1:
                raise ValueError(
                    f"model.{key} leaves no patch at {image_size} px (each of its stride-2 layers halves the image): "
                    f"lower model.{key}.n_layers (a PatchGAN needs 3·2^n_layers px) or raise dataset.image_size"
                )
        self.networks.update({"G_AB": G_AB, "G_BA": G_BA, "D_A": D_A, "D_B": D_B})
        self.adversarial_loss = loss
        self.cycle_weight, self.identity_weight, self.adversarial_weight = cycle_weight, identity_weight, adversarial_weight
        self.pools = nn.ModuleDict(
            {
                "A": ImagePool(pool_size, (channels_a, image_size, image_size)),
                "B": ImagePool(pool_size, (channels_b, image_size, image_size)),
            }
        )
        self.paired_heldout = paired_heldout
        self._fakes: list[tuple[int, dict]] = []  # (step, detached reals and fakes) of each generator micro-batch

    def phases(self, d_steps: int) -> list[Phase]:
        if d_steps != 1:
            raise ConfigError(f"trainer.d_steps={d_steps}: CycleGAN updates D once on the fakes of each generator update; use 1")
        return [Phase("generator", ("G_AB", "G_BA")), Phase("discriminator", ("D_A", "D_B"), takes_batch=False)]

    def loss(self, phase: str, batch: dict, step: int) -> tuple[Tensor, dict[str, Tensor]]:
        return self._generator_loss(batch, step) if phase == "generator" else self._discriminator_loss(step)

    def _generator_loss(self, batch: dict, step: int) -> tuple[Tensor, dict[str, Tensor]]:
        g_ab, g_ba, d_a, d_b = (self.networks[k] for k in ("G_AB", "G_BA", "D_A", "D_B"))
        a, b = batch["source"], batch["image"]
        fake_b, fake_a = g_ab(a), g_ba(b)
        cycle = F.l1_loss(g_ba(fake_b), a) + F.l1_loss(g_ab(fake_a), b)
        identity = F.l1_loss(g_ab(b), b) + F.l1_loss(g_ba(a), a) if self.identity_weight else torch.zeros((), device=a.device)
        with frozen(d_a), frozen(d_b):
            adversarial = self.adversarial_loss.generator(d_b(fake_b)) + self.adversarial_loss.generator(d_a(fake_a))
        if self._fakes and self._fakes[0][0] != step:  # left by an update a non-finite loss skipped
            self._fakes.clear()
        self._fakes.append((step, {"a": a, "b": b, "fake_a": fake_a.detach(), "fake_b": fake_b.detach()}))
        loss = self.adversarial_weight * adversarial + self.cycle_weight * cycle + self.identity_weight * self.cycle_weight * identity
        return loss, {"loss/G_adversarial": adversarial.detach(), "loss/cycle": cycle.detach(), "loss/identity": identity.detach()}

    def _discriminator_loss(self, step: int) -> tuple[Tensor, dict[str, Tensor]]:
        if not self._fakes or self._fakes[0][0] != step:  # the generator update was skipped (nan_policy=skip): skip D's too
            return torch.full((), float("nan"), device=self.device), {}
        x = self._fakes.pop(0)[1]
        d_a, d_b = self.networks["D_A"], self.networks["D_B"]
        loss_b = self.adversarial_loss.discriminator(d_b(x["b"]), d_b(self.pools["B"](x["fake_b"])))
        loss_a = self.adversarial_loss.discriminator(d_a(x["a"]), d_a(self.pools["A"](x["fake_a"])))
        return loss_a + loss_b, {"loss/D_A": loss_a.detach(), "loss/D_B": loss_b.detach()}

    # ---------------------------------------------------------------- sampling
    def fixed_inputs(self, n: int, generator: torch.Generator, heldout: Optional[dict] = None) -> dict:
        return {"source": heldout["source"]}

    def generate(self, inputs: dict, network: Optional[nn.Module] = None) -> Tensor:
        return self.sampling_network(network)(inputs["source"])

    def round_trip(self, inputs: dict, network: Optional[nn.Module] = None) -> tuple[Tensor, Tensor]:
        """Held-out A images and G_BA(G_AB(a)): the cycle error of Eq. 2's forward half on held-out data."""
        a = inputs["source"]
        return a, self.networks["G_BA"](self.sampling_network(network)(a))

    def translate(self, source: Tensor, network: Optional[nn.Module] = None, direction: str = "AtoB") -> Tensor:
        """``source`` (N×C×H×W in [-1, 1], of domain A for ``AtoB``, B for ``BtoA``) translated by G_AB
        (``network``, e.g. its EMA copy, in its place) or G_BA."""
        if direction not in ("AtoB", "BtoA"):
            raise ConfigError(f"direction={direction!r}: use AtoB or BtoA")
        net = self.sampling_network(network) if direction == "AtoB" else self.networks["G_BA"]
        wanted = self.pools["A" if direction == "AtoB" else "B"].images.shape[1]
        if source.shape[1] != wanted:
            raise ConfigError(f"direction={direction} takes images of {wanted} channel(s), not {source.shape[1]}")
        return net(source)

    def targets(self, inputs: dict, heldout: Optional[dict] = None) -> dict:
        """The held-out A images' true translations and classes, where the task knows them (``paired_heldout``)."""
        if not self.paired_heldout or heldout is None:
            return {}
        return {k: heldout[k] for k in ("image", "label") if k in heldout}

    def previews(self, network: nn.Module, inputs: dict, heldout: dict) -> dict[str, Grid]:
        """Groups of A | G_AB(A) | G_BA(G_AB(A)) (the cycle's reconstruction) | the true B where known."""
        a = inputs["source"]
        fake_b = network(a)
        panels = [a, fake_b, self.networks["G_BA"](fake_b)] + ([heldout["image"]] if self.paired_heldout else [])
        return {"translation": Grid.of_groups(panels, ["A", "A→B", "A→B→A", "true B"][: len(panels)])}


def conv_output_size(module: nn.Module, size: int) -> int:
    """The side of the output of a chain of 2-d convolutions (every Conv2d of ``module``, in order) on a
    ``size`` × ``size`` input."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            size = (size + 2 * m.padding[0] - m.dilation[0] * (m.kernel_size[0] - 1) - 1) // m.stride[0] + 1
    return size
