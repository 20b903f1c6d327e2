"""Growing GANs: ProGAN's training schedule (Karras et al. 2018) and StyleGAN's sampling (Karras et al. 2019).

``ProgressiveGAN`` is the GAN family whose networks grow: from 4×4, the resolution of G and D doubles every
``phase_images`` images (counted as steps × batch size), the first ``fade_fraction`` of each phase fading the
new level in linearly (α: 0 → 1) and the rest training it at α = 1 (the paper: 800k images each). The
level and α are a pure function of the training step, so a resumed run continues at the same resolution
and α; the family keeps the last trained step in a buffer so sampling outside the loop (and a loaded
checkpoint) uses the same stage. Real batches are average-pooled to the current resolution and, during a
fade-in, blended with their 2× coarser version as the generator's output is (the paper's code does the same).
Samples are upsampled (nearest) to the dataset's size. ``phase_images=0`` trains at full size throughout.

``StyleGAN`` adds StyleGAN's truncation trick to sampling (w' = w̄ + ψ(w − w̄), ψ = ``truncation_psi``) and
previews a truncation sweep (columns: 4 fixed latents; rows: ψ in ``preview_psis``) and a style-mixing grid.
"""

from __future__ import annotations

import logging
import math
from typing import Mapping, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from gantrain.families.gan import GANFamily
from gantrain.losses import GANLoss
from gantrain.models.outputs import DiscriminatorOutput
from gantrain.regularizers import Regularizer
from gantrain.visualize import Grid

Tensor = torch.Tensor
log = logging.getLogger(__name__)


class GrowthSchedule:
    """Step → (level, α): level 0 (4×4) for the first phase, then one more level per phase up to ``top``."""

    def __init__(self, top: int, phase_images: int, batch_size: int, fade_fraction: float = 0.5):
        if phase_images < 0:
            raise ValueError(f"phase_images={phase_images}: use a positive number of images, or 0 for no growth")
        if not 0.0 < fade_fraction <= 1.0:
            raise ValueError(f"fade_fraction={fade_fraction} is the share of a phase spent fading in: use (0, 1]")
        if phase_images and phase_images < batch_size:
            raise ValueError(f"phase_images={phase_images} is less than one batch ({batch_size} images)")
        self.top, self.phase_images, self.batch_size, self.fade_fraction = top, phase_images, batch_size, fade_fraction

    def __call__(self, step: int) -> tuple[int, float]:
        if not self.phase_images:
            return self.top, 1.0
        phase, into = divmod(step * self.batch_size, self.phase_images)
        if phase == 0:
            return 0, 1.0
        if phase > self.top:
            return self.top, 1.0
        return phase, min(1.0, into / (self.fade_fraction * self.phase_images))

    def describe(self) -> str:
        if not self.phase_images:
            return f"no growth: {4 * 2**self.top}×{4 * 2**self.top} from the start"
        p, f = self.phase_images, self.fade_fraction * self.phase_images
        parts = ["4×4 from image 0"]
        for level in range(1, self.top + 1):
            r = 4 * 2**level
            parts.append(f"{r}×{r} fades in over images {level * p:,.0f}–{level * p + f:,.0f}")
        steps = math.ceil(self.top * p / self.batch_size)
        return f"growth schedule: {'; '.join(parts)} (full size from step {steps:,})"


class ProgressiveGAN(GANFamily):
    """The GAN family with ProGAN's growing schedule; the networks take the level (G) and α (G and D)."""

    def __init__(
        self,
        name: str,
        generator: nn.Module,
        discriminator: nn.Module,
        loss: GANLoss,
        latent_dim: int,
        image_size: int,
        batch_size: int,
        phase_images: int = 0,
        fade_fraction: float = 0.5,
        regularizers: Optional[Mapping[str, Regularizer]] = None,
    ):
        super().__init__(name, generator, discriminator, loss, latent_dim, regularizers=regularizers)
        self.image_size = image_size
        self.schedule = GrowthSchedule(generator.max_level, phase_images, batch_size, fade_fraction)
        self.register_buffer("trained_step", torch.zeros((), dtype=torch.long))
        self._stage = self.schedule(0)
        log.info("%s %s", name, self.schedule.describe())

    def stage(self) -> tuple[int, float]:
        """(level, α) of the last trained step."""
        return self.schedule(int(self.trained_step))

    def resolution(self, level: int) -> int:
        return 4 * 2**level

    def real_at(self, x: Tensor, level: int, alpha: float) -> Tensor:
        """Real images average-pooled to the level's size, blended with their 2× coarser version while α < 1."""
        factor = x.shape[-1] // self.resolution(level)
        if factor > 1:
            x = F.avg_pool2d(x, factor)
        if level > 0 and alpha < 1.0:
            x = torch.lerp(F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="nearest"), x, alpha)
        return x

    def _fake(self, n: int, condition) -> tuple[Tensor, Tensor]:
        level, alpha = self._stage
        z = self.sample_latent(n)
        return self.networks["generator"](z, level=level, alpha=alpha), z

    def _discriminate(self, x: Tensor, condition) -> DiscriminatorOutput:
        return DiscriminatorOutput(self.networks["discriminator"](x, alpha=self._stage[1]))

    def loss(self, phase: str, batch: dict, step: int) -> tuple[Tensor, dict[str, Tensor]]:
        self._stage = level, alpha = self.schedule(step)
        self.trained_step.fill_(step)
        batch = {**batch, "image": self.real_at(batch["image"], level, alpha)}
        loss, logs = super().loss(phase, batch, step)
        if phase == "discriminator":  # logged once per step (the trainer sums the phases' terms)
            logs["growth/resolution"] = torch.tensor(float(self.resolution(level)))
            logs["growth/alpha"] = torch.tensor(alpha)
        return loss, logs

    def _full_size(self, images: Tensor) -> Tensor:
        factor = self.image_size // images.shape[-1]
        return images if factor == 1 else F.interpolate(images, scale_factor=factor, mode="nearest")

    def synthesis_options(self) -> dict:
        """Keyword arguments of the generator when sampling (StyleGAN: its truncation)."""
        return {}

    def generate(self, inputs: dict, network: Optional[nn.Module] = None) -> Tensor:
        level, alpha = self.stage()
        return self._full_size(self.sampling_network(network)(inputs["z"], level=level, alpha=alpha, **self.synthesis_options()))


class StyleGAN(ProgressiveGAN):
    """ProgressiveGAN (growth optional) sampling with the truncation trick and previewing ψ and style mixing."""

    def __init__(self, *args, truncation_psi: float = 1.0, preview_psis: Sequence[float] = (1.0, 0.7, 0.5, 0.0), **kwargs):
        super().__init__(*args, **kwargs)
        self.truncation_psi, self.preview_psis = float(truncation_psi), [float(p) for p in preview_psis]

    def synthesis_options(self) -> dict:
        return {"psi": self.truncation_psi}

    def truncation_sweep(self, network: nn.Module, z: Tensor) -> Grid:
        """Rows: ψ in ``preview_psis`` (labelled); columns: the latents ``z``; fixed noise, so ψ = 0 repeats one image."""
        level, alpha = self.stage()
        w = network.styles(z, level)
        rows = [network.synthesize(network.truncate(w, psi), level, alpha, randomize_noise=False) for psi in self.preview_psis]
        images = self._full_size(torch.cat(rows)).unflatten(0, (len(rows), len(z)))
        return Grid(images, row_labels=[f"ψ = {psi:g}" for psi in self.preview_psis])

    def style_mixing(self, network: nn.Module, z_a: Tensor, z_b: Tensor, crossover: Optional[int] = None) -> Grid:
        """A (1 + |A|) × (1 + |B|) grid: the first row shows the B sources, the first column the A sources (set
        apart, labelled); cell (i, j) takes A_i's styles in the coarse layers < ``crossover`` (default: half the
        layers) and B_j's in the others. Truncated with ``truncation_psi``; fixed noise; the corner is blank (NaN)."""
        level, alpha = self.stage()
        n_layers = network.layers_at(level)
        crossover = n_layers // 2 if crossover is None else crossover
        w_a = network.truncate(network.styles(z_a, level), self.truncation_psi)
        w_b = network.truncate(network.styles(z_b, level), self.truncation_psi)
        a, b = len(z_a), len(z_b)
        mixed = network.mix(w_a.repeat_interleave(b, dim=0), w_b.repeat(a, 1, 1), crossover)
        images = network.synthesize(torch.cat([w_b, w_a, mixed]), level, alpha, randomize_noise=False)
        top, left, cells = images[:b], images[b : a + b], images[a + b :].view(a, b, *images.shape[1:])
        rows = [torch.cat([torch.full_like(top[:1], float("nan")), top])]
        rows += [torch.cat([left[i : i + 1], cells[i]]) for i in range(a)]
        images = self._full_size(torch.cat(rows)).unflatten(0, (1 + a, 1 + b))
        columns = ["source A", *(f"fine: B{j + 1}" for j in range(b))]
        return Grid(images, columns, ["source B", *(f"coarse: A{i + 1}" for i in range(a))], breaks=(1,))

    def previews(self, network: nn.Module, inputs: dict, heldout: dict) -> dict[str, Grid]:
        """The ψ sweep of as many latents as there are ψ values, and style mixing of up to 4 A by 4 B sources."""
        z = inputs["z"]
        k = min(4, len(z) // 2)
        previews = {"style_mixing": self.style_mixing(network, z[:k], z[k : 2 * k])}
        if self.preview_psis:
            previews["truncation"] = self.truncation_sweep(network, z[: len(self.preview_psis)])
        return previews
