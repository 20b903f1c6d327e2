"""The denoising family: DDPM training (Ho, Jain & Abbeel 2020) with DDPM and DDIM sampling (Song et al. 2021).

Forward process (Ho et al. Eq. 4): x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε, ε ~ N(0, I), ᾱ_t = Π_{s≤t} (1 − β_s), with
β linear from 1e-4 to 0.02 over T = 1000 steps (Ho et al. §4) or the cosine schedule of Nichol & Dhariwal
(2021, Eq. 17). One training update draws t uniformly and minimizes the simple loss (Ho et al. Eq. 14) on the
network's target: ε (``prediction=eps``), x_0 (``x0``) or v = √ᾱ_t ε − √(1 − ᾱ_t) x_0 (``v``, Salimans & Ho
2022, §4). Timesteps are indexed 0 … T−1 here (the paper's 1 … T).

Sampling follows DDIM's generalized step (Song et al. Eq. 12) from x̂_0 = (x_t − √(1 − ᾱ_t) ε̂)/√ᾱ_t:
x_{t'} = √ᾱ_{t'} x̂_0 + √(1 − ᾱ_{t'} − σ²) ε̂ + σ z, σ = η √((1 − ᾱ_{t'})/(1 − ᾱ_t)) √(1 − ᾱ_t/ᾱ_{t'}), over
``sampling_steps`` evenly spaced timesteps; η = 0 is deterministic. ``sampler=ddpm`` is the ancestral sampler
of Ho et al. (Alg. 2, posterior variance β̃_t): DDIM's step with η = 1 over all T steps is exactly it (Song et
al. Eq. 16). Class-conditional models use classifier-free guidance (Ho & Salimans 2022): labels are dropped
to the "no label" class with probability ``label_dropout`` in training, and sampling combines the outputs as
out(∅) + w·(out(c) − out(∅)) with w = ``guidance`` (1 = plain conditional; Ho & Salimans' w is our w − 1).
Every parametrization is affine in the others given x_t, so guiding the output guides ε̂ alike.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from gantrain.families.base import Family, Phase, local_rows

Tensor = torch.Tensor

SCHEDULES = ("linear", "cosine")
PREDICTIONS = ("eps", "x0", "v")
SAMPLERS = ("ddim", "ddpm")


def beta_schedule(kind: str, timesteps: int, beta_start: float = 1e-4, beta_end: float = 0.02, s: float = 0.008) -> Tensor:
    """β_1 … β_T (float64): ``linear`` from ``beta_start`` to ``beta_end`` (Ho et al. §4), or ``cosine``:
    ᾱ_t = f(t)/f(0), f(t) = cos²(π/2 · (t/T + s)/(1 + s)), β_t = min(1 − ᾱ_t/ᾱ_{t−1}, 0.999) (Nichol & Dhariwal Eq. 17)."""
    if kind == "linear":
        return torch.linspace(beta_start, beta_end, timesteps, dtype=torch.float64)
    if kind == "cosine":
        f = torch.cos((torch.arange(timesteps + 1, dtype=torch.float64) / timesteps + s) / (1 + s) * math.pi / 2) ** 2
        return (1 - f[1:] / f[:-1]).clamp(max=0.999)
    raise ValueError(f"schedule={kind!r}: choose one of {', '.join(SCHEDULES)}")


def _at(values: Tensor, t: Tensor, like: Tensor) -> Tensor:
    """values[t] shaped to broadcast against ``like`` (one value per sample)."""
    return values[t].to(like.dtype).view(-1, *([1] * (like.dim() - 1)))


class DiffusionFamily(Family):
    sample_network = "denoiser"

    def __init__(
        self,
        name: str,
        denoiser: nn.Module,
        data_shape: Sequence[int],
        timesteps: int = 1000,
        schedule: str = "linear",
        prediction: str = "eps",
        sampler: str = "ddim",
        sampling_steps: int = 50,
        eta: float = 0.0,
        clip_denoised: bool = True,
        conditional: bool = False,
        num_classes: int = 0,
        label_dropout: float = 0.1,
        guidance: float = 1.0,
    ):
        super().__init__(name)
        if prediction not in PREDICTIONS:
            raise ValueError(f"prediction={prediction!r}: choose one of {', '.join(PREDICTIONS)}")
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler={sampler!r}: choose one of {', '.join(SAMPLERS)}")
        if not 1 <= sampling_steps <= timesteps:
            raise ValueError(f"sampling_steps={sampling_steps} must be between 1 and timesteps={timesteps}")
        if eta < 0:
            raise ValueError(f"eta={eta} must be ≥ 0 (0: deterministic DDIM, 1: DDPM-like)")
        if conditional:
            if not num_classes or num_classes < 2:
                raise ValueError(f"{name} is class-conditional and needs class labels, but this dataset has none")
            if getattr(denoiser, "num_classes", None) != num_classes:
                raise ValueError(f"{name} is conditional on {num_classes} classes: give the denoiser num_classes={num_classes}")
            if not 0 <= label_dropout < 1:
                raise ValueError(f"label_dropout={label_dropout} is a probability in [0, 1)")
        self.networks["denoiser"] = denoiser
        self.data_shape = tuple(data_shape)
        self.timesteps, self.prediction = timesteps, prediction
        self.sampler, self.sampling_steps, self.eta = sampler, sampling_steps, eta
        self.clip_denoised = clip_denoised
        self.conditional, self.num_classes = conditional, num_classes if conditional else 0
        self.label_dropout, self.guidance = label_dropout, guidance
        alphas_cumprod = torch.cumprod(1 - beta_schedule(schedule, timesteps), dim=0)
        # ᾱ_t in float64 for the schedule arithmetic, stored as float32 (moves with the module)
        self.register_buffer("alphas_cumprod", alphas_cumprod.float(), persistent=False)

    # ------------------------------------------------------------------ forward process and training
    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε (Ho et al. Eq. 4)."""
        a = _at(self.alphas_cumprod, t, x0)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def target(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """What the network is trained to output: ε, x_0 or v = √ᾱ_t ε − √(1 − ᾱ_t) x_0."""
        if self.prediction == "eps":
            return noise
        if self.prediction == "x0":
            return x0
        a = _at(self.alphas_cumprod, t, x0)
        return a.sqrt() * noise - (1 - a).sqrt() * x0

    def phases(self, d_steps: int) -> list[Phase]:
        return [Phase("denoiser", ("denoiser",))]

    def loss(self, phase: str, batch: dict, step: int) -> tuple[Tensor, dict[str, Tensor]]:
        x0 = batch["image"]
        n, device = len(x0), x0.device  # each rank of a distributed run: its rows of the global batch's draws
        t = local_rows(lambda m: torch.randint(0, self.timesteps, (m,), device=device), n)
        noise = local_rows(lambda m: torch.randn(m, *x0.shape[1:], device=device, dtype=x0.dtype), n)
        labels = None
        if self.conditional:
            drop = local_rows(lambda m: torch.rand(m, device=device), n) < self.label_dropout
            labels = batch["label"].masked_fill(drop, self.num_classes)
        out = self.networks["denoiser"](self.q_sample(x0, t, noise), t, labels)
        loss = F.mse_loss(out.float(), self.target(x0, t, noise).float())
        return loss, {"loss/denoiser": loss.detach()}

    # ------------------------------------------------------------------ reverse process
    def predict(self, network: nn.Module, x: Tensor, t: Tensor, labels: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        """(x̂_0, ε̂) from the network's output at (x_t, t), guided when conditional; x̂_0 clipped to [−1, 1]
        (and ε̂ made consistent with it) when ``clip_denoised``."""
        if labels is not None and self.guidance != 1.0:
            both = network(torch.cat([x, x]), torch.cat([t, t]), torch.cat([labels, torch.full_like(labels, self.num_classes)]))
            cond, uncond = both.chunk(2)
            out = uncond + self.guidance * (cond - uncond)
        else:
            out = network(x, t, labels)
        out = out.to(x.dtype)
        a = _at(self.alphas_cumprod, t, x)
        if self.prediction == "eps":
            eps, x0 = out, (x - (1 - a).sqrt() * out) / a.sqrt()
        elif self.prediction == "x0":
            x0, eps = out, (x - a.sqrt() * out) / (1 - a).sqrt()
        else:
            x0, eps = a.sqrt() * x - (1 - a).sqrt() * out, (1 - a).sqrt() * x + a.sqrt() * out
        if self.clip_denoised:
            x0 = x0.clamp(-1, 1)
            eps = (x - a.sqrt() * x0) / (1 - a).sqrt()
        return x0, eps

    def ddim_step(self, x0: Tensor, eps: Tensor, t: int, t_prev: int, eta: float, z: Optional[Tensor] = None) -> Tensor:
        """x_{t'} from (x̂_0, ε̂) at t (Song et al. Eq. 12); t' = −1 means ᾱ = 1, i.e. returns x̂_0."""
        a = self.alphas_cumprod[t]
        a_prev = self.alphas_cumprod[t_prev] if t_prev >= 0 else torch.ones_like(a)
        sigma = eta * ((1 - a_prev) / (1 - a) * (1 - a / a_prev)).sqrt()
        x = a_prev.sqrt() * x0 + (1 - a_prev - sigma**2).clamp(min=0).sqrt() * eps
        if eta > 0 and t_prev >= 0:
            x = x + sigma * (z if z is not None else torch.randn_like(x))
        return x

    def sampling_times(self, steps: int) -> list[int]:
        """``steps`` timesteps evenly spaced from T−1 down to 0 (all T of them for ``steps = T``)."""
        return torch.linspace(self.timesteps - 1, 0, steps).round().long().tolist()

    @torch.no_grad()
    def sample(
        self,
        network: nn.Module,
        noise: Tensor,
        labels: Optional[Tensor] = None,
        steps: Optional[int] = None,
        eta: Optional[float] = None,
        generator: Optional[torch.Generator] = None,
    ) -> Tensor:
        """Run the reverse process from x_T = ``noise``; per-step noise (η > 0) is drawn from ``generator``."""
        steps = steps or self.sampling_steps
        eta = self.eta if eta is None else eta
        times = self.sampling_times(steps)
        x = noise
        for i, t in enumerate(times):
            t_prev = times[i + 1] if i + 1 < len(times) else -1
            x0, eps = self.predict(network, x, torch.full((len(x),), t, device=x.device, dtype=torch.long), labels)
            z = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype) if eta > 0 and t_prev >= 0 else None
            x = self.ddim_step(x0, eps, t, t_prev, eta, z)
        return x

    def fixed_inputs(self, n: int, generator: torch.Generator, heldout: Optional[dict] = None) -> dict:
        """x_T for each sample, and a seed per sample: a batch's per-step noise comes from its first seed."""
        inputs = {
            "noise": torch.randn(n, *self.data_shape, generator=generator),
            "seed": torch.randint(0, 2**62, (n,), generator=generator),
        }
        if self.conditional:
            inputs["label"] = torch.arange(n) % self.num_classes
        return inputs

    def generate(self, inputs: dict, network: Optional[nn.Module] = None) -> Tensor:
        """Samples by the configured sampler: DDIM (``sampling_steps``, ``eta``) or ancestral DDPM (T steps)."""
        network = self.sampling_network(network)
        noise = inputs["noise"]
        generator = torch.Generator(device=noise.device).manual_seed(int(inputs["seed"][0]))
        if self.sampler == "ddpm":
            return self.sample(network, noise, inputs.get("label"), steps=self.timesteps, eta=1.0, generator=generator)
        return self.sample(network, noise, inputs.get("label"), generator=generator)
